#![doc = include_str!("../README.md")]

mod credential_store;
mod directory_store;
mod entities;
mod errors;
pub mod keys;
mod paging;
mod registry_store;
pub mod sealing;

use std::time::Duration;

use berth_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

pub use credential_store::SeaOrmCredentialStore;
pub use directory_store::SeaOrmDirectoryStore;
pub use registry_store::SeaOrmRegistryStore;
pub use sea_orm::DatabaseConnection as Connection;

/// Pool settings for [`connect`].
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens a pool on `postgres://...` or `sqlite://...` (SQLite files are created when missing and
/// use write-ahead logging, so readers do not wait on a writer).
///
/// # Errors
/// The database's [`DbErr`] when it cannot be reached or the URL is wrong.
pub async fn connect(url: &str, pool: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    let is_sqlite = url.starts_with("sqlite:");
    let url = if is_sqlite && !url.contains("mode=") && !url.contains(":memory:") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}mode=rwc")
    } else {
        url.to_owned()
    };
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(pool.max_connections)
        .min_connections(pool.min_connections)
        .acquire_timeout(pool.acquire_timeout)
        .connect_timeout(pool.connect_timeout)
        .sqlx_logging(false);
    if is_sqlite {
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .foreign_keys(true)
        });
    }
    let db = Database::connect(options).await?;
    // Cheap check that fails early with a clear error instead of at the first request.
    db.execute_unprepared("SELECT 1").await?;
    Ok(db)
}

/// Connections in the pool: (open, idle), for metrics.
pub fn pool_usage(db: &DatabaseConnection) -> (u32, usize) {
    // The backend is checked first, so the pool getters (which panic on the wrong one) are safe.
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    }
}

/// Checks the database answers.
///
/// # Errors
/// The database's [`DbErr`].
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(drop)
}

/// Applies every pending migration.
///
/// # Errors
/// The migration's [`DbErr`].
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Migrations not yet applied, by name.
///
/// # Errors
/// The database's [`DbErr`].
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    Ok(Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect())
}
