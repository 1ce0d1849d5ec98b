//! Audit events: who changed or read what, in Cloud Foundry's shape (`/v3/audit_events`).
//!
//! Each change builds its [`AuditEvent`] here and hands it to the store method that makes the
//! change, which writes both in one transaction: no change commits without its event. Reads
//! that reveal a secret (pull-secret resolution) are recorded through [`AccessLog`], in
//! batches, off the request's path.
//!
//! No secret ever reaches an event: [`AuditData`] holds only what callers put in it, and the
//! one way to mention a secret is [`AuditData::hidden`], which stores [`PRIVATE_DATA_HIDDEN`]
//! and never the value.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::actor::Actor;
use crate::credential::{RegistryCredential, ScopeTarget};
use crate::ids::{OrganizationGuid, SpaceGuid, guid_newtype};
use crate::listing::{Direction, Ordering, Page, PageRequest, TimestampFilter};
use crate::permissions::{self, AuditVisibility};
use crate::ports::{DirectoryStore, StoreError};

/// What stands in for a secret in an event, as in Cloud Controller (`censorship.rb`).
pub const PRIVATE_DATA_HIDDEN: &str = "[PRIVATE DATA HIDDEN]";

/// Default days an event is kept (Cloud Controller's `cutoff_age_in_days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 31;

guid_newtype!(
    /// The guid of an audit event.
    AuditEventGuid
);

/// The new guid of an event: the one place events get guids (time-ordered, UUIDv7).
fn new_event_guid() -> AuditEventGuid {
    AuditEventGuid::from_uuid(uuid::Uuid::now_v7())
}

/// The time an event is recorded at: the one place events read the clock.
fn event_time() -> OffsetDateTime {
    crate::now()
}

macro_rules! audit_event_types {
    ($($variant:ident => $wire:literal,)*) => {
        /// The kinds of events Berth records (SPEC 7.4), by their wire names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum AuditEventType {
            $($variant,)*
        }

        impl AuditEventType {
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }

            /// The type of a wire name; `None` for any other text.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($wire => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

audit_event_types! {
    CredentialCreate => "audit.registry_credential.create",
    CredentialUpdate => "audit.registry_credential.update",
    CredentialDelete => "audit.registry_credential.delete",
    CredentialAccess => "audit.registry_credential.access",
    RegistryEnable => "audit.organization_registry.enable",
    RegistryUpdate => "audit.organization_registry.update",
    RegistryDisable => "audit.organization_registry.disable",
    RegistryPurge => "audit.organization_registry.purge",
    RobotCreate => "audit.registry_robot.create",
    RobotUpdate => "audit.registry_robot.update",
    RobotRotate => "audit.registry_robot.rotate",
    RobotDelete => "audit.registry_robot.delete",
    OrganizationUpsert => "audit.organization.upsert",
    OrganizationDelete => "audit.organization.delete",
    SpaceUpsert => "audit.space.upsert",
    SpaceDelete => "audit.space.delete",
    AppUpsert => "audit.app.upsert",
    AppDelete => "audit.app.delete",
    RoleUpsert => "audit.role.upsert",
    RoleDelete => "audit.role.delete",
}

/// Who did it: a user (the token's subject) or Berth itself (`system`, as Cloud Controller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    pub guid: String,
    pub kind: String,
    pub name: String,
}

impl AuditActor {
    /// The caller of a use case; tokens carry a subject and no display name, so both are it.
    pub fn user(actor: &Actor) -> Self {
        Self {
            guid: actor.subject().to_owned(),
            kind: "user".to_owned(),
            name: actor.subject().to_owned(),
        }
    }

    /// Berth's own background work (the reconciler, renewals).
    pub fn system() -> Self {
        Self {
            guid: "system".to_owned(),
            kind: "system".to_owned(),
            name: "system".to_owned(),
        }
    }
}

/// What it was done to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTarget {
    pub guid: String,
    pub kind: String,
    pub name: String,
}

impl AuditTarget {
    pub fn new(guid: impl ToString, kind: &str, name: impl Into<String>) -> Self {
        Self {
            guid: guid.to_string(),
            kind: kind.to_owned(),
            name: name.into(),
        }
    }

