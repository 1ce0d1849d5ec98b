//! Use cases of the directory's roles (`/v3/roles`), with Cloud Controller's rules: admins
//! write; a role's organization or space must exist; a space role needs a role in the space's
//! organization; the same `PUT` again changes nothing.

use std::sync::Arc;

use crate::RelationshipKind;
use crate::actor::{Actor, RoleTarget, RoleType};
use crate::ambient::Ambient;
use crate::audit::{AuditActor, AuditData, AuditEvent, AuditEventType, AuditTarget};
use crate::listing::Page;
use crate::permissions::{self, Permissions};
use crate::ports::{DirectoryStore, RoleRemoval, RoleUpsert, StoreError};
use crate::roles::{RoleAssignment, RoleGrant, RoleGuid, RoleQuery};

/// What can go wrong in a role use case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoleError {
    /// No such role, or one the caller may not see.
    #[error("Role not found")]
    NotFound,
    /// The caller may not make this change.
    #[error("You are not authorized to perform the requested action")]
    NotAuthorized,
    /// The role's organization or space does not exist (or is not visible).
    #[error("Invalid {0}. Ensure that the {0} exists and you have access to it.")]
    InvalidRelationship(RelationshipKind),
    /// A space role for a user without a role in the space's organization.
    #[error(
        "Users cannot be assigned roles in a space if they do not have a role in that space's \
         organization."
    )]
    NoOrganizationRole,
    #[error("User '{user}' already has '{kind}' role in {target}.")]
    /// The user holds this role under another guid.
    AlreadyHeld {
        /// The user's guid.
        user: String,
        /// The role's type.
        kind: RoleType,
        /// Where, as Cloud Controller names it.
        target: String,
    },
    /// The guid names a different role.
    #[error("Role '{0}' exists with another type, user, organization or space.")]
    GuidTaken(RoleGuid),
    /// The user's last organization role, while the user holds this many space roles there.
    #[error(
        "Cannot delete the user's last role in the organization while the user has {0} \
         role(s) in its spaces: delete those first."
    )]
    SpaceRolesRemain(u64),
    /// Other role writes in the organization kept its row locked longer than the store waits.
    #[error("The organization's roles are being changed by another request; try again")]
    Contended,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Whether a `PUT` created the role or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolePut {
    /// The role was stored.
    Created,
    /// The same role was there already.
    Unchanged,
}

/// Keeps the directory's roles.
#[derive(Clone)]
pub struct RoleService {
    directory: Arc<dyn DirectoryStore>,
    ambient: Ambient,
}

impl RoleService {
    /// The service over `directory`, on the system's clock and ids.
    pub fn new(directory: Arc<dyn DirectoryStore>) -> Self {
        Self {
            directory,
            ambient: Ambient::system(),
        }
    }

    /// Uses `ambient`'s clock and id source instead of the system's.
    #[must_use]
    pub fn with_ambient(mut self, ambient: Ambient) -> Self {
        self.ambient = ambient;
        self
    }

    async fn permissions(&self, actor: &Actor) -> Result<Permissions, RoleError> {
        permissions::resolve(actor, self.directory.as_ref())
            .await
            .map_err(RoleError::Store)
    }

    /// Creates the role under `guid`, or answers the one there when it is the same grant.
    ///
    /// # Errors
    /// [`RoleError::NotAuthorized`] for callers other than admins,
    /// [`RoleError::InvalidRelationship`] for an organization or space that does not exist,
    /// [`RoleError::NoOrganizationRole`], [`RoleError::AlreadyHeld`] (the same grant under
    /// another guid), [`RoleError::GuidTaken`] (another grant under this guid),
    /// [`RoleError::Contended`], or [`RoleError::Store`].
    pub async fn put(
        &self,
        actor: &Actor,
        guid: RoleGuid,
        grant: RoleGrant,
    ) -> Result<(RoleAssignment, RolePut), RoleError> {
        if !self.permissions(actor).await?.can_write_directory() {
            return Err(RoleError::NotAuthorized);
        }
        let same_or_taken = |existing: RoleAssignment| {
            if existing.same_grant(&grant.user, &grant.role) {
                Ok((existing, RolePut::Unchanged))
            } else {
                Err(RoleError::GuidTaken(guid))
            }
        };
        // A repeated PUT answers without touching the organization's row.
        if let Some(existing) = self.get_stored(guid).await? {
            return same_or_taken(existing);
        }
        let (organization, missing) = match grant.role.target() {
            RoleTarget::Organization(organization) => {
                (organization, RelationshipKind::Organization)
            }
            RoleTarget::Space(space) => {
                let space = self
                    .directory
                    .spaces()
                    .get(space)
                    .await
                    .map_err(RoleError::Store)?
                    .ok_or(RoleError::InvalidRelationship(RelationshipKind::Space))?;
                (space.organization, RelationshipKind::Space)
            }
        };
        let now = self.ambient.now();
        let assignment = RoleAssignment {
            guid,
            user: grant.user.clone(),
            role: grant.role,
            organization,
            created_at: now,
            updated_at: now,
        };
        let event = role_event(
            &self.ambient,
            actor,
            AuditEventType::RoleUpsert,
            &assignment,
        );
        match self.directory.roles().upsert(&assignment, &event).await {
            Ok(RoleUpsert::Created) => Ok((assignment, RolePut::Created)),
            Ok(RoleUpsert::Exists(existing)) => same_or_taken(existing),
            Ok(RoleUpsert::GrantTaken) => Err(RoleError::AlreadyHeld {
                user: grant.user.to_string(),
                kind: grant.role.role_type(),
                target: match grant.role.target() {
                    RoleTarget::Organization(organization) => {
                        format!("organization '{organization}'")
                    }
                    RoleTarget::Space(space) => format!("space '{space}'"),
                },
            }),
            Ok(RoleUpsert::NoOrganizationRole) => Err(RoleError::NoOrganizationRole),
            Err(StoreError::MissingParent) => Err(RoleError::InvalidRelationship(missing)),
            // The lock was not had in time: a concurrent identical PUT may have stored it.
            Err(StoreError::Conflict) => match self.get_stored(guid).await? {
                Some(existing) => same_or_taken(existing),
                None => Err(RoleError::Contended),
            },
            Err(error) => Err(RoleError::Store(error)),
        }
    }

