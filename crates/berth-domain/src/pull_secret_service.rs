//! Use cases of pull-secret resolution: resolve (the credentials, for the platform's deployer)
//! and explain (the same choice without secrets, for anyone who can read the context).

use std::sync::Arc;

use crate::RelationshipKind;
use crate::actor::{Actor, PlatformScope};
use crate::ambient::Ambient;
use crate::audit::{AccessLog, AuditActor, AuditData, AuditEvent, AuditEventType, AuditTarget};
use crate::credential::{RequestedOwner, ScopeTarget};
use crate::permissions;
use crate::ports::{CredentialStore, DirectoryStore, StoreError};
use crate::pull_secrets::{
    PullLookup, PullMatch, PullQuery, PullRequest, PullSecrets, Resolution, Reveal,
};

/// What can go wrong in a pull-secret use case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullSecretError {
    /// Resolve without the `berth.pull_secrets` scope.
    #[error("You are not authorized to perform the requested action")]
    NotAuthorized,
    /// The context does not exist, or the caller cannot see it.
    #[error("Invalid {0}. Ensure that the {0} exists and you have access to it.")]
    InvalidRelationship(RelationshipKind),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// A winner's password was not among those the store opened: a broken store, never a partial
/// answer.
#[derive(Debug, thiserror::Error)]
#[error("the store did not open the password of winning credential {0}")]
struct MissingPassword(crate::ids::CredentialGuid);

/// One `audit.registry_credential.access` event per credential whose password a resolution
/// reveals (a credential winning for several subjects is revealed once).
fn access_events(
    ambient: &Ambient,
    actor: &Actor,
    context: &ScopeTarget,
    resolutions: &[Resolution],
) -> Vec<AuditEvent> {
    let mut winners: Vec<&PullMatch> = resolutions
        .iter()
        .filter_map(|resolution| resolution.winner.as_ref())
        .collect();
    winners.sort_by_key(|winner| winner.guid);
    winners.dedup_by_key(|winner| winner.guid);
    winners
        .into_iter()
        .map(|winner| {
            let mut event = AuditEvent::new(
                ambient,
                AuditEventType::CredentialAccess,
                AuditActor::user(actor),
                AuditTarget::new(
                    winner.guid,
                    "registry_credential",
                    winner.location.to_string(),
                ),
                AuditData::request(
                    AuditData::new()
                        .text("username", winner.username.as_str())
                        .hidden("password"),
                ),
            );
            // The winner belongs to one level of the context's chain: its scope says which.
            match winner.scope {
                crate::credential::Scope::Foundation => {}
                crate::credential::Scope::Organization => {
                    event.organization = context.organization();
                }
                crate::credential::Scope::Space | crate::credential::Scope::App => {
                    event.organization = context.organization();
                    event.space = context.space();
                }
            }
            event
        })
        .collect()
}

/// Resolves and explains pull secrets.
#[derive(Clone)]
pub struct PullSecretService {
    credentials: Arc<dyn CredentialStore>,
    directory: Arc<dyn DirectoryStore>,
    /// Where every revealed password is recorded (`audit.registry_credential.access`).
    access_log: Arc<dyn AccessLog>,
    /// The time and guids of the access events.
    ambient: Ambient,
}

impl PullSecretService {
    /// The service over its stores, recording reveals in `access_log`, on the system clock and
    /// ids ([`Ambient::system`]).
    pub fn new(
        credentials: Arc<dyn CredentialStore>,
        directory: Arc<dyn DirectoryStore>,
        access_log: Arc<dyn AccessLog>,
    ) -> Self {
        Self {
            credentials,
            directory,
            access_log,
            ambient: Ambient::system(),
        }
    }

    /// Uses `ambient`'s clock and id source instead of the system's.
    #[must_use]
    pub fn with_ambient(mut self, ambient: Ambient) -> Self {
        self.ambient = ambient;
        self
    }

    /// Whether the caller may resolve at all: only the `berth.pull_secrets` scope may (an admin
    /// without it may not: the scope names the one client that receives secrets).
    ///
    /// # Errors
    /// [`PullSecretError::NotAuthorized`].
    pub fn may_resolve(actor: &Actor) -> Result<(), PullSecretError> {
        if actor.has_scope(PlatformScope::PullSecrets) {
            Ok(())
        } else {
            Err(PullSecretError::NotAuthorized)
        }
    }

    /// The credentials each subject is pulled with, and the `.dockerconfigjson` carrying them.
    ///
    /// # Errors
    /// [`PullSecretError::NotAuthorized`] without the `berth.pull_secrets` scope,
    /// [`PullSecretError::InvalidRelationship`] for a context that does not exist, or
    /// [`PullSecretError::Store`] (a winner's password that does not open included).
    pub async fn resolve(
        &self,
        actor: &Actor,
        request: PullRequest,
    ) -> Result<PullSecrets, PullSecretError> {
        Self::may_resolve(actor)?;
        let query = request.into_query();
        // One statement locates the context and finds the matches: the deployer may resolve
        // any context, so nothing is decided before it.
        let lookup = self.lookup(&query, Reveal::Winners).await?;
        let resolutions = query.resolve(&lookup.context, &lookup.matches);
        let accessed = access_events(&self.ambient, actor, &lookup.context, &resolutions);
        let secrets = PullSecrets::assemble(resolutions, lookup.passwords).map_err(|guid| {
            PullSecretError::Store(StoreError::Unexpected(Box::new(MissingPassword(guid))))
        })?;
        self.access_log.record(accessed).await;
        Ok(secrets)
    }

    /// The same choice as [`PullSecretService::resolve`], without secrets.
    ///
    /// # Errors
    /// [`PullSecretError::InvalidRelationship`] for a context that does not exist or that the
    /// caller cannot read (the same answer), or [`PullSecretError::Store`].
    pub async fn explain(
        &self,
        actor: &Actor,
        request: PullRequest,
    ) -> Result<Vec<Resolution>, PullSecretError> {
        let permissions = permissions::resolve(actor, self.directory.as_ref())
            .await
            .map_err(PullSecretError::Store)?;
        // The deployer may resolve any context, so it may explain any too.
        let deployer = actor.has_scope(PlatformScope::PullSecrets);
        let query = request.into_query();
        let lookup = self.lookup(&query, Reveal::Nothing).await?;
        if !(deployer || permissions.can_read_credential(&lookup.context)) {
            return Err(invalid_context(query.owner()));
        }
        Ok(query.resolve(&lookup.context, &lookup.matches))
    }

    /// The store's lookup; a context that does not exist is refused.
    async fn lookup(
        &self,
        query: &PullQuery,
        reveal: Reveal,
    ) -> Result<PullLookup, PullSecretError> {
        self.credentials
            .pull_matches(query, reveal)
            .await
            .map_err(PullSecretError::Store)?
            .ok_or_else(|| invalid_context(query.owner()))
    }
}

/// A context that does not exist, or that the caller may not see: the same answer.
fn invalid_context(owner: RequestedOwner) -> PullSecretError {
    PullSecretError::InvalidRelationship(match owner {
        // The foundation always exists; named for completeness.
        RequestedOwner::Foundation | RequestedOwner::Organization(_) => {
            RelationshipKind::Organization
        }
        RequestedOwner::Space(_) => RelationshipKind::Space,
        RequestedOwner::App(_) => RelationshipKind::App,
    })
}
