//! A client-side deadline on every store call.
//!
//! PostgreSQL's `statement_timeout` bounds a statement on a server that works; a server that
//! stops answering altogether (its processes frozen, or cut off by the network while the kernel
//! keeps the socket open) never answers at all, and nothing on the connection notices. The
//! deadline is what turns that into [`StoreError::Unavailable`] in bounded time. A call given up
//! this way drops its connection mid-statement; the pool pings a connection as it comes back and
//! closes it when that fails, so a broken one is never handed out again.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use berth_domain::audit::{AuditEvent, AuditEventGuid, AuditEventStore, AuditQuery};
use berth_domain::credential::{Password, RegistryCredential};
use berth_domain::directory::{App, DirectoryEntry, Organization, Space};
use berth_domain::idempotency::{Claim, ClaimOutcome, KeyOwner, StoredAnswer};
use berth_domain::ids::{CredentialGuid, OrganizationGuid, SpaceGuid};
use berth_domain::listing::{CredentialQuery, DirectoryQuery, Page};
use berth_domain::ports::{
    CredentialStore, DirectoryEntries, DirectoryStore, IdempotencyStore, Lease, LeaseHolder,
    LockedCredential, RegistryStore, RoleRemoval, RoleStore, RoleUpsert, StoreError,
};
use berth_domain::pull_secrets::{PullLookup, PullQuery, Reveal};
use berth_domain::registry::{Registry, RegistryId, RobotCredential, RobotId};
use berth_domain::roles::{PermissionFacts, RoleAssignment, RoleGuid, RoleQuery};
use time::OffsetDateTime;

use crate::errors::connection_failure;

/// A store whose every call fails with [`StoreError::Unavailable`] once it has taken longer than
/// the limit (see [`crate::PoolSettings::call_deadline`]); without a limit, the store itself.
pub struct Deadline<S> {
    store: S,
    limit: Option<Duration>,
}

impl<S> Deadline<S> {
    pub fn new(store: S, limit: Option<Duration>) -> Self {
        Self { store, limit }
    }

    async fn bound<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        let Some(limit) = self.limit else {
            return call.await;
        };
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => {
                connection_failure::note();
                Err(StoreError::Unavailable(Box::new(DeadlineExceeded(limit))))
            }
        }
    }
}

/// The database did not answer a call in time.
#[derive(Debug, thiserror::Error)]
#[error("the database did not answer within {0:?}")]
pub struct DeadlineExceeded(Duration);

/// Implements a port for [`Deadline`] by bounding each call of the wrapped store.
macro_rules! bounded {
    (
        $port:ident { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ok:ty;)* }
        $($extra:item)*
    ) => {
        #[async_trait]
        impl<S: $port> $port for Deadline<S> {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> Result<$ok, StoreError> {
                    self.bound(self.store.$name($($arg),*)).await
                }
            )*
            $($extra)*
        }
    };
}

bounded!(CredentialStore {
    fn insert(&self, credential: &RegistryCredential, password: &Password, event: &AuditEvent) -> ();
    fn get(&self, guid: CredentialGuid) -> Option<RegistryCredential>;
    fn delete(&self, guid: CredentialGuid, event: &AuditEvent) -> ();
    fn list(&self, query: &CredentialQuery) -> Page<RegistryCredential>;
    fn reveal_password(&self, guid: CredentialGuid) -> Option<Password>;
    fn pull_matches(&self, query: &PullQuery, reveal: Reveal) -> Option<PullLookup>;
}
    /// The lock is taken within the limit, and its write is bounded by it too.
    async fn lock(
        &self,
        guid: CredentialGuid,
    ) -> Result<Option<Box<dyn LockedCredential>>, StoreError> {
        let limit = self.limit;
        let locked = self.bound(self.store.lock(guid)).await?;
        Ok(locked.map(|inner| Box::new(BoundedLock { inner, limit }) as Box<dyn LockedCredential>))
    }
);

/// A credential lock whose write is bounded like any other store call.
struct BoundedLock {
    inner: Box<dyn LockedCredential>,
    limit: Option<Duration>,
}

#[async_trait]
impl LockedCredential for BoundedLock {
    fn current(&self) -> &RegistryCredential {
        self.inner.current()
    }

    async fn write(
        self: Box<Self>,
        credential: &RegistryCredential,
        password: Option<&Password>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let Self { inner, limit } = *self;
        Deadline::new((), limit)
            .bound(inner.write(credential, password, event))
            .await
    }
}

#[async_trait]
impl<S: DirectoryStore> RoleStore for Deadline<S> {
    async fn upsert(
        &self,
        role: &RoleAssignment,
        event: &AuditEvent,
    ) -> Result<RoleUpsert, StoreError> {
        self.bound(self.store.roles().upsert(role, event)).await
    }

    async fn get(&self, guid: RoleGuid) -> Result<Option<RoleAssignment>, StoreError> {
        self.bound(self.store.roles().get(guid)).await
    }

    async fn list(&self, query: &RoleQuery) -> Result<Page<RoleAssignment>, StoreError> {
        self.bound(self.store.roles().list(query)).await
    }

    async fn delete(&self, guid: RoleGuid, event: &AuditEvent) -> Result<RoleRemoval, StoreError> {
        self.bound(self.store.roles().delete(guid, event)).await
    }
}

