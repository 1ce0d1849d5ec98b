#![doc = include_str!("../README.md")]

mod audit_store;
mod credential_store;
mod deadline;
mod directory_store;
mod entities;
mod errors;
mod idempotency_store;
pub mod keys;
mod paging;
pub mod permission_cache;
mod registry_store;
mod role_store;
pub mod sealing;

use std::time::Duration;

use berth_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

pub use audit_store::SeaOrmAuditStore;
pub use credential_store::{SeaOrmCredentialStore, pull_statement};
pub use deadline::Deadline;
pub use directory_store::SeaOrmDirectoryStore;
pub use idempotency_store::SeaOrmIdempotencyStore;
pub use permission_cache::PermissionCache;
pub use registry_store::SeaOrmRegistryStore;
pub use sea_orm::DatabaseConnection as Connection;

/// Pool settings for [`connect`].
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a call waits for a pooled connection, opening one included.
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on every connection (the server cancels a statement
    /// running longer); `None` keeps the server's own. Commands that may run long, such as
    /// migrations, connect without one.
    pub statement_timeout: Option<Duration>,
}

impl PoolSettings {
    /// The longest a store call may take before it is given up as unavailable: waiting for a
    /// connection, then a statement's worth of work. It is what bounds a request when the server
    /// stops answering altogether (frozen, or cut off by the network), which no server-side
    /// timeout can. `None` without a statement timeout.
    pub fn call_deadline(&self) -> Option<Duration> {
        self.statement_timeout
            .map(|statement| self.acquire_timeout + statement)
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: None,
        }
    }
}

/// Opens a pool on `postgres://...` or `sqlite://...` (SQLite files are created when missing and
/// use write-ahead logging, so readers do not wait on a writer).
///
/// # Errors
/// The database's [`DbErr`] when it cannot be reached or the URL is wrong.
pub async fn connect(url: &str, pool: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    let db = Database::connect(connect_options(url, pool)).await?;
    // Cheap check that fails early with a clear error instead of at the first request.
    db.execute_unprepared("SELECT 1").await?;
    Ok(db)
}

fn connect_options(url: &str, pool: &PoolSettings) -> ConnectOptions {
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
    if let Some(statement_timeout) = pool.statement_timeout {
        options.statement_timeout(statement_timeout);
    }
    // A ping on every checkout costs 10-15% of a request. A pooled connection may be dead after
    // an idle spell (dropped by the server or a proxy) or after any connection failed (a
    // restarted server closed them all), so ping only then.
    options
        .test_before_acquire(false)
        .map_sqlx_postgres_before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING
                    || errors::connection_failure::since_idle(meta.idle_for)
                {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
        .map_sqlx_sqlite_before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        });
    if is_sqlite {
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .foreign_keys(true)
        });
    }
    options
}

const IDLE_BEFORE_PING: Duration = Duration::from_secs(30);

/// Where each HTTP server worker gets its connections.
///
/// On PostgreSQL every worker thread opens its own pool, so a query's connection is driven by
/// the thread that awaits it: one pool shared by all workers costs a cross-thread wake-up per
/// query, about half the throughput on a small machine (bench/README.md). SQLite keeps the
/// one shared pool (it has a single writer anyway, and an in-memory database lives in one pool).
#[derive(Clone)]
pub struct WorkerPools {
    shared: DatabaseConnection,
    per_worker: Option<ConnectOptions>,
    /// Every worker's pool, for [`WorkerPools::usage`].
    opened: std::sync::Arc<std::sync::Mutex<Vec<DatabaseConnection>>>,
}

impl WorkerPools {
    /// `pool.max_connections` is the total: each of `workers` pools gets its share.
    pub fn new(shared: DatabaseConnection, url: &str, pool: &PoolSettings, workers: usize) -> Self {
        let per_worker =
            (shared.get_database_backend() == sea_orm::DbBackend::Postgres).then(|| {
                let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
                let share = PoolSettings {
                    max_connections: pool.max_connections.div_ceil(workers).max(1),
                    min_connections: 0,
                    ..pool.clone()
                };
                let mut options = connect_options(url, &share);
                options.connect_lazy(true);
                options
            });
        Self {
            shared,
            per_worker,
            opened: Default::default(),
        }
    }

    /// The pool for the calling worker: call it on the worker's own thread (actix-web's app
    /// factory runs there). Connections open on first use.
    pub fn open(&self) -> DatabaseConnection {
        use futures_util::FutureExt as _;
        let Some(pool) = self
            .per_worker
            .clone()
            // A lazy pool does no I/O to be built, so the future is ready at once; were it ever
            // not, the shared pool still works, only slower.
            .and_then(|options| Database::connect(options).now_or_never())
            .and_then(Result::ok)
        else {
            if self.per_worker.is_some() {
                tracing::warn!(
                    "a worker's own database pool could not be opened; it shares the main pool"
                );
            }
            return self.shared.clone();
        };
        if let Ok(mut opened) = self.opened.lock() {
            opened.push(pool.clone());
        }
        pool
    }

    /// Connections in all the pools: (open, idle), for metrics.
    pub fn usage(&self) -> (u32, usize) {
        let opened = self
            .opened
            .lock()
            .map(|list| list.clone())
            .unwrap_or_default();
        std::iter::once(&self.shared)
            .chain(opened.iter())
            .map(pool_usage)
            .fold((0, 0), |(open, idle), (more_open, more_idle)| {
                (open + more_open, idle + more_idle)
            })
    }
}

/// Connections in one pool: (open, idle).
fn pool_usage(db: &DatabaseConnection) -> (u32, usize) {
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
    let result = db.execute_unprepared("SELECT 1").await.map(drop);
    if let Err(error) = &result
        && errors::is_unavailable(error)
    {
        errors::connection_failure::note();
    }
    result
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

/// Begins a transaction that writes. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken
/// first (waiting the busy timeout for it), never upgraded from a read halfway through, which
/// SQLite refuses at once (`SQLITE_BUSY`) when another writer holds it. Every write transaction
/// that reads before it writes (audit events ride in most of them) needs it across processes.
pub(crate) async fn begin_write(
    db: &sea_orm::DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::TransactionTrait;
    db.begin_with_options(sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..sea_orm::TransactionOptions::default()
    })
    .await
}
