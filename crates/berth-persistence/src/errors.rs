//! Translating database errors into the ports' errors, at the seam.

use berth_domain::ports::StoreError;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Maps a [`DbErr`]: unique violations are conflicts, foreign-key violations a missing parent,
/// connection trouble unavailability, the rest unexpected.
pub(crate) fn store_error(error: DbErr) -> StoreError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => return StoreError::Conflict,
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => return StoreError::MissingParent,
        _ => {}
    }
    if is_foreign_key_error(&error) {
        return StoreError::MissingParent;
    }
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreError::Unavailable(Box::new(error)),
        DbErr::Query(RuntimeErr::SqlxError(ref sqlx_error)) if is_connection_error(sqlx_error) => {
            StoreError::Unavailable(Box::new(error))
        }
        other => StoreError::Unexpected(Box::new(other)),
    }
}

/// Foreign-key refusals sea-orm does not classify: SQLite reports `ON DELETE RESTRICT` as
/// `SQLITE_CONSTRAINT_TRIGGER` (1811), PostgreSQL may report `restrict_violation` (23001).
fn is_foreign_key_error(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx_error))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx_error))) = error
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(database) = sqlx_error.as_ref() else {
        return false;
    };
    matches!(
        database.code().as_deref(),
        Some("1811" | "787" | "23001" | "23503")
    )
}

fn is_connection_error(error: &sea_orm::sqlx::Error) -> bool {
    matches!(
        error,
        sea_orm::sqlx::Error::Io(_)
            | sea_orm::sqlx::Error::PoolTimedOut
            | sea_orm::sqlx::Error::PoolClosed
            | sea_orm::sqlx::Error::WorkerCrashed
    )
}

/// A value the database holds that the domain refuses: a broken invariant.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Unexpected(format!("stored {what} is not valid").into())
}
