//! Use cases of organization registries, and the provisioning saga.
//!
//! The saga claims a registry row first (unique per organization, in the database), leases it,
//! and records every Harbor step before and after it runs, so a retry or a restart resumes
//! instead of duplicating:
//!
//! 1. project: `project_requested_at` is written before Harbor is asked, so a later 409 on
//!    Berth's deterministic name is adopted only when Berth's record proves it asked first, the
//!    project is owned by Berth's account and was made after that request;
//! 2. quota: read by project, set when it differs (idempotent);
//! 3. default robot: a `Creating` row is written first; Harbor is searched before creating, so a
//!    robot whose secret was lost is rotated, never duplicated;
//! 4. ready.
//!
//! A failure gives the lease back and answers "unavailable"; the row keeps its progress. The
//! reconciler rolls back what stalled, so no orphaned project or robot stays in Harbor.
//!
//! Every later change to a ready registry (robot creation, rotation and deletion, the quota)
//! and its disabling run under the same lease ([`RegistryService::under_lease`]), waiting a
//! bounded time for the change before them and answering [`RegistryError::Contended`] after
//! that. So two robots of one name are never both issued, rotations are serialized (the secret
//! answered is Harbor's current one), Berth's quota is the last one Harbor was given, and a
//! disable, which deletes every robot under the lease, never races a robot into existence.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::actor::Actor;
use crate::ids::OrganizationGuid;
use crate::now;
use crate::permissions::{self, Permissions};
use crate::ports::{
    DirectoryStore, Lease, ProvisionError, ProvisionedRobot, RegistryProvisioner, RegistryStore,
    StoreError,
};
use crate::registry::{
    ExpiresInDays, IssuedSecret, QuotaGb, Registry, RegistryId, RegistryState, RobotAccess,
    RobotCredential, RobotId, RobotName, RobotState, harbor_project_name,
};

/// What can go wrong in a registry use case.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("organization not found")]
    OrganizationNotFound,
    #[error("the organization's registry is not enabled")]
    NotFound,
    #[error("robot credential not found")]
    RobotNotFound,
    #[error("only the organization's managers may change its registry")]
    Forbidden,
    #[error("the organization's registry is already enabled")]
    AlreadyEnabled,
    #[error("the organization's registry is being provisioned or disabled; retry shortly")]
    Busy,
    #[error("a Harbor project with this organization's name exists and Berth did not create it")]
    ProjectConflict,
    #[error("the registry already has a robot credential with this name")]
    RobotNameTaken,
    #[error("another change to the organization's registry is in progress; retry shortly")]
    Contended,
    #[error("Harbor is unavailable")]
    Harbor(#[source] ProvisionError),
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
        Self::Harbor(error)
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

/// Tunables of the saga and the reconciler.
#[derive(Debug, Clone, Copy)]
pub struct RegistrySettings {
    pub default_quota: QuotaGb,
    /// How long a worker holds a registry before others may take over.
    pub lease: Duration,
    /// How long a change to a ready registry waits for the lease before answering
    /// [`RegistryError::Contended`].
    pub lease_wait: Duration,
    /// How long `used_gb` read from Harbor is reused.
    pub usage_cache: Duration,
    /// How long a provisioning or disabling must sit untouched before the reconciler acts.
    pub stale_after: Duration,
    /// Clock skew allowed between Berth and Harbor when proving a project is Berth's own.
    pub clock_skew: Duration,
}

/// What one reconciler pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub rolled_back: u64,
    pub disabled: u64,
    pub robots_removed: u64,
    pub failed: u64,
}

#[derive(Clone)]
pub struct RegistryService {
    registries: Arc<dyn RegistryStore>,
    directory: Arc<dyn DirectoryStore>,
    provisioner: Arc<dyn RegistryProvisioner>,
    settings: RegistrySettings,
}

enum Need {
    Read,
    Write,
}

