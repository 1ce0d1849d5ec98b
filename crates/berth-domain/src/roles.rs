//! Roles kept in the directory, as Cloud Controller keeps them: a user's organization and space
//! roles, upserted by guid by the platform (`PUT /v3/roles/{guid}`), read by the permission
//! lookup of every request when `auth.roles_source` names the directory.

use std::fmt;

use time::OffsetDateTime;

use crate::actor::{Role, RoleTarget, RoleType};
use crate::ids::{OrganizationGuid, SpaceGuid, guid_newtype};
use crate::listing::{Direction, Ordering, PageRequest};
use crate::permissions::DirectoryVisibility;

guid_newtype!(
    /// The guid of a role in the directory.
    RoleGuid
);

/// Longest user guid accepted: Cloud Controller's guid column.
pub const MAX_USER_GUID_LEN: usize = 255;

/// A user guid that is blank, too long, or holds characters no UAA id holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("User guid must be 1 to {MAX_USER_GUID_LEN} visible characters")]
pub struct InvalidUserGuid;

/// The user a role belongs to: UAA's `user_id` (a UUID for users, the client id for clients),
/// which is what the token's subject is compared with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserGuid(String);

impl UserGuid {
    /// # Errors
    /// [`InvalidUserGuid`] unless 1 to [`MAX_USER_GUID_LEN`] visible ASCII characters.
    /// The user guid `text`.
    ///
    /// # Errors
    /// [`InvalidUserGuid`] unless 1 to [`MAX_USER_GUID_LEN`] visible ASCII characters.
    pub fn parse(text: &str) -> Result<Self, InvalidUserGuid> {
        if text.is_empty()
            || text.len() > MAX_USER_GUID_LEN
            || !text.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return Err(InvalidUserGuid);
        }
        Ok(Self(text.to_owned()))
    }

    /// The guid as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role held by a user, as stored. A space role also carries its space's organization, so
/// that the permission lookup needs no join and an organization's roles are one index range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    /// The role's guid.
    pub guid: RoleGuid,
    /// Who holds it.
    pub user: UserGuid,
    /// The role and where it is held.
    pub role: Role,
    /// The role's organization, or its space's.
    pub organization: OrganizationGuid,
    /// When it was stored.
    pub created_at: OffsetDateTime,
    /// When it last changed (roles never change: its creation).
    pub updated_at: OffsetDateTime,
}

impl RoleAssignment {
    /// A space role's space; `None` for an organization role.
    pub fn space(&self) -> Option<SpaceGuid> {
        match self.role.target() {
            RoleTarget::Space(space) => Some(space),
            RoleTarget::Organization(_) => None,
        }
    }

    /// Whether `other` gives the same user the same role (a repeated `PUT`).
    pub fn same_grant(&self, user: &UserGuid, role: &Role) -> bool {
        &self.user == user && &self.role == role
    }
}

/// What a `PUT /v3/roles/{guid}` asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    /// Who is to hold the role.
    pub user: UserGuid,
    /// The role and where.
    pub role: Role,
}

/// How roles can be ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleOrderField {
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
}

/// A list request for roles: the filters of `GET /v3/roles`, each bounded by the query parser.
#[derive(Debug, Clone, Default)]
pub struct RoleQuery {
    /// Set by the use case from the caller's permissions.
    pub visibility: DirectoryVisibility,
    /// Set by the use case: the caller's subject, whose own roles are always visible.
    pub viewer: Option<String>,
    /// Only these role guids.
    pub guids: Option<Vec<uuid::Uuid>>,
    /// Only roles of these types.
    pub types: Option<Vec<RoleType>>,
    /// Only roles of these users.
    pub user_guids: Option<Vec<String>>,
    /// Only the organization roles of these organizations (as Cloud Controller).
    pub organization_guids: Option<Vec<uuid::Uuid>>,
    /// Only roles in these spaces.
    pub space_guids: Option<Vec<uuid::Uuid>>,
    /// The order; [`RoleQuery::order_or_default`] when `None`.
    pub order: Option<Ordering<RoleOrderField>>,
    /// The page asked for.
    pub page: PageRequest,
}

impl RoleQuery {
    /// The order used when none is asked for: oldest first, as Cloud Controller lists.
    pub fn order_or_default(&self) -> Ordering<RoleOrderField> {
        self.order.unwrap_or(Ordering {
            field: RoleOrderField::CreatedAt,
            direction: Direction::Ascending,
        })
    }
}

/// What the permission lookup needs from the directory, read in one statement: the roles the
/// directory gives the subject, and the organization of each space the caller has a role in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PermissionFacts {
    /// The roles the directory gives the subject.
    pub roles: Vec<Role>,
    /// The organization of each space the caller has a role in (that exists).
    pub space_organizations: Vec<(SpaceGuid, OrganizationGuid)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_guids_are_bounded_visible_text() {
        assert!(UserGuid::parse("6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11").is_ok());
        assert!(UserGuid::parse("cf-deployer-client").is_ok());
        for bad in [
            String::new(),
            "a b".to_owned(),
            "tab\there".to_owned(),
            "é".to_owned(),
            "x".repeat(MAX_USER_GUID_LEN + 1),
        ] {
            assert_eq!(UserGuid::parse(&bad), Err(InvalidUserGuid), "{bad:?}");
        }
        assert!(UserGuid::parse(&"x".repeat(MAX_USER_GUID_LEN)).is_ok());
    }

    #[test]
    fn role_types_fit_their_targets() {
        let organization = OrganizationGuid::from_uuid(uuid::Uuid::nil());
        let space = SpaceGuid::from_uuid(uuid::Uuid::nil());
        for kind in RoleType::ALL {
            assert_eq!(RoleType::parse(kind.as_str()), Ok(kind));
            assert_eq!(kind.in_space(space).is_ok(), kind.is_space_role());
            assert_eq!(
                kind.in_organization(organization).is_ok(),
                !kind.is_space_role()
            );
        }
        let role = RoleType::SpaceDeveloper.in_space(space).unwrap();
        assert_eq!(role.role_type(), RoleType::SpaceDeveloper);
        assert_eq!(role.target(), RoleTarget::Space(space));
    }
}
