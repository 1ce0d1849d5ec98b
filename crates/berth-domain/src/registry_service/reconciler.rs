//! The reconciler: rolls back stalled provisioning, finishes stalled disabling and purging, and removes
//! robots stuck half-created. Every replica may run it: each row is leased before it is touched.

use crate::audit::AuditActor;
use crate::ports::{LeaseHolder, ProvisionError, StoreError};
use crate::registry::{
    Registry, RegistryId, RegistryState, RobotCredential, RobotId, RobotSpec, RobotState,
};

use super::{LeaseWait, RegistryError, RegistryService};

/// What one reconciler pass did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// The rolled back.
    pub rolled_back: u64,
    /// The disabled.
    pub disabled: u64,
    /// The purged.
    pub purged: u64,
    /// The robots removed.
    pub robots_removed: u64,
    /// Pull robot rotations cut short and finished.
    pub rotations_finished: u64,
    /// What could not be settled, each with its cause; the next pass tries again.
    pub failures: Vec<ReconcileFailure>,
}

impl ReconcileReport {
    /// Whether the pass found nothing to do.
    pub fn is_empty(&self) -> bool {
        self.rolled_back == 0
            && self.disabled == 0
            && self.purged == 0
            && self.robots_removed == 0
            && self.rotations_finished == 0
            && self.failures.is_empty()
    }
}

/// A registry (or one of its robots) the reconciler could not settle, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct ReconcileFailure {
    /// The registry.
    pub registry: RegistryId,
    /// The stalled robot, when it was a robot that could not be removed.
    pub robot: Option<RobotId>,
    /// Why.
    pub cause: RegistryError,
}

/// What settling one stalled registry did.
enum Settled {
    RolledBack,
    Disabled,
    Purged,
    /// It had moved on (ready or disabled) by the time the lease was had.
    Nothing,
}

impl RegistryService {
    /// One reconciler pass: rolls back stalled provisioning, finishes stalled disabling, and
    /// removes robots stuck half-created. Safe to run on every replica at once: each row is
    /// leased before it is touched.
    ///
    /// # Errors
    /// [`RegistryError::Store`] when the store cannot list the stalled rows, read a stalled
    /// robot's registry or take a lease (the pass stops; the next one starts over); a row that
    /// fails once leased is reported in [`ReconcileReport::failures`] and the pass goes on.
    pub async fn reconcile(&self) -> Result<ReconcileReport, RegistryError> {
        let mut report = ReconcileReport::default();
        let cutoff = self.ambient.now() - self.settings.stale_after;
        for stalled in self.registries.stalled(cutoff).await? {
            let id = stalled.id();
            let Some(holder) = self.take_lease(id, LeaseWait::No).await? else {
                continue;
            };
            match self
                .holding(id, holder, async || self.settle(id, holder).await)
                .await
            {
                Ok(Settled::RolledBack) => report.rolled_back += 1,
                Ok(Settled::Disabled) => report.disabled += 1,
                Ok(Settled::Purged) => report.purged += 1,
                Ok(Settled::Nothing) => {}
                Err(cause) => report.failures.push(ReconcileFailure {
                    registry: id,
                    robot: None,
                    cause,
                }),
            }
        }
        for robot in self.registries.stalled_robots(cutoff).await? {
            let Some(registry) = self.registries.get(robot.registry()).await? else {
                continue;
            };
            // Robots of a registry in its saga are the saga's (and the roll-back's) business.
            if registry.state() != RegistryState::Ready {
                continue;
            }
            // A robot being made right now is its creator's: take the registry's lease first.
            let Some(holder) = self.take_lease(registry.id(), LeaseWait::No).await? else {
                continue;
            };
            let rotating = robot.state() == RobotState::Rotating;
            match self
                .holding(registry.id(), holder, async || {
                    if rotating {
                        self.finish_rotation(&registry, &robot, holder).await
                    } else {
                        self.remove_stalled_robot(&registry, &robot).await
                    }
                })
                .await
            {
                Ok(true) if rotating => report.rotations_finished += 1,
                Ok(true) => report.robots_removed += 1,
                Ok(false) => {}
                Err(cause) => report.failures.push(ReconcileFailure {
                    registry: registry.id(),
                    robot: Some(robot.id()),
                    cause,
                }),
            }
        }
        Ok(report)
    }

