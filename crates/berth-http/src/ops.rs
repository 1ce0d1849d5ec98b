//! What the operations endpoints (`/readyz`, `/metrics`) read about the running service, as a
//! port: the HTTP layer asks, the server's adapters answer.

use async_trait::async_trait;
use berth_domain::ports::StoreError;

/// Rows sealed under one key label in one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRows {
    pub table: &'static str,
    pub label: String,
    pub rows: u64,
}

/// Connections the database pools hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: usize,
}

/// The database and key ring as the operations endpoints see them.
#[async_trait]
pub trait OpsProbe: Send + Sync {
    /// Whether the database answers a trivial query.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it does not, [`StoreError::Unexpected`] otherwise.
    async fn ping_database(&self) -> Result<(), StoreError>;

    /// Key labels that sealed rows use but the key ring lacks (empty when the ring is complete).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn missing_key_labels(&self) -> Result<Vec<String>, StoreError>;

    /// Sealed rows per table and key label.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn sealed_rows(&self) -> Result<Vec<SealedRows>, StoreError>;

    /// Connections open and idle, over every pool.
    fn pool_usage(&self) -> PoolUsage;
}
