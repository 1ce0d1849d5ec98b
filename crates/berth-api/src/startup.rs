//! Building the application: one function that `main` and the tests both call.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, web};
use anyhow::{Context, bail};
use berth_domain::credential_service::CredentialService;
use berth_domain::directory_service::DirectoryService;
use berth_persistence::sealing::KeyRing;
use berth_persistence::{PoolSettings, SeaOrmCredentialStore, SeaOrmDirectoryStore};
use secrecy::SecretString;
use tracing_actix_web::TracingLogger;

use crate::auth::{AuthSettings, TokenVerifier};
use crate::authn::Authenticator;
use crate::config::Settings;
use crate::dev;
use crate::state::AppState;
use crate::v3;
use crate::v3::presenters::Links;

/// Dev mode (the embedded default) or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Dev,
    Production,
}

/// Settings resolved for one run: every default filled in, every file read.
pub struct Runtime {
    pub mode: Mode,
    pub listen: String,
    pub external_url: String,
    pub database_url: String,
    pub pool: PoolSettings,
    pub keys: Arc<KeyRing>,
    pub auth: AuthSettings,
    pub scope_claim: String,
    pub roles_claim: String,
    pub workers: Option<usize>,
    /// Dev mode applies migrations on start; production needs `berth migrate`.
    pub migrate_on_start: bool,
    /// Dev mode's folder, and the HS256 key it generated when none was configured.
    pub dev: Option<DevParts>,
}

/// What dev mode made up, to mint the admin token and explain itself in the banner.
pub struct DevParts {
    pub data_dir: PathBuf,
    pub hs256_secret: Option<SecretString>,
    pub generated_encryption_key: bool,
}

impl Runtime {
    /// Chooses the mode and fills in everything the mode needs.
    ///
    /// # Errors
    /// In production, a message naming the missing setting; in dev mode, data folder trouble.
    pub fn resolve(settings: Settings, force_dev: bool) -> anyhow::Result<Self> {
        let mode = if force_dev || settings.database.url.is_none() {
            Mode::Dev
        } else {
            Mode::Production
        };
        let external_url = settings
            .external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", settings.listen));
        let pool = PoolSettings {
            max_connections: settings.database.max_connections.max(1),
            min_connections: settings.database.min_connections,
            acquire_timeout: Duration::from_secs(settings.database.acquire_timeout_seconds.max(1)),
            connect_timeout: Duration::from_secs(settings.database.acquire_timeout_seconds.max(1)),
        };
        let mut auth = AuthSettings {
            hs256_secret: settings.auth.hs256_secret.clone(),
            jwks_file: settings.auth.jwks_file.clone(),
            jwks_url: settings.auth.jwks_url.clone(),
            issuer: settings.auth.issuer.clone(),
            audience: settings.auth.audience.clone(),
            leeway_seconds: settings.auth.leeway_seconds,
        };
        match mode {
            Mode::Production => {
                let Some(database_url) = settings.database.url.clone() else {
                    bail!("production mode needs database.url (BERTH_DATABASE__URL)");
                };
                let keys = key_ring(&settings)?;
                if !settings.auth.has_verifier() {
                    bail!(
                        "production mode needs a token verifier: set auth.jwks_url (BERTH_AUTH__JWKS_URL), \
                         auth.jwks_file (BERTH_AUTH__JWKS_FILE) or auth.hs256_secret (BERTH_AUTH__HS256_SECRET)"
                    );
                }
                Ok(Self {
                    mode,
                    listen: settings.listen,
                    external_url,
                    database_url,
                    pool,
                    keys: Arc::new(keys),
                    auth,
                    scope_claim: settings.auth.scope_claim,
                    roles_claim: settings.auth.roles_claim,
                    workers: settings.workers,
                    migrate_on_start: false,
                    dev: None,
                })
            }
            Mode::Dev => {
                let data_dir = settings.data_dir.clone();
                dev::ensure_data_dir(&data_dir)?;
                let database_url =
                    settings.database.url.clone().unwrap_or_else(|| {
                        format!("sqlite://{}", data_dir.join("berth.db").display())
                    });
                let (keys, generated_encryption_key) = match settings.encryption.keys {
                    Some(_) => (key_ring(&settings)?, false),
                    None => (dev::encryption_keys(&data_dir)?, true),
                };
                let hs256_secret = if settings.auth.has_verifier() {
                    settings.auth.hs256_secret.clone()
                } else {
                    let secret = dev::hs256_secret(&data_dir)?;
                    auth.hs256_secret = Some(secret.clone());
                    Some(secret)
                };
                Ok(Self {
                    mode,
                    listen: settings.listen,
                    external_url,
                    database_url,
                    pool,
                    keys: Arc::new(keys),
                    auth,
                    scope_claim: settings.auth.scope_claim,
                    roles_claim: settings.auth.roles_claim,
                    workers: settings.workers,
                    migrate_on_start: true,
                    dev: Some(DevParts {
                        data_dir,
                        hs256_secret,
                        generated_encryption_key,
                    }),
                })
            }
        }
    }
}

