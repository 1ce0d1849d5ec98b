//! Berth's copy of the platform's organizations, spaces and apps.

use time::OffsetDateTime;

use crate::RelationshipKind;
use crate::ids::{AppGuid, OrganizationGuid, SpaceGuid, TypedGuid};
use crate::permissions::Permissions;
use crate::ports::{DirectoryEntries, DirectoryStore};

/// Longest organization, space or app name accepted (Cloud Foundry's own limit).
pub const MAX_NAME_LEN: usize = 255;

/// Why a directory name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Name can't be blank.
    #[error("Name can't be blank")]
    Blank,
    /// Name is too long (maximum is … characters).
    #[error("Name is too long (maximum is {MAX_NAME_LEN} characters)")]
    TooLong,
    /// Name must not contain control characters.
    #[error("Name must not contain control characters")]
    ControlCharacters,
}

/// The name of an organization, space or app.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceName(String);

impl ResourceName {
    /// # Errors
    /// A [`NameError`] naming the broken rule.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.trim().is_empty() {
            return Err(NameError::Blank);
        }
        if text.chars().count() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(NameError::ControlCharacters);
        }
        Ok(Self(text.to_owned()))
    }

    /// Its text form, as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An organization in Berth's copy of the platform's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Its guid.
    pub guid: OrganizationGuid,
    /// Its name.
    pub name: ResourceName,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// A space, in one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    /// Its guid.
    pub guid: SpaceGuid,
    /// Its name.
    pub name: ResourceName,
    /// Its organization.
    pub organization: OrganizationGuid,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// An app, in one space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Its guid.
    pub guid: AppGuid,
    /// Its name.
    pub name: ResourceName,
    /// Its space.
    pub space: SpaceGuid,
    /// The space's organization, resolved when the app was stored.
    pub organization: OrganizationGuid,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// Whether an upsert created the resource or changed an existing one.
/// What organizations, spaces and apps share: a typed guid, a name, timestamps, a place in the
/// directory and a rule for who may read them. The directory's use cases and adapters are written
/// once over this trait.
pub trait DirectoryEntry: Clone + Send + Sync + 'static {
    /// Its typed guid.
    type Guid: TypedGuid;
    /// Which kind of entry this is (error messages, relationships).
    const KIND: RelationshipKind;
    /// The kind of its parent, which must exist when it is inserted (`None` for organizations).
    const PARENT: Option<RelationshipKind>;

    /// The guid.
    fn guid(&self) -> Self::Guid;
    /// The name.
    fn name(&self) -> &ResourceName;
    /// What an upsert of an existing entry changes: its name and `updated_at`.
    fn rename(&mut self, name: ResourceName, at: OffsetDateTime);
    /// Whether a caller with these permissions may see it.
    fn readable_by(&self, permissions: &Permissions) -> bool;
    /// This kind's entries in a directory store.
    fn entries(directory: &dyn DirectoryStore) -> &dyn DirectoryEntries<Self>;
    /// The organization (and space) its audit events belong to, for their visibility.
    fn audit_placement(&self) -> (Option<OrganizationGuid>, Option<SpaceGuid>);
}

impl DirectoryEntry for Organization {
    type Guid = OrganizationGuid;
    const KIND: RelationshipKind = RelationshipKind::Organization;
    const PARENT: Option<RelationshipKind> = None;

    fn guid(&self) -> OrganizationGuid {
        self.guid
    }

    fn name(&self) -> &ResourceName {
        &self.name
    }

    fn rename(&mut self, name: ResourceName, at: OffsetDateTime) {
        self.name = name;
        self.updated_at = at;
    }

    fn readable_by(&self, permissions: &Permissions) -> bool {
        permissions.can_read_organization(self.guid)
    }

    fn entries(directory: &dyn DirectoryStore) -> &dyn DirectoryEntries<Self> {
        directory.organizations()
    }

    fn audit_placement(&self) -> (Option<OrganizationGuid>, Option<SpaceGuid>) {
        (Some(self.guid), None)
    }
}