    async fn get_stored(&self, guid: RoleGuid) -> Result<Option<RoleAssignment>, RoleError> {
        self.directory
            .roles()
            .get(guid)
            .await
            .map_err(RoleError::Store)
    }

    /// A role the caller may see: the caller's own, and those of the organizations and spaces
    /// it may read.
    ///
    /// # Errors
    /// [`RoleError::NotFound`] (also when the caller may not see it) or [`RoleError::Store`].
    pub async fn get(&self, actor: &Actor, guid: RoleGuid) -> Result<RoleAssignment, RoleError> {
        let permissions = self.permissions(actor).await?;
        self.get_stored(guid)
            .await?
            .filter(|role| visible(role, actor, &permissions))
            .ok_or(RoleError::NotFound)
    }

    /// Lists the roles the caller may see, filtered inside the store's query.
    ///
    /// # Errors
    /// [`RoleError::Store`].
    pub async fn list(
        &self,
        actor: &Actor,
        mut query: RoleQuery,
    ) -> Result<Page<RoleAssignment>, RoleError> {
        query.visibility = self.permissions(actor).await?.directory_visibility();
        query.viewer = Some(actor.subject().to_owned());
        self.directory
            .roles()
            .list(&query)
            .await
            .map_err(RoleError::Store)
    }

    /// Deletes a role; admins only.
    ///
    /// # Errors
    /// [`RoleError::NotFound`] (also when the caller may not see it),
    /// [`RoleError::NotAuthorized`], [`RoleError::SpaceRolesRemain`] (nothing deleted),
    /// [`RoleError::Contended`], or [`RoleError::Store`].
    pub async fn delete(&self, actor: &Actor, guid: RoleGuid) -> Result<(), RoleError> {
        if !self.permissions(actor).await?.can_write_directory() {
            self.get(actor, guid).await?;
            return Err(RoleError::NotAuthorized);
        }
        // The event names the role as it was; a role's grant never changes under its guid.
        let stored = self.get_stored(guid).await?.ok_or(RoleError::NotFound)?;
        let event = role_event(&self.ambient, actor, AuditEventType::RoleDelete, &stored);
        match self.directory.roles().delete(guid, &event).await {
            Ok(RoleRemoval::Deleted) => Ok(()),
            Ok(RoleRemoval::SpaceRolesRemain(count)) => Err(RoleError::SpaceRolesRemain(count)),
            Err(StoreError::NotFound) => Err(RoleError::NotFound),
            Err(StoreError::Conflict) => Err(RoleError::Contended),
            Err(error) => Err(RoleError::Store(error)),
        }
    }
}

/// The event of a role's upsert or delete: in the role's organization (and space), so those who
/// may read there see it, as Cloud Controller places its role events.
fn role_event(
    ambient: &Ambient,
    actor: &Actor,
    event_type: AuditEventType,
    role: &RoleAssignment,
) -> AuditEvent {
    let kind = role.role.role_type().as_str();
    let mut request = AuditData::new()
        .text("type", kind)
        .text("user_guid", role.user.as_str())
        .text("organization_guid", role.organization.to_string());
    if let Some(space) = role.space() {
        request = request.text("space_guid", space.to_string());
    }
    let event = AuditEvent::new(
        ambient,
        event_type,
        AuditActor::user(actor),
        AuditTarget::new(role.guid, "role", kind),
        AuditData::request(request),
    );
    match role.space() {
        Some(space) => event.in_space(role.organization, space),
        None => event.in_organization(role.organization),
    }
}

/// Whether the caller may see a role: it is the caller's own, or held in an organization or
/// space the caller may read (the rule the store's list query applies).
fn visible(role: &RoleAssignment, actor: &Actor, permissions: &Permissions) -> bool {
    role.user.as_str() == actor.subject()
        || match role.role.target() {
            RoleTarget::Organization(organization) => {
                permissions.can_read_organization(organization)
            }
            RoleTarget::Space(space) => permissions.can_read_space(role.organization, space),
        }
}
