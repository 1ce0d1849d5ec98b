//! Passwords are sealed at rest and never leave Berth.

use reqwest::StatusCode;
use serde_json::json;

use berth_server::startup::Application;

use crate::helpers::{TestApp, key_spec, runtime};

const CANARY: &str = "canary-PW-7f3a9c1e";

#[tokio::test]
async fn the_password_never_appears_in_any_response() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let created = app
        .credential(
            json!({"location": "r.io", "username": "u", "password": CANARY,
            "relationships": {"organization": {"data": {"guid": organization}}}}),
        )
        .await;
    let guid = created["guid"].as_str().unwrap();
    let path = format!("/v3/registry_credentials/{guid}");
    let mut responses = vec![created.to_string()];
    responses.push(app.get(&path).await.1.to_string());
    responses.push(app.get("/v3/registry_credentials").await.1.to_string());
    responses.push(
        app.patch(&path, json!({"password": format!("{CANARY}-2")}))
            .await
            .1
            .to_string(),
    );
    // Errors that involve the password must not echo it either.
    responses.push(
        app.post(
            "/v3/registry_credentials",
            json!({"location": "r.io", "username": "u", "password": CANARY,
        "relationships": {"organization": {"data": {"guid": organization}}}}),
        )
        .await
        .1
        .to_string(),
    );
    responses.push(
        app.post(
            "/v3/registry_credentials",
            json!({"location": "bad location", "username": "u", "password": CANARY}),
        )
        .await
        .1
        .to_string(),
    );
    for response in responses {
        assert!(!response.contains("canary"), "{response}");
    }
}

#[tokio::test]
async fn start_up_refuses_a_database_sealed_with_a_label_missing_from_the_ring() {
    let app = TestApp::spawn().await;
    let (status, _) = app
        .post(
            "/v3/registry_credentials",
            json!({"location": "r.io", "username": "u", "password": "p"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let other_ring = key_spec(&["k2"]);
    let error = Application::build(runtime(app.db.url(), &other_ring, "k2"))
        .await
        .err()
        .unwrap();
    let message = format!("{error:#}");
    assert!(message.contains("k1"), "{message}");
    assert!(message.contains("BERTH_ENCRYPTION__KEYS"), "{message}");
    // The same ring plus a new current key starts fine.
    let both = secrecy::SecretString::from(format!(
        "{},{}",
        secrecy::ExposeSecret::expose_secret(&app.key_spec),
        secrecy::ExposeSecret::expose_secret(&other_ring)
    ));
    assert!(
        Application::build(runtime(app.db.url(), &both, "k2"))
            .await
            .is_ok()
    );
}
