//! The provisioning saga: claim (or take over) the registry row, then project, quota, default
//! robot and ready, each step recorded so a retry or a restart resumes instead of duplicating.

use crate::actor::Actor;
use crate::audit::{AuditActor, AuditData, AuditEventType};
use crate::ids::OrganizationGuid;
use crate::ports::{LeaseHolder, ProvisionError, ProvisionedRobot, StoreError};
use crate::registry::{
    IssuedSecret, ProvisionedProjectId, QuotaGb, Registry, RegistryId, RegistryState,
    RobotCredential, RobotSpec, RobotState,
};

use super::{LeaseWait, Need, RegistryError, RegistryService, registry_event, robot_event};

/// The registry row an enable works on, its lease taken.
enum Taken {
    /// Claimed by this call: no earlier attempt can have asked the provisioner.
    Claimed(Registry),
    /// An earlier row (a stalled provisioning, or a disabled registry) taken over.
    TakenOver(RegistryId),
}

/// Whether a registry in `state` may be enabled (or its enabling resumed).
fn refuse_enable(state: RegistryState) -> Result<(), RegistryError> {
    match state {
        RegistryState::Ready => Err(RegistryError::AlreadyEnabled),
        RegistryState::Disabling | RegistryState::Purging => Err(RegistryError::Busy),
        RegistryState::Provisioning | RegistryState::Disabled => Ok(()),
    }
}

