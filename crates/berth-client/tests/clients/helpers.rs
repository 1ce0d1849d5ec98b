//! A real Berth for the clients: built by the function `main` uses, on port 0, with a fresh
//! database on the backend `BERTH_TEST_BACKEND` names; and the tools the tests drive.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use berth_auth::{AuthSettings, MintClaims, mint_hs256};
use berth_client::BerthClient;
use berth_client::wire::{Context, NewCredential};
use berth_persistence::PoolSettings;
use berth_persistence::sealing::KeyRing;
use berth_server::startup::{Application, HarborChoice, Mode, Runtime};
use berth_testkit::TestDatabase;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const HS256_SECRET: &str = "client-test-secret-long-enough-for-hs256";

pub struct Berth {
    pub address: String,
    pub admin_token: String,
    /// The platform deployer's token: `berth.pull_secrets` only.
    pub pull_token: String,
    _db: TestDatabase,
}

pub fn token(scopes: &[&str]) -> String {
    mint_hs256(
        &SecretString::from(HS256_SECRET),
        &MintClaims {
            subject: "client-tests".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            roles: Vec::new(),
            ttl: Duration::from_secs(900),
            issuer: None,
            audience: None,
        },
    )
    .unwrap()
}

impl Berth {
    pub async fn spawn() -> Self {
        let db = TestDatabase::new().await;
        let key = KeyRing::generate_spec_entry("k1").unwrap();
        let runtime = Runtime {
            mode: Mode::Production,
            listen: "127.0.0.1:0".into(),
            external_url: "https://berth.example.test".into(),
            database_url: db.url().to_owned(),
            pool: PoolSettings {
                max_connections: 5,
                min_connections: 0,
                ..PoolSettings::default()
            },
            keys: Arc::new(
                KeyRing::from_spec(&SecretString::from(key.expose_secret().to_owned()), "k1")
                    .unwrap(),
            ),
            auth: AuthSettings {
                hs256_secret: Some(SecretString::from(HS256_SECRET)),
                jwks_file: None,
                jwks_url: None,
                issuer: None,
                audience: None,
                leeway_seconds: 5,
            },
            claim_rules: berth_auth::ClaimRules::berth("scope".into(), "roles".into()),
            permission_cache_ttl: Duration::from_millis(
                berth_server::config::DEFAULT_PERMISSION_CACHE_MS,
            ),
            workers: Some(1),
            shutdown_timeout: Duration::from_secs(5),
            migrate_on_start: true,
            dev: None,
            harbor: HarborChoice::None,
            registry: berth_domain::registry_service::RegistrySettings {
                default_quota: berth_domain::registry::QuotaGb::new(10).unwrap(),
                lease: time::Duration::seconds(60),
                lease_wait: time::Duration::seconds(2),
                usage_cache: time::Duration::ZERO,
                stale_after: time::Duration::seconds(3600),
                clock_skew: time::Duration::seconds(60),
            },
            reconcile_interval: Duration::from_secs(3600),
            metrics_listen: None,
            verification_policy: berth_registry_probe::NetworkPolicy::default(),
            verification_deadline: berth_registry_probe::DEFAULT_DEADLINE,
            audit_retention_days: 31,
        };
        let application = Application::build(runtime).await.unwrap();
        let address = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        Self {
            address,
            admin_token: token(&["berth.admin"]),
            pull_token: token(&["berth.pull_secrets"]),
            _db: db,
        }
    }

    pub fn admin(&self) -> BerthClient {
        BerthClient::new(&self.address, SecretString::from(self.admin_token.clone())).unwrap()
    }

    pub fn deployer(&self) -> BerthClient {
        BerthClient::new(&self.address, SecretString::from(self.pull_token.clone())).unwrap()
    }

    /// Stores a credential as the admin.
    pub async fn store(
        &self,
        location: &str,
        username: &str,
        password: &str,
        owner: Context,
    ) -> uuid::Uuid {
        let credential = NewCredential {
            location: location.into(),
            username: username.into(),
            password: SecretString::from(password),
            owner,
            metadata: None,
        };
        self.admin()
            .create_credential(&credential)
            .await
            .unwrap()
            .guid
    }

    async fn put(&self, path: &str, body: Value) -> uuid::Uuid {
        let guid = uuid::Uuid::new_v4();
        let response = reqwest::Client::new()
            .put(format!("{}{path}/{guid}", self.address))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        guid
    }

    /// An organization, a space in it and an app in that space.
    pub async fn directory(&self) -> (uuid::Uuid, uuid::Uuid, uuid::Uuid) {
        let organization = self.put("/v3/organizations", json!({"name": "team"})).await;
        let space = self
            .put(
                "/v3/spaces",
                json!({"name": "dev", "relationships": {"organization": {"data": {"guid": organization}}}}),
            )
            .await;
        let app = self
            .put(
                "/v3/apps",
                json!({"name": "web", "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        (organization, space, app)
    }

    /// The environment a helper reads, with the deployer's token.
    pub fn env(&self) -> HashMap<String, String> {
        HashMap::from([
            ("BERTH_URL".to_owned(), self.address.clone()),
            ("BERTH_TOKEN".to_owned(), self.pull_token.clone()),
        ])
    }
}

/// A lookup over `env`, as the protocol modules read the environment.
pub fn lookup(env: &HashMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| env.get(name).cloned()
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The path of `tool` on `PATH`; a missing tool fails the test, naming the package to install.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{tool}` is not on PATH: this test needs it (Debian package `{package}`; `cargo xtask test` installs it)")
        })
}

/// Runs `command` with `stdin` on a blocking thread (the Berth under test keeps serving) and
/// returns its output.
pub async fn run(mut command: Command, stdin: &str) -> Output {
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        // A helper that exits before reading closes the pipe: not an error here.
        let _ = pipe.write_all(stdin.as_bytes());
        drop(pipe);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// A command for one of this crate's binaries, with no `BERTH_*` from the developer's shell.
pub fn binary(path: &str, env: &HashMap<String, String>, args: &[&str]) -> Command {
    let mut command = Command::new(path);
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("BERTH_") {
            command.env_remove(key);
        }
    }
    command.envs(env);
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        Self(temp_dir(prefix))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
