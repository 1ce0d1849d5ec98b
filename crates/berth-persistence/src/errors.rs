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

/// Maps a [`DbErr`] of a statement that waits for a write lock: when the database gave up
/// waiting, or broke a deadlock or a serialization conflict by failing this transaction, the
/// write did not happen and may be tried again ([`StoreError::Conflict`]); the rest as
/// [`store_error`].
pub(crate) fn lock_error(error: DbErr) -> StoreError {
    if is_lock_contention(&error) {
        StoreError::Conflict
    } else {
        store_error(error)
    }
}

/// SQLite `SQLITE_BUSY` (5, and its extended codes such as 261, 517) and `SQLITE_LOCKED` (6,
/// 262); PostgreSQL `serialization_failure` (40001), `deadlock_detected` (40P01) and
/// `lock_not_available` (55P03).
fn is_lock_contention(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx_error))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx_error))) = error
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(database) = sqlx_error.as_ref() else {
        return false;
    };
    let Some(code) = database.code() else {
        return false;
    };
    // PostgreSQL's codes are five-character SQLSTATEs; SQLite's are numbers below 10000.
    if code.len() == 5 {
        return matches!(code.as_ref(), "40001" | "40P01" | "55P03");
    }
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}