fn key_ring(settings: &Settings) -> anyhow::Result<KeyRing> {
    let Some(spec) = &settings.encryption.keys else {
        bail!(
            "production mode needs an encryption key ring: set encryption.keys (BERTH_ENCRYPTION__KEYS) \
             to label:base64key,... with 32-byte keys"
        );
    };
    let current = match &settings.encryption.current_label {
        Some(label) => label.clone(),
        None => {
            let labels: Vec<&str> = secrecy::ExposeSecret::expose_secret(spec)
                .split(',')
                .filter_map(|entry| entry.split_once(':').map(|(label, _)| label.trim()))
                .collect();
            match labels.as_slice() {
                [only] => (*only).to_owned(),
                _ => bail!(
                    "the key ring has several keys: set encryption.current_label (BERTH_ENCRYPTION__CURRENT_LABEL)"
                ),
            }
        }
    };
    KeyRing::from_spec(spec, &current).context("encryption key ring")
}

/// A running Berth: its port and the server future.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connects the database (migrating in dev mode), checks the key ring against it, builds the
    /// adapters and services, and binds the listener.
    ///
    /// # Errors
    /// Anything that must stop Berth from serving: an unreachable database, pending migrations
    /// in production, a key label in use that the ring lacks, a bad token verifier, a busy port.
    pub async fn build(runtime: Runtime) -> anyhow::Result<Self> {
        let db = berth_persistence::connect(&runtime.database_url, &runtime.pool)
            .await
            .context("cannot connect to the database (database.url)")?;
        if runtime.migrate_on_start {
            berth_persistence::migrate(&db)
                .await
                .context("applying migrations")?;
        } else {
            let pending = berth_persistence::pending_migrations(&db)
                .await
                .context("reading migrations")?;
            if !pending.is_empty() {
                bail!(
                    "the database has {} pending migration(s): run `berth migrate` first",
                    pending.len()
                );
            }
        }
        let missing = berth_persistence::keys::missing_labels(&db, &runtime.keys)
            .await
            .context("checking sealed rows against the key ring")?;
        if !missing.is_empty() {
            bail!(
                "the database holds secrets sealed with key label(s) {} that the key ring lacks: \
                 add them to encryption.keys (BERTH_ENCRYPTION__KEYS)",
                missing.join(", ")
            );
        }
        let verifier = TokenVerifier::new(runtime.auth)
            .await
            .context("token verifier (auth.*)")?;
        let credential_store =
            Arc::new(SeaOrmCredentialStore::new(db.clone(), runtime.keys.clone()));
        let directory_store = Arc::new(SeaOrmDirectoryStore::new(db));
        let state = web::Data::new(AppState {
            credentials: CredentialService::new(credential_store, directory_store.clone()),
            directory: DirectoryService::new(directory_store),
            links: Links::new(&runtime.external_url),
            authenticator: Authenticator::new(verifier, runtime.scope_claim, runtime.roles_claim),
        });
        let listener = TcpListener::bind(&runtime.listen).with_context(|| {
            format!("cannot listen on {} (listen, BERTH_LISTEN)", runtime.listen)
        })?;
        let port = listener.local_addr()?.port();
        let mut server = actix_web::HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .configure(configure)
        })
        .listen(listener)?;
        if let Some(workers) = runtime.workers {
            server = server.workers(workers.max(1));
        }
        Ok(Self {
            port,
            server: server.run(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped (SIGINT or SIGTERM).
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Every route. Unknown routes answer Cloud Foundry's 404.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/healthz", web::get().to(healthz))
        .configure(v3::configure)
        .default_service(web::to(v3::unknown_request));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}
