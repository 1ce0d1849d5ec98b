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
    if is_unavailable(&error) {
        connection_failure::note();
        return StoreError::Unavailable(Box::new(error));
    }
    StoreError::Unexpected(Box::new(error))
}

/// Whether an error says the database cannot be reached or used right now, rather than that
/// this statement is wrong: every connection-level failure, whichever sea-orm variant carries it.
pub(crate) fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(sqlx_error))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx_error)) => is_connection_error(sqlx_error),
        _ => false,
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
    use sea_orm::sqlx::Error;
    match error {
        // A dead or half-closed socket shows up as any of these, depending on where the read
        // or write was when the server went away.
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(database) => database
            .code()
            .is_some_and(|code| is_unavailable_sqlstate(&code)),
        _ => false,
    }
}

/// PostgreSQL's SQLSTATEs that mean "not now" rather than "not this": class 08 (connection
/// exception), 57P01/57P02/57P03 (administrator or crash shutdown, cannot connect now), 53300
/// (too many connections) and 57014 (cancelled, which is what `statement_timeout` does).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "57014")
}

/// When a connection last failed, so the pools check connections older than that before
/// handing them out (a restarted server has closed them all; see `connect_options`).
pub(crate) mod connection_failure {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    static EPOCH: OnceLock<Instant> = OnceLock::new();
    /// Milliseconds after `EPOCH` of the last failure; 0 for none.
    static LAST: AtomicU64 = AtomicU64::new(0);

    fn epoch() -> Instant {
        *EPOCH.get_or_init(Instant::now)
    }

    /// Records a connection-level failure now.
    pub(crate) fn note() {
        let millis = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        LAST.fetch_max(millis.saturating_add(1), Ordering::Relaxed);
    }

    /// Whether a connection that went back to its pool `idle_for` ago may have seen a failure
    /// since: it was idle when (or after) a connection last failed.
    pub(crate) fn since_idle(idle_for: Duration) -> bool {
        failed_while_idle(LAST.load(Ordering::Relaxed), epoch().elapsed(), idle_for)
    }

    /// [`since_idle`] on explicit readings: `last` as `LAST` holds it, `now` since `EPOCH`.
    pub(super) fn failed_while_idle(last: u64, now: Duration, idle_for: Duration) -> bool {
        if last == 0 {
            return false;
        }
        let released = now.saturating_sub(idle_for);
        Duration::from_millis(last - 1) >= released.saturating_sub(Duration::from_millis(1))
    }
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use sea_orm::sqlx;

    use super::*;

    /// A server error with a SQLSTATE, as PostgreSQL sends one.
    #[derive(Debug, thiserror::Error)]
    #[error("{code}")]
    struct ServerError {
        code: &'static str,
    }

    impl sqlx::error::DatabaseError for ServerError {
        fn message(&self) -> &str {
            "server error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.code))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn server(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(ServerError { code }))
    }

    fn closed() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
    }

    /// sea-orm wraps a statement's error as `Exec` or `Query` depending on the call.
    fn wrapped(error: fn() -> sqlx::Error) -> [DbErr; 3] {
        [
            DbErr::Exec(RuntimeErr::SqlxError(Arc::new(error()))),
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(error()))),
            DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error()))),
        ]
    }

    #[test]
    fn every_connection_level_failure_is_unavailability() {
        let failures: [fn() -> sqlx::Error; 11] = [
            closed,
            || sqlx::Error::Protocol("unexpected end of stream".into()),
            || sqlx::Error::Tls("handshake eof".into()),
            || sqlx::Error::PoolTimedOut,
            || sqlx::Error::PoolClosed,
            || server("57P01"), // terminating connection due to administrator command
            || server("57P02"), // crash shutdown
            || server("57P03"), // the database system is shutting down / starting up
            || server("08006"), // connection failure
            || server("53300"), // too many connections
            || server("57014"), // cancelled by statement_timeout
        ];
        for failure in failures {
            for error in wrapped(failure) {
                let shown = error.to_string();
                assert!(
                    matches!(store_error(error), StoreError::Unavailable(_)),
                    "{shown}"
                );
            }
        }
    }

    #[test]
    fn statement_errors_stay_unexpected() {
        // (`Conn` is the connection's own failure, always unavailability.)
        for error in wrapped(|| server("42P01")).into_iter().take(2) {
            assert!(matches!(store_error(error), StoreError::Unexpected(_)));
        }
    }

    #[test]
    fn a_failure_marks_connections_idle_since_before_it() {
        use std::time::Duration;
        // Read off explicit clocks: the process-wide mark is shared with every test that
        // meets a failure, so a test of it by wall clock would race them.
        let failed_at_1s = 1_000 + 1;
        let at = Duration::from_millis;
        assert!(!connection_failure::failed_while_idle(
            0,
            at(5_000),
            at(5_000)
        ));
        assert!(connection_failure::failed_while_idle(
            failed_at_1s,
            at(1_000),
            at(0)
        ));
        assert!(connection_failure::failed_while_idle(
            failed_at_1s,
            at(3_000),
            at(2_500)
        ));
        assert!(!connection_failure::failed_while_idle(
            failed_at_1s,
            at(3_000),
            at(1_000)
        ));
        connection_failure::note();
        assert!(connection_failure::since_idle(Duration::from_secs(3_600)));
    }
}
