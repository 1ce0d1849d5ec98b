//! Use cases of the directory: upserts by guid from the platform, reads, and guarded deletes.

use std::sync::Arc;

use crate::actor::Actor;
use crate::audit::{AuditActor, AuditData, AuditEvent, AuditEventType, AuditTarget};
use time::OffsetDateTime;

use crate::RelationshipKind;
use crate::ambient::Ambient;
use crate::directory::{
    App, Dependents, DirectoryEntry, Organization, ResourceName, Space, Upserted,
};
use crate::ids::{AppGuid, OrganizationGuid, SpaceGuid};
use crate::listing::{DirectoryQuery, Page};
use crate::permissions::{self, Permissions};
use crate::ports::{DirectoryStore, StoreError};

/// What to do about the dependents that keep a resource from being deleted: a registry goes
/// only by a purge (a plain disable keeps it, with its project and images).
fn in_use_advice(dependents: &Dependents) -> &'static str {
    if dependents.registries > 0 {
        "delete them first; a registry is deleted by purging it \
         (DELETE /api/v1/organizations/{orgID}/registry?purge=true)"
    } else {
        "delete them first"
    }
}

/// What can go wrong in a directory use case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// Not found.
    #[error("{} not found", .0.title())]
    NotFound(RelationshipKind),
    /// Invalid …. Ensure that the … exists and you have access to it.
    #[error("Invalid {0}. Ensure that the {0} exists and you have access to it.")]
    InvalidRelationship(RelationshipKind),
    /// The …'s … cannot be changed.
    #[error("The {0}'s {1} cannot be changed")]
    ParentChanged(RelationshipKind, RelationshipKind),
    /// In use.
    #[error("{} still has {}: {}", .kind.title(), .dependents.describe(), in_use_advice(.dependents))]
    InUse {
        /// The kind.
        kind: RelationshipKind,
        /// The dependents.
        dependents: Dependents,
    },
    /// Directory writes are for admins; the caller may see the resource but not change it.
    #[error("You are not authorized to perform the requested action")]
    NotAuthorized,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Keeps Berth's copy of the platform's organizations, spaces and apps.
#[derive(Clone)]
pub struct DirectoryService {
    directory: Arc<dyn DirectoryStore>,
    ambient: Ambient,
}

/// Retries an upsert once when a concurrent creator won the insert race.
const UPSERT_ATTEMPTS: usize = 2;

impl DirectoryService {
    /// The service over its store, on the system clock ([`Ambient::system`]).
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

    /// Creates or renames an organization.
    ///
    /// # Errors
    /// [`DirectoryError::NotAuthorized`] for callers other than admins, or
    /// [`DirectoryError::Store`].
    pub async fn put_organization(
        &self,
        actor: &Actor,
        guid: OrganizationGuid,
        name: ResourceName,
    ) -> Result<(Organization, Upserted), DirectoryError> {
        self.require_writer(actor).await?;
        self.upsert(
            actor,
            guid,
            name.clone(),
            |_: &Organization| Ok(()),
            async |stamp| {
                Ok(Organization {
                    guid,
                    name: name.clone(),
                    created_at: stamp,
                    updated_at: stamp,
                })
            },
        )
        .await
    }

    /// Creates or renames a space; a space never moves to another organization.
    ///
    /// # Errors
    /// [`DirectoryError::InvalidRelationship`] for an unknown organization,
    /// [`DirectoryError::ParentChanged`], or [`DirectoryError::Store`].
    pub async fn put_space(
        &self,
        actor: &Actor,
        guid: SpaceGuid,
        name: ResourceName,
        organization: OrganizationGuid,
    ) -> Result<(Space, Upserted), DirectoryError> {
        self.require_writer(actor).await?;
        self.upsert(
            actor,
            guid,
            name.clone(),
            |existing: &Space| parent_kept::<Space>(existing.organization == organization),
            async |stamp| {
                Ok(Space {
                    guid,
                    name: name.clone(),
                    organization,
                    created_at: stamp,
                    updated_at: stamp,
                })
            },
        )
        .await
    }

