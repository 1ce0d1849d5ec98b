//! Use cases of registry credentials.

use std::sync::Arc;

use crate::RelationshipKind;
use crate::actor::Actor;
use crate::ambient::Ambient;
use crate::audit::{AuditActor, AuditData, AuditEvent, AuditEventType, AuditTarget};
use crate::credential::{
    CreateCredentialRequest, RegistryCredential, RequestedOwner, Scope, ScopeTarget,
    UpdateCredentialRequest,
};
use crate::ids::CredentialGuid;
use crate::listing::{CredentialQuery, Page};
use crate::location::RegistryLocation;
use crate::metadata::{Metadata, MetadataLimitError};
use crate::permissions::{self, Permissions};
use crate::ports::{CredentialStore, DirectoryStore, StoreError};
use crate::registry::MANAGED_BY_LABEL;

/// What can go wrong in a credential use case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Registry credential not found.
    #[error("Registry credential not found")]
    NotFound,
    /// Duplicate.
    #[error("{}", duplicate_message(*.scope, .location))]
    Duplicate {
        /// The scope.
        scope: Scope,
        /// The registry location.
        location: RegistryLocation,
    },
    /// The organization, space or app named in `relationships` does not exist.
    #[error("Invalid {0}. Ensure that the {0} exists and you have access to it.")]
    InvalidRelationship(RelationshipKind),
    /// The store failed.
    #[error(transparent)]
    MetadataLimit(#[from] MetadataLimitError),
    /// Other writers kept the credential locked longer than the store waits.
    #[error("The registry credential is being changed by another request; try again")]
    Contended,
    /// The caller may read the credential (or its owner) but not change it.
    #[error("You are not authorized to perform the requested action")]
    NotAuthorized,
    /// The platform pull robot's credential: only the organization's registry changes it.
    #[error(
        "This registry credential is managed by the organization's registry; rotate it with \
         POST /api/v1/organizations/{0}/registry/pull_credential/rotate, or remove it by \
         disabling the registry (DELETE /api/v1/organizations/{0}/registry)"
    )]
    Managed(crate::ids::OrganizationGuid),
    /// The label marking managed credentials is Berth's to set.
    #[error(
        "The label '{}' is reserved for credentials Berth manages",
        crate::registry::MANAGED_BY_LABEL
    )]
    ReservedLabel,
    /// The store failed.
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

/// A managed credential is changed only by the organization's registry (SPEC 7.2). Its label
/// cannot be set or removed through this service, so the check cannot be forged or evaded.
fn refuse_managed(credential: &RegistryCredential) -> Result<(), CredentialError> {
    match credential.target.organization() {
        Some(organization) if credential.is_managed() => {
            Err(CredentialError::Managed(organization))
        }
        _ => Ok(()),
    }
}

/// The event of a change to `credential` by `actor`, in its organization and space.
pub(crate) fn credential_event(
    ambient: &Ambient,
    actor: &Actor,
    event_type: AuditEventType,
    credential: &RegistryCredential,
    request: AuditData,
) -> AuditEvent {
    AuditEvent::new(
        ambient,
        event_type,
        AuditActor::user(actor),
        AuditTarget::credential(credential),
        AuditData::request(request),
    )
    .within(&credential.target)
}

/// Creates, reads, changes and deletes registry credentials.
#[derive(Clone)]
pub struct CredentialService {
    credentials: Arc<dyn CredentialStore>,
    directory: Arc<dyn DirectoryStore>,
    ambient: Ambient,
}

