//! Use cases of organization registries, and the provisioning saga.
//!
//! - this module: the service, its settings and errors, authorization, the lease
//!   (`RegistryService::under_lease` and the helpers it is built from), the rule deciding
//!   whether a project is Berth's own, and the plain use cases (`get`, `update_quota`);
//! - `enable`: the saga (claim or resume, run, adopt, issue a robot);
//! - `disable`: disabling, and deleting a registry's robots;
//! - `robots`: the robot credentials of a ready registry (renewal included);
//! - `pull`: the platform pull robot and the credential that holds its login;
//! - `purge`: deleting a registry for good (robots, repositories, project, row);
//! - `reconciler`: rolls back or finishes what stalled.
//!
//! The saga claims a registry row first (unique per organization, in the database), leases it,
//! and records every provisioner step before and after it runs, so a retry or a restart resumes
//! instead of duplicating:
//!
//! 1. project: `project_requested_at` is written before the provisioner is asked, so a later 409
//!    on Berth's deterministic name is adopted only when Berth's record proves it asked first, the
//!    project is owned by Berth's account and was made after that request;
//! 2. quota: read by project, set when it differs (idempotent);
//! 3. default robot: a `Creating` row is written first; the provisioner is searched before
//!    creating, so a robot whose secret was lost is rotated, never duplicated;
//! 4. pull robot: the same, and its login is written as the organization's managed registry
//!    credential in the transaction that records the robot;
//! 5. ready.
//!
//! A failure gives the lease back and answers "unavailable"; the row keeps its progress. The
//! reconciler rolls back what stalled, so no orphaned project or robot stays behind.
//!
//! Every later change to a ready registry (robot creation, rotation and deletion, the quota)
//! and its disabling run under the same lease (`RegistryService::under_lease`), waiting a
//! bounded time for the change before them and answering [`RegistryError::Contended`] after
//! that. So two robots of one name are never both issued, rotations are serialized (the secret
//! answered is the provisioner's current one), Berth's quota is the last one the provisioner was
//! given, and a disable, which deletes every robot under the lease, never races a robot into
//! existence.

mod disable;
mod enable;
mod pull;
mod purge;
mod reconciler;
mod robots;

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

pub use reconciler::{ReconcileFailure, ReconcileReport};

use crate::actor::Actor;
use crate::ambient::Ambient;
use crate::audit::{AuditActor, AuditData, AuditEvent, AuditEventType, AuditTarget};
use crate::ids::OrganizationGuid;
use crate::permissions::{self, Permissions};
use crate::ports::{
    DirectoryStore, Lease, LeaseHolder, ProvisionError, RegistryProvisioner, RegistryStore,
    StoreError,
};
use crate::registry::{
    ProjectName, ProvisionedProjectId, QuotaGb, Registry, RegistryId, RegistryState,
    RobotCredential,
};

/// What can go wrong in a registry use case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Organization not found.
    #[error("organization not found")]
    OrganizationNotFound,
    /// The organization's registry is not enabled.
    #[error("the organization's registry is not enabled")]
    NotFound,
    /// Robot credential not found.
    #[error("robot credential not found")]
    RobotNotFound,
    /// Only the organization's managers may change its registry.
    #[error("only the organization's managers may change its registry")]
    Forbidden,
    /// The organization's registry is already enabled.
    #[error("the organization's registry is already enabled")]
    AlreadyEnabled,
    /// The organization's registry is being provisioned or disabled; retry shortly.
    #[error("the organization's registry is being provisioned or disabled; retry shortly")]
    Busy,
    #[error(
        "a project with this organization's name exists in the registry backend and Berth did not create it"
    )]
    /// Project conflict.
    ProjectConflict,
    /// The registry already has a robot credential with this name.
    #[error("the registry already has a robot credential with this name")]
    RobotNameTaken,
    /// The platform pull robot: only the registry's own routes change it.
    #[error("the platform pull robot is managed by Berth")]
    ManagedRobot,
    /// The backend keeps a repository a purge must delete (an immutable tag rule); the purge
    /// stays recorded and the reconciler tries again.
    #[error("the registry backend refuses to delete a repository: {0}")]
    PurgeBlocked(String),
    /// Another change to the organization's registry is in progress; retry shortly.
    #[error("another change to the organization's registry is in progress; retry shortly")]
    Contended,
    /// The provisioner (the registry backend) failed; progress is kept for a retry.
    #[error("the registry backend is unavailable")]
    Provisioner(#[source] ProvisionError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RegistryError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<ProvisionError> for RegistryError {
    fn from(error: ProvisionError) -> Self {
        Self::Provisioner(error)
    }
}

