//! [`RoleStore`] on the [`MemoryDirectoryStore`], and the permission lookup of directory roles.
//!
//! Every role write runs under the tables' one lock, as the sea-orm adapter's run in one
//! transaction holding their organization's row: a space role and the deletion of the user's
//! last organization role never both succeed.

use async_trait::async_trait;

use super::Tables;
use super::credential_store::page_of;
use super::directory_store::MemoryDirectoryStore;
use crate::actor::RoleTarget;
use crate::audit::AuditEvent;
use crate::ids::{OrganizationGuid, SpaceGuid};
use crate::listing::Page;
use crate::permissions::DirectoryVisibility;
use crate::ports::{RoleRemoval, RoleStore, RoleUpsert, StoreError};
use crate::roles::{
    PermissionFacts, RoleAssignment, RoleGuid, RoleOrderField, RoleQuery, UserGuid,
};

/// Roles of `user` in `organization`: its space roles when `space_role`, else its organization
/// roles, `except` one guid.
fn count_roles(
    tables: &Tables,
    user: &UserGuid,
    organization: OrganizationGuid,
    space_role: bool,
    except: Option<RoleGuid>,
) -> u64 {
    tables
        .roles
        .values()
        .filter(|role| {
            &role.user == user
                && role.organization == organization
                && role.space().is_some() == space_role
                && Some(role.guid) != except
        })
        .count() as u64
}

/// As the sea-orm adapter: org roles of the caller's organizations, roles in its spaces, every
/// space role of the organizations it manages, and the viewer's own.
fn visible(role: &RoleAssignment, visibility: &DirectoryVisibility, viewer: Option<&str>) -> bool {
    match visibility {
        DirectoryVisibility::Everything => true,
        DirectoryVisibility::Scoped {
            organizations,
            managed_organizations,
            spaces,
        } => {
            let in_scope = match role.space() {
                None => organizations.contains(&role.organization),
                Some(space) => {
                    spaces.contains(&space) || managed_organizations.contains(&role.organization)
                }
            };
            in_scope || viewer == Some(role.user.as_str())
        }
    }
}

fn matches(query: &RoleQuery, role: &RoleAssignment) -> bool {
    visible(role, &query.visibility, query.viewer.as_deref())
        && query
            .guids
            .as_ref()
            .is_none_or(|guids| guids.contains(&role.guid.as_uuid()))
        && query
            .types
            .as_ref()
            .is_none_or(|types| types.contains(&role.role.role_type()))
        && query
            .user_guids
            .as_ref()
            .is_none_or(|users| users.iter().any(|user| user == role.user.as_str()))
        // As Cloud Controller: the organization roles of these organizations.
        && query.organization_guids.as_ref().is_none_or(|organizations| {
            role.space().is_none() && organizations.contains(&role.organization.as_uuid())
        })
        && query.space_guids.as_ref().is_none_or(|spaces| {
            role.space()
                .is_some_and(|space| spaces.contains(&space.as_uuid()))
        })
}

#[async_trait]
impl RoleStore for MemoryDirectoryStore {
    async fn upsert(
        &self,
        assignment: &RoleAssignment,
        event: &AuditEvent,
    ) -> Result<RoleUpsert, StoreError> {
        let mut tables = self.database().tables();
        if !tables.organizations.contains_key(&assignment.organization) {
            return Err(StoreError::MissingParent);
        }
        if let Some(existing) = tables.roles.get(&assignment.guid) {
            return Ok(RoleUpsert::Exists(existing.clone()));
        }
        if assignment.space().is_some()
            && count_roles(
                &tables,
                &assignment.user,
                assignment.organization,
                false,
                None,
            ) == 0
        {
            return Ok(RoleUpsert::NoOrganizationRole);
        }
        // The space's foreign key.
        if let RoleTarget::Space(space) = assignment.role.target()
            && !tables.spaces.contains_key(&space)
        {
            return Err(StoreError::MissingParent);
        }
        // The unique index on (user, role type, target).
        if tables
            .roles
            .values()
            .any(|role| role.same_grant(&assignment.user, &assignment.role))
        {
            return Ok(RoleUpsert::GrantTaken);
        }
        tables.roles.insert(assignment.guid, assignment.clone());
        tables.record(std::slice::from_ref(event));
        Ok(RoleUpsert::Created)
    }

    async fn get(&self, guid: RoleGuid) -> Result<Option<RoleAssignment>, StoreError> {
        Ok(self.database().tables().roles.get(&guid).cloned())
    }

    async fn list(&self, query: &RoleQuery) -> Result<Page<RoleAssignment>, StoreError> {
        let found: Vec<RoleAssignment> = self
            .database()
            .tables()
            .roles
            .values()
            .filter(|role| matches(query, role))
            .cloned()
            .collect();
        let order = query.order_or_default();
        let by_field = move |a: &RoleAssignment, b: &RoleAssignment| match order.field {
            RoleOrderField::CreatedAt => a.created_at.cmp(&b.created_at),
            RoleOrderField::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        };
        Ok(page_of(
            found,
            |a, b| by_field(a, b).then_with(|| a.guid.cmp(&b.guid)),
            order.direction,
            query.page,
        ))
    }

    async fn delete(&self, guid: RoleGuid, event: &AuditEvent) -> Result<RoleRemoval, StoreError> {
        let mut tables = self.database().tables();
        let Some(stored) = tables.roles.get(&guid).cloned() else {
            return Err(StoreError::NotFound);
        };
        if stored.space().is_none()
            && count_roles(
                &tables,
                &stored.user,
                stored.organization,
                false,
                Some(guid),
            ) == 0
        {
            let space_roles = count_roles(&tables, &stored.user, stored.organization, true, None);
            if space_roles > 0 {
                return Ok(RoleRemoval::SpaceRolesRemain(space_roles));
            }
        }
        tables.roles.remove(&guid);
        tables.record(std::slice::from_ref(event));
        Ok(RoleRemoval::Deleted)
    }
}

impl MemoryDirectoryStore {
    /// [`crate::ports::DirectoryStore::permission_facts`]: the user's roles, and the
    /// organization of each space they name and of each of `spaces` that exists.
    pub(super) fn read_permission_facts(
        &self,
        user: &str,
        spaces: &[SpaceGuid],
    ) -> PermissionFacts {
        let tables = self.database().tables();
        let mut facts = PermissionFacts::default();
        for role in tables
            .roles
            .values()
            .filter(|role| role.user.as_str() == user)
        {
            if let Some(space) = role.space() {
                facts.space_organizations.push((space, role.organization));
            }
            facts.roles.push(role.role);
        }
        facts.space_organizations.extend(
            spaces
                .iter()
                .filter_map(|guid| tables.spaces.get(guid))
                .map(|space| (space.guid, space.organization)),
        );
        facts
    }
}
