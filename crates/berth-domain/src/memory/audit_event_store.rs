//! [`AuditEventStore`] in memory: the events the other memory stores' changes wrote.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::MemoryDatabase;
use super::credential_store::{page_of, timestamps_match};
use crate::audit::{AuditEvent, AuditEventGuid, AuditEventStore, AuditQuery};
use crate::listing::Page;
use crate::permissions::AuditVisibility;
use crate::ports::StoreError;

/// Audit events in a [`MemoryDatabase`]: every change of its credential, directory and registry
/// stores keeps its events here (with the change, under one guard), and so does
/// [`MemoryAccessLog`](super::MemoryAccessLog); an embedder lists them as the API does.
#[derive(Clone, Debug)]
pub struct MemoryAuditEventStore {
    database: MemoryDatabase,
}

impl MemoryAuditEventStore {
    /// The store on `database`'s tables.
    pub fn new(database: MemoryDatabase) -> Self {
        Self { database }
    }
}

fn in_list<T: PartialEq>(list: Option<&Vec<T>>, value: Option<&T>) -> bool {
    list.is_none_or(|list| value.is_some_and(|value| list.contains(value)))
}

fn visible(visibility: &AuditVisibility, event: &AuditEvent) -> bool {
    match visibility {
        AuditVisibility::Everything => true,
        AuditVisibility::Scoped {
            organizations,
            spaces,
        } => {
            event
                .organization
                .is_some_and(|organization| organizations.contains(&organization))
                || event.space.is_some_and(|space| spaces.contains(&space))
        }
    }
}

fn matches(query: &AuditQuery, event: &AuditEvent) -> bool {
    visible(&query.visibility, event)
        && in_list(query.types.as_ref(), Some(&event.event_type))
        && in_list(query.target_guids.as_ref(), Some(&event.target.guid))
        && in_list(query.space_guids.as_ref(), event.space.as_ref())
        && in_list(
            query.organization_guids.as_ref(),
            event.organization.as_ref(),
        )
        && timestamps_match(&query.created_ats, event.created_at)
        && timestamps_match(&query.updated_ats, event.created_at)
}

#[async_trait]
impl AuditEventStore for MemoryAuditEventStore {
    async fn list(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, StoreError> {
        let found: Vec<AuditEvent> = self
            .database
            .tables()
            .audit_events
            .values()
            .filter(|event| matches(query, event))
            .cloned()
            .collect();
        // Both order fields are the event's time: events never change.
        Ok(page_of(
            found,
            |a, b| {
                a.created_at
                    .cmp(&b.created_at)
                    .then_with(|| a.guid.cmp(&b.guid))
            },
            query.direction(),
            query.page,
        ))
    }

    async fn get(&self, guid: AuditEventGuid) -> Result<Option<AuditEvent>, StoreError> {
        Ok(self.database.tables().audit_events.get(&guid).cloned())
    }

    async fn prune(&self, before: OffsetDateTime, batch: u32) -> Result<u64, StoreError> {
        let mut tables = self.database.tables();
        let mut expired: Vec<(OffsetDateTime, AuditEventGuid)> = tables
            .audit_events
            .values()
            .filter(|event| event.created_at < before)
            .map(|event| (event.created_at, event.guid))
            .collect();
        // Oldest first, at most `batch`, as the sea-orm store deletes them.
        expired.sort();
        expired.truncate(batch as usize);
        for (_, guid) in &expired {
            tables.audit_events.remove(guid);
        }
        Ok(expired.len() as u64)
    }
}