impl RegistryService {
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
        }
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

    fn lease(&self, holder: Uuid) -> Lease {
        Lease {
            holder,
            until: now() + self.settings.lease,
        }
    }

    /// Runs `change` on the organization's ready registry while holding its lease: waits up to
    /// `lease_wait` for the change before it, re-reads the registry under the lease (a disable
    /// may have finished meanwhile), and gives the lease back whatever the outcome.
    async fn under_lease<T>(
        &self,
        organization: OrganizationGuid,
        change: impl AsyncFnOnce(Registry, Uuid) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let id = self.ready(organization).await?.id;
        let holder = Uuid::new_v4();
        if !self
            .registries
            .acquire_within(id, self.lease(holder), self.settings.lease_wait)
            .await?
        {
            return Err(RegistryError::Contended);
        }
        let outcome = match self.registries.get(id).await {
            Ok(Some(registry)) if registry.state == RegistryState::Ready => {
                change(registry, holder).await
            }
            Ok(Some(registry)) if registry.state == RegistryState::Disabled => {
                Err(RegistryError::NotFound)
            }
            Ok(None) => Err(RegistryError::NotFound),
            Ok(Some(_)) => Err(RegistryError::Busy),
            Err(error) => Err(error.into()),
        };
        // A release that fails only delays the next change until the lease runs out; it must
        // not turn an issued secret into an error.
        let _ = self.registries.release(id, holder).await;
        outcome
    }

    /// Enables the registry: provisions (or resumes provisioning) the project, its quota and a
    /// default push-and-pull robot, whose secret is returned here only.
    ///
    /// # Errors
    /// [`RegistryError::OrganizationNotFound`], [`RegistryError::Forbidden`],
    /// [`RegistryError::AlreadyEnabled`], [`RegistryError::Busy`], [`RegistryError::ProjectConflict`],
    /// [`RegistryError::Harbor`] (progress kept for a retry), or [`RegistryError::Store`].
    pub async fn enable(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
        quota: Option<QuotaGb>,
    ) -> Result<(Registry, IssuedSecret), RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        let holder = Uuid::new_v4();
        let (mut registry, claimed) = self.take_for_enable(organization, quota, holder).await?;
        match self.run_enable(&mut registry, holder, claimed).await {
            Ok(secret) => Ok((registry, secret)),
            Err(error) => {
                // Progress is saved step by step; free the row so a retry resumes at once.
                let _ = self.registries.release(registry.id, holder).await;
                Err(error)
            }
        }
    }

    /// The registry row to work on, leased, and whether this call claimed it (`true`) rather
    /// than took over an earlier one.
    async fn take_for_enable(
        &self,
        organization: OrganizationGuid,
        quota: Option<QuotaGb>,
        holder: Uuid,
    ) -> Result<(Registry, bool), RegistryError> {
        if let Some(existing) = self.registries.get_by_organization(organization).await? {
            return Ok((self.resume(existing, quota, holder).await?, false));
        }
        let stamp = now();
        let registry = Registry {
            id: RegistryId(Uuid::now_v7()),
            organization,
            harbor_project: harbor_project_name(organization),
            harbor_project_id: None,
            harbor_quota_id: None,
            // A new claim is immediately followed by the project request: recording it in the
            // claim saves a write, and the record is there before Harbor is asked.
            project_requested_at: Some(stamp),
            endpoint: self.provisioner.endpoint(),
            state: RegistryState::Provisioning,
            ever_enabled: false,
            quota_gb: quota.unwrap_or(self.settings.default_quota),
            used_bytes: None,
            used_checked_at: None,
            created_at: stamp,
            updated_at: stamp,
        };
        match self.registries.claim(&registry, self.lease(holder)).await {
            Ok(()) => Ok((registry, true)),
            Err(StoreError::Conflict) => {
                let existing = self
                    .registries
                    .get_by_organization(organization)
                    .await?
                    .ok_or(RegistryError::Busy)?;
                Ok((self.resume(existing, quota, holder).await?, false))
            }
            Err(StoreError::MissingParent) => Err(RegistryError::OrganizationNotFound),
            Err(error) => Err(error.into()),
        }
    }

    /// Takes over an existing row: a stalled provisioning resumes, a disabled registry is
    /// re-enabled; anything else is refused.
    async fn resume(
        &self,
        existing: Registry,
        quota: Option<QuotaGb>,
        holder: Uuid,
    ) -> Result<Registry, RegistryError> {
        match existing.state {
            RegistryState::Ready => return Err(RegistryError::AlreadyEnabled),
            RegistryState::Disabling => return Err(RegistryError::Busy),
            RegistryState::Provisioning | RegistryState::Disabled => {}
        }
        if !self
            .registries
            .acquire(existing.id, self.lease(holder), now())
            .await?
        {
            return Err(RegistryError::Busy);
        }
        // Re-read under the lease: the row may have moved on since the first read.
        let mut registry = self
            .registries
            .get(existing.id)
            .await?
            .ok_or(RegistryError::Busy)?;
        let refusal = match registry.state {
            RegistryState::Ready => Some(RegistryError::AlreadyEnabled),
            RegistryState::Disabling => Some(RegistryError::Busy),
            RegistryState::Provisioning => None,
            RegistryState::Disabled => {
                registry.state = RegistryState::Provisioning;
                if let Some(quota) = quota {
                    registry.quota_gb = quota;
                }
                registry.updated_at = now();
                self.registries.save(&registry, holder).await?;
                None
            }
        };
        match refusal {
            Some(error) => {
                self.registries.release(registry.id, holder).await?;
                Err(error)
            }
            None => Ok(registry),
        }
    }

    async fn save(&self, registry: &mut Registry, holder: Uuid) -> Result<(), RegistryError> {
        registry.updated_at = now();
        lease_lost_is_busy(self.registries.save(registry, holder).await)
    }

    /// [`Self::save`] and give the lease up, in one write.
    async fn save_and_release(
        &self,
        registry: &mut Registry,
        holder: Uuid,
    ) -> Result<(), RegistryError> {
        registry.updated_at = now();
        lease_lost_is_busy(self.registries.save_and_release(registry, holder).await)
    }

    /// `claimed`: this request made the claim, so no earlier attempt can have asked Harbor.
    async fn run_enable(
        &self,
        registry: &mut Registry,
        holder: Uuid,
        claimed: bool,
    ) -> Result<IssuedSecret, RegistryError> {
        let project_id = match registry.harbor_project_id {
            Some(id) => id,
            None => {
                // Only an earlier attempt's request proves a 409 to be Berth's own project.
                let earlier_request = if claimed {
                    None
                } else {
                    registry.project_requested_at
                };
                if registry.project_requested_at.is_none() {
                    registry.project_requested_at = Some(now());
                    self.save(registry, holder).await?;
                }
                let id = match self
                    .provisioner
                    .create_project(&registry.harbor_project, registry.quota_gb.bytes())
                    .await
                {
                    Ok(id) => id,
                    Err(ProvisionError::Conflict) => {
                        self.adopt(registry, earlier_request, holder).await?
                    }
                    Err(error) => return Err(error.into()),
                };
                // Recorded with the quota below, one Harbor call later: were Berth to stop in
                // between, the recorded request proves the project Berth's (adoption on retry,
                // lookup by name in the reconciler).
                registry.harbor_project_id = Some(id);
                id
            }
        };
        let quota = self.provisioner.project_quota(project_id).await?;
        if quota.hard_bytes != registry.quota_gb.bytes() {
            self.provisioner
                .set_quota(quota.id, registry.quota_gb.bytes())
                .await?;
        }
        registry.harbor_quota_id = Some(quota.id);
        registry.used_bytes = Some(quota.used_bytes);
        registry.used_checked_at = Some(now());
        self.save(registry, holder).await?;

        let (_, secret) = self
            .issue_robot(
                registry,
                holder,
                RobotName::default_robot(),
                RobotAccess::PushPull,
                None,
                true,
            )
            .await?;
        registry.state = RegistryState::Ready;
        registry.ever_enabled = true;
        self.save_and_release(registry, holder).await?;
        Ok(secret)
    }

    /// A Harbor 409 on Berth's own name: adopt the project only when Berth's record proves it
    /// asked for it in an earlier attempt and the project is Berth's own; else give the claim up.
    async fn adopt(
        &self,
        registry: &Registry,
        earlier_request: Option<OffsetDateTime>,
        holder: Uuid,
    ) -> Result<i64, RegistryError> {
        if let Some(requested_at) = earlier_request {
            let project = self
                .provisioner
                .find_project(&registry.harbor_project)
                .await?;
            if let Some(project) = project.filter(|project| {
                project.owner_name == self.provisioner.account()
                    && project.creation_time >= requested_at - self.settings.clock_skew
            }) {
                return Ok(project.id);
            }
        }
        // Someone else's project: touch nothing of it, and free the organization's claim.
        if !registry.ever_enabled {
            self.registries.delete(registry.id, holder).await?;
        }
        Err(RegistryError::ProjectConflict)
    }

    /// Creates (or recovers) a robot, holding the registry's lease: its row is written before
    /// Harbor is asked, and Harbor is searched first, so an interrupted attempt is rotated, never
    /// duplicated.
    async fn issue_robot(
        &self,
        registry: &Registry,
        holder: Uuid,
        name: RobotName,
        access: RobotAccess,
        expires_in_days: Option<ExpiresInDays>,
        is_default: bool,
    ) -> Result<(RobotCredential, IssuedSecret), RegistryError> {
        let project_id = registry.harbor_project_id.ok_or(RegistryError::Busy)?;
        let existing = self
            .registries
            .robots(registry.id)
            .await?
            .into_iter()
            .find(|robot| robot.name == name);
        let mut robot = match existing {
            Some(robot) if robot.state == RobotState::Active && !is_default => {
                return Err(RegistryError::RobotNameTaken);
            }
            Some(robot) => robot,
            None => {
                let stamp = now();
                let robot = RobotCredential {
                    id: RobotId(Uuid::now_v7()),
                    registry: registry.id,
                    name: name.clone(),
                    access,
                    is_default,
                    expires_in_days,
                    harbor_robot_id: None,
                    username: None,
                    expires_at: None,
                    state: RobotState::Creating,
                    created_at: stamp,
                    updated_at: stamp,
                };
                match self.registries.insert_robot(&robot).await {
                    Ok(()) => robot,
                    Err(StoreError::Conflict) => return Err(RegistryError::RobotNameTaken),
                    Err(error) => return Err(error.into()),
                }
            }
        };
        let known = match (robot.harbor_robot_id, &robot.username) {
            (Some(id), Some(username)) => Some(ProvisionedRobot {
                id,
                username: username.clone(),
                expires_at: robot.expires_at,
            }),
            _ => {
                self.provisioner
                    .find_robot(project_id, &registry.harbor_project, name.as_str())
                    .await?
            }
        };
        let recovered = match known {
            Some(found) => match self.provisioner.refresh_robot_secret(found.id).await {
                Ok(secret) => Some((found, secret)),
                Err(ProvisionError::NotFound) => None,
                Err(error) => return Err(error.into()),
            },
            None => None,
        };
        let (provisioned, secret) = match recovered {
            Some(pair) => pair,
            None => {
                let push = robot.access == RobotAccess::PushPull;
                let days = robot.expires_in_days.map(ExpiresInDays::get);
                match self
                    .provisioner
                    .create_robot(&registry.harbor_project, name.as_str(), push, days)
                    .await
                {
                    Ok(created) => (created.robot, created.secret),
                    Err(ProvisionError::Conflict) => {
                        let found = self
                            .provisioner
                            .find_robot(project_id, &registry.harbor_project, name.as_str())
                            .await?
                            .ok_or_else(|| {
                                ProvisionError::Unavailable("robot vanished during recovery".into())
                            })?;
                        let secret = self.provisioner.refresh_robot_secret(found.id).await?;
                        (found, secret)
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        };
        robot.harbor_robot_id = Some(provisioned.id);
        robot.username = Some(provisioned.username.clone());
        robot.expires_at = provisioned.expires_at;
        robot.state = RobotState::Active;
        robot.updated_at = now();
        match self.registries.update_robot(&robot, holder).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                // The lease ran out and someone else (a disable, perhaps, that already searched
                // Harbor) holds the registry: take back what this call made; the row stays
                // `Creating` for the next holder or the reconciler.
                let _ = self.provisioner.delete_robot(provisioned.id).await;
                return Err(RegistryError::Contended);
            }
            Err(error) => return Err(error.into()),
        }
        Ok((
            robot,
            IssuedSecret {
                username: provisioned.username,
                password: secret,
            },
        ))
    }

    /// The registry with `used_gb` refreshed from Harbor when the cached value is old; when
    /// Harbor cannot be reached, the last known value stands.
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
            .used_checked_at
            .is_none_or(|at| now() - at >= self.settings.usage_cache);
        if let (true, Some(project_id)) = (stale, registry.harbor_project_id) {
            // When Harbor cannot be reached the last known value stands; the adapter logged why.
            if let Ok(quota) = self.provisioner.project_quota(project_id).await {
                let at = now();
                self.registries
                    .record_usage(registry.id, quota.used_bytes, at)
                    .await?;
                registry.used_bytes = Some(quota.used_bytes);
                registry.used_checked_at = Some(at);
            }
        }
        Ok(registry)
    }

    /// A registry that was enabled at least once (a first provisioning in progress is not shown).
    async fn shown(&self, organization: OrganizationGuid) -> Result<Registry, RegistryError> {
        self.registries
            .get_by_organization(organization)
            .await?
            .filter(|registry| registry.ever_enabled || registry.state == RegistryState::Ready)
            .ok_or(RegistryError::NotFound)
    }

    async fn ready(&self, organization: OrganizationGuid) -> Result<Registry, RegistryError> {
        match self.shown(organization).await? {
            registry if registry.state == RegistryState::Ready => Ok(registry),
            registry if registry.state == RegistryState::Disabled => Err(RegistryError::NotFound),
            _ => Err(RegistryError::Busy),
        }
    }

    /// Changes the storage quota in Harbor (through the quota, not the project).
    ///
    /// # Errors
    /// As [`RegistryService::get`], plus [`RegistryError::Forbidden`], [`RegistryError::Busy`] and
    /// [`RegistryError::Harbor`].
    pub async fn update_quota(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
        quota: QuotaGb,
    ) -> Result<Registry, RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        // Under the lease, Harbor's limit and Berth's record change together: the last quota
        // Harbor was given is the one Berth keeps.
        self.under_lease(organization, async |mut registry, holder| {
            let quota_id = registry.harbor_quota_id.ok_or(RegistryError::Busy)?;
            self.provisioner.set_quota(quota_id, quota.bytes()).await?;
            registry.quota_gb = quota;
            self.save(&mut registry, holder).await?;
            Ok(registry)
        })
        .await
    }

    /// Disables the registry: every robot is deleted in Harbor; the project and its images stay.
    ///
    /// # Errors
    /// As [`RegistryService::update_quota`].
    pub async fn disable(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
    ) -> Result<(), RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        let existing = self.shown(organization).await?;
        match existing.state {
            RegistryState::Ready | RegistryState::Disabling => {}
            RegistryState::Disabled => return Err(RegistryError::NotFound),
            RegistryState::Provisioning => return Err(RegistryError::Busy),
        }
        let holder = Uuid::new_v4();
        // Robot changes hold the lease too: wait for the one in flight, so that every robot is
        // in Berth's record by the time the robots are deleted.
        if !self
            .registries
            .acquire_within(existing.id, self.lease(holder), self.settings.lease_wait)
            .await?
        {
            return Err(RegistryError::Contended);
        }
        let result = async {
            let mut registry = self
                .registries
                .get(existing.id)
                .await?
                .ok_or(RegistryError::NotFound)?;
            if !matches!(
                registry.state,
                RegistryState::Ready | RegistryState::Disabling
            ) {
                return Err(RegistryError::Busy);
            }
            registry.state = RegistryState::Disabling;
            self.save(&mut registry, holder).await?;
            self.finish_disable(&mut registry, holder).await
        }
        .await;
        if result.is_err() {
            let _ = self.registries.release(existing.id, holder).await;
        }
        result
    }

    async fn finish_disable(
        &self,
        registry: &mut Registry,
        holder: Uuid,
    ) -> Result<(), RegistryError> {
        self.delete_robots(registry).await?;
        registry.state = RegistryState::Disabled;
        self.save_and_release(registry, holder).await?;
        Ok(())
    }

    /// Deletes every robot of the registry in Harbor (searching by name for those whose id was
    /// never recorded), then their rows.
    async fn delete_robots(&self, registry: &Registry) -> Result<u64, RegistryError> {
        let mut removed = 0;
        for robot in self.registries.robots(registry.id).await? {
            self.delete_robot_in_harbor(registry, &robot).await?;
            match self.registries.delete_robot(robot.id).await {
                Ok(()) | Err(StoreError::NotFound) => removed += 1,
                Err(error) => return Err(error.into()),
            }
        }
        Ok(removed)
    }

    async fn delete_robot_in_harbor(
        &self,
        registry: &Registry,
        robot: &RobotCredential,
    ) -> Result<(), RegistryError> {
        let harbor_id = match (robot.harbor_robot_id, registry.harbor_project_id) {
            (Some(id), _) => Some(id),
            (None, Some(project_id)) => self
                .provisioner
                .find_robot(project_id, &registry.harbor_project, robot.name.as_str())
                .await?
                .map(|found| found.id),
            (None, None) => None,
        };
        if let Some(id) = harbor_id {
            match self.provisioner.delete_robot(id).await {
                Ok(()) | Err(ProvisionError::NotFound) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// The registry's robot credentials (never their secrets).
    ///
    /// # Errors
    /// As [`RegistryService::get`].
    pub async fn robots(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
    ) -> Result<Vec<RobotCredential>, RegistryError> {
        self.authorize(actor, organization, Need::Read).await?;
        let registry = self.shown(organization).await?;
        Ok(self
            .registries
            .robots(registry.id)
            .await?
            .into_iter()
            .filter(|robot| robot.state == RobotState::Active)
            .collect())
    }

    /// Creates a robot credential; its secret is returned here only.
    ///
    /// # Errors
    /// As [`RegistryService::update_quota`], plus [`RegistryError::RobotNameTaken`].
    pub async fn create_robot(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
        name: RobotName,
        access: RobotAccess,
        expires_in_days: Option<ExpiresInDays>,
    ) -> Result<(RobotCredential, IssuedSecret), RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        self.under_lease(organization, async |registry, holder| {
            self.issue_robot(&registry, holder, name, access, expires_in_days, false)
                .await
        })
        .await
    }

    async fn active_robot(
        &self,
        registry: &Registry,
        id: RobotId,
    ) -> Result<RobotCredential, RegistryError> {
        self.registries
            .robots(registry.id)
            .await?
            .into_iter()
            .find(|robot| robot.id == id && robot.state == RobotState::Active)
            .ok_or(RegistryError::RobotNotFound)
    }

    /// Gives a robot a new secret, shown here only; the old one stops working.
    ///
    /// # Errors
    /// As [`RegistryService::update_quota`], plus [`RegistryError::RobotNotFound`].
    pub async fn rotate_robot(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
        id: RobotId,
    ) -> Result<(RobotCredential, IssuedSecret), RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        // Serialized under the lease: no other rotation can replace this secret before it is
        // answered.
        self.under_lease(organization, async |registry, holder| {
            let mut robot = self.active_robot(&registry, id).await?;
            let harbor_id = robot.harbor_robot_id.ok_or(RegistryError::RobotNotFound)?;
            let secret = match self.provisioner.refresh_robot_secret(harbor_id).await {
                Err(ProvisionError::NotFound) => return Err(RegistryError::RobotNotFound),
                other => other?,
            };
            // Recorded under the lease: had it run out during a slow Harbor call, another
            // rotation may have replaced this secret already, so it is not answered.
            robot.updated_at = now();
            match self.registries.update_robot(&robot, holder).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => return Err(RegistryError::Contended),
                Err(StoreError::NotFound) => return Err(RegistryError::RobotNotFound),
                Err(error) => return Err(error.into()),
            }
            let username = robot.username.clone().unwrap_or_default();
            Ok((
                robot,
                IssuedSecret {
                    username,
                    password: secret,
                },
            ))
        })
        .await
    }

    /// Deletes a robot credential in Harbor and in Berth.
    ///
    /// # Errors
    /// As [`RegistryService::rotate_robot`].
    pub async fn delete_robot(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
        id: RobotId,
    ) -> Result<(), RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        self.under_lease(organization, async |registry, _| {
            let robot = self.active_robot(&registry, id).await?;
            self.delete_robot_in_harbor(&registry, &robot).await?;
            match self.registries.delete_robot(robot.id).await {
                Ok(()) | Err(StoreError::NotFound) => Ok(()),
                Err(error) => Err(error.into()),
            }
        })
        .await
    }

    /// One reconciler pass: rolls back stalled provisioning, finishes stalled disabling, and
    /// removes robots stuck half-created. Safe to run on every replica at once: each row is
    /// leased before it is touched.
    ///
    /// # Errors
    /// [`RegistryError::Store`] when the stalled rows cannot even be listed.
    pub async fn reconcile(&self) -> Result<ReconcileReport, RegistryError> {
        let mut report = ReconcileReport::default();
        let cutoff = now() - self.settings.stale_after;
        for stalled in self.registries.stalled(cutoff).await? {
            let holder = Uuid::new_v4();
            if !self
                .registries
                .acquire(stalled.id, self.lease(holder), now())
                .await?
            {
                continue;
            }
            let outcome = async {
                let mut registry = self
                    .registries
                    .get(stalled.id)
                    .await?
                    .ok_or(RegistryError::NotFound)?;
                match registry.state {
                    RegistryState::Provisioning => {
                        self.roll_back(&mut registry, holder).await.map(|()| (1, 0))
                    }
                    RegistryState::Disabling => self
                        .finish_disable(&mut registry, holder)
                        .await
                        .map(|()| (0, 1)),
                    RegistryState::Ready | RegistryState::Disabled => {
                        self.registries.release(registry.id, holder).await?;
                        Ok((0, 0))
                    }
                }
            }
            .await;
            match outcome {
                Ok((rolled_back, disabled)) => {
                    report.rolled_back += rolled_back;
                    report.disabled += disabled;
                }
                Err(_) => {
                    let _ = self.registries.release(stalled.id, holder).await;
                    report.failed += 1;
                }
            }
        }
        for robot in self.registries.stalled_robots(cutoff).await? {
            let Some(registry) = self.registries.get(robot.registry).await? else {
                continue;
            };
            // Robots of a registry in its saga are the saga's (and the roll-back's) business.
            if registry.state != RegistryState::Ready {
                continue;
            }
            // A robot being made right now is its creator's: take the registry's lease first.
            let holder = Uuid::new_v4();
            if !self
                .registries
                .acquire(registry.id, self.lease(holder), now())
                .await?
            {
                continue;
            }
            // Re-read under the lease: its creator may have finished it meanwhile.
            let still_stalled = self.registries.robots(registry.id).await.map(|robots| {
                robots
                    .into_iter()
                    .any(|current| current.id == robot.id && current.state == RobotState::Creating)
            });
            if !matches!(still_stalled, Ok(true)) {
                let _ = self.registries.release(registry.id, holder).await;
                continue;
            }
            match self.delete_robot_in_harbor(&registry, &robot).await {
                Ok(()) => {
                    let _ = self.registries.delete_robot(robot.id).await;
                    report.robots_removed += 1;
                }
                Err(_) => report.failed += 1,
            }
            let _ = self.registries.release(registry.id, holder).await;
        }
        Ok(report)
    }

    /// Undoes a stalled provisioning: its robots go; a first enablement also loses the project
    /// Berth made (and the claim), a re-enablement goes back to disabled.
    async fn roll_back(&self, registry: &mut Registry, holder: Uuid) -> Result<(), RegistryError> {
        self.delete_robots(registry).await?;
        if registry.ever_enabled {
            registry.state = RegistryState::Disabled;
            self.save_and_release(registry, holder).await?;
            return Ok(());
        }
        let project_id = match (registry.harbor_project_id, registry.project_requested_at) {
            (Some(id), _) => Some(id),
            (None, Some(requested_at)) => self
                .provisioner
                .find_project(&registry.harbor_project)
                .await?
                .filter(|project| {
                    project.owner_name == self.provisioner.account()
                        && project.creation_time >= requested_at - self.settings.clock_skew
                })
                .map(|project| project.id),
            (None, None) => None,
        };
        if let Some(id) = project_id {
            match self.provisioner.delete_project(id).await {
                Ok(()) | Err(ProvisionError::NotFound) => {}
                Err(ProvisionError::Precondition(_)) => {
                    // Images were pushed into it: keep the project and Berth's record of it.
                    registry.harbor_project_id = Some(id);
                    registry.ever_enabled = true;
                    registry.state = RegistryState::Disabled;
                    self.save_and_release(registry, holder).await?;
                    return Ok(());
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.registries.delete(registry.id, holder).await?;
        Ok(())
    }
}
