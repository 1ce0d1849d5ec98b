//! What the use cases take from the world besides their ports' calls: the time and new ids.
//!
//! Every service holds an [`Ambient`]: [`Ambient::system`] (the default) reads the wall clock
//! and makes time-ordered UUIDv7s; an embedder or a test injects its own [`Clock`] and
//! [`IdSource`] (such as [`FixedClock`] and [`SequentialIds`]) with the service's
//! `with_ambient`, and gets deterministic output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEventGuid;
use crate::ids::CredentialGuid;
use crate::ports::LeaseHolder;
use crate::registry::{RegistryId, RobotId};

/// Tells the time.
pub trait Clock: Send + Sync {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// Makes ids no other call of the same source made.
pub trait IdSource: Send + Sync {
    /// A new id. Ids of credentials, registries and robots order by creation when the source's
    /// ids do (UUIDv7, as [`SystemIds`] makes them).
    fn new_id(&self) -> Uuid;
}

/// The wall clock, at the precision Berth keeps: whole seconds, as Cloud Foundry shows them.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        crate::now()
    }
}

/// Time-ordered random ids (UUIDv7).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemIds;

impl IdSource for SystemIds {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// A clock that shows the time it is set to, for tests and simulations.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    /// A clock stopped at `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }

    /// Sets the time the clock shows.
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: time::Duration) {
        let mut at = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *at += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ids counting up from one (`00000000-0000-0000-0000-000000000001`, ...), for tests and
/// simulations: ascending, so they order by creation as UUIDv7s do.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl SequentialIds {
    /// Ids from `00000000-0000-0000-0000-000000000001` on.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdSource for SequentialIds {
    fn new_id(&self) -> Uuid {
        let next = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Uuid::from_u128(u128::from(next))
    }
}

/// The clock and id source a service uses.
#[derive(Clone)]
pub struct Ambient {
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
}

impl Default for Ambient {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Ambient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ambient")
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

impl Ambient {
    /// The wall clock ([`SystemClock`]) and UUIDv7s ([`SystemIds`]).
    pub fn system() -> Self {
        Self::new(Arc::new(SystemClock), Arc::new(SystemIds))
    }

    /// A given clock and id source.
    pub fn new(clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>) -> Self {
        Self { clock, ids }
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The id source.
    pub fn ids(&self) -> &Arc<dyn IdSource> {
        &self.ids
    }

    /// The clock's time.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// A new credential guid.
    pub fn credential_guid(&self) -> CredentialGuid {
        CredentialGuid::from_uuid(self.ids.new_id())
    }

    /// A new registry id.
    pub fn registry_id(&self) -> RegistryId {
        RegistryId::from_uuid(self.ids.new_id())
    }

    /// A new robot id.
    pub fn robot_id(&self) -> RobotId {
        RobotId::from_uuid(self.ids.new_id())
    }

    /// A new audit event guid.
    pub fn audit_event_guid(&self) -> AuditEventGuid {
        AuditEventGuid::from_uuid(self.ids.new_id())
    }

    /// A new lease holder.
    pub fn lease_holder(&self) -> LeaseHolder {
        LeaseHolder::from_uuid(self.ids.new_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_and_sequential_ids_are_deterministic() {
        let at = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let clock = Arc::new(FixedClock::new(at));
        let ambient = Ambient::new(clock.clone(), Arc::new(SequentialIds::new()));
        assert_eq!(ambient.now(), at);
        clock.advance(time::Duration::seconds(5));
        assert_eq!(ambient.now(), at + time::Duration::seconds(5));
        assert_eq!(
            ambient.credential_guid().to_string(),
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(
            ambient.registry_id().to_string(),
            "00000000-0000-0000-0000-000000000002"
        );
    }
}
