//! Set-up shared by the test binaries: the runtime every test Berth starts from.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use berth_auth::AuthSettings;
use berth_persistence::PoolSettings;
use berth_persistence::sealing::KeyRing;
use berth_server::startup::{HarborChoice, Mode, Runtime};
use secrecy::SecretString;

pub const EXTERNAL_URL: &str = "https://berth.example.test";
pub const HS256_SECRET: &str = "test-secret-that-is-long-enough-for-hs256";

/// A production-mode runtime on `db_url` with HS256 tokens, no Harbor, one worker.
pub fn runtime(db_url: &str, key_spec: &SecretString, current: &str) -> Runtime {
    Runtime {
        mode: Mode::Production,
        listen: "127.0.0.1:0".into(),
        external_url: EXTERNAL_URL.into(),
        database_url: db_url.into(),
        pool: PoolSettings {
            max_connections: 5,
            min_connections: 0,
            ..PoolSettings::default()
        },
        keys: Arc::new(KeyRing::from_spec(key_spec, current).unwrap()),
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
        registry: registry_settings(),
        reconcile_interval: Duration::from_secs(3600),
        metrics_listen: None,
        verification_policy: berth_registry_probe::NetworkPolicy::default(),
        verification_deadline: berth_registry_probe::DEFAULT_DEADLINE,
        audit_retention_days: 31,
    }
}

/// Saga tunables for tests: the usage cache is off so every GET reads Harbor.
pub fn registry_settings() -> berth_domain::registry_service::RegistrySettings {
    berth_domain::registry_service::RegistrySettings {
        default_quota: berth_domain::registry::QuotaGb::new(10).unwrap(),
        lease: time::Duration::seconds(60),
        lease_wait: time::Duration::seconds(2),
        usage_cache: time::Duration::ZERO,
        stale_after: time::Duration::seconds(3600),
        clock_skew: time::Duration::seconds(60),
    }
}

/// Harbor settings for an emulator at `url`.
pub fn harbor_settings(url: &str) -> berth_harbor::HarborSettings {
    berth_harbor::HarborSettings {
        url: url.to_owned(),
        username: "admin".into(),
        password: SecretString::from("Harbor12345"),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(3),
        registry_endpoint: Some("registry.example.test".into()),
    }
}
