//! Purging a registry: robots (with the managed credential), every repository of the project,
//! the project, then the registry row. Each step is idempotent and the `purging` state is
//! recorded first, so a purge cut short (a crash, Harbor failing) is finished by a retry or by
//! the reconciler.

use crate::actor::Actor;
use crate::audit::{AuditActor, AuditData, AuditEventType};
use crate::ids::OrganizationGuid;
use crate::ports::{LeaseHolder, ProvisionError, StoreError};
use crate::registry::{ProvisionedProjectId, Registry, RegistryState};

use super::{LeaseWait, Need, RegistryError, RegistryService, registry_event};

/// How many times a purge lists and deletes a page of repositories (or tries the project)
/// before it gives up for this attempt: a bound on one call, not on the project (a page is up
/// to 100 repositories).
const PURGE_ROUNDS: usize = 10_000;

impl RegistryService {
    /// Deletes the organization's registry for good: its robots and managed credential, every
    /// repository of its project, the project and the registry row. The organization may then
    /// be deleted.
    ///
    /// # Errors
    /// As [`RegistryService::update_quota`] (a registry never enabled is
    /// [`RegistryError::NotFound`]), plus [`RegistryError::PurgeBlocked`].
    pub async fn purge(
        &self,
        actor: &Actor,
        organization: OrganizationGuid,
    ) -> Result<(), RegistryError> {
        self.authorize(actor, organization, Need::Write).await?;
        let id = purgeable(self.shown(organization).await?)?.id();
        // The same lease as every other change: robot changes in flight finish first, so every
        // robot is in Berth's record by the time the robots are deleted.
        let holder = self
            .take_lease(id, LeaseWait::Bounded)
            .await?
            .ok_or(RegistryError::Contended)?;
        self.holding(id, holder, async || {
            let registry = self
                .registries
                .get(id)
                .await?
                .ok_or(RegistryError::NotFound)?;
            let mut registry = purgeable(registry)?;
            if registry.state() != RegistryState::Purging {
                registry.start_purging();
                self.save(&mut registry, holder, &[]).await?;
            }
            self.finish_purge(&registry, holder, &AuditActor::user(actor))
                .await
        })
        .await
    }

    /// Deletes what a registry being purged still has, the row last (with the lease).
    pub(super) async fn finish_purge(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        by: &AuditActor,
    ) -> Result<(), RegistryError> {
        self.delete_robots(registry).await?;
        if let Some(project) = self.project_to_delete(registry).await? {
            self.delete_project_and_repositories(registry, project)
                .await?;
        }
        let event = registry_event(
            &self.ambient,
            by,
            AuditEventType::RegistryPurge,
            registry,
            AuditData::new(),
        );
        match self
            .registries
            .delete(registry.id(), holder, &[event])
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(RegistryError::Busy),
            Err(error) => Err(error.into()),
        }
    }

    /// The project Berth may delete for this registry: the one it recorded, or, when the id was
    /// never recorded, the one of its name that is provably Berth's own.
    pub(super) async fn project_to_delete(
        &self,
        registry: &Registry,
    ) -> Result<Option<ProvisionedProjectId>, RegistryError> {
        Ok(
            match (registry.project_id(), registry.project_requested_at()) {
                (Some(id), _) => Some(id),
                (None, Some(requested_at)) => {
                    self.own_project(registry.project_name(), requested_at)
                        .await?
                }
                (None, None) => None,
            },
        )
    }

    /// Deletes the repositories page by page (the first page, until none is left), then the
    /// project; a project the backend still refuses (412: something was pushed meanwhile) sends
    /// the purge back to the repositories. Never reports success while the project stands.
    async fn delete_project_and_repositories(
        &self,
        registry: &Registry,
        project: ProvisionedProjectId,
    ) -> Result<(), RegistryError> {
        let name = registry.project_name();
        for _ in 0..PURGE_ROUNDS {
            let repositories = match self.provisioner.repositories(name).await {
                Ok(repositories) => repositories,
                Err(ProvisionError::NotFound) => return Ok(()),
                Err(error) => return Err(error.into()),
            };
            if repositories.is_empty() {
                match self.provisioner.delete_project(project).await {
                    Ok(()) | Err(ProvisionError::NotFound) => return Ok(()),
                    Err(ProvisionError::Precondition(_)) => continue,
                    Err(error) => return Err(error.into()),
                }
            }
            for repository in &repositories {
                match self.provisioner.delete_repository(name, repository).await {
                    Ok(()) | Err(ProvisionError::NotFound) => {}
                    Err(ProvisionError::Precondition(reason)) => {
                        return Err(RegistryError::PurgeBlocked(format!(
                            "repository {repository}: {reason}"
                        )));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Err(RegistryError::PurgeBlocked(
            "repositories kept appearing while the project was purged".into(),
        ))
    }
}

/// A registry a purge may start on (or resume): ready, disabled, or already purging.
fn purgeable(registry: Registry) -> Result<Registry, RegistryError> {
    match registry.state() {
        RegistryState::Ready | RegistryState::Disabled | RegistryState::Purging => Ok(registry),
        RegistryState::Provisioning | RegistryState::Disabling => Err(RegistryError::Busy),
    }
}
