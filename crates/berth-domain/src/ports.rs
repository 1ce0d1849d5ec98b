//! Driven ports: what the use cases need from the outside world. Adapters implement them; only
//! the `berth` binary builds adapters.

use async_trait::async_trait;

use crate::credential::{Password, RegistryCredential};
use crate::directory::{App, Dependents, Organization, Space};
use crate::ids::{AppGuid, CredentialGuid, OrganizationGuid, SpaceGuid};
use crate::listing::{CredentialQuery, DirectoryQuery, Page};

/// Any error an adapter wants to keep as the cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a store can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists.
    #[error("a conflicting row exists")]
    Conflict,
    /// The row to change or delete does not exist.
    #[error("the row does not exist")]
    NotFound,
    /// A row this one refers to does not exist (any more).
    #[error("a referenced row does not exist")]
    MissingParent,
    /// Rows still refer to the one to delete.
    #[error("the row is still referred to")]
    InUse(Dependents),
    /// The database cannot be reached or refused the connection.
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else; a bug or a broken invariant.
    #[error("the store failed")]
    Unexpected(#[source] BoxError),
}

/// Keeps registry credentials, their passwords sealed at rest.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Stores a new credential and seals its password.
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when a credential with the same scope target and
    /// location exists (enforced by the database, so concurrent inserts give one winner), and
    /// [`StoreError::MissingParent`] when its organization, space or app no longer exists.
    /// Otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn insert(
        &self,
        credential: &RegistryCredential,
        password: &Password,
    ) -> Result<(), StoreError>;

    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get(&self, guid: CredentialGuid) -> Result<Option<RegistryCredential>, StoreError>;

    /// Replaces username, metadata and `updated_at`, and the password when one is given, if the
    /// stored revision is still `credential.revision`; the stored revision then goes up by one.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the credential does not exist and
    /// [`StoreError::Conflict`] when it changed since `credential.revision` was read.
    /// Otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn update(
        &self,
        credential: &RegistryCredential,
        password: Option<&Password>,
    ) -> Result<(), StoreError>;

    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the credential does not exist.
    /// Otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn delete(&self, guid: CredentialGuid) -> Result<(), StoreError>;

    /// Filters, orders and pages in the store, so `total_results` counts every match.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn list(&self, query: &CredentialQuery) -> Result<Page<RegistryCredential>, StoreError>;

    /// Opens the sealed password of a credential.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] when the seal does not open (wrong key, tampered or moved
    /// ciphertext); otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn reveal_password(&self, guid: CredentialGuid) -> Result<Option<Password>, StoreError>;
}

/// Keeps the directory of organizations, spaces and apps.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when the guid exists.
    async fn insert_organization(&self, organization: &Organization) -> Result<(), StoreError>;
    /// Replaces the name and `updated_at`.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the guid does not exist.
    async fn update_organization(&self, organization: &Organization) -> Result<(), StoreError>;
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get_organization(
        &self,
        guid: OrganizationGuid,
    ) -> Result<Option<Organization>, StoreError>;
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn list_organizations(
        &self,
        query: &DirectoryQuery,
    ) -> Result<Page<Organization>, StoreError>;
    /// Deletes an organization that nothing refers to, in one transaction.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the guid does not exist and
    /// [`StoreError::InUse`] when spaces or credentials still refer to it (nothing is deleted).
    async fn delete_organization(&self, guid: OrganizationGuid) -> Result<(), StoreError>;

    /// # Errors
    /// MUST return [`StoreError::Conflict`] when the guid exists and
    /// [`StoreError::MissingParent`] when its organization does not exist.
    async fn insert_space(&self, space: &Space) -> Result<(), StoreError>;
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the guid does not exist.
    async fn update_space(&self, space: &Space) -> Result<(), StoreError>;
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get_space(&self, guid: SpaceGuid) -> Result<Option<Space>, StoreError>;
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn list_spaces(&self, query: &DirectoryQuery) -> Result<Page<Space>, StoreError>;
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the guid does not exist and
    /// [`StoreError::InUse`] when apps or credentials still refer to it (nothing is deleted).
    async fn delete_space(&self, guid: SpaceGuid) -> Result<(), StoreError>;
    /// The organization of each of `spaces` that exists.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn space_organizations(
        &self,
        spaces: &[SpaceGuid],
    ) -> Result<Vec<(SpaceGuid, OrganizationGuid)>, StoreError>;

    /// # Errors
    /// MUST return [`StoreError::Conflict`] when the guid exists and
    /// [`StoreError::MissingParent`] when its space does not exist.
    async fn insert_app(&self, app: &App) -> Result<(), StoreError>;
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the guid does not exist.
    async fn update_app(&self, app: &App) -> Result<(), StoreError>;
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get_app(&self, guid: AppGuid) -> Result<Option<App>, StoreError>;
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn list_apps(&self, query: &DirectoryQuery) -> Result<Page<App>, StoreError>;
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the guid does not exist and
    /// [`StoreError::InUse`] when credentials still refer to it (nothing is deleted).
    async fn delete_app(&self, guid: AppGuid) -> Result<(), StoreError>;
}
