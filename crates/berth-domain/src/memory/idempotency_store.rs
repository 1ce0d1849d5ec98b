//! [`IdempotencyStore`] in memory.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{IdempotencyRow, MemoryDatabase};
use crate::idempotency::{Claim, ClaimOutcome, KeyOwner, KeyRecord, StoredAnswer};
use crate::ports::{IdempotencyStore, StoreError};

/// Idempotency records in a [`MemoryDatabase`].
#[derive(Clone, Debug)]
pub struct MemoryIdempotencyStore {
    database: MemoryDatabase,
}

impl MemoryIdempotencyStore {
    /// The store on `database`'s tables.
    pub fn new(database: MemoryDatabase) -> Self {
        Self { database }
    }
}

fn key_of(owner: &KeyOwner) -> (String, String) {
    (owner.principal.clone(), owner.key.as_str().to_owned())
}

/// An unanswered claim that ran out, or an answer whose replay window ended.
fn lapsed(row: &IdempotencyRow, now: OffsetDateTime) -> bool {
    (row.answer.is_none() && row.claimed_until < now) || row.expires_at < now
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(&self, claim: &Claim) -> Result<ClaimOutcome, StoreError> {
        let mut tables = self.database.tables();
        let key = key_of(&claim.owner);
        if let Some(row) = tables.idempotency.get(&key)
            && !lapsed(row, claim.now)
        {
            return Ok(ClaimOutcome::Held(KeyRecord {
                fingerprint: row.fingerprint,
                answer: row.answer.clone(),
            }));
        }
        tables.idempotency.insert(
            key,
            IdempotencyRow {
                fingerprint: claim.fingerprint,
                answer: None,
                claimed_until: claim.claimed_until,
                // An unanswered claim is pruned once it runs out.
                expires_at: claim.claimed_until,
            },
        );
        Ok(ClaimOutcome::Claimed)
    }

    async fn complete(
        &self,
        owner: &KeyOwner,
        answer: &StoredAnswer,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        let row = tables
            .idempotency
            .get_mut(&key_of(owner))
            .filter(|row| row.answer.is_none())
            .ok_or(StoreError::NotFound)?;
        row.answer = Some(answer.clone());
        row.expires_at = expires_at;
        Ok(())
    }

    async fn release(&self, owner: &KeyOwner) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        let key = key_of(owner);
        if tables
            .idempotency
            .get(&key)
            .is_some_and(|row| row.answer.is_none())
        {
            tables.idempotency.remove(&key);
        }
        Ok(())
    }

    async fn prune(&self, now: OffsetDateTime, batch: u32) -> Result<u64, StoreError> {
        let mut tables = self.database.tables();
        let expired: Vec<(String, String)> = tables
            .idempotency
            .iter()
            .filter(|(_, row)| row.expires_at < now)
            .map(|(key, _)| key.clone())
            .take(batch as usize)
            .collect();
        for key in &expired {
            tables.idempotency.remove(key);
        }
        Ok(expired.len() as u64)
    }
}
