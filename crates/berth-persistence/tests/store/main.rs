//! The repository adapter against a real database (SQLite or PostgreSQL, per `BERTH_TEST_BACKEND`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod contract;
mod idempotency;
mod migrations;
mod pools;
mod pull_secrets;
mod roles;
mod sealing;
mod stores;

use std::sync::Arc;

use berth_domain::ambient::Ambient;
use berth_domain::audit::{AuditActor, AuditData, AuditEvent, AuditEventType, AuditTarget};
use berth_persistence::sealing::KeyRing;
use berth_persistence::{PoolSettings, SeaOrmCredentialStore, SeaOrmDirectoryStore};
use berth_testkit::TestDatabase;
use secrecy::{ExposeSecret, SecretString};

pub struct Harness {
    pub db: TestDatabase,
    pub connection: sea_orm::DatabaseConnection,
    pub credentials: SeaOrmCredentialStore,
    pub directory: SeaOrmDirectoryStore,
}

pub fn ring(labels: &[&str], current: &str) -> (Arc<KeyRing>, SecretString) {
    let spec = labels
        .iter()
        .map(|label| {
            KeyRing::generate_spec_entry(label)
                .unwrap()
                .expose_secret()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join(",");
    let spec = SecretString::from(spec);
    (Arc::new(KeyRing::from_spec(&spec, current).unwrap()), spec)
}

/// An event for a store write whose event the test does not look at.
pub fn audit_event() -> AuditEvent {
    AuditEvent::new(
        &Ambient::system(),
        AuditEventType::CredentialUpdate,
        AuditActor::system(),
        AuditTarget::new("target", "registry_credential", "test"),
        AuditData::new(),
    )
}

impl Harness {
    pub async fn new(keys: Arc<KeyRing>) -> Self {
        let db = TestDatabase::new().await;
        let connection = berth_persistence::connect(db.url(), &PoolSettings::default())
            .await
            .unwrap();
        berth_persistence::migrate(&connection).await.unwrap();
        Self {
            credentials: SeaOrmCredentialStore::new(connection.clone(), keys),
            directory: SeaOrmDirectoryStore::new(connection.clone()),
            connection,
            db,
        }
    }
}
