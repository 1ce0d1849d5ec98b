//! Use cases of registry credentials.

use std::sync::Arc;

use crate::actor::Actor;
use crate::credential::{
    CreateCredentialRequest, RegistryCredential, RequestedOwner, Scope, ScopeTarget,
    UpdateCredentialRequest,
};
use crate::ids::CredentialGuid;
use crate::listing::{CredentialQuery, Page};
use crate::location::RegistryLocation;
use crate::metadata::{Metadata, MetadataLimitError};
use crate::ports::{CredentialStore, DirectoryStore, StoreError};
use crate::{RelationshipKind, now};

/// What can go wrong in a credential use case.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("Registry credential not found")]
    NotFound,
    #[error("{}", duplicate_message(*.scope, .location))]
    Duplicate {
        scope: Scope,
        location: RegistryLocation,
    },
    /// The organization, space or app named in `relationships` does not exist.
    #[error("Invalid {0}. Ensure that the {0} exists and you have access to it.")]
    InvalidRelationship(RelationshipKind),
    #[error(transparent)]
    MetadataLimit(#[from] MetadataLimitError),
    #[error(transparent)]
    Store(StoreError),
}

fn duplicate_message(scope: Scope, location: &RegistryLocation) -> String {
    let target = match scope {
        Scope::Foundation => "the foundation",
        Scope::Organization => "this organization",
        Scope::Space => "this space",
        Scope::App => "this app",
    };
    format!("A registry credential for location '{location}' already exists for {target}")
}

/// Creates, reads, changes and deletes registry credentials.
#[derive(Clone)]
pub struct CredentialService {
    credentials: Arc<dyn CredentialStore>,
    directory: Arc<dyn DirectoryStore>,
}

impl CredentialService {
    pub fn new(credentials: Arc<dyn CredentialStore>, directory: Arc<dyn DirectoryStore>) -> Self {
        Self {
            credentials,
            directory,
        }
    }

    /// # Errors
    /// [`CredentialError::InvalidRelationship`] for an unknown owner,
    /// [`CredentialError::Duplicate`] when the scope target already has that location,
    /// [`CredentialError::MetadataLimit`], or [`CredentialError::Store`].
    pub async fn create(
        &self,
        _actor: &Actor,
        request: CreateCredentialRequest,
    ) -> Result<RegistryCredential, CredentialError> {
        let target = self.resolve_owner(request.owner).await?;
        let metadata = Metadata::default().apply(&request.metadata)?;
        let created_at = now();
        let credential = RegistryCredential {
            guid: CredentialGuid::generate(),
            target,
            location: request.location,
            username: request.username,
            metadata,
            created_at,
            updated_at: created_at,
        };
        match self
            .credentials
            .insert(&credential, &request.password)
            .await
        {
            Ok(()) => Ok(credential),
            Err(StoreError::Conflict) => Err(CredentialError::Duplicate {
                scope: credential.scope(),
                location: credential.location,
            }),
            Err(StoreError::MissingParent) => Err(CredentialError::InvalidRelationship(
                RelationshipKind::for_scope(credential.target.scope()),
            )),
            Err(error) => Err(CredentialError::Store(error)),
        }
    }

    /// # Errors
    /// [`CredentialError::NotFound`] or [`CredentialError::Store`].
    pub async fn get(
        &self,
        _actor: &Actor,
        guid: CredentialGuid,
    ) -> Result<RegistryCredential, CredentialError> {
        self.credentials
            .get(guid)
            .await
            .map_err(CredentialError::Store)?
            .ok_or(CredentialError::NotFound)
    }

    /// # Errors
    /// [`CredentialError::Store`].
    pub async fn list(
        &self,
        _actor: &Actor,
        query: &CredentialQuery,
    ) -> Result<Page<RegistryCredential>, CredentialError> {
        self.credentials
            .list(query)
            .await
            .map_err(CredentialError::Store)
    }

    /// Changes username and password, and merges metadata (a `None` value deletes a key).
    ///
    /// # Errors
    /// [`CredentialError::NotFound`], [`CredentialError::MetadataLimit`] or
    /// [`CredentialError::Store`].
    pub async fn update(
        &self,
        actor: &Actor,
        guid: CredentialGuid,
        request: UpdateCredentialRequest,
    ) -> Result<RegistryCredential, CredentialError> {
        let mut credential = self.get(actor, guid).await?;
        credential.metadata = credential.metadata.apply(&request.metadata)?;
        if let Some(username) = request.username {
            credential.username = username;
        }
        credential.updated_at = now();
        match self
            .credentials
            .update(&credential, request.password.as_ref())
            .await
        {
            Ok(()) => Ok(credential),
            Err(StoreError::NotFound) => Err(CredentialError::NotFound),
            Err(error) => Err(CredentialError::Store(error)),
        }
    }

    /// # Errors
    /// [`CredentialError::NotFound`] or [`CredentialError::Store`].
    pub async fn delete(
        &self,
        _actor: &Actor,
        guid: CredentialGuid,
    ) -> Result<(), CredentialError> {
        match self.credentials.delete(guid).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(CredentialError::NotFound),
            Err(error) => Err(CredentialError::Store(error)),
        }
    }

    /// Resolves the parents of the requested owner from the directory.
    async fn resolve_owner(&self, owner: RequestedOwner) -> Result<ScopeTarget, CredentialError> {
        let missing = |kind| CredentialError::InvalidRelationship(kind);
        Ok(match owner {
            RequestedOwner::Foundation => ScopeTarget::Foundation,
            RequestedOwner::Organization(guid) => {
                self.directory
                    .get_organization(guid)
                    .await
                    .map_err(CredentialError::Store)?
                    .ok_or_else(|| missing(RelationshipKind::Organization))?;
                ScopeTarget::Organization(guid)
            }
            RequestedOwner::Space(guid) => {
                let space = self
                    .directory
                    .get_space(guid)
                    .await
                    .map_err(CredentialError::Store)?
                    .ok_or_else(|| missing(RelationshipKind::Space))?;
                ScopeTarget::Space {
                    organization: space.organization,
                    space: guid,
                }
            }
            RequestedOwner::App(guid) => {
                let app = self
                    .directory
                    .get_app(guid)
                    .await
                    .map_err(CredentialError::Store)?
                    .ok_or_else(|| missing(RelationshipKind::App))?;
                ScopeTarget::App {
                    organization: app.organization,
                    space: app.space,
                    app: guid,
                }
            }
        })
    }
}