impl RegistryService {
    /// Enables the registry: provisions (or resumes provisioning) the project, its quota and a
    /// default push-and-pull robot, whose secret is returned here only.
    ///
    /// # Errors
    /// [`RegistryError::OrganizationNotFound`], [`RegistryError::Forbidden`],
    /// [`RegistryError::AlreadyEnabled`], [`RegistryError::Busy`], [`RegistryError::ProjectConflict`],
    /// [`RegistryError::Provisioner`] (progress kept for a retry), or [`RegistryError::Store`].
    pub async fn enable(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
        quota: Option<QuotaGb>,
    ) -> Result<(Registry, IssuedSecret), RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        let (taken, holder) = self.take_for_enable(organization, quota).await?;
        let id = match &taken {
            Taken::Claimed(registry) => registry.id(),
            Taken::TakenOver(id) => *id,
        };
        // Progress is saved step by step; the last step gives the lease up with the registry
        // ready, and a failure gives it back, so a retry resumes at once.
        self.holding_until_released(id, holder, async move || {
            let (mut registry, claimed) = match taken {
                Taken::Claimed(registry) => (registry, true),
                Taken::TakenOver(id) => (self.resume(id, quota, holder).await?, false),
            };
            let by = AuditActor::user(actor);
            let secret = self.run_enable(&mut registry, holder, claimed, &by).await?;
            Ok((registry, secret))
        })
        .await
    }

    /// Claims the organization's registry row, or takes over the one that exists; either way
    /// leased to the holder returned.
    async fn take_for_enable(
        &self,
        organization: OrganizationGuid,
        quota: Option<QuotaGb>,
    ) -> Result<(Taken, LeaseHolder), RegistryError> {
        if let Some(existing) = self.registries.get_by_organization(organization).await? {
            return self.take_over(&existing).await;
        }
        let registry = Registry::claim(
            self.ambient.registry_id(),
            organization,
            self.provisioner.endpoint(),
            quota.unwrap_or(self.settings.default_quota),
            self.ambient.now(),
        );
        let holder = self.ambient.lease_holder();
        match self.registries.claim(&registry, self.lease(holder)).await {
            Ok(()) => Ok((Taken::Claimed(registry), holder)),
            Err(StoreError::Conflict) => {
                let existing = self
                    .registries
                    .get_by_organization(organization)
                    .await?
                    .ok_or(RegistryError::Busy)?;
                self.take_over(&existing).await
            }
            Err(StoreError::MissingParent) => Err(RegistryError::OrganizationNotFound),
            Err(error) => Err(error.into()),
        }
    }

    /// Takes the lease of an existing row that may be enabled; someone else on it is
    /// [`RegistryError::Busy`].
    async fn take_over(&self, existing: &Registry) -> Result<(Taken, LeaseHolder), RegistryError> {
        refuse_enable(existing.state())?;
        let holder = self
            .take_lease(existing.id(), LeaseWait::No)
            .await?
            .ok_or(RegistryError::Busy)?;
        Ok((Taken::TakenOver(existing.id()), holder))
    }

    /// The taken-over row, re-read under the lease (it may have moved on since the first read):
    /// a stalled provisioning resumes, a disabled registry is re-enabled; anything else is
    /// refused.
    async fn resume(
        &self,
        id: RegistryId,
        quota: Option<QuotaGb>,
        holder: LeaseHolder,
    ) -> Result<Registry, RegistryError> {
        let mut registry = self.registries.get(id).await?.ok_or(RegistryError::Busy)?;
        refuse_enable(registry.state())?;
        if registry.state() == RegistryState::Disabled {
            registry.start_reenabling(quota);
            self.save(&mut registry, holder, &[]).await?;
        }
        Ok(registry)
    }

    /// `claimed`: this request made the claim, so no earlier attempt can have asked the
    /// provisioner.
    async fn run_enable(
        &self,
        registry: &mut Registry,
        holder: LeaseHolder,
        claimed: bool,
        by: &AuditActor,
    ) -> Result<IssuedSecret, RegistryError> {
        let project_id = match registry.project_id() {
            Some(id) => id,
            None => {
                // Only an earlier attempt's request proves a 409 to be Berth's own project.
                let earlier_request = if claimed {
                    None
                } else {
                    registry.project_requested_at()
                };
                if registry.project_requested_at().is_none() {
                    registry.record_project_request(self.ambient.now());
                    self.save(registry, holder, &[]).await?;
                }
                let id = match self
                    .provisioner
                    .create_project(registry.project_name(), registry.quota_gb())
                    .await
                {
                    Ok(id) => id,
                    Err(ProvisionError::Conflict) => {
                        self.adopt(registry, earlier_request, holder).await?
                    }
                    Err(error) => return Err(error.into()),
                };
                // Recorded with the quota below, one provisioner call later: were Berth to stop
                // in between, the recorded request proves the project Berth's (adoption on
                // retry, lookup by name in the reconciler).
                registry.record_project(id);
                id
            }
        };
        let quota = self.provisioner.project_quota(project_id).await?;
        if quota.hard_bytes != registry.quota_gb().bytes() {
            self.provisioner
                .set_quota(quota.id, registry.quota_gb())
                .await?;
        }
        registry.record_quota(quota.id, quota.used_bytes, self.ambient.now());
        self.save(registry, holder, &[]).await?;

        let (_, secret) = self
            .issue_robot(registry, holder, RobotSpec::default_robot(), by)
            .await?;
        self.ensure_pull_robot(registry, holder, by).await?;
        registry.mark_ready();
        let event = registry_event(
            &self.ambient,
            by,
            AuditEventType::RegistryEnable,
            registry,
            AuditData::new().integer("quota_gb", i64::from(registry.quota_gb().get())),
        );
        self.save_and_release(registry, holder, &[event]).await?;
        Ok(secret)
    }

    /// A 409 on Berth's own name: adopt the project only when Berth's record proves it asked
    /// for it in an earlier attempt and the project is Berth's own; else give the claim up.
    async fn adopt(
        &self,
        registry: &Registry,
        earlier_request: Option<time::OffsetDateTime>,
        holder: LeaseHolder,
    ) -> Result<ProvisionedProjectId, RegistryError> {
        if let Some(requested_at) = earlier_request
            && let Some(id) = self
                .own_project(registry.project_name(), requested_at)
                .await?
        {
            return Ok(id);
        }
        // Someone else's project: touch nothing of it, and free the organization's claim.
        if !registry.ever_enabled() {
            self.registries.delete(registry.id(), holder, &[]).await?;
        }
        Err(RegistryError::ProjectConflict)
    }

    /// Creates (or recovers) a robot, holding the registry's lease: its row is written before
    /// the provisioner is asked, and the provisioner is searched first, so an interrupted
    /// attempt is rotated, never duplicated.
    pub(super) async fn issue_robot(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        spec: RobotSpec,
        by: &AuditActor,
    ) -> Result<(RobotCredential, IssuedSecret), RegistryError> {
        let project_id = registry.project_id().ok_or(RegistryError::Busy)?;
        let project = registry.project_name();
        let existing = self
            .registries
            .robots(registry.id())
            .await?
            .into_iter()
            .find(|robot| robot.name() == &spec.name);
        // Berth's own robots (default and pull) are recovered by rotation; a caller's name
        // already active is taken.
        let mut robot = match existing {
            Some(robot)
                if robot.state() == RobotState::Active && !spec.is_default && !spec.managed =>
            {
                return Err(RegistryError::RobotNameTaken);
            }
            // A caller's robot holding one of Berth's names (made before the name was
            // reserved) is never taken for Berth's.
            Some(robot)
                if robot.is_default() != spec.is_default || robot.managed() != spec.managed =>
            {
                return Err(RegistryError::RobotNameTaken);
            }
            Some(robot) => robot,
            None => {
                let robot = RobotCredential::creating(
                    self.ambient.robot_id(),
                    registry.id(),
                    spec,
                    self.ambient.now(),
                );
                match self.registries.insert_robot(&robot).await {
                    Ok(()) => robot,
                    Err(StoreError::Conflict) => return Err(RegistryError::RobotNameTaken),
                    Err(error) => return Err(error.into()),
                }
            }
        };
        let known = match (robot.provisioned_id(), robot.username()) {
            (Some(id), Some(username)) => Some(ProvisionedRobot {
                id,
                username: username.to_owned(),
                expires_at: robot.expires_at(),
            }),
            _ => {
                self.provisioner
                    .find_robot(project_id, project, robot.name())
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
            None => match self
                .provisioner
                .create_robot(
                    project,
                    robot.name(),
                    robot.access(),
                    robot.expires_in_days(),
                )
                .await
            {
                Ok(created) => (created.robot, created.secret),
                Err(ProvisionError::Conflict) => {
                    let found = self
                        .provisioner
                        .find_robot(project_id, project, robot.name())
                        .await?
                        .ok_or_else(|| {
                            ProvisionError::Unavailable("robot vanished during recovery".into())
                        })?;
                    let secret = self.provisioner.refresh_robot_secret(found.id).await?;
                    (found, secret)
                }
                Err(error) => return Err(error.into()),
            },
        };
        let was_creating = robot.state() == RobotState::Creating;
        robot.activate(
            provisioned.id,
            provisioned.username.clone(),
            provisioned.expires_at,
            self.ambient.now(),
        );
        // A robot made now is created; one recovered or rotated got a new secret.
        let event_type = if was_creating {
            AuditEventType::RobotCreate
        } else {
            AuditEventType::RobotRotate
        };
        let mut request = AuditData::new()
            .text("name", robot.name().as_str())
            .text("access", robot.access().as_str())
            .flag("managed", robot.managed());
        if let Some(days) = robot.expires_in_days() {
            request = request.integer("expires_in_days", i64::from(days.get()));
        }
        let event = robot_event(&self.ambient, by, event_type, registry, &robot, request);
        let recorded = if robot.managed() {
            self.record_pull_robot(registry, &mut robot, holder, &secret, &[event])
                .await
        } else {
            self.registries.update_robot(&robot, holder, &[event]).await
        };
        match recorded {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                // The lease ran out and someone else (a disable, perhaps, that already searched
                // the provisioner) holds the registry: take back what this call made. Its error
                // is dropped on purpose: the row stays `Creating`, so the next holder (a disable
                // or a retry, which search by name) or the reconciler deletes the robot should
                // this delete fail; the answer is `Contended` either way. A robot recorded
                // before stays: its row names it, and the next holder rotates or deletes it.
                if was_creating {
                    let _ = self.provisioner.delete_robot(provisioned.id).await;
                }
                return Err(RegistryError::Contended);
            }
            Err(error) => return Err(error.into()),
        }
        Ok((robot, IssuedSecret::new(provisioned.username, secret)))
    }
}
