//! [`DirectoryStore`] in memory.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::credential_store::page_of;
use super::{MemoryDatabase, Tables};
use crate::audit::AuditEvent;
use crate::directory::{App, Dependents, DirectoryEntry, Organization, Space};
use crate::ids::{OrganizationGuid, SpaceGuid, TypedGuid};
use crate::listing::{Direction, DirectoryOrderField, DirectoryQuery, Ordering, Page};
use crate::permissions::DirectoryVisibility;
use crate::ports::{DirectoryEntries, DirectoryStore, StoreError};

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
        Dependents {
            spaces: count(tables.spaces.values(), |space| space.organization == guid),
            apps: 0,
            credentials: count(tables.credentials.values(), |row| {
                row.credential.target.organization() == Some(guid)
            }),
            registries: count(tables.registries.values(), |row| {
                row.registry.organization() == guid
            }),
        }
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
        Dependents {
            spaces: 0,
            apps: count(tables.apps.values(), |app| app.space == guid),
            credentials: count(tables.credentials.values(), |row| {
                row.credential.target.space() == Some(guid)
            }),
            registries: 0,
        }
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
    fn dependents(guid: crate::ids::AppGuid, tables: &Tables) -> Dependents {
        Dependents {
            spaces: 0,
            apps: 0,
            credentials: count(tables.credentials.values(), |row| {
                row.credential.target.app() == Some(guid)
            }),
            registries: 0,
        }
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
        let mut tables = self.database.tables();
        if !E::table(&mut tables).contains_key(&guid) {
            return Err(StoreError::NotFound);
        }
        let dependents = E::dependents(guid, &tables);
        if !dependents.is_empty() {
            return Err(StoreError::InUse(dependents));
        }
        E::table(&mut tables).remove(&guid);
        tables.record(std::slice::from_ref(event));
        Ok(())
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
