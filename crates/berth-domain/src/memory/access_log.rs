//! [`AccessLog`] in memory.

use async_trait::async_trait;

use super::MemoryDatabase;
use crate::audit::{AccessLog, AuditEvent};

/// Keeps access events in a [`MemoryDatabase`] at once (no queue, so none is ever lost):
/// [`MemoryAuditEventStore`](super::MemoryAuditEventStore) lists them with the others.
#[derive(Clone, Debug)]
pub struct MemoryAccessLog {
    database: MemoryDatabase,
}

impl MemoryAccessLog {
    /// The log on `database`'s tables.
    pub fn new(database: MemoryDatabase) -> Self {
        Self { database }
    }
}

#[async_trait]
impl AccessLog for MemoryAccessLog {
    async fn record(&self, events: Vec<AuditEvent>) {
        self.database.tables().record(&events);
    }
}