impl DirectoryEntry for Space {
    type Guid = SpaceGuid;
    const KIND: RelationshipKind = RelationshipKind::Space;
    const PARENT: Option<RelationshipKind> = Some(RelationshipKind::Organization);

    fn guid(&self) -> SpaceGuid {
        self.guid
    }

    fn name(&self) -> &ResourceName {
        &self.name
    }

    fn rename(&mut self, name: ResourceName, at: OffsetDateTime) {
        self.name = name;
        self.updated_at = at;
    }

    fn readable_by(&self, permissions: &Permissions) -> bool {
        permissions.can_read_space(self.organization, self.guid)
    }

    fn entries(directory: &dyn DirectoryStore) -> &dyn DirectoryEntries<Self> {
        directory.spaces()
    }

    fn audit_placement(&self) -> (Option<OrganizationGuid>, Option<SpaceGuid>) {
        (Some(self.organization), Some(self.guid))
    }
}

impl DirectoryEntry for App {
    type Guid = AppGuid;
    const KIND: RelationshipKind = RelationshipKind::App;
    const PARENT: Option<RelationshipKind> = Some(RelationshipKind::Space);

    fn guid(&self) -> AppGuid {
        self.guid
    }

    fn name(&self) -> &ResourceName {
        &self.name
    }

    fn rename(&mut self, name: ResourceName, at: OffsetDateTime) {
        self.name = name;
        self.updated_at = at;
    }

    fn readable_by(&self, permissions: &Permissions) -> bool {
        permissions.can_read_space(self.organization, self.space)
    }

    fn entries(directory: &dyn DirectoryStore) -> &dyn DirectoryEntries<Self> {
        directory.apps()
    }

    fn audit_placement(&self) -> (Option<OrganizationGuid>, Option<SpaceGuid>) {
        (Some(self.organization), Some(self.space))
    }
}

/// Whether an upsert created the entry or changed an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// Created.
    Created,
    /// Updated.
    Updated,
}

/// What still depends on a directory resource that a client asked to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Dependents {
    /// How many spaces.
    pub spaces: u64,
    /// How many apps.
    pub apps: u64,
    /// How many credentials.
    pub credentials: u64,
    /// How many registries.
    pub registries: u64,
    /// Roles held in it (in the directory).
    pub roles: u64,
}

impl Dependents {
    /// Counts of what depends on a resource.
    pub fn new(spaces: u64, apps: u64, credentials: u64, registries: u64, roles: u64) -> Self {
        Self {
            spaces,
            apps,
            credentials,
            registries,
            roles,
        }
    }
}

impl Dependents {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.spaces == 0
            && self.apps == 0
            && self.credentials == 0
            && self.registries == 0
            && self.roles == 0
    }

    /// A human list such as "2 spaces and 1 registry credential".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.spaces, "space", "spaces"),
            (self.apps, "app", "apps"),
            (
                self.credentials,
                "registry credential",
                "registry credentials",
            ),
            (self.registries, "registry", "registries"),
            (self.roles, "role", "roles"),
        ]
        .into_iter()
        .filter(|(count, _, _)| *count > 0)
        .map(|(count, one, many)| format!("{count} {}", if count == 1 { one } else { many }))
        .collect();
        match parts.as_slice() {
            [] => String::from("nothing"),
            [only] => only.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependents_read_well() {
        let dependents = Dependents {
            spaces: 2,
            apps: 0,
            credentials: 1,
            registries: 1,
            roles: 0,
        };
        assert_eq!(
            dependents.describe(),
            "2 spaces, 1 registry credential and 1 registry"
        );
        assert_eq!(
            Dependents {
                spaces: 1,
                apps: 3,
                credentials: 2,
                registries: 0,
                roles: 4,
            }
            .describe(),
            "1 space, 3 apps, 2 registry credentials and 4 roles"
        );
        assert!(Dependents::default().is_empty());
    }

    #[test]
    fn names_are_bounded() {
        assert!(ResourceName::parse("my-org").is_ok());
        assert_eq!(ResourceName::parse(""), Err(NameError::Blank));
        assert_eq!(
            ResourceName::parse(&"n".repeat(256)),
            Err(NameError::TooLong)
        );
    }
}