    /// Creates or renames an app; an app never moves to another space.
    ///
    /// # Errors
    /// [`DirectoryError::InvalidRelationship`] for an unknown space,
    /// [`DirectoryError::ParentChanged`], or [`DirectoryError::Store`].
    pub async fn put_app(
        &self,
        actor: &Actor,
        guid: AppGuid,
        name: ResourceName,
        space: SpaceGuid,
    ) -> Result<(App, Upserted), DirectoryError> {
        self.require_writer(actor).await?;
        self.upsert(
            actor,
            guid,
            name.clone(),
            |existing: &App| parent_kept::<App>(existing.space == space),
            async |stamp| {
                let parent = self
                    .directory
                    .spaces()
                    .get(space)
                    .await
                    .map_err(DirectoryError::Store)?
                    .ok_or(DirectoryError::InvalidRelationship(RelationshipKind::Space))?;
                Ok(App {
                    guid,
                    name: name.clone(),
                    space,
                    organization: parent.organization,
                    created_at: stamp,
                    updated_at: stamp,
                })
            },
        )
        .await
    }

    /// Renames the entry when it exists (after `check_existing` accepts it), else inserts the
    /// one `fresh` builds; a lost race with a concurrent writer is tried once more.
    async fn upsert<E: DirectoryEntry>(
        &self,
        actor: &Actor,
        guid: E::Guid,
        name: ResourceName,
        check_existing: impl Fn(&E) -> Result<(), DirectoryError>,
        fresh: impl AsyncFn(OffsetDateTime) -> Result<E, DirectoryError>,
    ) -> Result<(E, Upserted), DirectoryError> {
        let entries = E::entries(self.directory.as_ref());
        for _ in 0..UPSERT_ATTEMPTS {
            let stamp = self.ambient.now();
            if let Some(mut existing) = entries.get(guid).await.map_err(DirectoryError::Store)? {
                check_existing(&existing)?;
                existing.rename(name.clone(), stamp);
                let event = directory_event(&self.ambient, actor, Change::Upsert, &existing);
                match entries.update(&existing, &event).await {
                    Ok(()) => return Ok((existing, Upserted::Updated)),
                    Err(StoreError::NotFound) => continue,
                    Err(error) => return Err(DirectoryError::Store(error)),
                }
            }
            let entry = fresh(stamp).await?;
            let event = directory_event(&self.ambient, actor, Change::Upsert, &entry);
            match entries.insert(&entry, &event).await {
                Ok(()) => return Ok((entry, Upserted::Created)),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::MissingParent) if E::PARENT.is_some() => {
                    return Err(DirectoryError::InvalidRelationship(
                        E::PARENT.unwrap_or(E::KIND),
                    ));
                }
                Err(error) => return Err(DirectoryError::Store(error)),
            }
        }
        Err(DirectoryError::Store(StoreError::Unexpected(
            format!("{} upsert kept racing", E::KIND).into(),
        )))
    }

    async fn permissions(&self, actor: &Actor) -> Result<Permissions, DirectoryError> {
        permissions::resolve(actor, self.directory.as_ref())
            .await
            .map_err(DirectoryError::Store)
    }

    async fn require_writer(&self, actor: &Actor) -> Result<(), DirectoryError> {
        if self.permissions(actor).await?.can_write_directory() {
            Ok(())
        } else {
            Err(DirectoryError::NotAuthorized)
        }
    }

    /// An organization, space or app the caller may see.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] (also when the caller may not see it) or
    /// [`DirectoryError::Store`].
    pub async fn get<E: DirectoryEntry>(
        &self,
        actor: &Actor,
        guid: E::Guid,
    ) -> Result<E, DirectoryError> {
        let permissions = self.permissions(actor).await?;
        E::entries(self.directory.as_ref())
            .get(guid)
            .await
            .map_err(DirectoryError::Store)?
            .filter(|entry| entry.readable_by(&permissions))
            .ok_or(DirectoryError::NotFound(E::KIND))
    }

    /// Lists what the caller may see, filtered inside the store's query.
    ///
    /// # Errors
    /// [`DirectoryError::Store`].
    pub async fn list<E: DirectoryEntry>(
        &self,
        actor: &Actor,
        mut query: DirectoryQuery,
    ) -> Result<Page<E>, DirectoryError> {
        query.visibility = self.permissions(actor).await?.directory_visibility();
        E::entries(self.directory.as_ref())
            .list(&query)
            .await
            .map_err(DirectoryError::Store)
    }

    /// Deletes an entry nothing refers to any more (an app with its credentials); admins only.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] (also when the caller may not see it),
    /// [`DirectoryError::NotAuthorized`], [`DirectoryError::InUse`] (nothing deleted), or
    /// [`DirectoryError::Store`].
    pub async fn delete<E: DirectoryEntry>(
        &self,
        actor: &Actor,
        guid: E::Guid,
    ) -> Result<(), DirectoryError> {
        if !self.permissions(actor).await?.can_write_directory() {
            self.get::<E>(actor, guid).await?;
            return Err(DirectoryError::NotAuthorized);
        }
        let entries = E::entries(self.directory.as_ref());
        // Read first: the event names the entry and belongs to its organization and space.
        let entry = entries
            .get(guid)
            .await
            .map_err(DirectoryError::Store)?
            .ok_or(DirectoryError::NotFound(E::KIND))?;
        let event = directory_event(&self.ambient, actor, Change::Delete, &entry);
        match entries.delete(guid, &event).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(DirectoryError::NotFound(E::KIND)),
            Err(StoreError::InUse(dependents)) => Err(DirectoryError::InUse {
                kind: E::KIND,
                dependents,
            }),
            Err(error) => Err(DirectoryError::Store(error)),
        }
    }
}

