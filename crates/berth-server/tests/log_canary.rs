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

/// The one global subscriber of this binary, at TRACE, writing to one capture (installed by the
/// first test to ask, so the tests also share a process under `cargo test`).
fn capture() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(captured.clone())
                .json()
                .init();
            captured
        })
        .clone()
}

fn mint(scopes: &[&str]) -> String {
    mint_hs256(
        &SecretString::from(common::HS256_SECRET),
        &MintClaims {
            subject: "caller".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            roles: vec![],
            ttl: Duration::from_secs(600),
            issuer: None,
            audience: None,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn the_password_is_in_no_log_line_at_any_level() {
    let captured = capture();

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
    // Resolve answers the password; no log line carries it.
    let resolved = client
        .post(format!("{address}/v3/registry_credentials/actions/resolve"))
        .bearer_auth(mint(&["berth.pull_secrets"]))
        .json(&json!({"images": ["r.io/app"]}))
        .send()
        .await
        .unwrap();
    assert!(resolved.text().await.unwrap().contains(CANARY));
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
    // The platform pull robot's secret, stored (and rotated) as the managed credential's
    // password, never shown in an answer: read back from the store.
    let status = client
        .post(format!("{registry}/pull_credential/rotate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    {
        use berth_domain::ports::CredentialStore;
        let store = berth_persistence::SeaOrmCredentialStore::new(
            sea_orm::Database::connect(db.url()).await.unwrap(),
            Arc::new(KeyRing::from_spec(&spec, "k1").unwrap()),
        );
        let all = store
            .list(&berth_domain::listing::CredentialQuery {
                visibility: berth_domain::permissions::CredentialVisibility::Everything,
                ..Default::default()
            })
            .await
            .unwrap();
        let managed = all.items.iter().find(|c| c.is_managed()).unwrap();
        let password = store.reveal_password(managed.guid).await.unwrap().unwrap();
        robot_secrets.push(password.expose().to_owned());
    }

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

/// A winner's sealed password that does not open is answered 500 with no internals, and the log
/// line names the credential, so an operator can find the row.
#[tokio::test]
async fn a_seal_that_does_not_open_is_logged_with_the_credential_guid() {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};

    let captured = capture();
    let db = TestDatabase::new().await;
    let spec = KeyRing::generate_spec_entry("k1").unwrap();
    let application = Application::build(common::runtime(db.url(), &spec, "k1"))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::new();
    let admin = mint(&["berth.admin"]);
    let created: serde_json::Value = client
        .post(format!("{address}/v3/registry_credentials"))
        .bearer_auth(&admin)
        .json(&json!({"location": "sealed.example.com", "username": "u", "password": "p"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let guid = created["guid"].as_str().unwrap().to_owned();
    // One byte of the ciphertext flipped.
    let connection = sea_orm::Database::connect(db.url()).await.unwrap();
    let table = Alias::new("registry_credentials");
    let column = Alias::new("password_ciphertext");
    let select = Query::select()
        .column(column.clone())
        .from(table.clone())
        .and_where(Expr::col(Alias::new("guid")).eq(uuid::Uuid::parse_str(&guid).unwrap()))
        .to_owned();
    let row = connection.query_one(&select).await.unwrap().unwrap();
    let mut bytes: Vec<u8> = row.try_get("", "password_ciphertext").unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let update = Query::update()
        .table(table)
        .value(column, bytes)
        .and_where(Expr::col(Alias::new("guid")).eq(uuid::Uuid::parse_str(&guid).unwrap()))
        .to_owned();
    connection.execute(&update).await.unwrap();

    let response = client
        .post(format!("{address}/v3/registry_credentials/actions/resolve"))
        .bearer_auth(mint(&["berth.pull_secrets"]))
        .json(&json!({"images": ["sealed.example.com/app"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body = response.text().await.unwrap();
    assert!(!body.contains(&guid), "no internals in the answer: {body}");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|line| line.contains("does not open") && line.contains(&guid))
        .unwrap_or_else(|| panic!("no log line names {guid}: {logs}"));
    assert!(line.contains("ERROR"), "{line}");
}
