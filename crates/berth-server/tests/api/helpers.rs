//! `TestApp`: Berth built by the same function `main` uses, on port 0, with its own database.

use std::time::Duration;

use berth_auth::{MintClaims, mint_hs256};
use berth_persistence::sealing::KeyRing;
use berth_server::startup::{Application, HarborChoice, Runtime};
use berth_testkit::TestDatabase;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

pub use crate::common::{EXTERNAL_URL, HS256_SECRET, harbor_settings, runtime};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub admin_token: String,
    pub key_spec: SecretString,
}

pub fn key_spec(labels: &[&str]) -> SecretString {
    let entries: Vec<String> = labels
        .iter()
        .map(|label| {
            KeyRing::generate_spec_entry(label)
                .unwrap()
                .expose_secret()
                .to_owned()
        })
        .collect();
    SecretString::from(entries.join(","))
}

pub fn token(subject: &str, scopes: &[&str], ttl: Duration) -> String {
    mint_hs256(
        &SecretString::from(HS256_SECRET),
        &MintClaims {
            subject: subject.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            roles: Vec::new(),
            ttl,
            issuer: None,
            audience: None,
        },
    )
    .unwrap()
}

impl TestApp {
    pub async fn spawn() -> Self {
        let db = TestDatabase::new().await;
        let key_spec = key_spec(&["k1"]);
        Self::spawn_with(db, key_spec, "k1").await
    }

    pub async fn spawn_with(db: TestDatabase, key_spec: SecretString, current: &str) -> Self {
        Self::spawn_configured(db, key_spec, current, |_| {}).await
    }

    /// Spawns with a runtime adjusted by `configure` (for example another token verifier).
    pub async fn spawn_configured(
        db: TestDatabase,
        key_spec: SecretString,
        current: &str,
        configure: impl FnOnce(&mut Runtime),
    ) -> Self {
        let mut runtime = runtime(db.url(), &key_spec, current);
        configure(&mut runtime);
        let application = Application::build(runtime).await.unwrap();
        let address = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        Self {
            address,
            client: reqwest::Client::new(),
            db,
            admin_token: token("admin", &["berth.admin"], Duration::from_secs(600)),
            key_spec,
        }
    }

    /// Berth with a Harbor emulator on its own port; `configure` may adjust the runtime further.
    pub async fn spawn_with_harbor(
        configure: impl FnOnce(&mut Runtime),
    ) -> (Self, harbor_emulator::RunningEmulator) {
        let (emulator, server) =
            harbor_emulator::start(harbor_emulator::EmulatorConfig::default(), "127.0.0.1:0")
                .unwrap();
        tokio::spawn(server);
        let url = emulator.url().to_owned();
        let app = Self::spawn_configured(
            TestDatabase::new().await,
            key_spec(&["k1"]),
            "k1",
            move |runtime| {
                runtime.harbor = HarborChoice::Remote(harbor_settings(&url));
                configure(runtime);
            },
        )
        .await;
        (app, emulator)
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        request.send().await.unwrap()
    }

    /// A request as the admin; returns the status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.raw_json(method, path, Some(&self.admin_token), body)
            .await
    }

    /// A request with `token` (or none), its answer read as JSON (`null` when empty).
    pub async fn raw_json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self
            .raw(method, path, token, body.map(|b| b.to_string()))
            .await;
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn organization(&self, name: &str) -> String {
        let guid = uuid::Uuid::new_v4().to_string();
        let (status, _) = self
            .put(&format!("/v3/organizations/{guid}"), json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        guid
    }

    pub async fn space(&self, organization: &str, name: &str) -> String {
        let guid = uuid::Uuid::new_v4().to_string();
        let body = json!({"name": name, "relationships": {"organization": {"data": {"guid": organization}}}});
        let (status, _) = self.put(&format!("/v3/spaces/{guid}"), body).await;
        assert_eq!(status, StatusCode::CREATED);
        guid
    }

    pub async fn app(&self, space: &str, name: &str) -> String {
        let guid = uuid::Uuid::new_v4().to_string();
        let body = json!({"name": name, "relationships": {"space": {"data": {"guid": space}}}});
        let (status, _) = self.put(&format!("/v3/apps/{guid}"), body).await;
        assert_eq!(status, StatusCode::CREATED);
        guid
    }

    /// Creates a credential and returns its resource.
    pub async fn credential(&self, body: Value) -> Value {
        let (status, resource) = self.post("/v3/registry_credentials", body).await;
        assert_eq!(status, StatusCode::CREATED, "{resource}");
        resource
    }

    /// Starts a second Berth on the same database, as another replica would be (its own pool
    /// and workers), and returns its address.
    pub async fn replica(&self) -> String {
        self.replica_configured(|_| {}).await
    }

    /// A second Berth on the same database, its runtime adjusted by `configure`.
    pub async fn replica_configured(&self, configure: impl FnOnce(&mut Runtime)) -> String {
        let mut runtime = runtime(self.db.url(), &self.key_spec, "k1");
        configure(&mut runtime);
        let application = Application::build(runtime).await.unwrap();
        let address = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        address
    }

    /// A request as the admin to the Berth at `address` (this app or a [`TestApp::replica`]).
    pub async fn call_at(
        &self,
        address: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{address}{path}"))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    /// The credential store on this app's database and key ring, to check what is stored.
    pub async fn credential_store(&self) -> berth_persistence::SeaOrmCredentialStore {
        let keys = KeyRing::from_spec(&self.key_spec, "k1").unwrap();
        berth_persistence::SeaOrmCredentialStore::new(
            self.connect().await,
            std::sync::Arc::new(keys),
        )
    }

    pub async fn connect(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(self.db.url()).await.unwrap()
    }
}

/// Asserts a V3 error envelope with exactly `code`, `title` and `detail` keys.
pub fn assert_v3_error(body: &Value, code: u64, title: &str) {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("not a V3 error: {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    let error = errors[0].as_object().unwrap();
    assert_eq!(error.len(), 3, "{body}");
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["title"], title, "{body}");
    assert!(error["detail"].is_string(), "{body}");
}

pub fn detail(body: &Value) -> &str {
    body["errors"][0]["detail"].as_str().unwrap_or_default()
}

/// Whether a robot's login works in Harbor (Harbor answers 412 to a robot on /users/current).
pub async fn robot_login_works(
    harbor: &harbor_emulator::RunningEmulator,
    username: &str,
    password: &str,
) -> bool {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v2.0/users/current", harbor.url()))
        .basic_auth(username, Some(password))
        .send()
        .await
        .unwrap();
    response.status() == StatusCode::PRECONDITION_FAILED
}
