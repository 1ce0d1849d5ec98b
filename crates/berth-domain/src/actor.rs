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
}

impl Role {
    /// Parses `<cf_role_name>:<guid>`, for example `space_developer:6f1c…`.
    ///
    /// # Errors
    /// A [`RoleError`] for any other shape.
    pub fn parse(text: &str) -> Result<Self, RoleError> {
        let (name, guid) = text.split_once(':').ok_or(RoleError::Shape)?;
        let organization = || OrganizationGuid::parse(guid);
        let space = || SpaceGuid::parse(guid);
        Ok(match name {
            "organization_manager" => Self::OrganizationManager(organization()?),
            "organization_auditor" => Self::OrganizationAuditor(organization()?),
            "organization_user" => Self::OrganizationUser(organization()?),
            "organization_billing_manager" => Self::OrganizationBillingManager(organization()?),
            "space_manager" => Self::SpaceManager(space()?),
            "space_developer" => Self::SpaceDeveloper(space()?),
            "space_auditor" => Self::SpaceAuditor(space()?),
            "space_supporter" => Self::SpaceSupporter(space()?),
            _ => return Err(RoleError::UnknownRole),
        })
    }
}

/// The caller of a use case, built from a verified token.
#[derive(Clone, PartialEq, Eq)]
pub struct Actor {
    subject: String,
    scopes: BTreeSet<PlatformScope>,
    roles: BTreeSet<Role>,
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
        }
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
