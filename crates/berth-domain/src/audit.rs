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
use crate::ambient::Ambient;
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

macro_rules! audit_event_types {
    ($($variant:ident => $wire:literal,)*) => {
        /// The kinds of events Berth records (SPEC 7.4), by their wire names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum AuditEventType {
            $(
                #[doc = concat!("`", $wire, "`.")]
                $variant,
            )*
        }

        impl AuditEventType {
            /// Every type, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The wire name (the event's `type`).
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
#[non_exhaustive]
pub struct AuditActor {
    /// The actor's guid (a user's token subject, or `system`).
    pub guid: String,
    /// `user` or `system`.
    pub kind: String,
    /// The actor's display name.
    pub name: String,
}

impl AuditActor {
    /// An actor as stored.
    pub fn new(guid: impl Into<String>, kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            guid: guid.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

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
#[non_exhaustive]
pub struct AuditTarget {
    /// The target's guid as text (not every target's guid is a UUID).
    pub guid: String,
    /// Its kind (`registry_credential`, `organization_registry`, `registry_robot`, ...).
    pub kind: String,
    /// Its name.
    pub name: String,
}

impl AuditTarget {
    /// A target of `kind` with its guid and name.
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
    /// A string.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A boolean.
    Bool(bool),
    /// A secret that was given or changed: shown as [`PRIVATE_DATA_HIDDEN`].
    Hidden,
    /// A nested object.
    Map(AuditData),
}

/// An event's `data`: the request's fields, secrets hidden, by key (as JSON objects are read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditData {
    entries: BTreeMap<String, AuditValue>,
}

impl AuditData {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// With `key` set to a string.
    pub fn text(mut self, key: &str, value: impl Into<String>) -> Self {
        self.entries
            .insert(key.to_owned(), AuditValue::Text(value.into()));
        self
    }

    /// With `key` set to a number.
    pub fn integer(mut self, key: &str, value: i64) -> Self {
        self.entries
            .insert(key.to_owned(), AuditValue::Integer(value));
        self
    }

    /// With `key` set to a boolean.
    pub fn flag(mut self, key: &str, value: bool) -> Self {
        self.entries.insert(key.to_owned(), AuditValue::Bool(value));
        self
    }

    /// Records that a secret was given under `key`, never its value.
    pub fn hidden(mut self, key: &str) -> Self {
        self.entries.insert(key.to_owned(), AuditValue::Hidden);
        self
    }

    /// With `key` set to a nested object.
    pub fn map(mut self, key: &str, value: AuditData) -> Self {
        self.entries.insert(key.to_owned(), AuditValue::Map(value));
        self
    }

    /// The entries, by key.
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
#[non_exhaustive]
pub struct AuditEvent {
    /// Its guid.
    pub guid: AuditEventGuid,
    /// When it happened (also its `updated_at`).
    pub created_at: OffsetDateTime,
    /// What happened.
    pub event_type: AuditEventType,
    /// Who did it.
    pub actor: AuditActor,
    /// What it was done to.
    pub target: AuditTarget,
    /// The request's fields, secrets hidden.
    pub data: AuditData,
    /// The organization it happened in; `None` for a foundation-wide event.
    pub organization: Option<OrganizationGuid>,
    /// The space it happened in, if any.
    pub space: Option<SpaceGuid>,
}

impl AuditEvent {
    /// An event as stored (its guid and time already given), in no organization or space:
    /// place it with [`AuditEvent::placed`].
    pub fn stored(
        guid: AuditEventGuid,
        created_at: OffsetDateTime,
        event_type: AuditEventType,
        actor: AuditActor,
        target: AuditTarget,
        data: AuditData,
    ) -> Self {
        Self {
            guid,
            created_at,
            event_type,
            actor,
            target,
            data,
            organization: None,
            space: None,
        }
    }

    /// In `organization` and `space` as given (either may be `None`).
    #[must_use]
    pub fn placed(
        mut self,
        organization: Option<OrganizationGuid>,
        space: Option<SpaceGuid>,
    ) -> Self {
        self.organization = organization;
        self.space = space;
        self
    }

    /// A new event at `ambient`'s time, with a guid from its id source, in no organization or
    /// space.
    pub fn new(
        ambient: &Ambient,
        event_type: AuditEventType,
        actor: AuditActor,
        target: AuditTarget,
        data: AuditData,
    ) -> Self {
        Self {
            guid: ambient.audit_event_guid(),
            created_at: ambient.now(),
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

    /// In `organization` (no space).
    pub fn in_organization(mut self, organization: OrganizationGuid) -> Self {
        self.organization = Some(organization);
        self
    }

    /// In `space` of `organization`.
    pub fn in_space(mut self, organization: OrganizationGuid, space: SpaceGuid) -> Self {
        self.organization = Some(organization);
        self.space = Some(space);
        self
    }

    /// Its `updated_at`: events never change, so its creation time.
    pub fn updated_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// The delete of a credential that went with its app, by the app delete's (`app_delete`)
    /// actor, in the credential's organization and space. It carries no request data: the
    /// request was the app's.
    pub fn credential_deleted_with(
        app_delete: &AuditEvent,
        credential: &RegistryCredential,
        guid: AuditEventGuid,
    ) -> Self {
        // At the app delete's time: one transaction, one moment.
        Self::stored(
            guid,
            app_delete.created_at,
            AuditEventType::CredentialDelete,
            app_delete.actor.clone(),
            AuditTarget::credential(credential),
            AuditData::request(AuditData::new()),
        )
        .within(&credential.target)
    }
}

/// What audit events can be ordered by (both are the event's time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditOrderField {
    /// `created_at`.
    #[default]
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
}

/// A list request for audit events; `None` is "no filter", an empty list matches nothing. The
/// use case sets `visibility`; its default shows nothing.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// What the caller may see, from its permissions.
    pub visibility: AuditVisibility,
    /// Only events of these types.
    pub types: Option<Vec<AuditEventType>>,
    /// Target guids as given: targets are not all UUIDs (the system actor, robots).
    pub target_guids: Option<Vec<String>>,
    /// Only events in these spaces.
    pub space_guids: Option<Vec<SpaceGuid>>,
    /// Only events in these organizations.
    pub organization_guids: Option<Vec<OrganizationGuid>>,
    /// A filter on the event's time.
    pub created_ats: TimestampFilter,
    /// Events never change, so this filters on `created_at` too.
    pub updated_ats: TimestampFilter,
    /// The order; oldest first when `None`.
    pub order: Option<Ordering<AuditOrderField>>,
    /// The page asked for.
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

    /// The event with `guid`, whoever may see it (the use case checks).
    ///
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
#[non_exhaustive]
pub enum AuditError {
    /// No such event, or the caller may not see it.
    #[error("Audit event not found")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// The two read routes of audit events and their retention.
#[derive(Clone)]
pub struct AuditService {
    events: Arc<dyn AuditEventStore>,
    directory: Arc<dyn DirectoryStore>,
    ambient: Ambient,
}

impl AuditService {
    /// A service over `events`, checking visibility against `directory`, on the system's clock.
    pub fn new(events: Arc<dyn AuditEventStore>, directory: Arc<dyn DirectoryStore>) -> Self {
        Self {
            events,
            directory,
            ambient: Ambient::system(),
        }
    }

    /// Uses `ambient`'s clock (the retention cut-off) instead of the system's.
    #[must_use]
    pub fn with_ambient(mut self, ambient: Ambient) -> Self {
        self.ambient = ambient;
        self
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

    /// The event with `guid`, if the caller may see it.
    ///
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
        let before = self.ambient.now() - time::Duration::days(i64::from(retention_days));
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

/// Coalesces the `audit.registry_credential.access` events of one write batch: the reveals of
/// one credential to one actor in one organization and space become ONE event, the first
/// reveal's, whose `data` counts them (`reveals`) and dates the last (`last_revealed_at`).
/// Every reveal is still recorded; a deployer that resolves the same images many times a
/// second writes a handful of rows per batch instead of one per reveal, so resolve keeps its
/// speed and the table its size. Other events pass through unchanged, in their order.
pub fn coalesce_accesses(events: Vec<AuditEvent>) -> Vec<AuditEvent> {
    type Key = (String, String, Option<OrganizationGuid>, Option<SpaceGuid>);
    let mut kept: Vec<(AuditEvent, i64, OffsetDateTime)> = Vec::with_capacity(events.len());
    let mut by_reader: BTreeMap<Key, usize> = BTreeMap::new();
    for event in events {
        if event.event_type != AuditEventType::CredentialAccess {
            let at = event.created_at;
            kept.push((event, 0, at));
            continue;
        }
        let key = (
            event.actor.guid.clone(),
            event.target.guid.clone(),
            event.organization,
            event.space,
        );
        match by_reader.get(&key) {
            Some(&index) => {
                let (first, reveals, last) = &mut kept[index];
                *reveals += 1;
                if event.created_at > *last {
                    *last = event.created_at;
                }
                if event.created_at < first.created_at {
                    // The earliest reveal's event stands for them all.
                    *first = event;
                }
            }
            None => {
                by_reader.insert(key, kept.len());
                let at = event.created_at;
                kept.push((event, 1, at));
            }
        }
    }
    kept.into_iter()
        .map(|(mut event, reveals, last)| {
            if event.event_type == AuditEventType::CredentialAccess {
                event.data = std::mem::take(&mut event.data)
                    .integer("reveals", reveals)
                    .text("last_revealed_at", rfc3339(last));
            }
            event
        })
        .collect()
}

/// A timestamp as Cloud Controller writes them (`2026-11-30T06:20:01Z`).
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
mod coalescing_tests {
    use super::*;

    fn access(actor: &str, credential: u128, second: i64) -> AuditEvent {
        let mut event = AuditEvent::new(
            &crate::ambient::Ambient::system(),
            AuditEventType::CredentialAccess,
            AuditActor::new(actor, "user", actor),
            AuditTarget::new(
                uuid::Uuid::from_u128(credential),
                "registry_credential",
                "r.io",
            ),
            AuditData::request(AuditData::new().text("username", "u").hidden("password")),
        );
        event.created_at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(second);
        event
    }

    fn reveals(event: &AuditEvent) -> Option<&AuditValue> {
        event
            .data
            .entries()
            .find(|(key, _)| key.as_str() == "reveals")
            .map(|(_, value)| value)
    }

    #[test]
    fn reveals_of_one_credential_to_one_actor_become_one_counted_event() {
        let other = AuditEvent::new(
            &crate::ambient::Ambient::system(),
            AuditEventType::CredentialCreate,
            AuditActor::system(),
            AuditTarget::new(9, "registry_credential", "r.io"),
            AuditData::new(),
        );
        let events = vec![
            access("deployer", 1, 5),
            access("deployer", 2, 6),
            other.clone(),
            access("deployer", 1, 3),
            access("deployer", 1, 9),
            access("auditor", 1, 7),
        ];
        let coalesced = coalesce_accesses(events);
        assert_eq!(coalesced.len(), 4, "{coalesced:#?}");
        let first = &coalesced[0];
        assert_eq!(first.actor.guid, "deployer");
        assert_eq!(
            first.created_at,
            OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(3),
            "the earliest reveal's event"
        );
        assert_eq!(reveals(first), Some(&AuditValue::Integer(3)));
        assert!(
            first
                .data
                .entries()
                .any(|(key, value)| key == "last_revealed_at"
                    && *value == AuditValue::Text("1970-01-01T00:00:09Z".to_owned()))
        );
        assert_eq!(reveals(&coalesced[1]), Some(&AuditValue::Integer(1)));
        assert_eq!(coalesced[2], other, "other events pass unchanged");
        assert_eq!(coalesced[3].actor.guid, "auditor");
        assert_eq!(reveals(&coalesced[3]), Some(&AuditValue::Integer(1)));
        // The secret stays hidden in the coalesced event.
        assert!(first.data.entries().any(|(key, _)| key == "request"));
    }
}
