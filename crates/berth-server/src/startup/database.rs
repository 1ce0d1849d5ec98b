//! The database made ready to serve: connected, migrated (or checked for pending migrations),
//! and checked against the key ring.

use anyhow::{Context, bail};
use berth_persistence::{Connection, PoolSettings};

use super::runtime::Runtime;

/// Connects, applies migrations when the runtime says so (dev mode, `serve --migrate`) or else
/// refuses pending ones, and refuses a database holding secrets sealed under a key label the
/// ring lacks.
///
/// # Errors
/// An unreachable database, pending migrations in production, or a missing key label.
pub(super) async fn prepare(runtime: &Runtime) -> anyhow::Result<Connection> {
    let db = berth_persistence::connect(&runtime.database_url, &runtime.pool)
        .await
        .context("cannot connect to the database (database.url)")?;
    if runtime.migrate_on_start {
        // A migration may run longer than the statement timeout requests get.
        let unbounded = PoolSettings {
            statement_timeout: None,
            ..runtime.pool.clone()
        };
        if runtime.pool.statement_timeout.is_some() && runtime.database_url.starts_with("postgres")
        {
            let migrating = berth_persistence::connect(&runtime.database_url, &unbounded)
                .await
                .context("cannot connect to the database (database.url)")?;
            berth_persistence::migrate(&migrating)
                .await
                .context("applying migrations")?;
            // The migrations are applied; a failure to close this pool changes nothing for the
            // serving one, and its connections end with the process anyway.
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
    Ok(db)
}
