//! The robot credentials of a ready registry: list, create, rotate, renew, delete. Every change
//! holds the registry's lease ([`RegistryService::under_lease`]). The platform pull robot is
//! listed (marked managed) but changed only through `pull`.

use crate::actor::Actor;
use crate::audit::{AuditActor, AuditData, AuditEventType};
use crate::ids::OrganizationGuid;
use crate::ports::{ProvisionError, StoreError};
use crate::registry::{
    ExpiresInDays, IssuedSecret, Registry, RobotAccess, RobotCredential, RobotId, RobotName,
    RobotSpec, RobotState,
};

use super::{Need, RegistryError, RegistryService, robot_event};

impl RegistryService {
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
            .robots(registry.id())
            .await?
            .into_iter()
            // A pull robot being rotated is still the registry's (its old secret may still work).
            .filter(|robot| robot.state() != RobotState::Creating)
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
        // Berth's own robots' names are never a caller's (the registry always has them).
        if name.is_reserved() {
            return Err(RegistryError::RobotNameTaken);
        }
        let spec = RobotSpec {
            name,
            access,
            expires_in_days,
            is_default: false,
            managed: false,
        };
        self.under_lease(organization, async move |registry, holder| {
            self.issue_robot(&registry, holder, spec, &AuditActor::user(actor))
                .await
        })
        .await
    }

    /// An active robot a caller may change: the platform pull robot is
    /// [`RegistryError::ManagedRobot`].
    async fn active_robot(
        &self,
        registry: &Registry,
        id: RobotId,
    ) -> Result<RobotCredential, RegistryError> {
        let robot = self
            .registries
            .robots(registry.id())
            .await?
            .into_iter()
            .find(|robot| robot.id() == id && robot.state() == RobotState::Active)
            .ok_or(RegistryError::RobotNotFound)?;
        if robot.managed() {
            return Err(RegistryError::ManagedRobot);
        }
        Ok(robot)
    }

    /// Renews a robot in the provisioner so that it expires `expires_in_days` from now
    /// (`None`: never), and records the expiry the provisioner reports.
    ///
    /// # Errors
    /// As [`RegistryService::rotate_robot`].
    pub async fn renew_robot(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
        id: RobotId,
        expires_in_days: Option<ExpiresInDays>,
    ) -> Result<RobotCredential, RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        // Under the lease, renewals apply one after another: the expiry Berth records is the
        // one the provisioner was given last.
        self.under_lease(organization, async |registry, holder| {
            let mut robot = self.active_robot(&registry, id).await?;
            let provisioned = robot.provisioned_id().ok_or(RegistryError::RobotNotFound)?;
            let renewed = match self
                .provisioner
                .renew_robot(provisioned, expires_in_days)
                .await
            {
                Err(ProvisionError::NotFound) => return Err(RegistryError::RobotNotFound),
                other => other?,
            };
            robot.renew(expires_in_days, renewed.expires_at, self.ambient.now());
            let request = match expires_in_days {
                Some(days) => AuditData::new().integer("expires_in_days", i64::from(days.get())),
                None => AuditData::new().text("expires_in_days", "never"),
            };
            let event = robot_event(
                &self.ambient,
                &AuditActor::user(actor),
                AuditEventType::RobotUpdate,
                &registry,
                &robot,
                request,
            );
            match self.registries.update_robot(&robot, holder, &[event]).await {
                Ok(()) => Ok(robot),
                Err(StoreError::Conflict) => Err(RegistryError::Contended),
                Err(StoreError::NotFound) => Err(RegistryError::RobotNotFound),
                Err(error) => Err(error.into()),
            }
        })
        .await
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
            let provisioned = robot.provisioned_id().ok_or(RegistryError::RobotNotFound)?;
            let secret = match self.provisioner.refresh_robot_secret(provisioned).await {
                Err(ProvisionError::NotFound) => return Err(RegistryError::RobotNotFound),
                other => other?,
            };
            // Recorded under the lease: had it run out during a slow provisioner call, another
            // rotation may have replaced this secret already, so it is not answered.
            robot.touch(self.ambient.now());
            let event = robot_event(
                &self.ambient,
                &AuditActor::user(actor),
                AuditEventType::RobotRotate,
                &registry,
                &robot,
                AuditData::new().hidden("secret"),
            );
            match self.registries.update_robot(&robot, holder, &[event]).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => return Err(RegistryError::Contended),
                Err(StoreError::NotFound) => return Err(RegistryError::RobotNotFound),
                Err(error) => return Err(error.into()),
            }
            let username = robot.username().unwrap_or_default().to_owned();
            Ok((robot, IssuedSecret::new(username, secret)))
        })
        .await
    }

    /// Deletes a robot credential in the provisioner and in Berth.
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
            self.delete_provisioned_robot(&registry, &robot).await?;
            let event = robot_event(
                &self.ambient,
                &AuditActor::user(actor),
                AuditEventType::RobotDelete,
                &registry,
                &robot,
                AuditData::new(),
            );
            match self.registries.delete_robot(robot.id(), &[event]).await {
                Ok(()) | Err(StoreError::NotFound) => Ok(()),
                Err(error) => Err(error.into()),
            }
        })
        .await
    }
}
