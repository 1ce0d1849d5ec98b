//! [`DirectoryStore`] in memory.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::credential_store::page_of;
use super::{MemoryDatabase, Tables};
use crate::audit::{AuditEvent, AuditEventGuid};
use crate::directory::{App, Dependents, DirectoryEntry, Organization, Space};
use crate::ids::{OrganizationGuid, SpaceGuid, TypedGuid};
use crate::listing::{Direction, DirectoryOrderField, DirectoryQuery, Ordering, Page};
use crate::permissions::DirectoryVisibility;
use crate::ports::{DirectoryEntries, DirectoryStore, RoleStore, StoreError};
use crate::roles::PermissionFacts;

/// Organizations, spaces and apps in a [`MemoryDatabase`].
#[derive(Clone, Debug)]
pub struct MemoryDirectoryStore {
    database: MemoryDatabase,
}

impl MemoryDirectoryStore {
    /// The store on `database`'s tables.
    pub fn new(database: MemoryDatabase) -> Self {
        Self { database }
    }

    pub(super) fn database(&self) -> &MemoryDatabase {
        &self.database
    }
}

/// What the memory store needs of each kind of entry beyond [`DirectoryEntry`].
trait Row: DirectoryEntry {
    fn table(tables: &mut Tables) -> &mut BTreeMap<Self::Guid, Self>;
    fn created_at(&self) -> OffsetDateTime;
    fn updated_at(&self) -> OffsetDateTime;
    fn parent_guid(&self) -> Option<uuid::Uuid>;
    fn parents_exist(&self, tables: &Tables) -> bool;
    fn visible(&self, visibility: &DirectoryVisibility) -> bool;
    fn dependents(guid: Self::Guid, tables: &Tables) -> Dependents;
    /// Whether something the entry owns is under a write lock its delete must wait for.
    fn owned_locked(_guid: Self::Guid, _tables: &Tables) -> bool {
        false
    }
    /// Deletes what the entry owns and goes with it; the events of those deletes.
    fn delete_owned(
        _guid: Self::Guid,
        _tables: &mut Tables,
        _event: &AuditEvent,
    ) -> Vec<AuditEvent> {
        Vec::new()
    }
}

fn space_visible(
    visibility: &DirectoryVisibility,
    organization: OrganizationGuid,
    space: SpaceGuid,
) -> bool {
    match visibility {
        DirectoryVisibility::Everything => true,
        DirectoryVisibility::Scoped {
            managed_organizations,
            spaces,
            ..
        } => spaces.contains(&space) || managed_organizations.contains(&organization),
    }
}

fn count<T>(items: impl Iterator<Item = T>, keep: impl Fn(&T) -> bool) -> u64 {
    items.filter(|item| keep(item)).count() as u64
}

impl Row for Organization {
    fn table(tables: &mut Tables) -> &mut BTreeMap<OrganizationGuid, Self> {
        &mut tables.organizations
    }
    fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
    fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }
    fn parent_guid(&self) -> Option<uuid::Uuid> {
        None
    }
    fn parents_exist(&self, _: &Tables) -> bool {
        true
    }
    fn visible(&self, visibility: &DirectoryVisibility) -> bool {
        match visibility {
            DirectoryVisibility::Everything => true,
            DirectoryVisibility::Scoped { organizations, .. } => organizations.contains(&self.guid),
        }
    }
    fn dependents(guid: OrganizationGuid, tables: &Tables) -> Dependents {
        Dependents::new(
            count(tables.spaces.values(), |space| space.organization == guid),
            0,
            count(tables.credentials.values(), |row| {
                row.credential.target.organization() == Some(guid)
            }),
            count(tables.registries.values(), |row| {
                row.registry.organization() == guid
            }),
            count(tables.roles.values(), |role| role.organization == guid),
        )
    }
}

impl Row for Space {
    fn table(tables: &mut Tables) -> &mut BTreeMap<SpaceGuid, Self> {
        &mut tables.spaces
    }
    fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
    fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }
    fn parent_guid(&self) -> Option<uuid::Uuid> {
        Some(self.organization.as_uuid())
    }
    fn parents_exist(&self, tables: &Tables) -> bool {
        tables.organizations.contains_key(&self.organization)
    }
    fn visible(&self, visibility: &DirectoryVisibility) -> bool {
        space_visible(visibility, self.organization, self.guid)
    }
    fn dependents(guid: SpaceGuid, tables: &Tables) -> Dependents {
        Dependents::new(
            0,
            count(tables.apps.values(), |app| app.space == guid),
            count(tables.credentials.values(), |row| {
                row.credential.target.space() == Some(guid)
            }),
            0,
            count(tables.roles.values(), |role| role.space() == Some(guid)),
        )
    }
}

