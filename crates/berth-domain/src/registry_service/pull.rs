//! The platform pull robot (SPEC 7.2): a pull-only robot on the organization's project whose
//! login Berth keeps as the organization's managed registry credential at
//! `<endpoint>/<project>`, so every app of the organization pulls its own images with no manual
//! step. The robot and the credential are written in one transaction
//! ([`crate::ports::RegistryStore::update_managed_robot`]).

use secrecy::SecretString;

use crate::actor::Actor;
use crate::ambient::Ambient;
use crate::audit::{AuditActor, AuditEvent};
use crate::credential::{Password, RegistryCredential, ScopeTarget, Username};
use crate::ids::OrganizationGuid;
use crate::location::RegistryLocation;
use crate::metadata::{LabelKey, LabelValue, Metadata};
use crate::ports::{LeaseHolder, StoreError};
use crate::registry::{
    MANAGED_BY_LABEL, MANAGED_BY_REGISTRY, Registry, RobotCredential, RobotSpec, RobotState,
};

use super::{Need, RegistryError, RegistryService};

/// A rule Berth's own values must pass and did not: a broken invariant, answered as a store
/// failure (500, logged), never as the caller's fault.
fn broken(what: &'static str) -> StoreError {
    StoreError::Unexpected(what.into())
}

impl RegistryService {
    /// Replaces the platform pull robot's secret in the provisioner and the password of its
    /// managed credential together, under the registry's lease; a registry enabled before pull
    /// robots existed gets its pull robot here.
    ///
    /// # Errors
    /// As [`RegistryService::update_quota`].
    pub async fn rotate_pull_credential(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
    ) -> Result<(), RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        self.under_lease(organization, async |registry, holder| {
            self.rotate_pull_robot(&registry, holder, &AuditActor::user(actor))
                .await
        })
        .await
    }

    /// Rotates the pull robot under the lease: marked `Rotating` first, so that a rotation cut
    /// short between the provisioner's new secret and the stored password is finished by the
    /// next holder (a retry, or the reconciler), never left with a stale stored password.
    pub(super) async fn rotate_pull_robot(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        by: &AuditActor,
    ) -> Result<(), RegistryError> {
        let pull = self
            .registries
            .robots(registry.id())
            .await?
            .into_iter()
            .find(|robot| robot.managed() && robot.state() == RobotState::Active);
        if let Some(mut robot) = pull {
            robot.start_rotating(self.ambient.now());
            // Progress only: the rotation's event is written when the new secret is recorded.
            match self.registries.update_robot(&robot, holder, &[]).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => return Err(RegistryError::Contended),
                Err(error) => return Err(error.into()),
            }
        }
        self.issue_robot(registry, holder, RobotSpec::pull_robot(), by)
            .await
            .map(drop)
    }

    /// The saga's pull robot step: issued unless an earlier attempt already recorded it (an
    /// active managed robot always has its credential: both are written in one transaction).
    pub(super) async fn ensure_pull_robot(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        by: &AuditActor,
    ) -> Result<(), RegistryError> {
        let recorded = self
            .registries
            .robots(registry.id())
            .await?
            .into_iter()
            .any(|robot| robot.managed() && robot.state() == RobotState::Active);
        if !recorded {
            self.issue_robot(registry, holder, RobotSpec::pull_robot(), by)
                .await?;
        }
        Ok(())
    }

    /// Records the activated pull robot and writes its login as the managed credential, in one
    /// transaction of the store.
    pub(super) async fn record_pull_robot(
        &self,
        registry: &Registry,
        robot: &mut RobotCredential,
        holder: LeaseHolder,
        secret: &SecretString,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let username = robot.username().unwrap_or_default().to_owned();
        let credential = pull_credential(&self.ambient, registry, &username)?;
        let password = Password::parse(secret.clone()).map_err(|_| broken("robot secret"))?;
        let guid = self
            .registries
            .update_managed_robot(robot, holder, &credential, &password, events)
            .await?;
        robot.record_credential(guid);
        Ok(())
    }
}

/// The organization-scoped credential holding the pull robot's login.
fn pull_credential(
    ambient: &Ambient,
    registry: &Registry,
    username: &str,
) -> Result<RegistryCredential, StoreError> {
    let location =
        RegistryLocation::parse(&registry.pull_location()).map_err(|_| broken("pull location"))?;
    let username = Username::parse(username).map_err(|_| broken("robot username"))?;
    let label = LabelKey::parse(MANAGED_BY_LABEL).map_err(|_| broken("managed label"))?;
    let value = LabelValue::parse(MANAGED_BY_REGISTRY).map_err(|_| broken("managed label"))?;
    let at = ambient.now();
    Ok(RegistryCredential {
        guid: ambient.credential_guid(),
        target: ScopeTarget::Organization(registry.organization()),
        location,
        username,
        metadata: Metadata::default().with_label(label, value),
        created_at: at,
        updated_at: at,
        revision: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::QuotaGb;

    #[test]
    fn the_pull_credential_is_the_organization_s_managed_credential_for_its_project() {
        let organization = OrganizationGuid::from_uuid(uuid::Uuid::from_u128(7));
        let quota = QuotaGb::new(1).unwrap();
        let ambient = Ambient::system();
        let registry = Registry::claim(
            ambient.registry_id(),
            organization,
            "harbor.example:8443".into(),
            quota,
            ambient.now(),
        );
        let credential = pull_credential(&ambient, &registry, "robot$org-x+berth-pull").unwrap();
        assert_eq!(
            credential.location.as_str(),
            format!("harbor.example:8443/{}", registry.project_name())
        );
        assert_eq!(credential.target, ScopeTarget::Organization(organization));
        assert_eq!(credential.username.as_str(), "robot$org-x+berth-pull");
        assert!(credential.is_managed());
    }
}
