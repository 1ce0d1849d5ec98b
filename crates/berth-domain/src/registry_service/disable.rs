//! Disabling a registry: every robot is deleted in the provisioner; the project and its images
//! stay.

use crate::actor::Actor;
use crate::audit::{AuditActor, AuditData, AuditEventType};
use crate::ids::OrganizationGuid;
use crate::ports::{LeaseHolder, ProvisionError, StoreError};
use crate::registry::{Registry, RegistryState, RobotCredential};

use super::{LeaseWait, Need, RegistryError, RegistryService, registry_event};

impl RegistryService {
    /// Disables the registry: every robot is deleted in the provisioner; the project and its
    /// images stay.
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
        match existing.state() {
            RegistryState::Ready | RegistryState::Disabling => {}
            RegistryState::Disabled => return Err(RegistryError::NotFound),
            RegistryState::Provisioning | RegistryState::Purging => {
                return Err(RegistryError::Busy);
            }
        }
        let id = existing.id();
        // Robot changes hold the lease too: wait for the one in flight, so that every robot is
        // in Berth's record by the time the robots are deleted.
        let holder = self
            .take_lease(id, LeaseWait::Bounded)
            .await?
            .ok_or(RegistryError::Contended)?;
        self.holding_until_released(id, holder, async || {
            let mut registry = self
                .registries
                .get(id)
                .await?
                .ok_or(RegistryError::NotFound)?;
            if !matches!(
                registry.state(),
                RegistryState::Ready | RegistryState::Disabling
            ) {
                return Err(RegistryError::Busy);
            }
            registry.start_disabling();
            self.save(&mut registry, holder, &[]).await?;
            self.finish_disable(&mut registry, holder, &AuditActor::user(actor))
                .await
        })
        .await
    }

    /// Deletes the robots of a registry being disabled, then marks it disabled and gives the
    /// lease up.
    pub(super) async fn finish_disable(
        &self,
        registry: &mut Registry,
        holder: LeaseHolder,
        by: &AuditActor,
    ) -> Result<(), RegistryError> {
        self.delete_robots(registry).await?;
        registry.mark_disabled();
        let event = registry_event(
            &self.ambient,
            by,
            AuditEventType::RegistryDisable,
            registry,
            AuditData::new(),
        );
        self.save_and_release(registry, holder, &[event]).await
    }

    /// Deletes every robot of the registry in the provisioner (searching by name for those
    /// whose id was never recorded), then their rows, each with the credential it manages.
    pub(super) async fn delete_robots(&self, registry: &Registry) -> Result<u64, RegistryError> {
        let mut removed = 0;
        for robot in self.registries.robots(registry.id()).await? {
            self.delete_provisioned_robot(registry, &robot).await?;
            // The robots go with the registry's disable or purge, whose event records them.
            match self.registries.delete_robot(robot.id(), &[]).await {
                Ok(()) | Err(StoreError::NotFound) => removed += 1,
                Err(error) => return Err(error.into()),
            }
        }
        Ok(removed)
    }

    /// Deletes a robot in the provisioner, found by name when its id was never recorded; one
    /// already gone is fine.
    pub(super) async fn delete_provisioned_robot(
        &self,
        registry: &Registry,
        robot: &RobotCredential,
    ) -> Result<(), RegistryError> {
        let provisioned = match (robot.provisioned_id(), registry.project_id()) {
            (Some(id), _) => Some(id),
            (None, Some(project_id)) => self
                .provisioner
                .find_robot(project_id, registry.project_name(), robot.name())
                .await?
                .map(|found| found.id),
            (None, None) => None,
        };
        if let Some(id) = provisioned {
            match self.provisioner.delete_robot(id).await {
                Ok(()) | Err(ProvisionError::NotFound) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }
}
