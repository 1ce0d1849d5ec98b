//! Who is calling: the subject of a verified token, its platform scopes and its roles.

use std::collections::BTreeSet;
use std::fmt;

use crate::ids::{InvalidGuid, OrganizationGuid, SpaceGuid};

/// A platform-wide grant carried in the token's `scope` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PlatformScope {
    /// Everything.
    Admin,
    /// Read everything.
    AdminReadOnly,
    /// Read everything.
    GlobalAuditor,
    /// The platform's deployer, which resolves pull secrets.
    PullSecrets,
}

impl PlatformScope {
    /// Maps a scope claim entry; scopes Berth does not use (for example `openid`) give `None`.
    pub fn from_claim(text: &str) -> Option<Self> {
        match text {
            "berth.admin" => Some(Self::Admin),
            "berth.admin_read_only" => Some(Self::AdminReadOnly),
            "berth.global_auditor" => Some(Self::GlobalAuditor),
            "berth.pull_secrets" => Some(Self::PullSecrets),
            _ => None,
        }
    }
}

/// Which Cloud Controller scopes a token carries, for platforms whose tokens must hold
/// `cloud_controller.read` to read and `cloud_controller.write` to write (Cloud Foundry's UAA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiAccess {
    /// Berth's own tokens: no read or write scope is asked for.
    Unrestricted,
    /// As Cloud Controller decides: `read` from `cloud_controller.read` (or an admin scope),
    /// `write` from `cloud_controller.write` (or `cloud_controller.admin`).
    Scoped {
        /// Whether the token may read.
        read: bool,
        /// Whether the token may write.
        write: bool,
    },
}

/// Whether a request only reads (`GET`, `HEAD`, and the read-only actions) or may change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads.
    Read,
    /// May change state.
    Write,
}

/// A Cloud Foundry role held in one organization or space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Organization manager.
    OrganizationManager(OrganizationGuid),
    /// Organization auditor.
    OrganizationAuditor(OrganizationGuid),
    /// Organization user.
    OrganizationUser(OrganizationGuid),
    /// Organization billing manager.
    OrganizationBillingManager(OrganizationGuid),
    /// Space manager.
    SpaceManager(SpaceGuid),
    /// Space developer.
    SpaceDeveloper(SpaceGuid),
    /// Space auditor.
    SpaceAuditor(SpaceGuid),
    /// Space supporter.
    SpaceSupporter(SpaceGuid),
}

/// A `roles` claim entry that is not `<cf_role_name>:<guid>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoleError {
    /// Role must be written `<role>:<guid>`.
    #[error("role must be written <role>:<guid>")]
    Shape,
    /// Unknown role name.
    #[error("unknown role name")]
    UnknownRole,
    /// Role guid is ….
    #[error("role guid is {0}")]
    Guid(#[from] InvalidGuid),
    /// A space role type given an organization, or the other way round.
    #[error("role type does not fit its target")]
    TargetMismatch,
}

/// The eight role types of Cloud Foundry, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleType {
    /// `organization_manager`.
    OrganizationManager,
    /// `organization_auditor`.
    OrganizationAuditor,
    /// `organization_user`.
    OrganizationUser,
    /// `organization_billing_manager`.
    OrganizationBillingManager,
    /// `space_manager`.
    SpaceManager,
    /// `space_developer`.
    SpaceDeveloper,
    /// `space_auditor`.
    SpaceAuditor,
    /// `space_supporter`.
    SpaceSupporter,
}

impl RoleType {
    /// Every role type, organization roles first.
    pub const ALL: [Self; 8] = [
        Self::OrganizationManager,
        Self::OrganizationAuditor,
        Self::OrganizationUser,
        Self::OrganizationBillingManager,
        Self::SpaceManager,
        Self::SpaceDeveloper,
        Self::SpaceAuditor,
        Self::SpaceSupporter,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrganizationManager => "organization_manager",
            Self::OrganizationAuditor => "organization_auditor",
            Self::OrganizationUser => "organization_user",
            Self::OrganizationBillingManager => "organization_billing_manager",
            Self::SpaceManager => "space_manager",
            Self::SpaceDeveloper => "space_developer",
            Self::SpaceAuditor => "space_auditor",
            Self::SpaceSupporter => "space_supporter",
        }
    }

    /// # Errors
    /// [`RoleError::UnknownRole`] for any other name.
    pub fn parse(text: &str) -> Result<Self, RoleError> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or(RoleError::UnknownRole)
    }

    /// Whether the role is held in a space (else in an organization).
    pub fn is_space_role(self) -> bool {
        matches!(
            self,
            Self::SpaceManager | Self::SpaceDeveloper | Self::SpaceAuditor | Self::SpaceSupporter
        )
    }

    /// The role of this type in an organization.
    ///
    /// # Errors
    /// [`RoleError::TargetMismatch`] for a space role type.
    pub fn in_organization(self, organization: OrganizationGuid) -> Result<Role, RoleError> {
        Ok(match self {
            Self::OrganizationManager => Role::OrganizationManager(organization),
            Self::OrganizationAuditor => Role::OrganizationAuditor(organization),
            Self::OrganizationUser => Role::OrganizationUser(organization),
            Self::OrganizationBillingManager => Role::OrganizationBillingManager(organization),
            _ => return Err(RoleError::TargetMismatch),
        })
    }

    /// The role of this type in a space.
    ///
    /// # Errors
    /// [`RoleError::TargetMismatch`] for an organization role type.
    pub fn in_space(self, space: SpaceGuid) -> Result<Role, RoleError> {
        Ok(match self {
            Self::SpaceManager => Role::SpaceManager(space),
            Self::SpaceDeveloper => Role::SpaceDeveloper(space),
            Self::SpaceAuditor => Role::SpaceAuditor(space),
            Self::SpaceSupporter => Role::SpaceSupporter(space),
            _ => return Err(RoleError::TargetMismatch),
        })
    }
}

