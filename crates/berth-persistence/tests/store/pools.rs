//! Where the HTTP workers' connections come from.

use berth_persistence::{PoolSettings, WorkerPools};
use berth_testkit::TestDatabase;
use sea_orm::DbBackend;

/// On PostgreSQL each worker opens a pool of its own (connections on first use), counted in
/// the pool gauges; on SQLite every worker shares the main pool.
#[tokio::test]
async fn each_worker_gets_its_own_pool_on_postgresql() {
    let db = TestDatabase::new().await;
    let settings = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let shared = berth_persistence::connect(db.url(), &settings)
        .await
        .unwrap();
    let pools = WorkerPools::new(shared.clone(), db.url(), &settings, 2);
    let (before, _) = pools.usage();
    let workers = [pools.open(), pools.open()];
    for pool in &workers {
        berth_persistence::ping(pool).await.unwrap();
    }
    let (after, _) = pools.usage();
    match shared.get_database_backend() {
        DbBackend::Postgres => assert_eq!(after, before + 2, "one new connection per worker"),
        _ => assert!(
            after <= settings.max_connections,
            "SQLite workers use the main pool: {after} connections"
        ),
    }
}
