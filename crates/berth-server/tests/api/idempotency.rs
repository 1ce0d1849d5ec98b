//! `Idempotency-Key` on the routes that create, and `Cache-Control: no-store` on every answer
//! that carries a secret (SPEC 7.3).

use std::time::Duration;

use berth_server::startup::{Application, HarborChoice};
use harbor_emulator::{Faults, RunningEmulator};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_v3_error, harbor_settings, robot_login_works, runtime, token,
};

fn registry_path(organization: &str) -> String {
    format!("/api/v1/organizations/{organization}/registry")
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// A POST to `address` with `key` (sent as given: quoted or not), as the caller `bearer`.
async fn post_keyed(
    app: &TestApp,
    address: &str,
    path: &str,
    bearer: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = app
        .client
        .post(format!("{address}{path}"))
        .bearer_auth(bearer);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn assert_v1_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
}

/// A second Berth on the same database and the same emulator: another replica.
async fn harbor_replica(app: &TestApp, harbor: &RunningEmulator) -> String {
    let mut runtime = runtime(app.db.url(), &app.key_spec, "k1");
    runtime.harbor = HarborChoice::Remote(harbor_settings(harbor.url()));
    let application = Application::build(runtime).await.unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    address
}

fn robots_named(harbor: &RunningEmulator, suffix: &str) -> usize {
    harbor
        .state()
        .robots
        .iter()
        .filter(|robot| robot.stored_name.ends_with(suffix))
        .count()
}

#[tokio::test]
async fn a_client_that_lost_the_enable_answer_gets_the_same_secret_and_harbor_holds_one_robot() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let path = registry_path(&organization);
    let key = "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"";
    let first = post_keyed(&app, &app.address, &path, &app.admin_token, Some(key), None).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(header(&first, "cache-control"), Some("no-store"));
    assert_eq!(header(&first, "idempotent-replayed"), None);
    // The answer is lost; the client retries with the same key.
    let retry = post_keyed(&app, &app.address, &path, &app.admin_token, Some(key), None).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert_eq!(retry.body, first.body, "the same answer, secret included");
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(header(&retry, "cache-control"), Some("no-store"));
    assert_eq!(
        header(&retry, "content-type"),
        header(&first, "content-type")
    );
    let issued = &retry.body["credentials"];
    assert!(
        robot_login_works(
            &harbor,
            issued["username"].as_str().unwrap(),
            issued["password"].as_str().unwrap()
        )
        .await,
        "the replayed secret works"
    );
    assert_eq!(harbor.state().projects.len(), 1);
    assert_eq!(robots_named(&harbor, "+berth-default"), 1);
    // Without the key, a second enable is what it always was.
    let (status, body) = app.call(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn twenty_concurrent_robot_creates_with_one_key_over_two_replicas_create_one_robot() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let path = registry_path(&organization);
    let (status, body) = app.call(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let replica = harbor_replica(&app, &harbor).await;
    harbor.set_faults(Faults {
        latency_ms: 20,
        ..Faults::default()
    });
    let robots = format!("{path}/credentials");
    let body = json!({"name": "ci", "access": "pull"});
    let answers = futures_util::future::join_all((0..20).map(|i| {
        let address = if i % 2 == 0 { &app.address } else { &replica };
        post_keyed(
            &app,
            address,
            &robots,
            &app.admin_token,
            Some("one-key-for-ci"),
            Some(body.clone()),
        )
    }))
    .await;
    let created: Vec<&Answer> = answers
        .iter()
        .filter(|answer| answer.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    for answer in &answers {
        match answer.status {
            StatusCode::CREATED => assert_eq!(answer.body, created[0].body, "one answer"),
            StatusCode::CONFLICT => assert_v1_error(&answer.body, "idempotency_key_in_flight"),
            other => panic!("{other}: {}", answer.body),
        }
    }
    harbor.set_faults(Faults::default());
    // Once the first is answered, every retry replays it.
    let retry = post_keyed(
        &app,
        &replica,
        &robots,
        &app.admin_token,
        Some("one-key-for-ci"),
        Some(body),
    )
    .await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, created[0].body);
    assert_eq!(robots_named(&harbor, "+ci"), 1, "one robot in Harbor");
    let (_, listed) = app.call(Method::GET, &robots, None).await;
    let named_ci = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|robot| robot["name"] == "ci")
        .count();
    assert_eq!(named_ci, 1, "one robot in Berth");
    let issued = &created[0].body["credentials"];
    assert!(
        robot_login_works(
            &harbor,
            issued["username"].as_str().unwrap(),
            issued["password"].as_str().unwrap()
        )
        .await
    );
}

#[tokio::test]
async fn a_replayed_rotation_gives_the_secret_that_works_and_rotates_once() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let path = registry_path(&organization);
    app.call(Method::POST, &path, None).await;
    let (status, robot) = app
        .call(
            Method::POST,
            &format!("{path}/credentials"),
            Some(json!({"name": "ci", "access": "pull"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{robot}");
    let rotate = format!(
        "{path}/credentials/{}/rotate",
        robot["credential"]["id"].as_str().unwrap()
    );
    let first = post_keyed(
        &app,
        &app.address,
        &rotate,
        &app.admin_token,
        Some("r1"),
        None,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let retry = post_keyed(
        &app,
        &app.address,
        &rotate,
        &app.admin_token,
        Some("r1"),
        None,
    )
    .await;
    assert_eq!(retry.body, first.body);
    assert_eq!(header(&retry, "cache-control"), Some("no-store"));
    let issued = &retry.body["credentials"];
    assert!(
        robot_login_works(
            &harbor,
            issued["username"].as_str().unwrap(),
            issued["password"].as_str().unwrap()
        )
        .await,
        "a replay did not rotate again: the replayed secret is still Harbor's"
    );
    // A new key is a new rotation.
    let again = post_keyed(
        &app,
        &app.address,
        &rotate,
        &app.admin_token,
        Some("r2"),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_ne!(again.body, first.body);
}

#[tokio::test]
async fn secret_answers_are_never_cached_even_without_a_key() {
    let (app, _harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let path = registry_path(&organization);
    let enabled = post_keyed(&app, &app.address, &path, &app.admin_token, None, None).await;
    assert_eq!(enabled.status, StatusCode::CREATED);
    assert_eq!(header(&enabled, "cache-control"), Some("no-store"));
    let robot = post_keyed(
        &app,
        &app.address,
        &format!("{path}/credentials"),
        &app.admin_token,
        None,
        Some(json!({"name": "ci", "access": "pull"})),
    )
    .await;
    assert_eq!(robot.status, StatusCode::CREATED);
    assert_eq!(header(&robot, "cache-control"), Some("no-store"));
    let id = robot.body["credential"]["id"].as_str().unwrap();
    let rotated = post_keyed(
        &app,
        &app.address,
        &format!("{path}/credentials/{id}/rotate"),
        &app.admin_token,
        None,
        None,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_eq!(header(&rotated, "cache-control"), Some("no-store"));
}

fn credential_body(location: &str) -> Value {
    json!({"location": location, "username": "robot", "password": "s3cret"})
}

#[tokio::test]
async fn a_retried_credential_create_answers_the_first_credential_and_creates_one() {
    let app = TestApp::spawn().await;
    let body = credential_body("registry.example.com/team");
    let path = "/v3/registry_credentials";
    let first = post_keyed(
        &app,
        &app.address,
        path,
        &app.admin_token,
        Some("create-1"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let retry = post_keyed(
        &app,
        &app.address,
        path,
        &app.admin_token,
        Some("create-1"),
        Some(body),
    )
    .await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, first.body);
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    let (_, list) = app.get(path).await;
    assert_eq!(list["pagination"]["total_results"], 1);
}

#[tokio::test]
async fn twenty_concurrent_credential_creates_with_one_key_create_one_credential() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let body = credential_body("registry.example.com/concurrent");
    let answers = futures_util::future::join_all((0..20).map(|i| {
        let address = if i % 2 == 0 { &app.address } else { &replica };
        post_keyed(
            &app,
            address,
            "/v3/registry_credentials",
            &app.admin_token,
            Some("\"same\""),
            Some(body.clone()),
        )
    }))
    .await;
    let created: Vec<&Answer> = answers
        .iter()
        .filter(|answer| answer.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    for answer in &answers {
        match answer.status {
            StatusCode::CREATED => assert_eq!(answer.body["guid"], created[0].body["guid"]),
            StatusCode::CONFLICT => assert_v3_error(&answer.body, 10004, "CF-InvalidRequest"),
            other => panic!("{other}: {}", answer.body),
        }
    }
    let (_, list) = app.get("/v3/registry_credentials").await;
    assert_eq!(list["pagination"]["total_results"], 1);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_422_in_each_dialect() {
    let (app, _harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let path = "/v3/registry_credentials";
    let first = post_keyed(
        &app,
        &app.address,
        path,
        &app.admin_token,
        Some("k"),
        Some(credential_body("a.example.com")),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = post_keyed(
        &app,
        &app.address,
        path,
        &app.admin_token,
        Some("k"),
        Some(credential_body("b.example.com")),
    )
    .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_v3_error(&other.body, 10008, "CF-UnprocessableEntity");
    assert!(other.body.to_string().contains("Idempotency-Key"));

    let organization = app.organization("acme").await;
    let path = registry_path(&organization);
    let enabled = post_keyed(&app, &app.address, &path, &app.admin_token, Some("e"), None).await;
    assert_eq!(enabled.status, StatusCode::CREATED);
    let robot = post_keyed(
        &app,
        &app.address,
        &format!("{path}/credentials"),
        &app.admin_token,
        Some("e"),
        Some(json!({"name": "ci", "access": "pull"})),
    )
    .await;
    assert_eq!(robot.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_v1_error(&robot.body, "idempotency_key_reused");
}

#[tokio::test]
async fn malformed_or_repeated_keys_are_400_in_each_dialect() {
    let (app, _harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let v1 = registry_path(&organization);
    let long = "k".repeat(256);
    for key in ["\"unterminated", "two words", "\"\"", long.as_str()] {
        let v3 = post_keyed(
            &app,
            &app.address,
            "/v3/registry_credentials",
            &app.admin_token,
            Some(key),
            Some(credential_body("a.example.com")),
        )
        .await;
        assert_eq!(v3.status, StatusCode::BAD_REQUEST, "{key}: {}", v3.body);
        assert_v3_error(&v3.body, 10004, "CF-InvalidRequest");
        let answer = post_keyed(&app, &app.address, &v1, &app.admin_token, Some(key), None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{key}");
        assert_v1_error(&answer.body, "invalid_idempotency_key");
    }
    let repeated = app
        .client
        .post(format!("{}{v1}", app.address))
        .bearer_auth(&app.admin_token)
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(repeated.status(), StatusCode::BAD_REQUEST);
    // Nothing was created by any of them.
    let (status, _) = app.get(&v1).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_refused_request_gives_its_key_back() {
    let app = TestApp::spawn().await;
    let path = "/v3/registry_credentials";
    let refused = post_keyed(
        &app,
        &app.address,
        path,
        &app.admin_token,
        Some("fix-and-retry"),
        Some(json!({"location": "https://bad", "username": "u", "password": "p"})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fixed = post_keyed(
        &app,
        &app.address,
        path,
        &app.admin_token,
        Some("fix-and-retry"),
        Some(credential_body("good.example.com")),
    )
    .await;
    assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.body);
}

#[tokio::test]
async fn a_key_belongs_to_its_caller() {
    let app = TestApp::spawn().await;
    let other_admin = token("other-admin", &["berth.admin"], Duration::from_secs(600));
    let body = credential_body("shared.example.com");
    let path = "/v3/registry_credentials";
    let first = post_keyed(
        &app,
        &app.address,
        path,
        &app.admin_token,
        Some("k"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Another caller's same key is its own: the request runs (and meets the first credential).
    let other = post_keyed(
        &app,
        &app.address,
        path,
        &other_admin,
        Some("k"),
        Some(body),
    )
    .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.body
    );
    assert!(
        other.body.to_string().contains("already exists"),
        "{}",
        other.body
    );
    assert_eq!(header(&other, "idempotent-replayed"), None);
}

#[tokio::test]
async fn an_unauthenticated_request_with_a_key_is_401_and_claims_nothing() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/v3/registry_credentials", app.address))
        .header("Idempotency-Key", "k")
        .json(&credential_body("a.example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let created = post_keyed(
        &app,
        &app.address,
        "/v3/registry_credentials",
        &app.admin_token,
        Some("k"),
        Some(credential_body("a.example.com")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
}
