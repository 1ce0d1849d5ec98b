//! Use cases of the directory: upserts by guid from the platform, reads, and guarded deletes.

use std::sync::Arc;

use crate::actor::Actor;
use crate::directory::{App, Dependents, Organization, ResourceName, Space, Upserted};
use crate::ids::{AppGuid, OrganizationGuid, SpaceGuid};
use crate::listing::{DirectoryQuery, Page};
use crate::permissions::{self, Permissions};
use crate::ports::{DirectoryStore, StoreError};
use crate::{RelationshipKind, now};

/// What can go wrong in a directory use case.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{} not found", .0.title())]
    NotFound(RelationshipKind),
    #[error("Invalid {0}. Ensure that the {0} exists and you have access to it.")]
    InvalidRelationship(RelationshipKind),
    #[error("The {0}'s {1} cannot be changed")]
    ParentChanged(RelationshipKind, RelationshipKind),
    #[error("{} still has {}: delete them first", .kind.title(), .dependents.describe())]
    InUse {
        kind: RelationshipKind,
        dependents: Dependents,
    },
    /// Directory writes are for admins; the caller may see the resource but not change it.
    #[error("You are not authorized to perform the requested action")]
    NotAuthorized,
    #[error(transparent)]
    Store(StoreError),
}

/// Keeps Berth's copy of the platform's organizations, spaces and apps.
#[derive(Clone)]
pub struct DirectoryService {
    directory: Arc<dyn DirectoryStore>,
}

/// Retries an upsert once when a concurrent creator won the insert race.
const UPSERT_ATTEMPTS: usize = 2;