impl CredentialService {
    /// The service over its stores, on the system clock and ids ([`Ambient::system`]).
    pub fn new(credentials: Arc<dyn CredentialStore>, directory: Arc<dyn DirectoryStore>) -> Self {
        Self {
            credentials,
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

    /// # Errors
    /// [`CredentialError::InvalidRelationship`] for an owner that does not exist or that the
    /// caller cannot see, [`CredentialError::NotAuthorized`] when the caller may not write there,
    /// [`CredentialError::Duplicate`] when the scope target already has that location,
    /// [`CredentialError::MetadataLimit`], or [`CredentialError::Store`].
    pub async fn create(
        &self,
        actor: &Actor,
        request: CreateCredentialRequest,
    ) -> Result<RegistryCredential, CredentialError> {
        let permissions = self.permissions(actor).await?;
        let target = self.resolve_owner(request.owner, &permissions).await?;
        if !permissions.can_write_credential(&target) {
            return Err(CredentialError::NotAuthorized);
        }
        if request.metadata.touches_label(MANAGED_BY_LABEL) {
            return Err(CredentialError::ReservedLabel);
        }
        let metadata = Metadata::default().apply(&request.metadata)?;
        let created_at = self.ambient.now();
        let credential = RegistryCredential {
            guid: self.ambient.credential_guid(),
            target,
            location: request.location,
            username: request.username,
            metadata,
            created_at,
            updated_at: created_at,
            revision: 0,
        };
        let data = AuditData::new()
            .text("location", credential.location.to_string())
            .text("username", credential.username.as_str())
            .hidden("password")
            .text("scope", credential.scope().as_str());
        let event = credential_event(
            &self.ambient,
            actor,
            AuditEventType::CredentialCreate,
            &credential,
            data,
        );
        match self
            .credentials
            .insert(&credential, &request.password, &event)
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
    /// [`CredentialError::NotFound`] (also when the caller may not read it) or
    /// [`CredentialError::Store`].
    pub async fn get(
        &self,
        actor: &Actor,
        guid: CredentialGuid,
    ) -> Result<RegistryCredential, CredentialError> {
        let permissions = self.permissions(actor).await?;
        self.readable(&permissions, guid).await
    }

    async fn readable(
        &self,
        permissions: &Permissions,
        guid: CredentialGuid,
    ) -> Result<RegistryCredential, CredentialError> {
        self.credentials
            .get(guid)
            .await
            .map_err(CredentialError::Store)?
            .filter(|credential| permissions.can_read_credential(&credential.target))
            .ok_or(CredentialError::NotFound)
    }

    /// The credential, if the caller may read and change it.
    async fn writable(
        &self,
        permissions: &Permissions,
        guid: CredentialGuid,
    ) -> Result<RegistryCredential, CredentialError> {
        let credential = self.readable(permissions, guid).await?;
        if !permissions.can_write_credential(&credential.target) {
            return Err(CredentialError::NotAuthorized);
        }
        Ok(credential)
    }

    async fn permissions(&self, actor: &Actor) -> Result<Permissions, CredentialError> {
        permissions::resolve(actor, self.directory.as_ref())
            .await
            .map_err(CredentialError::Store)
    }

    /// Lists what the caller may read; visibility is applied by the store, inside its query, so
    /// totals and pages count only visible credentials.
    ///
    /// # Errors
    /// [`CredentialError::Store`].
    pub async fn list(
        &self,
        actor: &Actor,
        mut query: CredentialQuery,
    ) -> Result<Page<RegistryCredential>, CredentialError> {
        query.visibility = self.permissions(actor).await?.credential_visibility();
        self.credentials
            .list(&query)
            .await
            .map_err(CredentialError::Store)
    }

    /// Changes username and password, and merges metadata (a `None` value deletes a key).
    ///
    /// The credential is read, merged and written under the store's write lock, so concurrent
    /// updates apply one after another and none is lost or refused.
    ///
    /// # Errors
    /// [`CredentialError::NotFound`], [`CredentialError::NotAuthorized`],
    /// [`CredentialError::MetadataLimit`], [`CredentialError::Contended`] when the lock could
    /// not be had in time, or [`CredentialError::Store`].
    pub async fn update(
        &self,
        actor: &Actor,
        guid: CredentialGuid,
        request: UpdateCredentialRequest,
    ) -> Result<RegistryCredential, CredentialError> {
        let permissions = self.permissions(actor).await?;
        let locked = match self.credentials.lock(guid).await {
            Ok(Some(locked)) => locked,
            Ok(None) => return Err(CredentialError::NotFound),
            Err(StoreError::Conflict) => return Err(CredentialError::Contended),
            Err(error) => return Err(CredentialError::Store(error)),
        };
        let mut credential = locked.current().clone();
        if !permissions.can_read_credential(&credential.target) {
            return Err(CredentialError::NotFound);
        }
        if !permissions.can_write_credential(&credential.target) {
            return Err(CredentialError::NotAuthorized);
        }
        refuse_managed(&credential)?;
        if request.metadata.touches_label(MANAGED_BY_LABEL) {
            return Err(CredentialError::ReservedLabel);
        }
        credential.metadata = credential.metadata.apply(&request.metadata)?;
        if let Some(username) = &request.username {
            credential.username = username.clone();
        }
        credential.updated_at = self.ambient.now();
        let mut data = AuditData::new();
        if let Some(username) = &request.username {
            data = data.text("username", username.as_str());
        }
        if request.password.is_some() {
            data = data.hidden("password");
        }
        if !request.metadata.is_empty() {
            data = data.flag("metadata_changed", true);
        }
        let event = credential_event(
            &self.ambient,
            actor,
            AuditEventType::CredentialUpdate,
            &credential,
            data,
        );
        match locked
            .write(&credential, request.password.as_ref(), &event)
            .await
        {
            Ok(()) => {
                credential.revision += 1;
                Ok(credential)
            }
            Err(StoreError::Conflict) => Err(CredentialError::Contended),
            Err(error) => Err(CredentialError::Store(error)),
        }
    }

    /// # Errors
    /// [`CredentialError::NotFound`], [`CredentialError::NotAuthorized`],
    /// [`CredentialError::Contended`] when the credential stayed locked too long, or
    /// [`CredentialError::Store`].
    pub async fn delete(&self, actor: &Actor, guid: CredentialGuid) -> Result<(), CredentialError> {
        let permissions = self.permissions(actor).await?;
        let credential = self.writable(&permissions, guid).await?;
        refuse_managed(&credential)?;
        let event = credential_event(
            &self.ambient,
            actor,
            AuditEventType::CredentialDelete,
            &credential,
            AuditData::new(),
        );
        match self.credentials.delete(guid, &event).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(CredentialError::NotFound),
            Err(StoreError::Conflict) => Err(CredentialError::Contended),
            Err(error) => Err(CredentialError::Store(error)),
        }
    }

    /// Resolves the parents of the requested owner from the directory; an owner the caller
    /// cannot see is answered like one that does not exist.
    async fn resolve_owner(
        &self,
        owner: RequestedOwner,
        permissions: &Permissions,
    ) -> Result<ScopeTarget, CredentialError> {
        let missing = |kind| CredentialError::InvalidRelationship(kind);
        Ok(match owner {
            RequestedOwner::Foundation => ScopeTarget::Foundation,
            RequestedOwner::Organization(guid) => {
                // No lookup: the caller's roles decide visibility, and the store refuses an
                // organization that does not exist (`MissingParent`, the same error below).
                if !permissions.can_read_organization(guid) {
                    return Err(missing(RelationshipKind::Organization));
                }
                ScopeTarget::Organization(guid)
            }
            RequestedOwner::Space(_) | RequestedOwner::App(_) => {
                let kind = match owner {
                    RequestedOwner::Space(_) => RelationshipKind::Space,
                    _ => RelationshipKind::App,
                };
                locate_owner(self.directory.as_ref(), owner)
                    .await
                    .map_err(CredentialError::Store)?
                    .filter(|target| match *target {
                        ScopeTarget::Space {
                            organization,
                            space,
                        }
                        | ScopeTarget::App {
                            organization,
                            space,
                            ..
                        } => permissions.can_read_space(organization, space),
                        _ => false,
                    })
                    .ok_or_else(|| missing(kind))?
            }
        })
    }
}

/// An owner's scope target with its parents from the directory; `None` when it does not exist.
/// Each kind but the foundation is one lookup by primary key.
///
/// # Errors
/// The directory's [`StoreError`].
async fn locate_owner(
    directory: &dyn DirectoryStore,
    owner: RequestedOwner,
) -> Result<Option<ScopeTarget>, StoreError> {
    Ok(match owner {
        RequestedOwner::Foundation => Some(ScopeTarget::Foundation),
        RequestedOwner::Organization(guid) => directory
            .organizations()
            .get(guid)
            .await?
            .map(|_| ScopeTarget::Organization(guid)),
        RequestedOwner::Space(guid) => {
            directory
                .spaces()
                .get(guid)
                .await?
                .map(|space| ScopeTarget::Space {
                    organization: space.organization,
                    space: guid,
                })
        }
        RequestedOwner::App(guid) => {
            directory
                .apps()
                .get(guid)
                .await?
                .map(|app| ScopeTarget::App {
                    organization: app.organization,
                    space: app.space,
                    app: guid,
                })
        }
    })
}
