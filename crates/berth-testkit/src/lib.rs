#![doc = include_str!("../README.md")]

use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, Database};

/// Which database the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// From `BERTH_TEST_BACKEND`: `postgres`, or `sqlite` (also when unset).
    ///
    /// # Panics
    /// On any other value, so a typo never runs the suite on the wrong database.
    pub fn from_env() -> Self {
        match std::env::var("BERTH_TEST_BACKEND").as_deref() {
            Ok("postgres") => Self::Postgres,
            Ok("sqlite") | Err(_) => Self::Sqlite,
            Ok(other) => panic!("BERTH_TEST_BACKEND must be sqlite or postgres, not {other:?}"),
        }
    }
}

/// A database made for one test and dropped after it.
pub struct TestDatabase {
    url: String,
    backend: Backend,
    sqlite_dir: Option<PathBuf>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates an empty database on the backend from the environment.
    ///
    /// # Panics
    /// When PostgreSQL is selected but `BERTH_TEST_DATABASE_URL` is unset or unreachable: the
    /// test must fail loudly, not pass on another database.
    pub async fn new() -> Self {
        match Backend::from_env() {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres().await,
        }
    }

    fn sqlite() -> Self {
        let dir =
            std::env::temp_dir().join(format!("berth-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let url = format!("sqlite://{}?mode=rwc", dir.join("berth.db").display());
        Self {
            url,
            backend: Backend::Sqlite,
            sqlite_dir: Some(dir),
            postgres: None,
        }
    }

    async fn postgres() -> Self {
        let admin_url = std::env::var("BERTH_TEST_DATABASE_URL").unwrap_or_else(|_| {
            panic!(
                "BERTH_TEST_BACKEND=postgres needs BERTH_TEST_DATABASE_URL \
                 (for example postgres://postgres@127.0.0.1:5432/postgres); `cargo xtask test` sets it"
            )
        });
        let admin = Database::connect(admin_url.as_str()).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at BERTH_TEST_DATABASE_URL is unreachable ({e}); start it or run `cargo xtask test`")
        });
        let name = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        let url = replace_database(&admin_url, &name);
        Self {
            url,
            backend: Backend::Postgres,
            sqlite_dir: None,
            postgres: Some((admin_url, name)),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite file, to search its bytes; `None` on PostgreSQL.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.sqlite_dir.as_deref().map(|dir| dir.join("berth.db"))
    }
}

/// The same URL with its database name replaced.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin_url, name)) = self.postgres.take() {
            // The test's runtime may be shutting down; drop on a runtime of our own.
            let _ = std::thread::spawn(move || drop_postgres(&admin_url, &name)).join();
        }
    }
}

fn drop_postgres(admin_url: &str, name: &str) {
    let Ok(runtime) = tokio_runtime() else { return };
    runtime.block_on(async {
        if let Ok(admin) = Database::connect(admin_url).await {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
            let _ = admin.close().await;
        }
    });
}

fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Whether `haystack` contains `needle` anywhere: used to search database files for secrets.
pub fn bytes_contain(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Reads every file in a folder whose name starts with `prefix` (the SQLite file and its WAL).
pub fn read_files_starting_with(dir: &Path, prefix: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(prefix)
                && let Ok(content) = std::fs::read(entry.path())
            {
                bytes.extend(content);
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
