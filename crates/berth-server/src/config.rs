//! Settings: a TOML file (`--config` or `BERTH_CONFIG`) plus `BERTH_<SECTION>__<KEY>`
//! environment overrides. Read only here; library crates take constructor arguments.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Every setting, with its default. `docs/OPERATIONS.md` lists them with their variables.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Settings {
    /// `BERTH_LISTEN`: the address to serve on.
    pub listen: String,
    /// `BERTH_EXTERNAL_URL`: the base of link hrefs; defaults to `http://<listen>`.
    pub external_url: Option<String>,
    /// `BERTH_DATA_DIR`: dev mode's folder (SQLite file, generated keys, admin token).
    pub data_dir: PathBuf,
    /// `BERTH_WORKERS`: HTTP worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// `BERTH_SHUTDOWN_TIMEOUT_SECONDS`: how long in-flight requests may finish after SIGTERM.
    pub shutdown_timeout_seconds: u64,
    pub database: DatabaseSettings,
    pub auth: AuthConfig,
    pub harbor: HarborSettings,
    pub encryption: EncryptionSettings,
    pub log: LogSettings,
    pub telemetry: TelemetrySettings,
    pub metrics: MetricsSettings,
    pub verification: VerificationSettings,
    pub audit: AuditSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            external_url: None,
            data_dir: PathBuf::from("./.berth"),
            workers: None,
            shutdown_timeout_seconds: 30,
            database: DatabaseSettings::default(),
            auth: AuthConfig::default(),
            harbor: HarborSettings::default(),
            encryption: EncryptionSettings::default(),
            log: LogSettings::default(),
            telemetry: TelemetrySettings::default(),
            metrics: MetricsSettings::default(),
            verification: VerificationSettings::default(),
            audit: AuditSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `BERTH_DATABASE__URL`: `postgres://...` or `sqlite://...`; unset means dev mode.
    pub url: Option<String>,
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a request waits for a database connection (opening one included).
    pub acquire_timeout_seconds: u64,
    /// PostgreSQL's `statement_timeout` on every connection; with the acquire timeout it also
    /// bounds how long a request waits on a database that stopped answering. 0 disables both.
    pub statement_timeout_seconds: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            min_connections: 1,
            acquire_timeout_seconds: 5,
            statement_timeout_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthConfig {
    pub jwks_url: Option<String>,
    pub jwks_file: Option<PathBuf>,
    #[serde(serialize_with = "never_serialize_secret")]
    pub hs256_secret: Option<SecretString>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_seconds: u64,
    /// The claim holding platform scopes.
    pub scope_claim: String,
    /// The claim holding `<role>:<guid>` strings.
    pub roles_claim: String,
    /// `BERTH_AUTH__PROFILE`: which tokens Berth reads, `berth` (the default: Berth's own
    /// `berth.*` tokens, which dev mode and `berth token` mint) or `uaa` (Cloud Foundry UAA's
    /// tokens as they are; docs/AUTHORIZATION.md).
    pub profile: AuthProfileSetting,
    /// `BERTH_AUTH__ROLES_SOURCE`: where organization and space roles come from: `claims`,
    /// `directory` (`/v3/roles`) or `both` (the default).
    pub roles_source: RolesSourceSetting,
    /// `BERTH_AUTH__PERMISSION_CACHE_MS`: how long this process keeps a caller's permission
    /// lookup (directory roles and the organizations of the token's spaces): the longest another
    /// replica's role change takes to count here (this replica's own count at once). 0 reads the
    /// directory on every request.
    pub permission_cache_ms: u64,
}

/// `auth.permission_cache_ms` unless set: a revoked role stops counting on every replica
/// within a second.
pub const DEFAULT_PERMISSION_CACHE_MS: u64 = 1_000;

/// `auth.profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthProfileSetting {
    #[default]
    Berth,
    Uaa,
}

/// `auth.roles_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RolesSourceSetting {
    Claims,
    Directory,
    #[default]
    Both,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwks_url: None,
            jwks_file: None,
            hs256_secret: None,
            issuer: None,
            audience: None,
            leeway_seconds: 30,
            scope_claim: "scope".into(),
            roles_claim: "roles".into(),
            profile: AuthProfileSetting::default(),
            roles_source: RolesSourceSetting::default(),
            permission_cache_ms: DEFAULT_PERMISSION_CACHE_MS,
        }
    }
}

