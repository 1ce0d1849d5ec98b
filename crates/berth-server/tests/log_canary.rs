//! A password never reaches a log line at any level, nor a `Debug` print.
//!
//! Its own test binary: it installs a global subscriber at TRACE that captures every event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_auth::{MintClaims, mint_hs256};
use berth_domain::credential::{Password, UpdateCredentialRequest};
use berth_persistence::sealing::KeyRing;
use berth_server::startup::{Application, HarborChoice};
use berth_testkit::TestDatabase;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

const CANARY: &str = "canary-Log-5d2e8b";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn the_password_is_in_no_log_line_at_any_level() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .json()
        .init();

    let (harbor, harbor_server) =
        harbor_emulator::start(harbor_emulator::EmulatorConfig::default(), "127.0.0.1:0").unwrap();
    tokio::spawn(harbor_server);
    let db = TestDatabase::new().await;
    let spec = KeyRing::generate_spec_entry("k1").unwrap();
    let mut runtime = common::runtime(db.url(), &spec, "k1");
    runtime.harbor = HarborChoice::Remote(common::harbor_settings(harbor.url()));
    let application = Application::build(runtime).await.unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    let token = mint_hs256(
        &SecretString::from(common::HS256_SECRET),
        &MintClaims {
            subject: "admin".into(),
            scopes: vec!["berth.admin".into()],
            roles: vec![],
            ttl: Duration::from_secs(600),
            issuer: None,
            audience: None,
        },
    )
    .unwrap();
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        client
            .post(format!("{address}/v3/registry_credentials"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let created: serde_json::Value =
        post(json!({"location": "r.io", "username": "u", "password": CANARY}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let guid = created["guid"].as_str().unwrap();
    // Failures on the way: a duplicate, a bad body, an unknown field, a bad patch.
    post(json!({"location": "r.io", "username": "u", "password": CANARY}))
        .await
        .unwrap();
    post(json!({"location": "https://x", "username": "u", "password": CANARY}))
        .await
        .unwrap();
    post(json!({"location": "r.io", "username": "u", "password": CANARY, "secret": CANARY}))
        .await
        .unwrap();
    client
        .patch(format!("{address}/v3/registry_credentials/{guid}"))
        .bearer_auth(&token)
        .json(&json!({"password": CANARY, "metadata": "x"}))
        .send()
        .await
        .unwrap();
    client
        .patch(format!("{address}/v3/registry_credentials/{guid}"))
        .bearer_auth(&token)
        .json(&json!({"password": format!("{CANARY}-2")}))
        .send()
        .await
        .unwrap();
    // A token in the wrong place must not be logged either.
    client
        .get(format!("{address}/v3/registry_credentials"))
        .bearer_auth(CANARY)
        .send()
        .await
        .unwrap();

    // Robot secrets: issued on enable, on create and on rotate; none may reach a log line.
    let organization = uuid::Uuid::new_v4();
    client
        .put(format!("{address}/v3/organizations/{organization}"))
        .bearer_auth(&token)
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    let registry = format!("{address}/api/v1/organizations/{organization}/registry");
    let mut robot_secrets = Vec::new();
    let enabled: serde_json::Value = client
        .post(&registry)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    robot_secrets.push(
        enabled["credentials"]["password"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let created: serde_json::Value = client
        .post(format!("{registry}/credentials"))
        .bearer_auth(&token)
        .json(&json!({"name": "ci", "access": "pull"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    robot_secrets.push(
        created["credentials"]["password"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let id = created["credential"]["id"].as_str().unwrap();
    let rotated: serde_json::Value = client
        .post(format!("{registry}/credentials/{id}/rotate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    robot_secrets.push(
        rotated["credentials"]["password"]
            .as_str()
            .unwrap()
            .to_owned(),
    );

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("Harbor call"),
        "the capture saw the Harbor calls"
    );
    for secret in &robot_secrets {
        assert_eq!(secret.len(), 32);
        assert!(
            !logs.contains(secret.as_str()),
            "a log line carries a robot secret"
        );
    }
    assert!(
        !logs.contains("Harbor12345"),
        "a log line carries Harbor's admin password"
    );
    assert!(
        logs.contains("/v3/registry_credentials"),
        "the capture saw the requests: {logs}"
    );
    assert!(!logs.contains("canary"), "a log line carries the password");
    assert!(
        !logs.contains(&token),
        "a log line carries the bearer token"
    );

    // Debug prints of the domain types are redacted.
    let password = Password::parse(SecretString::from(CANARY)).unwrap();
    let request = UpdateCredentialRequest {
        password: Some(password),
        ..Default::default()
    };
    assert!(!format!("{request:?}").contains("canary"));
    assert!(!format!("{:?}", SecretString::from(CANARY)).contains("canary"));
    assert!(
        !format!("{:?}", KeyRing::from_spec(&spec, "k1").unwrap())
            .contains(spec.expose_secret().split(':').nth(1).unwrap())
    );
}