#[derive(Clone, Copy)]
enum Change {
    Upsert,
    Delete,
}

/// The event of an upsert or delete of `entry` by `actor`.
fn directory_event<E: DirectoryEntry>(
    ambient: &Ambient,
    actor: &Actor,
    change: Change,
    entry: &E,
) -> AuditEvent {
    let event_type = match (E::KIND, change) {
        (RelationshipKind::Organization, Change::Upsert) => AuditEventType::OrganizationUpsert,
        (RelationshipKind::Organization, Change::Delete) => AuditEventType::OrganizationDelete,
        (RelationshipKind::Space, Change::Upsert) => AuditEventType::SpaceUpsert,
        (RelationshipKind::Space, Change::Delete) => AuditEventType::SpaceDelete,
        (RelationshipKind::App, Change::Upsert) => AuditEventType::AppUpsert,
        (RelationshipKind::App, Change::Delete) => AuditEventType::AppDelete,
    };
    let request = match change {
        Change::Upsert => AuditData::new().text("name", entry.name().as_str()),
        Change::Delete => AuditData::new(),
    };
    let mut event = AuditEvent::new(
        ambient,
        event_type,
        AuditActor::user(actor),
        AuditTarget::new(entry.guid(), E::KIND.as_str(), entry.name().as_str()),
        AuditData::request(request),
    );
    let (organization, space) = entry.audit_placement();
    event.organization = organization;
    event.space = space;
    event
}

/// A space stays in its organization and an app in its space: an upsert naming another parent
/// is refused.
fn parent_kept<E: DirectoryEntry>(kept: bool) -> Result<(), DirectoryError> {
    match E::PARENT {
        Some(parent) if !kept => Err(DirectoryError::ParentChanged(E::KIND, parent)),
        _ => Ok(()),
    }
}