    /// Rolls back or finishes a stalled registry, re-read under the lease.
    async fn settle(&self, id: RegistryId, holder: LeaseHolder) -> Result<Settled, RegistryError> {
        let mut registry = self
            .registries
            .get(id)
            .await?
            .ok_or(RegistryError::NotFound)?;
        match registry.state() {
            RegistryState::Provisioning => {
                self.roll_back(&mut registry, holder).await?;
                Ok(Settled::RolledBack)
            }
            RegistryState::Disabling => {
                self.finish_disable(&mut registry, holder, &AuditActor::system())
                    .await?;
                Ok(Settled::Disabled)
            }
            RegistryState::Purging => {
                self.finish_purge(&registry, holder, &AuditActor::system())
                    .await?;
                Ok(Settled::Purged)
            }
            RegistryState::Ready | RegistryState::Disabled => Ok(Settled::Nothing),
        }
    }

    /// Rotates again a pull robot still stuck in `Rotating` (re-read under the lease), so the
    /// stored password is the provisioner's secret; `false` when it was no longer stuck.
    async fn finish_rotation(
        &self,
        registry: &Registry,
        robot: &RobotCredential,
        holder: LeaseHolder,
    ) -> Result<bool, RegistryError> {
        let still_rotating = self
            .registries
            .robots(registry.id())
            .await?
            .into_iter()
            .any(|current| current.id() == robot.id() && current.state() == RobotState::Rotating);
        if !still_rotating {
            return Ok(false);
        }
        self.issue_robot(
            registry,
            holder,
            RobotSpec::pull_robot(),
            &AuditActor::system(),
        )
        .await?;
        Ok(true)
    }

    /// Deletes a robot still stuck in `Creating` (re-read under the lease: its creator may have
    /// finished it meanwhile) in the provisioner, then its row; `false` when it was no longer
    /// stuck.
    async fn remove_stalled_robot(
        &self,
        registry: &Registry,
        robot: &RobotCredential,
    ) -> Result<bool, RegistryError> {
        let still_stalled = self
            .registries
            .robots(registry.id())
            .await?
            .into_iter()
            .any(|current| current.id() == robot.id() && current.state() == RobotState::Creating);
        if !still_stalled {
            return Ok(false);
        }
        self.delete_provisioned_robot(registry, robot).await?;
        // A robot that never became active: nothing was recorded for it, nothing to record.
        match self.registries.delete_robot(robot.id(), &[]).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(true),
            Err(error) => Err(error.into()),
        }
    }

    /// Undoes a stalled provisioning: its robots go; a first enablement also loses the project
    /// Berth made (and the claim), a re-enablement goes back to disabled.
    async fn roll_back(
        &self,
        registry: &mut Registry,
        holder: LeaseHolder,
    ) -> Result<(), RegistryError> {
        self.delete_robots(registry).await?;
        if registry.ever_enabled() {
            registry.mark_disabled();
            return self.save_and_release(registry, holder, &[]).await;
        }
        if let Some(id) = self.project_to_delete(registry).await? {
            match self.provisioner.delete_project(id).await {
                Ok(()) | Err(ProvisionError::NotFound) => {}
                Err(ProvisionError::Precondition(_)) => {
                    // Images were pushed into it: keep the project and Berth's record of it.
                    registry.keep_project_disabled(id);
                    return self.save_and_release(registry, holder, &[]).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        // Rolled-back work was never recorded as done: no event.
        self.registries.delete(registry.id(), holder, &[]).await?;
        Ok(())
    }
}