/// A write refused because the lease was lost: someone took the row over (our lease expired), so
/// stop; they carry on.
fn lease_lost_is_busy(result: Result<(), StoreError>) -> Result<(), RegistryError> {
    match result {
        Err(StoreError::Conflict) => Err(RegistryError::Busy),
        other => other.map_err(RegistryError::from),
    }
}

/// The event of a change to an organization's registry (its target is the organization's
/// registry, named by its project).
fn registry_event(
    ambient: &Ambient,
    by: &AuditActor,
    event_type: AuditEventType,
    registry: &Registry,
    request: AuditData,
) -> AuditEvent {
    AuditEvent::new(
        ambient,
        event_type,
        by.clone(),
        AuditTarget::new(
            registry.id().as_uuid(),
            "organization_registry",
            registry.project_name().as_str(),
        ),
        AuditData::request(request),
    )
    .in_organization(registry.organization())
}

/// The event of a change to one of a registry's robots; never with its secret.
fn robot_event(
    ambient: &Ambient,
    by: &AuditActor,
    event_type: AuditEventType,
    registry: &Registry,
    robot: &RobotCredential,
    request: AuditData,
) -> AuditEvent {
    let name = robot
        .username()
        .map_or_else(|| robot.name().as_str().to_owned(), str::to_owned);
    AuditEvent::new(
        ambient,
        event_type,
        by.clone(),
        AuditTarget::new(robot.id().as_uuid(), "registry_robot", name),
        AuditData::request(request),
    )
    .in_organization(registry.organization())
}

/// Tunables of the saga and the reconciler.
#[derive(Debug, Clone, Copy)]
pub struct RegistrySettings {
    /// The default quota.
    pub default_quota: QuotaGb,
    /// How long a worker holds a registry before others may take over.
    pub lease: Duration,
    /// How long a change to a ready registry waits for the lease before answering
    /// [`RegistryError::Contended`].
    pub lease_wait: Duration,
    /// How long `used_gb` read from the provisioner is reused.
    pub usage_cache: Duration,
    /// How long a provisioning or disabling must sit untouched before the reconciler acts.
    pub stale_after: Duration,
    /// Clock skew allowed between Berth and the provisioner when proving a project is Berth's own.
    pub clock_skew: Duration,
}

/// Enables, disables, purges and reads organizations' registries, and manages their robots.
#[derive(Clone)]
pub struct RegistryService {
    registries: Arc<dyn RegistryStore>,
    directory: Arc<dyn DirectoryStore>,
    provisioner: Arc<dyn RegistryProvisioner>,
    settings: RegistrySettings,
    ambient: Ambient,
}

enum Need {
    Read,
    Write,
}

/// How long to wait for a lease someone else holds.
#[derive(Clone, Copy)]
enum LeaseWait {
    /// Not at all: someone else is on it (the saga's takeover and the reconciler).
    No,
    /// Up to [`RegistrySettings::lease_wait`]: a change queues behind the one in flight.
    Bounded,
}

impl RegistryService {
    /// The service over its ports, on the system clock and ids ([`Ambient::system`]).
    pub fn new(
        registries: Arc<dyn RegistryStore>,
        directory: Arc<dyn DirectoryStore>,
        provisioner: Arc<dyn RegistryProvisioner>,
        settings: RegistrySettings,
    ) -> Self {
        Self {
            registries,
            directory,
            provisioner,
            settings,
            ambient: Ambient::system(),
        }
    }