impl Row for App {
    fn table(tables: &mut Tables) -> &mut BTreeMap<crate::ids::AppGuid, Self> {
        &mut tables.apps
    }
    fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
    fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }
    fn parent_guid(&self) -> Option<uuid::Uuid> {
        Some(self.space.as_uuid())
    }
    fn parents_exist(&self, tables: &Tables) -> bool {
        tables.spaces.contains_key(&self.space)
            && tables.organizations.contains_key(&self.organization)
    }
    fn visible(&self, visibility: &DirectoryVisibility) -> bool {
        space_visible(visibility, self.organization, self.space)
    }
    fn dependents(_: crate::ids::AppGuid, _: &Tables) -> Dependents {
        // An app's credentials go with it.
        Dependents::default()
    }

    fn owned_locked(guid: crate::ids::AppGuid, tables: &Tables) -> bool {
        tables.credentials.values().any(|row| {
            row.credential.target.app() == Some(guid)
                && tables.locked_credentials.contains(&row.credential.guid)
        })
    }

    fn delete_owned(
        guid: crate::ids::AppGuid,
        tables: &mut Tables,
        event: &AuditEvent,
    ) -> Vec<AuditEvent> {
        // As Cloud Controller (and the sea-orm adapter): an app's credentials are deleted with
        // it, each with its own event at the app delete's time.
        let owned: Vec<_> = tables
            .credentials
            .values()
            .filter(|row| row.credential.target.app() == Some(guid))
            .map(|row| row.credential.clone())
            .collect();
        owned
            .iter()
            .map(|credential| {
                tables.credentials.remove(&credential.guid);
                AuditEvent::credential_deleted_with(
                    event,
                    credential,
                    AuditEventGuid::from_uuid(uuid::Uuid::now_v7()),
                )
            })
            .collect()
    }
}

fn matches<E: Row>(query: &DirectoryQuery, entry: &E) -> bool {
    entry.visible(&query.visibility)
        && query
            .guids
            .as_ref()
            .is_none_or(|guids| guids.contains(&entry.guid().as_uuid()))
        && query
            .names
            .as_ref()
            .is_none_or(|names| names.iter().any(|name| name == entry.name().as_str()))
        && match (&query.parent_guids, entry.parent_guid()) {
            (Some(parents), Some(parent)) => parents.contains(&parent),
            _ => true,
        }
}

#[async_trait]
impl<E: Row> DirectoryEntries<E> for MemoryDirectoryStore
where
    E::Guid: Ord,
{
    async fn insert(&self, entry: &E, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        if E::table(&mut tables).contains_key(&entry.guid()) {
            return Err(StoreError::Conflict);
        }
        if !entry.parents_exist(&tables) {
            return Err(StoreError::MissingParent);
        }
        E::table(&mut tables).insert(entry.guid(), entry.clone());
        tables.record(std::slice::from_ref(event));
        Ok(())
    }

    async fn update(&self, entry: &E, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        let stored = E::table(&mut tables)
            .get_mut(&entry.guid())
            .ok_or(StoreError::NotFound)?;
        stored.rename(entry.name().clone(), entry.updated_at());
        tables.record(std::slice::from_ref(event));
        Ok(())
    }

    async fn get(&self, guid: E::Guid) -> Result<Option<E>, StoreError> {
        Ok(E::table(&mut self.database.tables()).get(&guid).cloned())
    }

    async fn list(&self, query: &DirectoryQuery) -> Result<Page<E>, StoreError> {
        let found: Vec<E> = E::table(&mut self.database.tables())
            .values()
            .filter(|entry| matches(query, *entry))
            .cloned()
            .collect();
        let order = query.order.unwrap_or(Ordering {
            field: DirectoryOrderField::CreatedAt,
            direction: Direction::Ascending,
        });
        let by_field = |a: &E, b: &E| match order.field {
            DirectoryOrderField::CreatedAt => a.created_at().cmp(&b.created_at()),
            DirectoryOrderField::UpdatedAt => a.updated_at().cmp(&b.updated_at()),
            DirectoryOrderField::Name => a.name().as_str().cmp(b.name().as_str()),
        };
        Ok(page_of(
            found,
            |a, b| by_field(a, b).then_with(|| a.guid().cmp(&b.guid())),
            order.direction,
            query.page,
        ))
    }

    async fn delete(&self, guid: E::Guid, event: &AuditEvent) -> Result<(), StoreError> {
        loop {
            let seen = {
                let mut tables = self.database.tables();
                if !E::table(&mut tables).contains_key(&guid) {
                    return Err(StoreError::NotFound);
                }
                let dependents = E::dependents(guid, &tables);
                if !dependents.is_empty() {
                    return Err(StoreError::InUse(dependents));
                }
                if !E::owned_locked(guid, &tables) {
                    let owned = E::delete_owned(guid, &mut tables, event);
                    E::table(&mut tables).remove(&guid);
                    tables.record(std::slice::from_ref(event));
                    tables.record(&owned);
                    return Ok(());
                }
                tables.version
            };
            // Waits for the writer holding an owned credential, as its row lock makes it.
            self.database.changed(seen, None).await;
        }
    }
}

#[async_trait]
impl DirectoryStore for MemoryDirectoryStore {
    fn organizations(&self) -> &dyn DirectoryEntries<Organization> {
        self
    }

    fn spaces(&self) -> &dyn DirectoryEntries<Space> {
        self
    }

    fn apps(&self) -> &dyn DirectoryEntries<App> {
        self
    }

    fn roles(&self) -> &dyn RoleStore {
        self
    }

    async fn permission_facts(
        &self,
        user: &str,
        spaces: &[SpaceGuid],
    ) -> Result<PermissionFacts, StoreError> {
        Ok(self.read_permission_facts(user, spaces))
    }

    async fn space_organizations(
        &self,
        spaces: &[SpaceGuid],
    ) -> Result<Vec<(SpaceGuid, OrganizationGuid)>, StoreError> {
        let tables = self.database.tables();
        Ok(spaces
            .iter()
            .filter_map(|guid| tables.spaces.get(guid))
            .map(|space| (space.guid, space.organization))
            .collect())
    }
}
