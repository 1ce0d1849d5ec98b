//! Malformed requests get a 4xx in the V3 envelope, never a 5xx, and write nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_v3_error, detail};

async fn post_raw(app: &TestApp, body: &str) -> (StatusCode, Value) {
    let response = app
        .raw(
            Method::POST,
            "/v3/registry_credentials",
            Some(&app.admin_token),
            Some(body.to_owned()),
        )
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn malformed_json_is_a_message_parse_error() {
    let app = TestApp::spawn().await;
    for body in ["{", "{\"location\": }", "nul", "{\"a\":1}}", "\u{0}"] {
        let (status, error) = post_raw(&app, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_v3_error(&error, 1001, "CF-MessageParseError");
        assert_eq!(
            detail(&error),
            "Request invalid due to parse error: invalid request body"
        );
    }
    for body in ["[]", "\"text\"", "42", "[{\"location\":\"r.io\"}]"] {
        let (status, error) = post_raw(&app, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_v3_error(&error, 1001, "CF-MessageParseError");
    }
    // `null` has no fields: the same answer as `{}`.
    let (status, error) = post_raw(&app, "null").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&error),
        "Location can't be blank, Username can't be blank, Password can't be blank"
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, _) = post_raw(&app, &deep).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_types_unknown_fields_and_invalid_values_are_422_with_every_problem() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({}),
            "Location can't be blank, Username can't be blank, Password can't be blank",
        ),
        (
            json!({"location": 1, "username": true, "password": []}),
            "Location must be a string, Username must be a string, Password must be a string",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "guid": "x", "scope": "app"}),
            "Unknown field(s): 'guid', 'scope'",
        ),
        (
            json!({"location": "https://r.io", "username": "u", "password": "p"}),
            "Location must not include a protocol such as 'https://'",
        ),
        (
            json!({"location": "r.io/", "username": "u", "password": "p"}),
            "Location must be a registry host name, optionally with a port and a path, such as 'registry.example.com:5000/team'",
        ),
        (
            json!({"location": "r.io", "username": " ", "password": ""}),
            "Username can't be blank, Password can't be blank",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "metadata": []}),
            "Metadata must be an object",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"tags": {}}}),
            "Metadata has unexpected field(s): 'tags'",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"labels": "x"}}),
            "Metadata 'labels' is not an object",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"labels": {"bad key": "v"}}}),
            "Metadata label key error: 'bad key' contains invalid characters",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"labels": {"cloudfoundry.org/x": "v"}}}),
            "Metadata label key error: prefix 'cloudfoundry.org' is reserved",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"labels": {"k": "-v"}}}),
            "Metadata label value error: '-v' starts or ends with invalid characters",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"labels": {"k": 5}}}),
            "Metadata label value error: values must be strings or null",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"annotations": {"k": "x".repeat(5001)}}}),
            "Metadata annotation value error: 'xxxxxxxx...' is greater than 5000 characters",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "relationships": "org"}),
            "Relationships must be an object",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p", "relationships": {"foundation": {}}}),
            "Relationships has unexpected field(s): 'foundation'",
        ),
        (
            json!({"location": "r.io", "username": "u", "password": "p".repeat(16 * 1024 + 1)}),
            "Password is too long (maximum is 16384 bytes)",
        ),
    ];
    for (body, message) in cases {
        let (status, error) = app.post("/v3/registry_credentials", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_v3_error(&error, 10008, "CF-UnprocessableEntity");
        assert_eq!(detail(&error), message);
    }
    let (_, list) = app.get("/v3/registry_credentials").await;
    assert_eq!(list["pagination"]["total_results"], 0, "no partial writes");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = TestApp::spawn().await;
    let body = json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"annotations": {"k": "x".repeat(1024 * 1024)}}});
    let (status, error) = app.post("/v3/registry_credentials", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["errors"][0]["title"], "CF-InvalidRequest");
}

#[tokio::test]
async fn path_guids_that_are_not_uuids_are_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/v3/registry_credentials/nope",
        "/v3/registry_credentials/%00",
        "/v3/registry_credentials/6f1c4b1e8a7e4d4b9a0e0c6b8f3b9a11",
    ] {
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let body = (method == Method::PATCH).then(|| json!({}));
            let (status, error) = app.call(method.clone(), path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_v3_error(&error, 10010, "CF-ResourceNotFound");
        }
    }
}

#[tokio::test]
async fn unknown_routes_are_cf_not_found() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/v3/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v3_error(&body, 10000, "CF-NotFound");
}

#[tokio::test]
async fn unsupported_methods_are_405_with_allow_in_each_envelope() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        (Method::PUT, "/v3/registry_credentials", "GET, HEAD, POST"),
        (
            Method::DELETE,
            "/v3/registry_credentials",
            "GET, HEAD, POST",
        ),
        (
            Method::POST,
            "/v3/registry_credentials/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
            "GET, HEAD, PATCH, DELETE",
        ),
        (Method::POST, "/v3/organizations", "GET, HEAD"),
        (
            Method::PATCH,
            "/v3/spaces/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
            "GET, HEAD, PUT, DELETE",
        ),
    ] {
        let response = app
            .raw(
                method.clone(),
                path,
                Some(&app.admin_token),
                Some("{}".into()),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], allow);
        assert_v3_error(&response.json().await.unwrap(), 10000, "CF-NotFound");
    }
    let response = app
        .raw(
            Method::PUT,
            "/api/v1/organizations/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11/registry",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.headers()["allow"],
        "GET, HEAD, POST, PATCH, DELETE"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_document_and_its_offline_page_are_served() {
    let app = TestApp::spawn().await;
    let response = app.raw(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.unwrap();
    let generated: Value = serde_json::from_str(&berth_http::openapi::document_json()).unwrap();
    assert_eq!(served, generated);
    let response = app.raw(Method::GET, "/docs/", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    assert!(
        !page.contains("https://"),
        "the page loads nothing from a CDN"
    );
    let script = app
        .raw(Method::GET, "/docs/swagger-ui-bundle.js", None, None)
        .await;
    assert_eq!(
        script.status(),
        StatusCode::OK,
        "the assets are served by Berth itself"
    );
}
