//! Who may read and change what (SPEC section 5, "Rules"). A service embedding this crate gets
//! the same decisions as Berth's own HTTP surfaces.
//!
//! | resource | read | write |
//! |---|---|---|
//! | foundation credential | every authenticated caller | admins |
//! | organization credential | any role in the organization | organization managers |
//! | space or app credential | any role in the space, the organization's managers | space developers |
//! | organization registry | any role in the organization | organization managers |
//! | organization, space, app (directory) | as their credentials | admins |
//! | audit event | its organization's managers and auditors, its space's roles | nobody |
//!
//! `berth.admin` may do everything; `berth.admin_read_only` and `berth.global_auditor` read
//! everything (every audit event included). A space role counts as a role in the space's organization (Cloud Foundry makes
//! every space member an organization user).

use std::collections::BTreeSet;

use crate::actor::{Actor, PlatformScope, Role};
use crate::credential::ScopeTarget;
use crate::ids::{OrganizationGuid, SpaceGuid};
use crate::ports::{DirectoryStore, StoreError};

/// Resolves a caller's permissions, asking the directory for the organizations of its spaces.
///
/// # Errors
/// The directory's [`StoreError`].
pub async fn resolve(
    actor: &Actor,
    directory: &dyn DirectoryStore,
) -> Result<Permissions, StoreError> {
    let spaces = Permissions::spaces_to_resolve(actor);
    if actor.reads_directory_roles() && !actor.reads_everything() {
        // One statement for the directory's roles and every space's organization.
        let facts = directory.permission_facts(actor.subject(), &spaces).await?;
        return Ok(Permissions::new(
            &actor.adding_roles(facts.roles),
            &facts.space_organizations,
        ));
    }
    let pairs = if spaces.is_empty() {
        Vec::new()
    } else {
        directory.space_organizations(&spaces).await?
    };
    Ok(Permissions::new(actor, &pairs))
}

/// What one caller may see and change, resolved once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    admin: bool,
    read_everything: bool,
    /// Organizations the caller has any role in (space roles included).
    member_organizations: BTreeSet<OrganizationGuid>,
    managed_organizations: BTreeSet<OrganizationGuid>,
    /// Organizations the caller audits.
    audited_organizations: BTreeSet<OrganizationGuid>,
    /// Spaces the caller has any role in.
    member_spaces: BTreeSet<SpaceGuid>,
    developer_spaces: BTreeSet<SpaceGuid>,
}

/// Which credentials a caller may see, for a store to apply inside its list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialVisibility {
    /// Everything.
    Everything,
    /// Foundation credentials, organization credentials of `organizations`, and space and app
    /// credentials in `managed_organizations` or in `spaces`.
    Scoped {
        /// Organizations the caller has a role in.
        organizations: Vec<OrganizationGuid>,
        /// Organizations the caller manages.
        managed_organizations: Vec<OrganizationGuid>,
        /// Spaces the caller has a role in.
        spaces: Vec<SpaceGuid>,
    },
}

impl Default for CredentialVisibility {
    /// The least: foundation credentials only.
    fn default() -> Self {
        Self::Scoped {
            organizations: Vec::new(),
            managed_organizations: Vec::new(),
            spaces: Vec::new(),
        }
    }
}

impl Default for DirectoryVisibility {
    /// Nothing.
    fn default() -> Self {
        Self::Scoped {
            organizations: Vec::new(),
            managed_organizations: Vec::new(),
            spaces: Vec::new(),
        }
    }
}

/// Which directory resources a caller may see, for a store to apply inside its list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryVisibility {
    /// Everything.
    Everything,
    /// Organizations in `organizations`; spaces (and their apps) in `spaces` or in
    /// `managed_organizations`.
    Scoped {
        /// Organizations the caller has a role in.
        organizations: Vec<OrganizationGuid>,
        /// Organizations the caller manages.
        managed_organizations: Vec<OrganizationGuid>,
        /// Spaces the caller has a role in.
        spaces: Vec<SpaceGuid>,
    },
}

/// Which audit events a caller may see, for a store to apply inside its list query (Cloud
/// Foundry's `readable_event_dataset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVisibility {
    /// Every event (admins, read-only admins, global auditors).
    Everything,
    /// Events in `organizations` (managed or audited by the caller) or in `spaces` (any space
    /// role); events in neither (foundation-wide) only for [`AuditVisibility::Everything`].
    Scoped {
        /// Organizations whose events the caller sees.
        organizations: Vec<OrganizationGuid>,
        /// Spaces whose events the caller sees.
        spaces: Vec<SpaceGuid>,
    },
}

