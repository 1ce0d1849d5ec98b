//! What to run: the settings resolved into a [`Runtime`], every default filled in, every file
//! read, and dev mode or production chosen.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_auth::{AuthProfile, AuthSettings, ClaimRules, RolesSource};
use berth_domain::registry::QuotaGb;
use berth_domain::registry_service::RegistrySettings;
use berth_harbor::HarborSettings;
use berth_persistence::PoolSettings;
use berth_persistence::sealing::KeyRing;
use berth_registry_probe::{NetworkPolicy, PolicyError};
use secrecy::SecretString;

use crate::config::{AuthProfileSetting, RolesSourceSetting, Settings};
use crate::dev;

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
    /// How claims become an actor (`auth.profile`, the claim names, `auth.roles_source`).
    pub claim_rules: ClaimRules,
    /// How long a caller's permission lookup is kept (`auth.permission_cache_ms`).
    pub permission_cache_ttl: Duration,
    pub workers: Option<usize>,
    /// How long in-flight requests may run after SIGTERM before the process exits anyway.
    pub shutdown_timeout: Duration,
    /// Dev mode applies migrations on start; production needs `berth migrate`.
    pub migrate_on_start: bool,
    /// Dev mode's folder, and the HS256 key it generated when none was configured.
    pub dev: Option<DevParts>,
    /// `metrics.listen`: when set, `/metrics` is served there only, not on `listen`.
    pub metrics_listen: Option<String>,
    /// Where credential verification may connect (`verification.*`).
    pub verification_policy: NetworkPolicy,
    /// The deadline of one whole verification (`verification.timeout_ms`).
    pub verification_deadline: Duration,
    /// Days audit events are kept (`audit.retention_days`, at least 1).
    pub audit_retention_days: u32,
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
            // A build without the `dev` feature has no emulator to embed: its registry routes
            // answer 503 until harbor.url is set, as in production.
            (None, Mode::Dev) if cfg!(feature = "dev") => HarborChoice::Embedded,
            (None, _) => HarborChoice::None,
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
        let (verification_policy, verification_deadline) = verification(&settings)?;
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
            claim_rules: ClaimRules {
                profile: match settings.auth.profile {
                    AuthProfileSetting::Berth => AuthProfile::Berth,
                    AuthProfileSetting::Uaa => AuthProfile::Uaa,
                },
                scope_claim: settings.auth.scope_claim,
                roles_claim: settings.auth.roles_claim,
                roles_source: match settings.auth.roles_source {
                    RolesSourceSetting::Claims => RolesSource::Claims,
                    RolesSourceSetting::Directory => RolesSource::Directory,
                    RolesSourceSetting::Both => RolesSource::Both,
                },
            },
            permission_cache_ttl: Duration::from_millis(settings.auth.permission_cache_ms),
            workers: settings.workers,
            shutdown_timeout: Duration::from_secs(settings.shutdown_timeout_seconds),
            // Dev mode applies migrations on start; production needs `berth migrate`.
            migrate_on_start: mode == Mode::Dev,
            dev,
            metrics_listen: settings.metrics.listen,
            verification_policy,
            verification_deadline,
            audit_retention_days: settings.audit.retention_days.max(1),
        })
    }
}

/// The verification settings, refused at start when an entry is malformed (naming the key).
fn verification(settings: &Settings) -> anyhow::Result<(NetworkPolicy, Duration)> {
    let verification = &settings.verification;
    let policy = NetworkPolicy::parse(
        &verification.allowed_networks,
        &verification.insecure_registries,
    )
    .map_err(|error| {
        let key = match error {
            PolicyError::Network(_) => {
                "verification.allowed_networks (BERTH_VERIFICATION__ALLOWED_NETWORKS)"
            }
            PolicyError::InsecureRegistry(_) => {
                "verification.insecure_registries (BERTH_VERIFICATION__INSECURE_REGISTRIES)"
            }
        };
        anyhow::anyhow!("{key}: {error}")
    })?;
    if verification.timeout_ms == 0 {
        bail!("verification.timeout_ms (BERTH_VERIFICATION__TIMEOUT_MS) must be at least 1");
    }
    Ok((policy, Duration::from_millis(verification.timeout_ms)))
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
