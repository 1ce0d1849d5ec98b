//! The use case of verifying a stored credential against its registry.

use std::sync::Arc;

use crate::actor::Actor;
use crate::ambient::Ambient;
use crate::credential_service::CredentialError;
use crate::ids::CredentialGuid;
use crate::permissions;
use crate::ports::{CredentialStore, DirectoryStore, RegistryVerifier};
use crate::verification::Verification;

/// Checks stored credentials against their registries for callers who may change them.
#[derive(Clone)]
pub struct VerificationService {
    credentials: Arc<dyn CredentialStore>,
    directory: Arc<dyn DirectoryStore>,
    verifier: Arc<dyn RegistryVerifier>,
    ambient: Ambient,
}

impl VerificationService {
    /// The service over its stores and verifier, on the system clock ([`Ambient::system`]).
    pub fn new(
        credentials: Arc<dyn CredentialStore>,
        directory: Arc<dyn DirectoryStore>,
        verifier: Arc<dyn RegistryVerifier>,
    ) -> Self {
        Self {
            credentials,
            directory,
            verifier,
            ambient: Ambient::system(),
        }
    }

    /// Uses `ambient`'s clock and id source instead of the system's.
    #[must_use]
    pub fn with_ambient(mut self, ambient: Ambient) -> Self {
        self.ambient = ambient;
        self
    }

    /// Opens the credential's password and logs in to its registry with it. Only writers may:
    /// the check sends the password to the registry, which only they may choose.
    ///
    /// The returned [`Verification`] is the seam for the audit event (issue 14): the caller
    /// records it; this use case stores nothing.
    ///
    /// # Errors
    /// [`CredentialError::NotFound`] (also when the caller may not read it),
    /// [`CredentialError::NotAuthorized`] when the caller may read but not change it, or
    /// [`CredentialError::Store`]. A registry's answer is never an error.
    pub async fn verify(
        &self,
        actor: &Actor,
        guid: CredentialGuid,
    ) -> Result<Verification, CredentialError> {
        let permissions = permissions::resolve(actor, self.directory.as_ref())
            .await
            .map_err(CredentialError::Store)?;
        let credential = self
            .credentials
            .get(guid)
            .await
            .map_err(CredentialError::Store)?
            .filter(|credential| permissions.can_read_credential(&credential.target))
            .ok_or(CredentialError::NotFound)?;
        if !permissions.can_write_credential(&credential.target) {
            return Err(CredentialError::NotAuthorized);
        }
        // Deleted between the two reads: as if it never existed.
        let password = self
            .credentials
            .reveal_password(guid)
            .await
            .map_err(CredentialError::Store)?
            .ok_or(CredentialError::NotFound)?;
        let probe = self
            .verifier
            .verify(&credential.location, &credential.username, &password)
            .await;
        Ok(Verification {
            outcome: probe.outcome,
            detail: probe.detail,
            endpoint: probe.endpoint,
            checked_at: self.ambient.now(),
        })
    }
}