impl Default for AuditVisibility {
    /// Nothing.
    fn default() -> Self {
        Self::Scoped {
            organizations: Vec::new(),
            spaces: Vec::new(),
        }
    }
}

impl Permissions {
    /// Resolves an actor's permissions. `space_organizations` maps each space the actor has a
    /// role in to its organization, from the directory (spaces unknown to it are left out).
    pub fn new(actor: &Actor, space_organizations: &[(SpaceGuid, OrganizationGuid)]) -> Self {
        let admin = actor.has_scope(PlatformScope::Admin);
        let read_everything = admin
            || actor.has_scope(PlatformScope::AdminReadOnly)
            || actor.has_scope(PlatformScope::GlobalAuditor);
        let mut permissions = Self {
            admin,
            read_everything,
            member_organizations: BTreeSet::new(),
            managed_organizations: BTreeSet::new(),
            audited_organizations: BTreeSet::new(),
            member_spaces: BTreeSet::new(),
            developer_spaces: BTreeSet::new(),
        };
        for role in actor.roles() {
            match *role {
                Role::OrganizationManager(organization) => {
                    permissions.member_organizations.insert(organization);
                    permissions.managed_organizations.insert(organization);
                }
                Role::OrganizationAuditor(organization) => {
                    permissions.member_organizations.insert(organization);
                    permissions.audited_organizations.insert(organization);
                }
                Role::OrganizationUser(organization)
                | Role::OrganizationBillingManager(organization) => {
                    permissions.member_organizations.insert(organization);
                }
                Role::SpaceDeveloper(space) => {
                    permissions.member_spaces.insert(space);
                    permissions.developer_spaces.insert(space);
                }
                Role::SpaceManager(space)
                | Role::SpaceAuditor(space)
                | Role::SpaceSupporter(space) => {
                    permissions.member_spaces.insert(space);
                }
            }
        }
        for (space, organization) in space_organizations {
            if permissions.member_spaces.contains(space) {
                permissions.member_organizations.insert(*organization);
            }
        }
        permissions
    }