impl DirectoryService {
    pub fn new(directory: Arc<dyn DirectoryStore>) -> Self {
        Self { directory }
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
        for _ in 0..UPSERT_ATTEMPTS {
            let stamp = now();
            if let Some(mut existing) = self
                .directory
                .get_organization(guid)
                .await
                .map_err(DirectoryError::Store)?
            {
                existing.name = name.clone();
                existing.updated_at = stamp;
                match self.directory.update_organization(&existing).await {
                    Ok(()) => return Ok((existing, Upserted::Updated)),
                    Err(StoreError::NotFound) => continue,
                    Err(error) => return Err(DirectoryError::Store(error)),
                }
            }
            let organization = Organization {
                guid,
                name: name.clone(),
                created_at: stamp,
                updated_at: stamp,
            };
            match self.directory.insert_organization(&organization).await {
                Ok(()) => return Ok((organization, Upserted::Created)),
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(DirectoryError::Store(error)),
            }
        }
        Err(DirectoryError::Store(StoreError::Unexpected(
            "organization upsert kept racing".into(),
        )))
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
        for _ in 0..UPSERT_ATTEMPTS {
            let stamp = now();
            if let Some(mut existing) = self
                .directory
                .get_space(guid)
                .await
                .map_err(DirectoryError::Store)?
            {
                if existing.organization != organization {
                    return Err(DirectoryError::ParentChanged(
                        RelationshipKind::Space,
                        RelationshipKind::Organization,
                    ));
                }
                existing.name = name.clone();
                existing.updated_at = stamp;
                match self.directory.update_space(&existing).await {
                    Ok(()) => return Ok((existing, Upserted::Updated)),
                    Err(StoreError::NotFound) => continue,
                    Err(error) => return Err(DirectoryError::Store(error)),
                }
            }
            let space = Space {
                guid,
                name: name.clone(),
                organization,
                created_at: stamp,
                updated_at: stamp,
            };
            match self.directory.insert_space(&space).await {
                Ok(()) => return Ok((space, Upserted::Created)),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::MissingParent) => {
                    return Err(DirectoryError::InvalidRelationship(
                        RelationshipKind::Organization,
                    ));
                }
                Err(error) => return Err(DirectoryError::Store(error)),
            }
        }
        Err(DirectoryError::Store(StoreError::Unexpected(
            "space upsert kept racing".into(),
        )))
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
        for _ in 0..UPSERT_ATTEMPTS {
            let stamp = now();
            if let Some(mut existing) = self
                .directory
                .get_app(guid)
                .await
                .map_err(DirectoryError::Store)?
            {
                if existing.space != space {
                    return Err(DirectoryError::ParentChanged(
                        RelationshipKind::App,
                        RelationshipKind::Space,
                    ));
                }
                existing.name = name.clone();
                existing.updated_at = stamp;
                match self.directory.update_app(&existing).await {
                    Ok(()) => return Ok((existing, Upserted::Updated)),
                    Err(StoreError::NotFound) => continue,
                    Err(error) => return Err(DirectoryError::Store(error)),
                }
            }
            let parent = self
                .directory
                .get_space(space)
                .await
                .map_err(DirectoryError::Store)?
                .ok_or(DirectoryError::InvalidRelationship(RelationshipKind::Space))?;
            let app = App {
                guid,
                name: name.clone(),
                space,
                organization: parent.organization,
                created_at: stamp,
                updated_at: stamp,
            };
            match self.directory.insert_app(&app).await {
                Ok(()) => return Ok((app, Upserted::Created)),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::MissingParent) => {
                    return Err(DirectoryError::InvalidRelationship(RelationshipKind::Space));
                }
                Err(error) => return Err(DirectoryError::Store(error)),
            }
        }
        Err(DirectoryError::Store(StoreError::Unexpected(
            "app upsert kept racing".into(),
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

    /// # Errors
    /// [`DirectoryError::NotFound`] (also when the caller may not see it) or
    /// [`DirectoryError::Store`].
    pub async fn get_organization(
        &self,
        actor: &Actor,
        guid: OrganizationGuid,
    ) -> Result<Organization, DirectoryError> {
        let permissions = self.permissions(actor).await?;
        self.directory
            .get_organization(guid)
            .await
            .map_err(DirectoryError::Store)?
            .filter(|_| permissions.can_read_organization(guid))
            .ok_or(DirectoryError::NotFound(RelationshipKind::Organization))
    }

    /// # Errors
    /// As [`DirectoryService::get_organization`].
    pub async fn get_space(&self, actor: &Actor, guid: SpaceGuid) -> Result<Space, DirectoryError> {
        let permissions = self.permissions(actor).await?;
        self.directory
            .get_space(guid)
            .await
            .map_err(DirectoryError::Store)?
            .filter(|space| permissions.can_read_space(space.organization, guid))
            .ok_or(DirectoryError::NotFound(RelationshipKind::Space))
    }

    /// # Errors
    /// As [`DirectoryService::get_organization`].
    pub async fn get_app(&self, actor: &Actor, guid: AppGuid) -> Result<App, DirectoryError> {
        let permissions = self.permissions(actor).await?;
        self.directory
            .get_app(guid)
            .await
            .map_err(DirectoryError::Store)?
            .filter(|app| permissions.can_read_space(app.organization, app.space))
            .ok_or(DirectoryError::NotFound(RelationshipKind::App))
    }

    /// Lists what the caller may see, filtered inside the store's query.
    ///
    /// # Errors
    /// [`DirectoryError::Store`].
    pub async fn list_organizations(
        &self,
        actor: &Actor,
        mut query: DirectoryQuery,
    ) -> Result<Page<Organization>, DirectoryError> {
        query.visibility = self.permissions(actor).await?.directory_visibility();
        self.directory
            .list_organizations(&query)
            .await
            .map_err(DirectoryError::Store)
    }

    /// # Errors
    /// [`DirectoryError::Store`].
    pub async fn list_spaces(
        &self,
        actor: &Actor,
        mut query: DirectoryQuery,
    ) -> Result<Page<Space>, DirectoryError> {
        query.visibility = self.permissions(actor).await?.directory_visibility();
        self.directory
            .list_spaces(&query)
            .await
            .map_err(DirectoryError::Store)
    }

    /// # Errors
    /// [`DirectoryError::Store`].
    pub async fn list_apps(
        &self,
        actor: &Actor,
        mut query: DirectoryQuery,
    ) -> Result<Page<App>, DirectoryError> {
        query.visibility = self.permissions(actor).await?.directory_visibility();
        self.directory
            .list_apps(&query)
            .await
            .map_err(DirectoryError::Store)
    }

    /// Deletes an organization nothing refers to any more; admins only.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] (also when the caller may not see it),
    /// [`DirectoryError::NotAuthorized`], [`DirectoryError::InUse`] (nothing deleted), or
    /// [`DirectoryError::Store`].
    pub async fn delete_organization(
        &self,
        actor: &Actor,
        guid: OrganizationGuid,
    ) -> Result<(), DirectoryError> {
        if !self.permissions(actor).await?.can_write_directory() {
            self.get_organization(actor, guid).await?;
            return Err(DirectoryError::NotAuthorized);
        }
        deletion(
            self.directory.delete_organization(guid).await,
            RelationshipKind::Organization,
        )
    }

    /// # Errors
    /// As [`DirectoryService::delete_organization`].
    pub async fn delete_space(&self, actor: &Actor, guid: SpaceGuid) -> Result<(), DirectoryError> {
        if !self.permissions(actor).await?.can_write_directory() {
            self.get_space(actor, guid).await?;
            return Err(DirectoryError::NotAuthorized);
        }
        deletion(
            self.directory.delete_space(guid).await,
            RelationshipKind::Space,
        )
    }

    /// # Errors
    /// As [`DirectoryService::delete_organization`].
    pub async fn delete_app(&self, actor: &Actor, guid: AppGuid) -> Result<(), DirectoryError> {
        if !self.permissions(actor).await?.can_write_directory() {
            self.get_app(actor, guid).await?;
            return Err(DirectoryError::NotAuthorized);
        }
        deletion(self.directory.delete_app(guid).await, RelationshipKind::App)
    }
}

fn deletion(result: Result<(), StoreError>, kind: RelationshipKind) -> Result<(), DirectoryError> {
    match result {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(DirectoryError::NotFound(kind)),
        Err(StoreError::InUse(dependents)) => Err(DirectoryError::InUse { kind, dependents }),
        Err(error) => Err(DirectoryError::Store(error)),
    }
}