#[async_trait]
impl<S: DirectoryStore, E: DirectoryEntry> DirectoryEntries<E> for Deadline<S> {
    async fn insert(&self, entry: &E, event: &AuditEvent) -> Result<(), StoreError> {
        self.bound(E::entries(&self.store).insert(entry, event))
            .await
    }

    async fn update(&self, entry: &E, event: &AuditEvent) -> Result<(), StoreError> {
        self.bound(E::entries(&self.store).update(entry, event))
            .await
    }

    async fn get(&self, guid: E::Guid) -> Result<Option<E>, StoreError> {
        self.bound(E::entries(&self.store).get(guid)).await
    }

    async fn list(&self, query: &DirectoryQuery) -> Result<Page<E>, StoreError> {
        self.bound(E::entries(&self.store).list(query)).await
    }

    async fn delete(&self, guid: E::Guid, event: &AuditEvent) -> Result<(), StoreError> {
        self.bound(E::entries(&self.store).delete(guid, event))
            .await
    }
}

bounded!(DirectoryStore {
    fn space_organizations(&self, spaces: &[SpaceGuid]) -> Vec<(SpaceGuid, OrganizationGuid)>;
    fn permission_facts(&self, user: &str, spaces: &[SpaceGuid]) -> PermissionFacts;
}
    fn roles(&self) -> &dyn RoleStore {
        self
    }

    fn organizations(&self) -> &dyn DirectoryEntries<Organization> {
        self
    }

    fn spaces(&self) -> &dyn DirectoryEntries<Space> {
        self
    }

    fn apps(&self) -> &dyn DirectoryEntries<App> {
        self
    }
);

bounded!(RegistryStore {
    fn claim(&self, registry: &Registry, lease: Lease) -> ();
    fn get(&self, id: RegistryId) -> Option<Registry>;
    fn get_by_organization(&self, organization: OrganizationGuid) -> Option<Registry>;
    fn acquire(&self, id: RegistryId, lease: Lease, now: OffsetDateTime) -> bool;
    fn save(&self, registry: &Registry, holder: LeaseHolder, events: &[AuditEvent]) -> ();
    fn save_and_release(&self, registry: &Registry, holder: LeaseHolder, events: &[AuditEvent]) -> ();
    fn release(&self, id: RegistryId, holder: LeaseHolder) -> ();
    fn delete(&self, id: RegistryId, holder: LeaseHolder, events: &[AuditEvent]) -> ();
    fn stalled(&self, before: OffsetDateTime) -> Vec<Registry>;
    fn record_usage(&self, id: RegistryId, used_bytes: i64, at: OffsetDateTime) -> ();
    fn insert_robot(&self, robot: &RobotCredential) -> ();
    fn update_robot(&self, robot: &RobotCredential, holder: LeaseHolder, events: &[AuditEvent]) -> ();
    fn update_managed_robot(
        &self,
        robot: &RobotCredential,
        holder: LeaseHolder,
        credential: &RegistryCredential,
        password: &Password,
        events: &[AuditEvent]
    ) -> CredentialGuid;
    fn delete_robot(&self, id: RobotId, events: &[AuditEvent]) -> ();
    fn robots(&self, registry: RegistryId) -> Vec<RobotCredential>;
    fn stalled_robots(&self, before: OffsetDateTime) -> Vec<RobotCredential>;
}
    /// A wait for the lease is part of the call: the limit runs from when the wait ends.
    async fn acquire_within(
        &self,
        id: RegistryId,
        lease: Lease,
        wait: time::Duration,
    ) -> Result<bool, StoreError> {
        let waited = Deadline {
            store: (),
            limit: self.limit.map(|limit| limit + wait.unsigned_abs()),
        };
        waited
            .bound(self.store.acquire_within(id, lease, wait))
            .await
    }
);

bounded!(IdempotencyStore {
    fn claim(&self, claim: &Claim) -> ClaimOutcome;
    fn complete(&self, owner: &KeyOwner, answer: &StoredAnswer, expires_at: OffsetDateTime) -> ();
    fn release(&self, owner: &KeyOwner) -> ();
    fn prune(&self, now: OffsetDateTime, batch: u32) -> u64;
});

bounded!(AuditEventStore {
    fn list(&self, query: &AuditQuery) -> Page<AuditEvent>;
    fn get(&self, guid: AuditEventGuid) -> Option<AuditEvent>;
    fn prune(&self, before: OffsetDateTime, batch: u32) -> u64;
});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_that_never_answers_is_unavailable_after_the_limit() {
        let limit = Duration::from_millis(50);
        let bounded = Deadline::new((), Some(limit));
        let started = std::time::Instant::now();
        let result: Result<(), StoreError> = bounded.bound(std::future::pending()).await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        assert!(started.elapsed() >= limit);
    }

    #[tokio::test]
    async fn a_call_in_time_or_without_a_limit_is_the_store_s_answer() {
        let bounded = Deadline::new((), Some(Duration::from_secs(5)));
        let answer: Result<u8, StoreError> = bounded.bound(async { Ok(7) }).await;
        assert_eq!(answer.unwrap(), 7);
        let unbounded = Deadline::new((), None);
        let answer: Result<u8, StoreError> =
            unbounded.bound(async { Err(StoreError::Conflict) }).await;
        assert!(matches!(answer, Err(StoreError::Conflict)));
    }
}
