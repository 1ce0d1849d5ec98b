//! The operations probe on the sea-orm adapter: what `/readyz` and `/metrics` read.

use std::sync::Arc;

use async_trait::async_trait;
use berth_domain::ports::StoreError;
use berth_http::ops::{OpsProbe, PoolUsage, SealedRows};
use berth_persistence::keys::{self, KeyOperationError};
use berth_persistence::sealing::KeyRing;
use berth_persistence::{Connection, WorkerPools};

/// The shared pool, the key ring and every worker's pools.
pub(super) struct DatabaseProbe {
    db: Connection,
    keys: Arc<KeyRing>,
    pools: WorkerPools,
}

impl DatabaseProbe {
    pub(super) fn new(db: Connection, keys: Arc<KeyRing>, pools: WorkerPools) -> Self {
        Self { db, keys, pools }
    }
}

#[async_trait]
impl OpsProbe for DatabaseProbe {
    async fn ping_database(&self) -> Result<(), StoreError> {
        berth_persistence::ping(&self.db)
            .await
            .map_err(|error| StoreError::Unavailable(Box::new(error)))
    }

    async fn missing_key_labels(&self) -> Result<Vec<String>, StoreError> {
        keys::missing_labels(&self.db, &self.keys)
            .await
            .map_err(unavailable)
    }

    async fn sealed_rows(&self) -> Result<Vec<SealedRows>, StoreError> {
        Ok(keys::label_counts(&self.db)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|count| SealedRows {
                table: count.table,
                label: count.label,
                rows: count.rows,
            })
            .collect())
    }

    fn pool_usage(&self) -> PoolUsage {
        let (open, idle) = self.pools.usage();
        PoolUsage { open, idle }
    }
}

fn unavailable(error: KeyOperationError) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}
