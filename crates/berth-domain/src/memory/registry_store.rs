//! [`RegistryStore`] in memory.

use std::time::Instant;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::credential_store::upsert_row;
use super::{MemoryDatabase, RegistryRow, Tables};
use crate::audit::AuditEvent;
use crate::credential::{Password, RegistryCredential};
use crate::ids::{CredentialGuid, OrganizationGuid};
use crate::ports::{Lease, LeaseHolder, RegistryStore, StoreError};
use crate::registry::{Registry, RegistryId, RegistryState, RobotCredential, RobotId, RobotState};

/// Registries and their robots in a [`MemoryDatabase`].
#[derive(Clone, Debug)]
pub struct MemoryRegistryStore {
    database: MemoryDatabase,
}

impl MemoryRegistryStore {
    /// The store on `database`'s tables.
    pub fn new(database: MemoryDatabase) -> Self {
        Self { database }
    }
}

fn free(row: &RegistryRow, now: OffsetDateTime) -> bool {
    row.lease.is_none_or(|lease| lease.until < now)
}

fn held_by(row: &RegistryRow, holder: LeaseHolder) -> bool {
    row.lease.is_some_and(|lease| lease.holder == holder)
}

/// The row of registry `id` while `holder` holds its lease.
fn hold(
    tables: &mut Tables,
    id: RegistryId,
    holder: LeaseHolder,
) -> Result<&mut RegistryRow, StoreError> {
    tables
        .registries
        .get_mut(&id)
        .filter(|row| held_by(row, holder))
        .ok_or(StoreError::Conflict)
}

/// Replaces a robot's progress; its managed credential is kept unless `credential` is given.
fn write_robot(
    tables: &mut Tables,
    robot: &RobotCredential,
    credential: Option<CredentialGuid>,
) -> Result<(), StoreError> {
    let stored = tables
        .robots
        .get_mut(&robot.id())
        .ok_or(StoreError::NotFound)?;
    let kept = stored.credential();
    *stored = robot.clone();
    if let Some(guid) = credential.or(kept) {
        stored.record_credential(guid);
    }
    Ok(())
}

/// Deletes the credentials the chosen robots manage.
fn delete_managed_credentials(tables: &mut Tables, robot: impl Fn(&RobotCredential) -> bool) {
    let managed: Vec<CredentialGuid> = tables
        .robots
        .values()
        .filter(|candidate| robot(candidate))
        .filter_map(RobotCredential::credential)
        .collect();
    for guid in managed {
        tables.credentials.remove(&guid);
    }
}

impl MemoryRegistryStore {
    fn write_progress(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        release: bool,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        let row = hold(&mut tables, registry.id(), holder)?;
        row.registry = registry.clone();
        if release {
            row.lease = None;
        }
        tables.record(events);
        if release {
            tables.notify();
        }
        Ok(())
    }
}