    /// A registry credential, named by its location (credentials have no name).
    pub fn credential(credential: &RegistryCredential) -> Self {
        Self::new(
            credential.guid,
            "registry_credential",
            credential.location.to_string(),
        )
    }
}

/// A value in an event's `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditValue {
    Text(String),
    Integer(i64),
    Bool(bool),
    /// A secret that was given or changed: shown as [`PRIVATE_DATA_HIDDEN`].
    Hidden,
    Map(AuditData),
}

/// An event's `data`: the request's fields, secrets hidden, by key (as JSON objects are read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditData {
    entries: BTreeMap<String, AuditValue>,
}

impl AuditData {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, key: &str, value: impl Into<String>) -> Self {
        self.entries
            .insert(key.to_owned(), AuditValue::Text(value.into()));
        self
    }

    pub fn integer(mut self, key: &str, value: i64) -> Self {
        self.entries
            .insert(key.to_owned(), AuditValue::Integer(value));
        self
    }

    pub fn flag(mut self, key: &str, value: bool) -> Self {
        self.entries.insert(key.to_owned(), AuditValue::Bool(value));
        self
    }

    /// Records that a secret was given under `key`, never its value.
    pub fn hidden(mut self, key: &str) -> Self {
        self.entries.insert(key.to_owned(), AuditValue::Hidden);
        self
    }

    pub fn map(mut self, key: &str, value: AuditData) -> Self {
        self.entries.insert(key.to_owned(), AuditValue::Map(value));
        self
    }

    pub fn entries(&self) -> impl Iterator<Item = (&String, &AuditValue)> {
        self.entries.iter()
    }

    /// Cloud Controller's `data: {"request": {...}}`.
    pub fn request(request: AuditData) -> Self {
        Self::new().map("request", request)
    }
}

/// One audit event, immutable once written (`updated_at` is `created_at`, as in Cloud Foundry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub guid: AuditEventGuid,
    pub created_at: OffsetDateTime,
    pub event_type: AuditEventType,
    pub actor: AuditActor,
    pub target: AuditTarget,
    pub data: AuditData,
    pub organization: Option<OrganizationGuid>,
    pub space: Option<SpaceGuid>,
}

impl AuditEvent {
    /// A new event, now, with a new guid, in no organization or space.
    pub fn new(
        event_type: AuditEventType,
        actor: AuditActor,
        target: AuditTarget,
        data: AuditData,
    ) -> Self {
        Self {
            guid: new_event_guid(),
            created_at: event_time(),
            event_type,
            actor,
            target,
            data,
            organization: None,
            space: None,
        }
    }

    /// In the organization (and space) of a credential's scope target.
    pub fn within(mut self, target: &ScopeTarget) -> Self {
        self.organization = target.organization();
        self.space = target.space();
        self
    }

    pub fn in_organization(mut self, organization: OrganizationGuid) -> Self {
        self.organization = Some(organization);
        self
    }

    pub fn in_space(mut self, organization: OrganizationGuid, space: SpaceGuid) -> Self {
        self.organization = Some(organization);
        self.space = Some(space);
        self
    }

    pub fn updated_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// The delete of a credential that went with its app, by the app delete's (`app_delete`)
    /// actor, in the credential's organization and space. It carries no request data: the
    /// request was the app's.
    pub fn credential_deleted_with(
        app_delete: &AuditEvent,
        credential: &RegistryCredential,
    ) -> Self {
        Self::new(
            AuditEventType::CredentialDelete,
            app_delete.actor.clone(),
            AuditTarget::credential(credential),
            AuditData::request(AuditData::new()),
        )
        .within(&credential.target)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditOrderField {
    #[default]
    CreatedAt,
    UpdatedAt,
}

/// A list request for audit events; `None` is "no filter", an empty list matches nothing. The
/// use case sets `visibility`; its default shows nothing.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub visibility: AuditVisibility,
    pub types: Option<Vec<AuditEventType>>,
    /// Target guids as given: targets are not all UUIDs (the system actor, robots).
    pub target_guids: Option<Vec<String>>,
    pub space_guids: Option<Vec<SpaceGuid>>,
    pub organization_guids: Option<Vec<OrganizationGuid>>,
    pub created_ats: TimestampFilter,
    /// Events never change, so this filters on `created_at` too.
    pub updated_ats: TimestampFilter,
    pub order: Option<Ordering<AuditOrderField>>,
    pub page: PageRequest,
}

impl AuditQuery {
    /// The direction of the order asked for (both fields are the event's time).
    pub fn direction(&self) -> Direction {
        self.order.map_or(Direction::Ascending, |o| o.direction)
    }
}

/// Reads and prunes audit events (they are written by the stores that make the changes).
#[async_trait]
pub trait AuditEventStore: Send + Sync {
    /// The page of events the query's visibility and filters select, with the total.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn list(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, StoreError>;

    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get(&self, guid: AuditEventGuid) -> Result<Option<AuditEvent>, StoreError>;