    /// Uses `ambient`'s clock and id source instead of the system's.
    #[must_use]
    pub fn with_ambient(mut self, ambient: Ambient) -> Self {
        self.ambient = ambient;
        self
    }

    /// An organization the caller cannot see is answered like one that does not exist.
    async fn authorize(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
        need: Need,
    ) -> Result<(), RegistryError> {
        let permissions: Permissions = permissions::resolve(actor, self.directory.as_ref()).await?;
        let exists = self
            .directory
            .organizations()
            .get(organization)
            .await?
            .is_some();
        if !exists || !permissions.can_read_registry(organization) {
            return Err(RegistryError::OrganizationNotFound);
        }
        match need {
            Need::Write if !permissions.can_write_registry(organization) => {
                Err(RegistryError::Forbidden)
            }
            _ => Ok(()),
        }
    }

    fn lease(&self, holder: LeaseHolder) -> Lease {
        Lease {
            holder,
            until: self.ambient.now() + self.settings.lease,
        }
    }

    /// Takes the lease on registry `id` for a new holder; `None` while someone else holds it
    /// (after waiting as `wait` says).
    async fn take_lease(
        &self,
        id: RegistryId,
        wait: LeaseWait,
    ) -> Result<Option<LeaseHolder>, StoreError> {
        let holder = self.ambient.lease_holder();
        let taken = match wait {
            LeaseWait::No => {
                self.registries
                    .acquire(id, self.lease(holder), self.ambient.now())
                    .await?
            }
            LeaseWait::Bounded => {
                self.registries
                    .acquire_within(id, self.lease(holder), self.settings.lease_wait)
                    .await?
            }
        };
        Ok(taken.then_some(holder))
    }

    /// Runs `work` while `holder` holds registry `id`'s lease, then gives the lease back whatever
    /// the outcome (a no-op when `work` already gave it up with its final write, or deleted the
    /// row).
    async fn holding<T>(
        &self,
        id: RegistryId,
        holder: LeaseHolder,
        work: impl AsyncFnOnce() -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let outcome = work().await;
        self.give_back(id, holder).await;
        outcome
    }

    /// [`Self::holding`] for `work` whose success ends with the write that also gives the lease
    /// up ([`Self::save_and_release`]): the lease is given back only when it fails, which saves a
    /// statement on every successful enable and disable.
    async fn holding_until_released<T>(
        &self,
        id: RegistryId,
        holder: LeaseHolder,
        work: impl AsyncFnOnce() -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let outcome = work().await;
        if outcome.is_err() {
            self.give_back(id, holder).await;
        }
        outcome
    }

    /// Gives a lease back. Its error is dropped on purpose: a lease not given back only delays
    /// the next holder until it runs out (`RegistrySettings::lease`), and must not turn an
    /// outcome (an issued secret, or the error that explains a failure) into another error.
    async fn give_back(&self, id: RegistryId, holder: LeaseHolder) {
        let _ = self.registries.release(id, holder).await;
    }

    /// Runs `change` on the organization's ready registry while holding its lease: waits up to
    /// `lease_wait` for the change before it, re-reads the registry under the lease (a disable
    /// may have finished meanwhile), and gives the lease back whatever the outcome.
    async fn under_lease<T>(
        &self,
        organization: OrganizationGuid,
        change: impl AsyncFnOnce(Registry, LeaseHolder) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let id = self.ready(organization).await?.id();
        let holder = self
            .take_lease(id, LeaseWait::Bounded)
            .await?
            .ok_or(RegistryError::Contended)?;
        self.holding(id, holder, async || match self.registries.get(id).await? {
            Some(registry) if registry.state() == RegistryState::Ready => {
                change(registry, holder).await
            }
            None => Err(RegistryError::NotFound),
            Some(registry) if registry.state() == RegistryState::Disabled => {
                Err(RegistryError::NotFound)
            }
            Some(_) => Err(RegistryError::Busy),
        })
        .await
    }

    /// Saves progress; `events` are the changes this step completes, written with it.
    async fn save(
        &self,
        registry: &mut Registry,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), RegistryError> {
        registry.touch(self.ambient.now());
        lease_lost_is_busy(self.registries.save(registry, holder, events).await)
    }

