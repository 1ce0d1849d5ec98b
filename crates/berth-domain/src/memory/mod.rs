//! In-memory adapters of every port, for embedders' tests, examples and simulations (feature
//! `memory`).
//!
//! [`MemoryDatabase`] is one database: its stores ([`MemoryDatabase::credentials`],
//! [`MemoryDatabase::directory`] (with its roles), [`MemoryDatabase::registries`],
//! [`MemoryDatabase::idempotency`], [`MemoryDatabase::audit_events`],
//! [`MemoryDatabase::access_log`]) share its tables, so a directory entry that a credential
//! refers to is [`InUse`](crate::ports::StoreError::InUse), as in the sea-orm adapter. They keep
//! every documented semantics of their port (conflicts, not-found, revisions, paging order,
//! label selectors, leases, the credential write lock, and each change's audit events kept with
//! it) and pass the same contract suite
//! (`berth_domain::contract`, feature `contract-tests`). [`MemoryProvisioner`] is a Harbor-like
//! backend and [`MemoryVerifier`] a registry that knows some logins.
//!
//! One adapter a file: a new port gets its own `memory/<port>.rs`, its tables in `Tables` when
//! other stores must see them, and its contract functions in `contract/<port>.rs`.
//!
//! The tables sit behind one `std::sync::Mutex`, never held across an `.await`; a caller that
//! must wait (a credential's write lock, a registry's lease within a bounded wait) is woken
//! when the tables change.

mod access_log;
mod audit_event_store;
mod credential_store;
mod directory_store;
mod idempotency_store;
mod provisioner;
mod registry_store;
mod role_store;
mod verifier;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

pub use access_log::MemoryAccessLog;
pub use audit_event_store::MemoryAuditEventStore;
pub use credential_store::MemoryCredentialStore;
pub use directory_store::MemoryDirectoryStore;
pub use idempotency_store::MemoryIdempotencyStore;
pub use provisioner::MemoryProvisioner;
pub use registry_store::MemoryRegistryStore;
pub use verifier::MemoryVerifier;

use crate::ambient::{Clock, SystemClock};
use crate::audit::{AuditEvent, AuditEventGuid};
use crate::credential::{Password, RegistryCredential};
use crate::directory::{App, Organization, Space};
use crate::ids::{AppGuid, CredentialGuid, OrganizationGuid, SpaceGuid};
use crate::ports::Lease;
use crate::registry::{Registry, RegistryId, RobotCredential, RobotId};
use crate::roles::{RoleAssignment, RoleGuid};

/// One in-memory database: the tables every memory store reads and writes.
#[derive(Clone)]
pub struct MemoryDatabase {
    shared: Arc<Shared>,
}

impl Default for MemoryDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDatabase").finish_non_exhaustive()
    }
}

impl MemoryDatabase {
    /// An empty database on the wall clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty database whose lease checks read `clock` (give it the services' clock).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            shared: Arc::new(Shared {
                tables: Mutex::new(Tables::default()),
                clock,
            }),
        }
    }

    /// The credential store on these tables.
    pub fn credentials(&self) -> MemoryCredentialStore {
        MemoryCredentialStore::new(self.clone())
    }

    /// The directory store on these tables.
    pub fn directory(&self) -> MemoryDirectoryStore {
        MemoryDirectoryStore::new(self.clone())
    }

    /// The registry store on these tables.
    pub fn registries(&self) -> MemoryRegistryStore {
        MemoryRegistryStore::new(self.clone())
    }

    /// The idempotency store on these tables.
    pub fn idempotency(&self) -> MemoryIdempotencyStore {
        MemoryIdempotencyStore::new(self.clone())
    }

    /// The audit event store on these tables: the events the other stores' changes wrote.
    pub fn audit_events(&self) -> MemoryAuditEventStore {
        MemoryAuditEventStore::new(self.clone())
    }

    /// The access log on these tables.
    pub fn access_log(&self) -> MemoryAccessLog {
        MemoryAccessLog::new(self.clone())
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // A panic while the lock was held leaves whole rows (every write is one statement).
        self.shared
            .tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> time::OffsetDateTime {
        self.shared.clock.now()
    }

    /// Resolves once the tables changed after `seen` (their version then), or at `deadline`.
    fn changed(&self, seen: u64, deadline: Option<Instant>) -> Changed<'_> {
        Changed {
            database: self,
            seen,
            deadline,
            timer: false,
        }
    }
}

struct Shared {
    tables: Mutex<Tables>,
    clock: Arc<dyn Clock>,
}

/// A credential row: the credential and its password (kept as given: nothing leaves memory).
#[derive(Clone)]
struct CredentialRow {
    credential: RegistryCredential,
    password: Password,
}

/// A registry row and its lease.
#[derive(Clone)]
struct RegistryRow {
    registry: Registry,
    lease: Option<Lease>,
}

/// An idempotency record.
#[derive(Clone)]
struct IdempotencyRow {
    fingerprint: crate::idempotency::RequestFingerprint,
    answer: Option<crate::idempotency::StoredAnswer>,
    claimed_until: time::OffsetDateTime,
    expires_at: time::OffsetDateTime,
}

/// The tables, shared by every store of one [`MemoryDatabase`].
#[derive(Default)]
struct Tables {
    organizations: BTreeMap<OrganizationGuid, Organization>,
    spaces: BTreeMap<SpaceGuid, Space>,
    apps: BTreeMap<AppGuid, App>,
    credentials: BTreeMap<CredentialGuid, CredentialRow>,
    /// Credentials under a write lock ([`crate::ports::CredentialStore::lock`]).
    locked_credentials: HashSet<CredentialGuid>,
    registries: BTreeMap<RegistryId, RegistryRow>,
    roles: BTreeMap<RoleGuid, RoleAssignment>,
    robots: BTreeMap<RobotId, RobotCredential>,
    /// By (principal, key).
    idempotency: HashMap<(String, String), IdempotencyRow>,
    /// Written by the stores' changes (each with its change) and the access log.
    audit_events: BTreeMap<AuditEventGuid, AuditEvent>,
    /// Goes up on every change a waiter may wait for (a lock or lease given up).
    version: u64,
    waiters: Vec<Waker>,
}

impl Tables {
    /// Keeps `events`: called by a change after its checks passed, under the same guard, so
    /// the change and its events are seen together or not at all (one transaction).
    fn record(&mut self, events: &[AuditEvent]) {
        for event in events {
            self.audit_events.insert(event.guid, event.clone());
        }
    }

    /// Wakes every waiter: something it may wait for changed.
    fn notify(&mut self) {
        self.version += 1;
        for waker in self.waiters.drain(..) {
            waker.wake();
        }
    }
}

/// See [`MemoryDatabase::changed`].
struct Changed<'a> {
    database: &'a MemoryDatabase,
    seen: u64,
    deadline: Option<Instant>,
    timer: bool,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Poll::Ready(());
        }
        {
            let mut tables = self.database.tables();
            if tables.version != self.seen {
                return Poll::Ready(());
            }
            tables.waiters.push(context.waker().clone());
        }
        if let (Some(deadline), false) = (self.deadline, self.timer) {
            self.timer = true;
            // No runtime to ask for a timer: a thread sleeps until the deadline and wakes us.
            let waker = context.waker().clone();
            std::thread::spawn(move || {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                waker.wake();
            });
        }
        Poll::Pending
    }
}