    /// Deletes at most `batch` events created before `before`; returns how many. Safe to run on
    /// every replica at once.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn prune(&self, before: OffsetDateTime, batch: u32) -> Result<u64, StoreError>;
}

/// Records reads of secrets (`audit.registry_credential.access`) off the request's path.
#[async_trait]
pub trait AccessLog: Send + Sync {
    /// Queues events for writing. Never fails the read: implementations MUST wait (a bounded
    /// time) when their queue is full and MUST count and log, never silently drop, any event
    /// they could not keep.
    async fn record(&self, events: Vec<AuditEvent>);
}

/// What can go wrong reading audit events.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("Audit event not found")]
    NotFound,
    #[error(transparent)]
    Store(StoreError),
}

/// The two read routes of audit events and their retention.
#[derive(Clone)]
pub struct AuditService {
    events: Arc<dyn AuditEventStore>,
    directory: Arc<dyn DirectoryStore>,
}

impl AuditService {
    pub fn new(events: Arc<dyn AuditEventStore>, directory: Arc<dyn DirectoryStore>) -> Self {
        Self { events, directory }
    }

    /// Lists what the caller may see; visibility is applied inside the store's query.
    ///
    /// # Errors
    /// [`AuditError::Store`].
    pub async fn list(
        &self,
        actor: &Actor,
        mut query: AuditQuery,
    ) -> Result<Page<AuditEvent>, AuditError> {
        query.visibility = permissions::resolve(actor, self.directory.as_ref())
            .await
            .map_err(AuditError::Store)?
            .audit_visibility();
        self.events.list(&query).await.map_err(AuditError::Store)
    }

    /// # Errors
    /// [`AuditError::NotFound`] (also when the caller may not see it) or [`AuditError::Store`].
    pub async fn get(&self, actor: &Actor, guid: AuditEventGuid) -> Result<AuditEvent, AuditError> {
        let permissions = permissions::resolve(actor, self.directory.as_ref())
            .await
            .map_err(AuditError::Store)?;
        self.events
            .get(guid)
            .await
            .map_err(AuditError::Store)?
            .filter(|event| permissions.can_read_audit_event(event.organization, event.space))
            .ok_or(AuditError::NotFound)
    }

    /// Deletes one batch of events older than `retention_days`; returns how many.
    ///
    /// # Errors
    /// [`AuditError::Store`].
    pub async fn prune_older_than(
        &self,
        retention_days: u32,
        batch: u32,
    ) -> Result<u64, AuditError> {
        let before = event_time() - time::Duration::days(i64::from(retention_days));
        self.events
            .prune(before, batch)
            .await
            .map_err(AuditError::Store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_wire_name() {
        for kind in AuditEventType::ALL {
            assert_eq!(AuditEventType::parse(kind.as_str()), Some(*kind));
            assert!(kind.as_str().starts_with("audit."));
        }
        assert_eq!(AuditEventType::parse("audit.app.create"), None);
    }

    #[test]
    fn a_hidden_secret_keeps_only_its_key() {
        let data = AuditData::new().text("username", "ci").hidden("password");
        let entries: Vec<_> = data.entries().collect();
        assert_eq!(
            entries,
            [
                (&"password".to_owned(), &AuditValue::Hidden),
                (&"username".to_owned(), &AuditValue::Text("ci".to_owned())),
            ]
        );
    }
}
