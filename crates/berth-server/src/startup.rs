//! Building the application: one function that `main` and the tests both call.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, web};
use anyhow::{Context, bail};
use berth_domain::credential_service::CredentialService;
use berth_domain::directory_service::DirectoryService;
use berth_domain::ports::RegistryProvisioner;
use berth_domain::registry::QuotaGb;
use berth_domain::registry_service::{RegistryService, RegistrySettings};
use berth_harbor::{HarborClient, HarborSettings};
use berth_persistence::sealing::KeyRing;
use berth_persistence::{
    Deadline, PoolSettings, SeaOrmCredentialStore, SeaOrmDirectoryStore, SeaOrmRegistryStore,
    WorkerPools,
};
use secrecy::SecretString;
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::dev;
use berth_auth::{AuthSettings, Authenticator, TokenVerifier};
use berth_http::health::Readiness;
use berth_http::state::AppState;
use berth_http::v3;
use berth_http::v3::presenters::Links;

/// Dev mode (the embedded default) or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Dev,
    Production,
}

/// Which Harbor the registry routes use.
pub enum HarborChoice {
    /// None configured (production without `harbor.url`): the registry routes answer 503.
    None,
    Remote(HarborSettings),
    /// Dev mode: an in-process emulator on a free port.
    Embedded,
}

/// Settings resolved for one run: every default filled in, every file read.
pub struct Runtime {
    pub harbor: HarborChoice,
    pub registry: RegistrySettings,
    pub reconcile_interval: Duration,
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
    /// How long in-flight requests may run after SIGTERM before the process exits anyway.
    pub shutdown_timeout: Duration,
    /// Dev mode applies migrations on start; production needs `berth migrate`.
    pub migrate_on_start: bool,
    /// Dev mode's folder, and the HS256 key it generated when none was configured.
    pub dev: Option<DevParts>,
    /// `metrics.listen`: when set, `/metrics` is served there only, not on `listen`.
    pub metrics_listen: Option<String>,
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
            statement_timeout: (settings.database.statement_timeout_seconds > 0)
                .then(|| Duration::from_secs(settings.database.statement_timeout_seconds)),
        };
        let harbor_settings = &settings.harbor;
        let remote = match (
            &harbor_settings.url,
            &harbor_settings.username,
            &harbor_settings.password,
        ) {
            (Some(url), Some(username), Some(password)) => Some(HarborSettings {
                url: url.clone(),
                username: username.clone(),
                password: password.clone(),
                connect_timeout: Duration::from_secs(
                    harbor_settings.connect_timeout_seconds.max(1),
                ),
                request_timeout: Duration::from_secs(
                    harbor_settings.request_timeout_seconds.max(1),
                ),
                registry_endpoint: harbor_settings.registry_endpoint.clone(),
            }),
            (Some(_), _, _) => bail!(
                "harbor.url is set but harbor.username or harbor.password is not \
                 (BERTH_HARBOR__USERNAME, BERTH_HARBOR__PASSWORD)"
            ),
            (None, _, _) => None,
        };
        let harbor = match (remote, mode) {
            (Some(remote), _) => HarborChoice::Remote(remote),
            (None, Mode::Dev) => HarborChoice::Embedded,
            (None, Mode::Production) => HarborChoice::None,
        };
        let seconds =
            |value: u64| time::Duration::seconds(i64::try_from(value).unwrap_or(i64::MAX));
        let registry = RegistrySettings {
            default_quota: QuotaGb::new(u64::from(harbor_settings.default_quota_gb))
                .context("harbor.default_quota_gb (BERTH_HARBOR__DEFAULT_QUOTA_GB)")?,
            lease: seconds(harbor_settings.lease_seconds.max(1)),
            lease_wait: time::Duration::milliseconds(
                i64::try_from(harbor_settings.lease_wait_ms).unwrap_or(i64::MAX),
            ),
            usage_cache: seconds(harbor_settings.usage_cache_seconds),
            stale_after: seconds(harbor_settings.stale_after_seconds),
            clock_skew: seconds(60),
        };
        let reconcile_interval =
            Duration::from_secs(harbor_settings.reconcile_interval_seconds.max(1));
        let mut auth = AuthSettings {
            hs256_secret: settings.auth.hs256_secret.clone(),
            jwks_file: settings.auth.jwks_file.clone(),
            jwks_url: settings.auth.jwks_url.clone(),
            issuer: settings.auth.issuer.clone(),
            audience: settings.auth.audience.clone(),
            leeway_seconds: settings.auth.leeway_seconds,
        };
        // What differs between the modes: where the database, keys and dev parts come from.
        let (database_url, keys, dev) = match mode {
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
                (database_url, keys, None)
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
                (
                    database_url,
                    keys,
                    Some(DevParts {
                        data_dir,
                        hs256_secret,
                        generated_encryption_key,
                    }),
                )
            }
        };
        Ok(Self {
            harbor,
            registry,
            reconcile_interval,
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
            shutdown_timeout: Duration::from_secs(settings.shutdown_timeout_seconds),
            // Dev mode applies migrations on start; production needs `berth migrate`.
            migrate_on_start: mode == Mode::Dev,
            dev,
            metrics_listen: settings.metrics.listen,
        })
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
    KeyRing::from_spec(spec, &current).context(
        "encryption.keys (BERTH_ENCRYPTION__KEYS) must be label:base64key,... with 32-byte keys",
    )
}