impl AuthConfig {
    pub fn has_verifier(&self) -> bool {
        self.jwks_url.is_some() || self.jwks_file.is_some() || self.hs256_secret.is_some()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct HarborSettings {
    /// `BERTH_HARBOR__URL`: Harbor's base URL; unset in dev mode means the embedded emulator.
    pub url: Option<String>,
    pub username: Option<String>,
    #[serde(serialize_with = "never_serialize_secret")]
    pub password: Option<SecretString>,
    /// The quota of a newly enabled registry when the request names none.
    pub default_quota_gb: u32,
    /// The registry host shown as `endpoint`; defaults to the URL's host.
    pub registry_endpoint: Option<String>,
    pub connect_timeout_seconds: u64,
    /// Bounds every Harbor call, and so how long a `POST` waits before answering 503.
    pub request_timeout_seconds: u64,
    pub lease_seconds: u64,
    /// How long a robot or quota change, or a disable, waits for another change to the same
    /// registry before answering 409 `registry_busy`.
    pub lease_wait_ms: u64,
    pub usage_cache_seconds: u64,
    /// How long a provisioning must sit untouched before the reconciler rolls it back.
    pub stale_after_seconds: u64,
    pub reconcile_interval_seconds: u64,
}

impl Default for HarborSettings {
    fn default() -> Self {
        Self {
            url: None,
            username: None,
            password: None,
            default_quota_gb: 10,
            registry_endpoint: None,
            connect_timeout_seconds: 3,
            request_timeout_seconds: 10,
            lease_seconds: 60,
            lease_wait_ms: 2000,
            usage_cache_seconds: 30,
            stale_after_seconds: 120,
            reconcile_interval_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct EncryptionSettings {
    /// `BERTH_ENCRYPTION__KEYS`: `label:base64key,...`, each key 32 bytes.
    #[serde(serialize_with = "never_serialize_secret")]
    pub keys: Option<SecretString>,
    /// `BERTH_ENCRYPTION__CURRENT_LABEL`: the label new seals use; may be omitted with one key.
    pub current_label: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LogSettings {
    /// `json` or `pretty`; defaults to `pretty` in dev mode and `json` in production.
    pub format: Option<String>,
    /// An `EnvFilter` directive such as `info` or `berth_server=debug`; `RUST_LOG` wins.
    pub level: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// `BERTH_TELEMETRY__OTLP_ENDPOINT`: an OTLP/HTTP collector such as `http://collector:4318`;
    /// the standard `OTEL_EXPORTER_OTLP_ENDPOINT` works too. Unset: no span export.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "berth".into(),
        }
    }
}

/// Audit events (`/v3/audit_events`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuditSettings {
    /// `BERTH_AUDIT__RETENTION_DAYS`: events older than this are pruned in the background
    /// (Cloud Controller's `cutoff_age_in_days`, 31 by default). At least 1.
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            retention_days: berth_domain::audit::DEFAULT_RETENTION_DAYS,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// `BERTH_METRICS__LISTEN`: an address of its own for `/metrics` (then not served on
    /// `listen`), so the metrics can stay off the public port.
    pub listen: Option<String>,
}

/// How `POST /v3/registry_credentials/{guid}/actions/verify` may reach registries. Both lists are
/// empty by default: only public addresses, only https.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct VerificationSettings {
    /// `BERTH_VERIFICATION__ALLOWED_NETWORKS` (`["10.0.0.0/8"]`): CIDRs of private registries
    /// Berth may contact. Cloud metadata addresses stay blocked whatever is listed.
    pub allowed_networks: Vec<String>,
    /// `BERTH_VERIFICATION__INSECURE_REGISTRIES` (`["registry.local:5000"]`): `host[:port]`
    /// spoken to over plain http.
    pub insecure_registries: Vec<String>,
    /// `BERTH_VERIFICATION__TIMEOUT_MS`: the deadline of one whole verification.
    pub timeout_ms: u64,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        Self {
            allowed_networks: Vec::new(),
            insecure_registries: Vec::new(),
            timeout_ms: 10_000,
        }
    }
}

/// Secrets only ever travel into the figment as defaults, which are `None`: nothing to write.
fn never_serialize_secret<S: serde::Serializer>(
    _secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_none()
}

/// Reads defaults, then the file, then the environment.
///
/// # Errors
/// A figment error naming the setting and its source.
pub fn load(config_file: Option<&Path>) -> Result<Settings, Box<figment::Error>> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(path) = config_file {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(Env::prefixed("BERTH_").split("__").ignore(&[
        "config",
        "test_database_url",
        "test_backend",
    ]));
    figment.extract().map_err(Box::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns figment's own error
    fn environment_overrides_nested_settings() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "berth.toml",
                "listen = \"0.0.0.0:9000\"\n[database]\nurl = \"sqlite://x.db\"\n",
            )?;
            jail.set_env("BERTH_DATABASE__URL", "postgres://db/berth");
            jail.set_env("BERTH_HARBOR__DEFAULT_QUOTA_GB", "25");
            jail.set_env("BERTH_ENCRYPTION__CURRENT_LABEL", "k2");
            let settings = load(Some(Path::new("berth.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(settings.listen, "0.0.0.0:9000");
            assert_eq!(
                settings.database.url.as_deref(),
                Some("postgres://db/berth")
            );
            assert_eq!(settings.harbor.default_quota_gb, 25);
            assert_eq!(settings.encryption.current_label.as_deref(), Some("k2"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns figment's own error
    fn metrics_listen_is_read_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(load(None).map_err(|e| e.to_string())?.metrics.listen, None);
            jail.set_env("BERTH_METRICS__LISTEN", "127.0.0.1:9100");
            let settings = load(None).map_err(|e| e.to_string())?;
            assert_eq!(settings.metrics.listen.as_deref(), Some("127.0.0.1:9100"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns figment's own error
    fn verification_lists_are_read_from_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            let defaults = load(None).map_err(|e| e.to_string())?.verification;
            assert!(defaults.allowed_networks.is_empty());
            assert!(defaults.insecure_registries.is_empty());
            assert_eq!(defaults.timeout_ms, 10_000);
            jail.create_file(
                "berth.toml",
                "[verification]\ninsecure_registries = [\"registry.local:5000\"]\n",
            )?;
            jail.set_env(
                "BERTH_VERIFICATION__ALLOWED_NETWORKS",
                "[\"10.0.0.0/8\", \"fd00::/8\"]",
            );
            jail.set_env("BERTH_VERIFICATION__TIMEOUT_MS", "2000");
            let settings = load(Some(Path::new("berth.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(
                settings.verification.allowed_networks,
                ["10.0.0.0/8", "fd00::/8"]
            );
            assert_eq!(
                settings.verification.insecure_registries,
                ["registry.local:5000"]
            );
            assert_eq!(settings.verification.timeout_ms, 2000);
            Ok(())
        });
    }
}