    /// [`Self::save`] and give the lease up, in one write.
    async fn save_and_release(
        &self,
        registry: &mut Registry,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), RegistryError> {
        registry.touch(self.ambient.now());
        lease_lost_is_busy(
            self.registries
                .save_and_release(registry, holder, events)
                .await,
        )
    }

    /// The project named `name`, when it is Berth's own: owned by Berth's account and made no
    /// earlier than Berth's recorded request for it (less the allowed clock skew). The one
    /// proof both adoption (a 409 on Berth's name) and roll-back (a project id never recorded)
    /// rely on before touching a project.
    async fn own_project(
        &self,
        name: &ProjectName,
        requested_at: OffsetDateTime,
    ) -> Result<Option<ProvisionedProjectId>, RegistryError> {
        let project = self.provisioner.find_project(name).await?;
        Ok(project
            .filter(|project| {
                project.owner_name == self.provisioner.account()
                    && project.creation_time >= requested_at - self.settings.clock_skew
            })
            .map(|project| project.id))
    }

    /// The registry with `used_gb` refreshed from the provisioner when the cached value is old;
    /// when the provisioner cannot be reached, the last known value stands.
    ///
    /// # Errors
    /// [`RegistryError::OrganizationNotFound`], [`RegistryError::NotFound`] or [`RegistryError::Store`].
    pub async fn get(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
    ) -> Result<Registry, RegistryError> {
        self.authorize(actor, organization, Need::Read).await?;
        let mut registry = self.shown(organization).await?;
        let stale = registry
            .used_checked_at()
            .is_none_or(|at| self.ambient.now() - at >= self.settings.usage_cache);
        if let (true, Some(project_id)) = (stale, registry.project_id()) {
            // When the provisioner cannot be reached the last known value stands (the answer
            // is never a 5xx for a cache); the adapter logged why.
            if let Ok(quota) = self.provisioner.project_quota(project_id).await {
                let at = self.ambient.now();
                self.registries
                    .record_usage(registry.id(), quota.used_bytes, at)
                    .await?;
                registry.record_usage(quota.used_bytes, at);
            }
        }
        Ok(registry)
    }

    /// A registry that was enabled at least once (a first provisioning in progress is not shown).
    async fn shown(&self, organization: OrganizationGuid) -> Result<Registry, RegistryError> {
        self.registries
            .get_by_organization(organization)
            .await?
            .filter(|registry| registry.ever_enabled() || registry.state() == RegistryState::Ready)
            .ok_or(RegistryError::NotFound)
    }

    async fn ready(&self, organization: OrganizationGuid) -> Result<Registry, RegistryError> {
        match self.shown(organization).await? {
            registry if registry.state() == RegistryState::Ready => Ok(registry),
            registry if registry.state() == RegistryState::Disabled => Err(RegistryError::NotFound),
            _ => Err(RegistryError::Busy),
        }
    }

    /// Changes the storage quota in the provisioner (through the quota, not the project).
    ///
    /// # Errors
    /// As [`RegistryService::get`], plus [`RegistryError::Forbidden`], [`RegistryError::Busy`],
    /// [`RegistryError::Contended`] and [`RegistryError::Provisioner`].
    pub async fn update_quota(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
        quota: QuotaGb,
    ) -> Result<Registry, RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        // Under the lease, the provisioner's limit and Berth's record change together: the last
        // quota the provisioner was given is the one Berth keeps.
        self.under_lease(organization, async |mut registry, holder| {
            let quota_id = registry.quota_id().ok_or(RegistryError::Busy)?;
            self.provisioner.set_quota(quota_id, quota).await?;
            registry.set_quota(quota);
            let event = registry_event(
                &self.ambient,
                &AuditActor::user(actor),
                AuditEventType::RegistryUpdate,
                &registry,
                AuditData::new().integer("quota_gb", i64::from(quota.get())),
            );
            self.save(&mut registry, holder, &[event]).await?;
            Ok(registry)
        })
        .await
    }
}