/// A running Berth: its port and the server future (and the metrics server's, when
/// `metrics.listen` gives the metrics their own address).
pub struct Application {
    port: u16,
    server: Server,
    metrics: Option<(u16, Server)>,
    embedded_harbor: Option<harbor_emulator::RunningEmulator>,
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
            // A migration may run longer than the statement timeout requests get.
            let unbounded = PoolSettings {
                statement_timeout: None,
                ..runtime.pool.clone()
            };
            if runtime.pool.statement_timeout.is_some()
                && runtime.database_url.starts_with("postgres")
            {
                let migrating = berth_persistence::connect(&runtime.database_url, &unbounded)
                    .await
                    .context("cannot connect to the database (database.url)")?;
                berth_persistence::migrate(&migrating)
                    .await
                    .context("applying migrations")?;
                let _ = migrating.close().await;
            } else {
                berth_persistence::migrate(&db)
                    .await
                    .context("applying migrations")?;
            }
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
        let ChosenHarbor {
            provisioner,
            embedded: embedded_harbor,
        } = provisioner(runtime.harbor)?;
        let readiness = Readiness {
            db: db.clone(),
            keys: runtime.keys.clone(),
            harbor: provisioner.clone(),
        };
        let call_deadline = runtime.pool.call_deadline();
        // The reconciler works on the shared pool; requests on their worker's own pool.
        if let Some(provisioner) = provisioner.clone() {
            let registries = RegistryService::new(
                Arc::new(Deadline::new(
                    SeaOrmRegistryStore::new(db.clone()),
                    call_deadline,
                )),
                Arc::new(Deadline::new(
                    SeaOrmDirectoryStore::new(db.clone()),
                    call_deadline,
                )),
                provisioner,
                runtime.registry,
            );
            tokio::spawn(reconcile_forever(registries, runtime.reconcile_interval));
        }
        let workers = runtime.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            |workers| workers.max(1),
        );
        let pools = WorkerPools::new(db.clone(), &runtime.database_url, &runtime.pool, workers);
        let metrics_source = berth_http::prometheus::MetricsSource {
            db,
            pools: pools.clone(),
        };
        let parts = SharedParts {
            pools,
            call_deadline,
            keys: runtime.keys,
            provisioner,
            registry: runtime.registry,
            links: Links::new(&runtime.external_url),
            authenticator: Arc::new(Authenticator::new(
                verifier,
                runtime.scope_claim,
                runtime.roles_claim,
            )),
            readiness,
        };
        berth_http::prometheus::handle();
        let listener = TcpListener::bind(&runtime.listen).with_context(|| {
            format!("cannot listen on {} (listen, BERTH_LISTEN)", runtime.listen)
        })?;
        let port = listener.local_addr()?.port();
        let metrics = match &runtime.metrics_listen {
            Some(listen) => Some(metrics_server(
                listen,
                metrics_source.clone(),
                runtime.shutdown_timeout,
            )?),
            None => None,
        };
        let public_metrics = metrics.is_none();
        let server = actix_web::HttpServer::new(move || {
            let state = web::Data::new(parts.worker_state());
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    berth_http::head::head_as_get,
                ))
                .wrap(actix_web::middleware::from_fn(
                    berth_http::prometheus::record_requests,
                ))
                .wrap(actix_web::middleware::from_fn(request_id))
                .wrap(TracingLogger::<crate::telemetry::BerthRootSpan>::new())
                .app_data(state.clone())
                .app_data(web::Data::new(metrics_source.clone()))
                .configure(|config| {
                    if public_metrics {
                        berth_http::prometheus::route(config);
                    }
                })
                .configure(configure)
        })
        .workers(workers)
        .shutdown_timeout(runtime.shutdown_timeout.as_secs())
        .listen(listener)?;
        Ok(Self {
            port,
            server: server.run(),
            metrics,
            embedded_harbor,
        })
    }

    /// The in-process Harbor emulator of dev mode, if this Berth runs one.
    pub fn embedded_harbor(&self) -> Option<&harbor_emulator::RunningEmulator> {
        self.embedded_harbor.as_ref()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics server, when `metrics.listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until the server is stopped (SIGINT or SIGTERM; both servers hear it).
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.metrics {
            Some((_, metrics)) => tokio::try_join!(self.server, metrics).map(|_| ()),
            None => self.server.await,
        }
    }
}

/// `/metrics` alone on its own address, so operators can keep it off the public port.
fn metrics_server(
    listen: &str,
    source: berth_http::prometheus::MetricsSource,
    shutdown_timeout: Duration,
) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(listen).with_context(|| {
        format!("cannot listen on {listen} (metrics.listen, BERTH_METRICS__LISTEN)")
    })?;
    let port = listener.local_addr()?.port();
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                berth_http::head::head_as_get,
            ))
            .app_data(web::Data::new(source.clone()))
            .configure(berth_http::prometheus::route)
            .default_service(web::to(v3::unknown_request))
    })
    .workers(1)
    .shutdown_timeout(shutdown_timeout.as_secs())
    .listen(listener)?;
    Ok((port, server.run()))
}

/// What every server worker shares; each builds its own [`AppState`] from it.
#[derive(Clone)]
struct SharedParts {
    pools: WorkerPools,
    /// Bounds every store call (`PoolSettings::call_deadline`).
    call_deadline: Option<Duration>,
    keys: Arc<KeyRing>,
    provisioner: Option<Arc<dyn RegistryProvisioner>>,
    registry: RegistrySettings,
    links: Links,
    authenticator: Arc<Authenticator>,
    readiness: Readiness,
}

impl SharedParts {
    /// The stores on this worker's own pool and the services on them. Runs on the worker's
    /// thread (actix-web calls the app factory there), so the pool's connections live there.
    fn worker_state(&self) -> AppState {
        let db = self.pools.open();
        let deadline = self.call_deadline;
        let directory_store = Arc::new(Deadline::new(
            SeaOrmDirectoryStore::new(db.clone()),
            deadline,
        ));
        let credential_store = Arc::new(Deadline::new(
            SeaOrmCredentialStore::new(db.clone(), self.keys.clone()),
            deadline,
        ));
        let registries = self.provisioner.clone().map(|provisioner| {
            RegistryService::new(
                Arc::new(Deadline::new(SeaOrmRegistryStore::new(db), deadline)),
                directory_store.clone(),
                provisioner,
                self.registry,
            )
        });
        AppState {
            credentials: CredentialService::new(credential_store, directory_store.clone()),
            directory: DirectoryService::new(directory_store),
            registries,
            links: self.links.clone(),
            authenticator: self.authenticator.clone(),
            readiness: self.readiness.clone(),
        }
    }
}

/// The provisioner for the chosen Harbor, and the embedded emulator in dev mode.
struct ChosenHarbor {
    provisioner: Option<Arc<dyn RegistryProvisioner>>,
    embedded: Option<harbor_emulator::RunningEmulator>,
}

fn provisioner(choice: HarborChoice) -> anyhow::Result<ChosenHarbor> {
    let remote =
        |settings: HarborSettings| -> anyhow::Result<Option<Arc<dyn RegistryProvisioner>>> {
            Ok(Some(Arc::new(
                HarborClient::new(settings).context("harbor settings")?,
            )))
        };
    match choice {
        HarborChoice::None => Ok(ChosenHarbor {
            provisioner: None,
            embedded: None,
        }),
        HarborChoice::Remote(settings) => Ok(ChosenHarbor {
            provisioner: remote(settings)?,
            embedded: None,
        }),
        HarborChoice::Embedded => {
            let password = harbor_emulator_password()?;
            let config = harbor_emulator::EmulatorConfig {
                admin_password: password.clone(),
                ..Default::default()
            };
            let (emulator, server) = harbor_emulator::start(config, "127.0.0.1:0")
                .context("starting the embedded Harbor emulator")?;
            tokio::spawn(server);
            let settings = HarborSettings {
                url: emulator.url().to_owned(),
                username: "admin".into(),
                password: SecretString::from(password),
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(10),
                registry_endpoint: None,
            };
            Ok(ChosenHarbor {
                provisioner: remote(settings)?,
                embedded: Some(emulator),
            })
        }
    }
}

fn harbor_emulator_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    // Harbor's rule for passwords: upper, lower and a digit.
    Ok(format!(
        "Aa1{}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    ))
}

/// Runs the reconciler now and then every `interval`. Every replica may run it: rows are leased.
async fn reconcile_forever(registries: RegistryService, interval: Duration) {
    loop {
        match registries.reconcile().await {
            Ok(report) if report != Default::default() => {
                tracing::info!(?report, "reconciled stalled registries")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reconciler pass failed"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// Echoes the caller's `X-Request-Id` or makes one, on every response, and hands it to the
/// Harbor adapter so Harbor's logs carry the same id.
async fn request_id(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .or_else(|| {
            // The id tracing-actix-web gave the request span (it runs first), so logs, traces
            // and the response all show one id, and none is generated twice.
            actix_web::HttpMessage::extensions(&request)
                .get::<tracing_actix_web::RequestId>()
                .map(|id| id.to_string())
        })
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut response = berth_harbor::request_id::REQUEST_ID
        .scope(id.clone(), next.call(request))
        .await?;
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            value,
        );
    }
    Ok(response)
}

/// Every route but `/metrics` (see `prometheus::route`). Unknown routes answer in the dialect of
/// their prefix.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(v3::resource("/healthz", "GET").route(web::get().to(berth_http::health::healthz)))
        .service(v3::resource("/readyz", "GET").route(web::get().to(berth_http::health::readyz)))
        .service(utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url(
            "/openapi.json",
            <berth_http::openapi::ApiDoc as utoipa::OpenApi>::openapi(),
        ))
        .configure(v3::configure)
        .configure(berth_http::v1::configure)
        .service(web::scope("/api/v1").default_service(web::to(berth_http::v1::registry::unknown)))
        .default_service(web::to(v3::unknown_request));
}