    /// The spaces whose organizations [`Permissions::new`] needs; empty for callers who read
    /// everything, so no directory lookup is made for them.
    pub fn spaces_to_resolve(actor: &Actor) -> Vec<SpaceGuid> {
        if actor.has_scope(PlatformScope::Admin)
            || actor.has_scope(PlatformScope::AdminReadOnly)
            || actor.has_scope(PlatformScope::GlobalAuditor)
        {
            return Vec::new();
        }
        actor
            .roles()
            .filter_map(|role| match *role {
                Role::SpaceManager(space)
                | Role::SpaceDeveloper(space)
                | Role::SpaceAuditor(space)
                | Role::SpaceSupporter(space) => Some(space),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Whether the caller is a platform admin.
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// Admins, read-only admins and global auditors see every event; an organization's
    /// managers and auditors its events; a space's auditors, developers, managers and
    /// supporters its space's events.
    pub fn audit_visibility(&self) -> AuditVisibility {
        if self.read_everything {
            return AuditVisibility::Everything;
        }
        AuditVisibility::Scoped {
            organizations: self
                .managed_organizations
                .union(&self.audited_organizations)
                .copied()
                .collect(),
            spaces: self.member_spaces.iter().copied().collect(),
        }
    }

    /// As [`Permissions::audit_visibility`], for one event.
    pub fn can_read_audit_event(
        &self,
        organization: Option<OrganizationGuid>,
        space: Option<SpaceGuid>,
    ) -> bool {
        self.read_everything
            || organization.is_some_and(|organization| {
                self.managed_organizations.contains(&organization)
                    || self.audited_organizations.contains(&organization)
            })
            || space.is_some_and(|space| self.member_spaces.contains(&space))
    }

    fn reads_space(&self, organization: OrganizationGuid, space: SpaceGuid) -> bool {
        self.read_everything
            || self.member_spaces.contains(&space)
            || self.managed_organizations.contains(&organization)
    }

    /// Whether the caller may read a credential of `target`.
    pub fn can_read_credential(&self, target: &ScopeTarget) -> bool {
        match *target {
            ScopeTarget::Foundation => true,
            ScopeTarget::Organization(organization) => self.can_read_organization(organization),
            ScopeTarget::Space {
                organization,
                space,
            }
            | ScopeTarget::App {
                organization,
                space,
                ..
            } => self.reads_space(organization, space),
        }
    }

    /// Whether the caller may create, change or delete a credential of `target`.
    pub fn can_write_credential(&self, target: &ScopeTarget) -> bool {
        self.admin
            || match *target {
                ScopeTarget::Foundation => false,
                ScopeTarget::Organization(organization) => {
                    self.managed_organizations.contains(&organization)
                }
                ScopeTarget::Space { space, .. } | ScopeTarget::App { space, .. } => {
                    self.developer_spaces.contains(&space)
                }
            }
    }

    /// Which credentials the caller may list, for the store.
    pub fn credential_visibility(&self) -> CredentialVisibility {
        if self.read_everything {
            return CredentialVisibility::Everything;
        }
        CredentialVisibility::Scoped {
            organizations: self.member_organizations.iter().copied().collect(),
            managed_organizations: self.managed_organizations.iter().copied().collect(),
            spaces: self.member_spaces.iter().copied().collect(),
        }
    }

    /// Any role in the organization; also who may read its registry.
    pub fn can_read_organization(&self, organization: OrganizationGuid) -> bool {
        self.read_everything || self.member_organizations.contains(&organization)
    }

    /// Whether the caller may read that space.
    pub fn can_read_space(&self, organization: OrganizationGuid, space: SpaceGuid) -> bool {
        self.reads_space(organization, space)
    }

    /// Which directory entries the caller may list, for the store.
    pub fn directory_visibility(&self) -> DirectoryVisibility {
        if self.read_everything {
            return DirectoryVisibility::Everything;
        }
        DirectoryVisibility::Scoped {
            organizations: self.member_organizations.iter().copied().collect(),
            managed_organizations: self.managed_organizations.iter().copied().collect(),
            spaces: self.member_spaces.iter().copied().collect(),
        }
    }

    /// Creating, renaming or deleting organizations, spaces and apps.
    pub fn can_write_directory(&self) -> bool {
        self.admin
    }

    /// Enabling, changing and disabling an organization's registry and its robot credentials.
    pub fn can_write_registry(&self, organization: OrganizationGuid) -> bool {
        self.admin || self.managed_organizations.contains(&organization)
    }

    /// Whether the caller may read the organization's registry.
    pub fn can_read_registry(&self, organization: OrganizationGuid) -> bool {
        self.can_read_organization(organization)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AppGuid;

    fn org(n: u128) -> OrganizationGuid {
        OrganizationGuid::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn space(n: u128) -> SpaceGuid {
        SpaceGuid::from_uuid(uuid::Uuid::from_u128(n))
    }

    /// Organization 1 holds spaces 11 and 12; organization 2 holds space 21.
    fn directory() -> Vec<(SpaceGuid, OrganizationGuid)> {
        vec![
            (space(11), org(1)),
            (space(12), org(1)),
            (space(21), org(2)),
        ]
    }

    fn permissions(scopes: &[PlatformScope], roles: &[Role]) -> Permissions {
        let actor = Actor::new("someone", scopes.iter().copied(), roles.iter().copied());
        Permissions::new(&actor, &directory())
    }

    #[test]
    fn the_rules_table_holds() {
        let foundation = ScopeTarget::Foundation;
        let organization = ScopeTarget::Organization(org(1));
        let in_space = ScopeTarget::Space {
            organization: org(1),
            space: space(11),
        };
        let in_app = ScopeTarget::App {
            organization: org(1),
            space: space(11),
            app: AppGuid::from_uuid(uuid::Uuid::from_u128(111)),
        };
        let other_space = ScopeTarget::Space {
            organization: org(1),
            space: space(12),
        };
        let foreign = ScopeTarget::Organization(org(2));
        let targets = [
            foundation,
            organization,
            in_space,
            in_app,
            other_space,
            foreign,
        ];

        // (caller, readable targets, writable targets) over `targets` in order.
        let cases: Vec<(&str, Permissions, [bool; 6], [bool; 6])> = vec![
            (
                "admin",
                permissions(&[PlatformScope::Admin], &[]),
                [true; 6],
                [true; 6],
            ),
            (
                "read-only admin",
                permissions(&[PlatformScope::AdminReadOnly], &[]),
                [true; 6],
                [false; 6],
            ),
            (
                "global auditor",
                permissions(&[PlatformScope::GlobalAuditor], &[]),
                [true; 6],
                [false; 6],
            ),
            (
                "organization manager",
                permissions(&[], &[Role::OrganizationManager(org(1))]),
                [true, true, true, true, true, false],
                [false, true, false, false, false, false],
            ),
            (
                "organization auditor",
                permissions(&[], &[Role::OrganizationAuditor(org(1))]),
                [true, true, false, false, false, false],
                [false; 6],
            ),
            (
                "organization user",
                permissions(&[], &[Role::OrganizationUser(org(1))]),
                [true, true, false, false, false, false],
                [false; 6],
            ),
            (
                "space developer",
                permissions(&[], &[Role::SpaceDeveloper(space(11))]),
                [true, true, true, true, false, false],
                [false, false, true, true, false, false],
            ),
            (
                "space manager",
                permissions(&[], &[Role::SpaceManager(space(11))]),
                [true, true, true, true, false, false],
                [false; 6],
            ),
            (
                "space auditor",
                permissions(&[], &[Role::SpaceAuditor(space(11))]),
                [true, true, true, true, false, false],
                [false; 6],
            ),
            (
                "another organization's manager",
                permissions(&[], &[Role::OrganizationManager(org(2))]),
                [true, false, false, false, false, true],
                [false, false, false, false, false, true],
            ),
            (
                "no roles",
                permissions(&[], &[]),
                [true, false, false, false, false, false],
                [false; 6],
            ),
            (
                "pull secrets only",
                permissions(&[PlatformScope::PullSecrets], &[]),
                [true, false, false, false, false, false],
                [false; 6],
            ),
        ];
        for (caller, permissions, reads, writes) in cases {
            for (index, target) in targets.iter().enumerate() {
                assert_eq!(
                    permissions.can_read_credential(target),
                    reads[index],
                    "{caller} reads {target:?}"
                );
                assert_eq!(
                    permissions.can_write_credential(target),
                    writes[index],
                    "{caller} writes {target:?}"
                );
            }
        }
    }

    /// Cloud Foundry's `readable_event_dataset`: global readers all; an organization's managers
    /// and auditors its events; a space's roles its space's events; organization users and
    /// callers without roles nothing, not even events outside any organization.
    #[test]
    fn audit_event_visibility() {
        let (in_org, in_space, elsewhere, global) = (
            (Some(org(1)), None),
            (Some(org(1)), Some(space(11))),
            (Some(org(2)), Some(space(21))),
            (None, None),
        );
        let cases = [
            (permissions(&[PlatformScope::GlobalAuditor], &[]), [true; 4]),
            (permissions(&[PlatformScope::AdminReadOnly], &[]), [true; 4]),
            (
                permissions(&[], &[Role::OrganizationManager(org(1))]),
                [true, true, false, false],
            ),
            (
                permissions(&[], &[Role::OrganizationAuditor(org(1))]),
                [true, true, false, false],
            ),
            (
                permissions(&[], &[Role::OrganizationUser(org(1))]),
                [false; 4],
            ),
            (
                permissions(&[], &[Role::SpaceSupporter(space(11))]),
                [false, true, false, false],
            ),
            (
                permissions(&[], &[Role::SpaceDeveloper(space(11))]),
                [false, true, false, false],
            ),
            (permissions(&[PlatformScope::PullSecrets], &[]), [false; 4]),
        ];
        for (caller, expected) in cases {
            let seen = [in_org, in_space, elsewhere, global]
                .map(|(organization, space)| caller.can_read_audit_event(organization, space));
            assert_eq!(seen, expected, "{caller:?}");
        }
        assert_eq!(
            permissions(&[], &[Role::OrganizationAuditor(org(1))]).audit_visibility(),
            AuditVisibility::Scoped {
                organizations: vec![org(1)],
                spaces: vec![],
            }
        );
        assert_eq!(
            permissions(&[PlatformScope::GlobalAuditor], &[]).audit_visibility(),
            AuditVisibility::Everything
        );
    }

    #[test]
    fn registry_and_directory_rules() {
        let manager = permissions(&[], &[Role::OrganizationManager(org(1))]);
        assert!(manager.can_write_registry(org(1)) && manager.can_read_registry(org(1)));
        assert!(!manager.can_read_registry(org(2)) && !manager.can_write_registry(org(2)));
        assert!(!manager.can_write_directory());
        let developer = permissions(&[], &[Role::SpaceDeveloper(space(21))]);
        assert!(developer.can_read_registry(org(2)) && !developer.can_write_registry(org(2)));
        assert!(permissions(&[PlatformScope::Admin], &[]).can_write_directory());
        assert!(!permissions(&[PlatformScope::AdminReadOnly], &[]).can_write_directory());
    }

    #[test]
    fn only_callers_with_space_roles_need_the_directory() {
        let actor = Actor::new(
            "a",
            [],
            [
                Role::SpaceAuditor(space(11)),
                Role::OrganizationUser(org(1)),
            ],
        );
        assert_eq!(Permissions::spaces_to_resolve(&actor), vec![space(11)]);
        let admin = Actor::new("a", [PlatformScope::Admin], [Role::SpaceAuditor(space(11))]);
        assert!(Permissions::spaces_to_resolve(&admin).is_empty());
    }
}