#[async_trait]
impl RegistryStore for MemoryRegistryStore {
    async fn claim(&self, registry: &Registry, lease: Lease) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        if tables.registries.contains_key(&registry.id())
            || tables
                .registries
                .values()
                .any(|row| row.registry.organization() == registry.organization())
        {
            return Err(StoreError::Conflict);
        }
        if !tables.organizations.contains_key(&registry.organization()) {
            return Err(StoreError::MissingParent);
        }
        tables.registries.insert(
            registry.id(),
            RegistryRow {
                registry: registry.clone(),
                lease: Some(lease),
            },
        );
        Ok(())
    }

    async fn get(&self, id: RegistryId) -> Result<Option<Registry>, StoreError> {
        Ok(self
            .database
            .tables()
            .registries
            .get(&id)
            .map(|row| row.registry.clone()))
    }

    async fn get_by_organization(
        &self,
        organization: OrganizationGuid,
    ) -> Result<Option<Registry>, StoreError> {
        Ok(self
            .database
            .tables()
            .registries
            .values()
            .find(|row| row.registry.organization() == organization)
            .map(|row| row.registry.clone()))
    }

    async fn acquire(
        &self,
        id: RegistryId,
        lease: Lease,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tables = self.database.tables();
        Ok(match tables.registries.get_mut(&id) {
            Some(row) if free(row, now) => {
                row.lease = Some(lease);
                true
            }
            _ => false,
        })
    }

    async fn acquire_within(
        &self,
        id: RegistryId,
        lease: Lease,
        wait: time::Duration,
    ) -> Result<bool, StoreError> {
        let deadline = Instant::now() + wait.unsigned_abs();
        let length = lease.until - self.database.now();
        loop {
            let seen = {
                let mut tables = self.database.tables();
                let now = self.database.now();
                match tables.registries.get_mut(&id) {
                    None => return Ok(false),
                    Some(row) if free(row, now) => {
                        // `lease.until` counts from the moment it is taken.
                        row.lease = Some(Lease {
                            holder: lease.holder,
                            until: now + length,
                        });
                        return Ok(true);
                    }
                    Some(_) if Instant::now() >= deadline => return Ok(false),
                    Some(_) => tables.version,
                }
            };
            self.database.changed(seen, Some(deadline)).await;
        }
    }

    async fn save(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.write_progress(registry, holder, false, events)
    }

    async fn save_and_release(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.write_progress(registry, holder, true, events)
    }

    async fn release(&self, id: RegistryId, holder: LeaseHolder) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        if let Some(row) = tables
            .registries
            .get_mut(&id)
            .filter(|row| held_by(row, holder))
        {
            row.lease = None;
            tables.notify();
        }
        Ok(())
    }

    async fn delete(
        &self,
        id: RegistryId,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        hold(&mut tables, id, holder)?;
        delete_managed_credentials(&mut tables, |robot| robot.registry() == id);
        tables.robots.retain(|_, robot| robot.registry() != id);
        tables.registries.remove(&id);
        tables.record(events);
        tables.notify();
        Ok(())
    }

    async fn stalled(&self, before: OffsetDateTime) -> Result<Vec<Registry>, StoreError> {
        let now = self.database.now();
        let mut found: Vec<Registry> = self
            .database
            .tables()
            .registries
            .values()
            .filter(|row| {
                matches!(
                    row.registry.state(),
                    RegistryState::Provisioning | RegistryState::Disabling | RegistryState::Purging
                ) && row.registry.updated_at() <= before
                    && free(row, now)
            })
            .map(|row| row.registry.clone())
            .collect();
        found.sort_by_key(Registry::updated_at);
        Ok(found)
    }

    async fn record_usage(
        &self,
        id: RegistryId,
        used_bytes: i64,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if let Some(row) = self.database.tables().registries.get_mut(&id) {
            row.registry.record_usage(used_bytes, at);
        }
        Ok(())
    }

    async fn insert_robot(&self, robot: &RobotCredential) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        if tables.robots.contains_key(&robot.id())
            || tables
                .robots
                .values()
                .any(|other| other.registry() == robot.registry() && other.name() == robot.name())
        {
            return Err(StoreError::Conflict);
        }
        if !tables.registries.contains_key(&robot.registry()) {
            return Err(StoreError::MissingParent);
        }
        tables.robots.insert(robot.id(), robot.clone());
        Ok(())
    }

    async fn update_robot(
        &self,
        robot: &RobotCredential,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        hold(&mut tables, robot.registry(), holder)?;
        write_robot(&mut tables, robot, None)?;
        tables.record(events);
        Ok(())
    }

    async fn update_managed_robot(
        &self,
        robot: &RobotCredential,
        holder: LeaseHolder,
        credential: &RegistryCredential,
        password: &Password,
        events: &[AuditEvent],
    ) -> Result<CredentialGuid, StoreError> {
        let mut tables = self.database.tables();
        hold(&mut tables, robot.registry(), holder)?;
        if !tables.robots.contains_key(&robot.id()) {
            return Err(StoreError::NotFound);
        }
        let guid = upsert_row(&mut tables, credential, password)?;
        write_robot(&mut tables, robot, Some(guid))?;
        tables.record(events);
        Ok(guid)
    }

    async fn delete_robot(&self, id: RobotId, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut tables = self.database.tables();
        if !tables.robots.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        delete_managed_credentials(&mut tables, |robot| robot.id() == id);
        tables.robots.remove(&id);
        tables.record(events);
        Ok(())
    }

    async fn robots(&self, registry: RegistryId) -> Result<Vec<RobotCredential>, StoreError> {
        let mut found: Vec<RobotCredential> = self
            .database
            .tables()
            .robots
            .values()
            .filter(|robot| robot.registry() == registry)
            .cloned()
            .collect();
        found.sort_by_key(|robot| (robot.created_at(), robot.id()));
        Ok(found)
    }

    async fn stalled_robots(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<RobotCredential>, StoreError> {
        Ok(self
            .database
            .tables()
            .robots
            .values()
            .filter(|robot| {
                matches!(robot.state(), RobotState::Creating | RobotState::Rotating)
                    && robot.updated_at() <= before
            })
            .cloned()
            .collect())
    }
}