impl fmt::Display for RoleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a role is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleTarget {
    /// An organization role's organization.
    Organization(OrganizationGuid),
    /// A space role's space.
    Space(SpaceGuid),
}

impl Role {
    /// The role's type.
    pub fn role_type(&self) -> RoleType {
        match self {
            Self::OrganizationManager(_) => RoleType::OrganizationManager,
            Self::OrganizationAuditor(_) => RoleType::OrganizationAuditor,
            Self::OrganizationUser(_) => RoleType::OrganizationUser,
            Self::OrganizationBillingManager(_) => RoleType::OrganizationBillingManager,
            Self::SpaceManager(_) => RoleType::SpaceManager,
            Self::SpaceDeveloper(_) => RoleType::SpaceDeveloper,
            Self::SpaceAuditor(_) => RoleType::SpaceAuditor,
            Self::SpaceSupporter(_) => RoleType::SpaceSupporter,
        }
    }

    /// Where the role is held.
    pub fn target(&self) -> RoleTarget {
        match *self {
            Self::OrganizationManager(organization)
            | Self::OrganizationAuditor(organization)
            | Self::OrganizationUser(organization)
            | Self::OrganizationBillingManager(organization) => {
                RoleTarget::Organization(organization)
            }
            Self::SpaceManager(space)
            | Self::SpaceDeveloper(space)
            | Self::SpaceAuditor(space)
            | Self::SpaceSupporter(space) => RoleTarget::Space(space),
        }
    }

    /// Parses `<cf_role_name>:<guid>`, for example `space_developer:6f1c…`.
    ///
    /// # Errors
    /// A [`RoleError`] for any other shape.
    pub fn parse(text: &str) -> Result<Self, RoleError> {
        let (name, guid) = text.split_once(':').ok_or(RoleError::Shape)?;
        let kind = RoleType::parse(name)?;
        if kind.is_space_role() {
            kind.in_space(SpaceGuid::parse(guid)?)
        } else {
            kind.in_organization(OrganizationGuid::parse(guid)?)
        }
    }
}

/// The caller of a use case, built from a verified token.
#[derive(Clone, PartialEq, Eq)]
pub struct Actor {
    subject: String,
    scopes: BTreeSet<PlatformScope>,
    roles: BTreeSet<Role>,
    access: ApiAccess,
    /// Whether the directory's roles of the subject count too (`auth.roles_source`).
    directory_roles: bool,
}

impl Actor {
    /// Builds one from its parts.
    pub fn new(
        subject: impl Into<String>,
        scopes: impl IntoIterator<Item = PlatformScope>,
        roles: impl IntoIterator<Item = Role>,
    ) -> Self {
        Self {
            subject: subject.into(),
            scopes: scopes.into_iter().collect(),
            roles: roles.into_iter().collect(),
            access: ApiAccess::Unrestricted,
            directory_roles: false,
        }
    }

    /// The same caller, its reads and writes gated by Cloud Controller's scopes.
    #[must_use]
    pub fn with_access(mut self, access: ApiAccess) -> Self {
        self.access = access;
        self
    }

    /// The same caller, whose roles kept in the directory count as well as its token's.
    #[must_use]
    pub fn with_directory_roles(mut self) -> Self {
        self.directory_roles = true;
        self
    }

    /// The same caller holding `roles` as well (read from the directory).
    #[must_use]
    pub fn adding_roles(&self, roles: impl IntoIterator<Item = Role>) -> Self {
        let mut actor = self.clone();
        actor.roles.extend(roles);
        actor
    }

    /// Whether the directory's roles of the subject are to be looked up.
    pub fn reads_directory_roles(&self) -> bool {
        self.directory_roles
    }

    /// Whether the token's scopes allow this kind of request at all (Cloud Controller's
    /// `cloud_controller.read`/`.write` rule); the permission rules decide the rest.
    pub fn may(&self, access: Access) -> bool {
        match (self.access, access) {
            (ApiAccess::Unrestricted, _) => true,
            (ApiAccess::Scoped { read, .. }, Access::Read) => read,
            (ApiAccess::Scoped { write, .. }, Access::Write) => write,
        }
    }

    /// Whether the caller reads everything (an admin, read-only admin or global auditor).
    pub fn reads_everything(&self) -> bool {
        self.has_scope(PlatformScope::Admin)
            || self.has_scope(PlatformScope::AdminReadOnly)
            || self.has_scope(PlatformScope::GlobalAuditor)
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: PlatformScope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The caller's roles in organizations and spaces.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.iter()
    }
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actor")
            .field("subject", &self.subject)
            .field("scopes", &self.scopes)
            .field("roles", &self.roles.len())
            .field("access", &self.access)
            .field("directory_roles", &self.directory_roles)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_claims() {
        let guid = "6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11";
        assert!(matches!(
            Role::parse(&format!("space_developer:{guid}")),
            Ok(Role::SpaceDeveloper(_))
        ));
        assert_eq!(Role::parse("space_developer"), Err(RoleError::Shape));
        assert_eq!(
            Role::parse(&format!("space_wizard:{guid}")),
            Err(RoleError::UnknownRole)
        );
        assert_eq!(
            Role::parse("space_developer:nope"),
            Err(RoleError::Guid(InvalidGuid))
        );
        assert_eq!(
            PlatformScope::from_claim("berth.admin"),
            Some(PlatformScope::Admin)
        );
        assert_eq!(PlatformScope::from_claim("openid"), None);
    }
}
