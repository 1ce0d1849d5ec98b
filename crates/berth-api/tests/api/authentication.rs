//! Bearer tokens on every route but `/healthz`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, assert_v3_error, token};

async fn status_and_body(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let response = app.raw(method, path, token, Some("{}".into())).await;
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v3/registry_credentials"),
    ("POST", "/v3/registry_credentials"),
    (
        "GET",
        "/v3/registry_credentials/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    (
        "PATCH",
        "/v3/registry_credentials/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    (
        "DELETE",
        "/v3/registry_credentials/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    ("GET", "/v3/organizations"),
    (
        "GET",
        "/v3/organizations/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    (
        "PUT",
        "/v3/organizations/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    (
        "DELETE",
        "/v3/organizations/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    ("GET", "/v3/spaces"),
    ("PUT", "/v3/spaces/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"),
    ("GET", "/v3/apps"),
    ("DELETE", "/v3/apps/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"),
];

#[tokio::test]
async fn healthz_needs_no_token() {
    let app = TestApp::spawn().await;
    let response = app.raw(Method::GET, "/healthz", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_route_without_a_token_is_401_not_authenticated() {
    let app = TestApp::spawn().await;
    for (method, path) in ROUTES {
        let (status, challenge, body) =
            status_and_body(&app, method.parse().unwrap(), path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{method} {path}");
        assert_v3_error(&body, 10002, "CF-NotAuthenticated");
    }
}

fn forge(header: &str, payload: &str, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        signature
    )
}

#[tokio::test]
async fn bad_tokens_are_401_invalid_auth_token_everywhere() {
    let app = TestApp::spawn().await;
    let valid = token("alice", &["berth.admin"], Duration::from_secs(600));
    let mut tampered = valid.clone();
    tampered.pop();
    tampered.push(if valid.ends_with('A') { 'B' } else { 'A' });
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    let payload = format!(r#"{{"sub":"mallory","exp":{exp},"scope":"berth.admin"}}"#);
    let wrong_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "mallory", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret"),
    )
    .unwrap();
    let no_exp = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "mallory"}),
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::HS256_SECRET.as_bytes()),
    )
    .unwrap();
    let bad_tokens = [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        tampered,
        wrong_key,
        no_exp,
        forge(r#"{"alg":"none","typ":"JWT"}"#, &payload, ""),
        forge(r#"{"alg":"None","typ":"JWT"}"#, &payload, ""),
    ];
    for (index, bad) in bad_tokens.iter().enumerate() {
        for (method, path) in &ROUTES[..3] {
            let (status, challenge, body) =
                status_and_body(&app, method.parse().unwrap(), path, Some(bad)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "token #{index} on {method} {path}"
            );
            assert!(challenge.unwrap().starts_with("Bearer"));
            assert_v3_error(&body, 1000, "CF-InvalidAuthToken");
        }
    }
    // Other schemes are not bearer tokens.
    let response = app
        .client
        .get(format!("{}/v3/registry_credentials", app.address))
        .header(
            "authorization",
            format!("Basic {}", URL_SAFE_NO_PAD.encode("admin:admin")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "alice", "exp": now - 120, "iat": now - 3600}),
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::HS256_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, _, body) = status_and_body(
        &app,
        Method::GET,
        "/v3/registry_credentials",
        Some(&expired),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_v3_error(&body, 1000, "CF-InvalidAuthToken");
}

#[tokio::test]
async fn any_valid_token_may_do_everything_until_permissions_land() {
    let app = TestApp::spawn().await;
    let plain = token("bob", &[], Duration::from_secs(600));
    let (status, _, _) =
        status_and_body(&app, Method::GET, "/v3/registry_credentials", Some(&plain)).await;
    assert_eq!(status, StatusCode::OK);
}
