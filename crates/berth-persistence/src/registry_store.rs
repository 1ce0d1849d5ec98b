//! [`RegistryStore`] on sea-orm: registry rows with leases, and robot credentials.

use std::sync::Arc;

use async_trait::async_trait;
use berth_domain::audit::AuditEvent;
use berth_domain::credential::{Password, RegistryCredential};
use berth_domain::ids::{CredentialGuid, OrganizationGuid};
use berth_domain::ports::{Lease, LeaseHolder, RegistryStore, StoreError};
use berth_domain::registry::{
    ExpiresInDays, ProjectName, ProvisionedProjectId, ProvisionedQuotaId, ProvisionedRobotId,
    QuotaGb, Registry, RegistryId, RegistryRecord, RegistryState, RobotAccess, RobotCredential,
    RobotId, RobotName, RobotRecord, RobotState,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit_store;
use crate::credential_store::SeaOrmCredentialStore;
use crate::entities::{registry, registry_robot as robot};
use crate::errors::{corrupt, store_error};
use crate::sealing::KeyRing;

/// How often [`RegistryStore::acquire_within`] asks again for a lease held by someone else.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Registries and robots in PostgreSQL or SQLite; the platform pull robot's credential is
/// written through the credential store's sealing, in the registry store's transactions.
#[derive(Clone)]
pub struct SeaOrmRegistryStore {
    db: DatabaseConnection,
    credentials: SeaOrmCredentialStore,
}

impl SeaOrmRegistryStore {
    /// `keys` seal the managed credentials' passwords, as [`SeaOrmCredentialStore`] seals every
    /// other credential's (both stores share one database).
    pub fn new(db: DatabaseConnection, keys: Arc<KeyRing>) -> Self {
        Self {
            credentials: SeaOrmCredentialStore::new(db.clone(), keys),
            db,
        }
    }

    /// Proves, inside `transaction`, that `holder` still holds registry `id`'s lease: a no-op
    /// write on the registry row, which on PostgreSQL also locks the row until commit, so no one
    /// can take the lease in between.
    async fn hold_in(
        transaction: &DatabaseTransaction,
        id: Uuid,
        holder: LeaseHolder,
    ) -> Result<(), StoreError> {
        let held = registry::Entity::update_many()
            .col_expr(registry::Column::LeaseHolder, Expr::value(holder.as_uuid()))
            .filter(registry::Column::Id.eq(id))
            .filter(held_by(holder))
            .exec(transaction)
            .await
            .map_err(store_error)?;
        if held.rows_affected == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    /// Writes a robot's progress inside `transaction`.
    async fn write_robot(
        transaction: &DatabaseTransaction,
        robot: &RobotCredential,
        credential: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let mut update = robot::Entity::update_many()
            .col_expr(
                robot::Column::HarborRobotId,
                Expr::value(robot.provisioned_id().map(ProvisionedRobotId::get)),
            )
            .col_expr(
                robot::Column::Username,
                Expr::value(robot.username().map(str::to_owned)),
            )
            .col_expr(
                robot::Column::ExpiresInDays,
                Expr::value(robot.expires_in_days().map(|d| i64::from(d.get()))),
            )
            .col_expr(robot::Column::ExpiresAt, Expr::value(robot.expires_at()))
            .col_expr(robot::Column::State, Expr::value(robot.state().as_str()))
            .col_expr(robot::Column::UpdatedAt, Expr::value(robot.updated_at()))
            .filter(robot::Column::Id.eq(robot.id().as_uuid()));
        if let Some(credential) = credential {
            update = update.col_expr(robot::Column::CredentialGuid, Expr::value(credential));
        }
        let result = update.exec(transaction).await.map_err(store_error)?;
        if result.rows_affected == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Deletes the credentials the robots matching `condition` manage, inside `transaction`.
    async fn delete_managed_credentials(
        transaction: &DatabaseTransaction,
        condition: Condition,
    ) -> Result<(), StoreError> {
        let managed: Vec<Option<Uuid>> = robot::Entity::find()
            .select_only()
            .column(robot::Column::CredentialGuid)
            .filter(condition)
            .filter(robot::Column::CredentialGuid.is_not_null())
            .into_tuple()
            .all(transaction)
            .await
            .map_err(store_error)?;
        for guid in managed.into_iter().flatten() {
            SeaOrmCredentialStore::delete_in(transaction, guid).await?;
        }
        Ok(())
    }

    /// The registry's progress, written only while `holder` holds the lease (and then given up
    /// when `release`).
    async fn write_progress(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        release: bool,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut update = registry::Entity::update_many()
            .col_expr(
                registry::Column::HarborProjectId,
                Expr::value(registry.project_id().map(ProvisionedProjectId::get)),
            )
            .col_expr(
                registry::Column::HarborQuotaId,
                Expr::value(registry.quota_id().map(ProvisionedQuotaId::get)),
            )
            .col_expr(
                registry::Column::ProjectRequestedAt,
                Expr::value(registry.project_requested_at()),
            )
            .col_expr(
                registry::Column::State,
                Expr::value(registry.state().as_str()),
            )
            .col_expr(
                registry::Column::EverEnabled,
                Expr::value(registry.ever_enabled()),
            )
            .col_expr(
                registry::Column::QuotaGb,
                Expr::value(i64::from(registry.quota_gb().get())),
            )
            .col_expr(
                registry::Column::UsedBytes,
                Expr::value(registry.used_bytes()),
            )
            .col_expr(
                registry::Column::UsedCheckedAt,
                Expr::value(registry.used_checked_at()),
            )
            .col_expr(
                registry::Column::UpdatedAt,
                Expr::value(registry.updated_at()),
            )
            .filter(registry::Column::Id.eq(registry.id().as_uuid()))
            .filter(held_by(holder));
        if release {
            update = update
                .col_expr(
                    registry::Column::LeaseHolder,
                    Expr::value(Option::<Uuid>::None),
                )
                .col_expr(
                    registry::Column::LeaseUntil,
                    Expr::value(Option::<OffsetDateTime>::None),
                );
        }
        if events.is_empty() {
            let result = update.exec(&self.db).await.map_err(store_error)?;
            return if result.rows_affected == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict)
            };
        }
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        let result = update.exec(&transaction).await.map_err(store_error)?;
        if result.rows_affected != 1 {
            return Err(StoreError::Conflict);
        }
        audit_store::insert_in(&transaction, events).await?;
        transaction.commit().await.map_err(store_error)
    }
}

fn registry_from(model: registry::Model) -> Result<Registry, StoreError> {
    Ok(Registry::restore(RegistryRecord {
        id: RegistryId::from_uuid(model.id),
        organization: OrganizationGuid::from_uuid(model.organization_guid),
        project_name: ProjectName::parse(&model.harbor_project)
            .map_err(|_| corrupt("project name"))?,
        project_id: model.harbor_project_id.map(ProvisionedProjectId::new),
        quota_id: model.harbor_quota_id.map(ProvisionedQuotaId::new),
        project_requested_at: model.project_requested_at,
        endpoint: model.endpoint,
        state: RegistryState::parse(&model.state).ok_or_else(|| corrupt("registry state"))?,
        ever_enabled: model.ever_enabled,
        quota_gb: u64::try_from(model.quota_gb)
            .ok()
            .and_then(|gb| QuotaGb::new(gb).ok())
            .ok_or_else(|| corrupt("quota"))?,
        used_bytes: model.used_bytes,
        used_checked_at: model.used_checked_at,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }))
}

fn robot_from(model: robot::Model) -> Result<RobotCredential, StoreError> {
    Ok(RobotCredential::restore(RobotRecord {
        id: RobotId::from_uuid(model.id),
        registry: RegistryId::from_uuid(model.registry_id),
        name: RobotName::parse(&model.name).map_err(|_| corrupt("robot name"))?,
        access: RobotAccess::parse(&model.access).ok_or_else(|| corrupt("robot access"))?,
        is_default: model.is_default,
        managed: model.managed,
        credential: model.credential_guid.map(CredentialGuid::from_uuid),
        expires_in_days: model
            .expires_in_days
            .map(|days| {
                u64::try_from(days)
                    .ok()
                    .and_then(|d| ExpiresInDays::new(d).ok())
                    .ok_or_else(|| corrupt("robot expiry"))
            })
            .transpose()?,
        provisioned_id: model.harbor_robot_id.map(ProvisionedRobotId::new),
        username: model.username,
        expires_at: model.expires_at,
        state: RobotState::parse(&model.state).ok_or_else(|| corrupt("robot state"))?,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }))
}

fn robot_row(robot: &RobotCredential) -> robot::ActiveModel {
    robot::ActiveModel {
        id: ActiveValue::Set(robot.id().as_uuid()),
        registry_id: ActiveValue::Set(robot.registry().as_uuid()),
        name: ActiveValue::Set(robot.name().as_str().to_owned()),
        access: ActiveValue::Set(robot.access().as_str().to_owned()),
        is_default: ActiveValue::Set(robot.is_default()),
        managed: ActiveValue::Set(robot.managed()),
        credential_guid: ActiveValue::Set(robot.credential().map(|g| g.as_uuid())),
        expires_in_days: ActiveValue::Set(robot.expires_in_days().map(|d| i64::from(d.get()))),
        harbor_robot_id: ActiveValue::Set(robot.provisioned_id().map(ProvisionedRobotId::get)),
        username: ActiveValue::Set(robot.username().map(str::to_owned)),
        expires_at: ActiveValue::Set(robot.expires_at()),
        state: ActiveValue::Set(robot.state().as_str().to_owned()),
        created_at: ActiveValue::Set(robot.created_at()),
        updated_at: ActiveValue::Set(robot.updated_at()),
    }
}

fn held_by(holder: LeaseHolder) -> Condition {
    Condition::all().add(registry::Column::LeaseHolder.eq(holder.as_uuid()))
}

#[async_trait]
impl RegistryStore for SeaOrmRegistryStore {
    #[tracing::instrument(name = "db.registries.claim", skip_all, fields(otel.kind = "client"))]
    async fn claim(&self, registry: &Registry, lease: Lease) -> Result<(), StoreError> {
        let row = registry::ActiveModel {
            id: ActiveValue::Set(registry.id().as_uuid()),
            organization_guid: ActiveValue::Set(registry.organization().as_uuid()),
            harbor_project: ActiveValue::Set(registry.project_name().as_str().to_owned()),
            harbor_project_id: ActiveValue::Set(
                registry.project_id().map(ProvisionedProjectId::get),
            ),
            harbor_quota_id: ActiveValue::Set(registry.quota_id().map(ProvisionedQuotaId::get)),
            project_requested_at: ActiveValue::Set(registry.project_requested_at()),
            endpoint: ActiveValue::Set(registry.endpoint().to_owned()),
            state: ActiveValue::Set(registry.state().as_str().to_owned()),
            ever_enabled: ActiveValue::Set(registry.ever_enabled()),
            quota_gb: ActiveValue::Set(i64::from(registry.quota_gb().get())),
            used_bytes: ActiveValue::Set(registry.used_bytes()),
            used_checked_at: ActiveValue::Set(registry.used_checked_at()),
            lease_holder: ActiveValue::Set(Some(lease.holder.as_uuid())),
            lease_until: ActiveValue::Set(Some(lease.until)),
            created_at: ActiveValue::Set(registry.created_at()),
            updated_at: ActiveValue::Set(registry.updated_at()),
        };
        registry::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.registries.get", skip_all, fields(otel.kind = "client"))]
    async fn get(&self, id: RegistryId) -> Result<Option<Registry>, StoreError> {
        registry::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(registry_from)
            .transpose()
    }

    #[tracing::instrument(name = "db.registries.get_by_organization", skip_all, fields(otel.kind = "client"))]
    async fn get_by_organization(
        &self,
        organization: OrganizationGuid,
    ) -> Result<Option<Registry>, StoreError> {
        registry::Entity::find()
            .filter(registry::Column::OrganizationGuid.eq(organization.as_uuid()))
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(registry_from)
            .transpose()
    }

    #[tracing::instrument(name = "db.registries.acquire", skip_all, fields(otel.kind = "client"))]
    async fn acquire(
        &self,
        id: RegistryId,
        lease: Lease,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // One conditional UPDATE: the database decides which of several contenders wins.
        let free = Condition::any()
            .add(registry::Column::LeaseUntil.is_null())
            .add(registry::Column::LeaseUntil.lt(now));
        let result = registry::Entity::update_many()
            .col_expr(
                registry::Column::LeaseHolder,
                Expr::value(lease.holder.as_uuid()),
            )
            .col_expr(registry::Column::LeaseUntil, Expr::value(lease.until))
            .filter(registry::Column::Id.eq(id.as_uuid()))
            .filter(free)
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected == 1)
    }

    #[tracing::instrument(name = "db.registries.acquire_within", skip_all, fields(otel.kind = "client"))]
    async fn acquire_within(
        &self,
        id: RegistryId,
        lease: Lease,
        wait: time::Duration,
    ) -> Result<bool, StoreError> {
        let deadline = std::time::Instant::now() + wait.unsigned_abs();
        loop {
            if self.acquire(id, lease, berth_domain::now()).await? {
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    #[tracing::instrument(name = "db.registries.save", skip_all, fields(otel.kind = "client"))]
    async fn save(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.write_progress(registry, holder, false, events).await
    }

    #[tracing::instrument(name = "db.registries.save_and_release", skip_all, fields(otel.kind = "client"))]
    async fn save_and_release(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.write_progress(registry, holder, true, events).await
    }

    #[tracing::instrument(name = "db.registries.release", skip_all, fields(otel.kind = "client"))]
    async fn release(&self, id: RegistryId, holder: LeaseHolder) -> Result<(), StoreError> {
        registry::Entity::update_many()
            .col_expr(
                registry::Column::LeaseHolder,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(
                registry::Column::LeaseUntil,
                Expr::value(Option::<OffsetDateTime>::None),
            )
            .filter(registry::Column::Id.eq(id.as_uuid()))
            .filter(held_by(holder))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.registries.delete", skip_all, fields(otel.kind = "client"))]
    async fn delete(
        &self,
        id: RegistryId,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        Self::hold_in(&transaction, id.as_uuid(), holder).await?;
        Self::delete_managed_credentials(
            &transaction,
            Condition::all().add(robot::Column::RegistryId.eq(id.as_uuid())),
        )
        .await?;
        let result = registry::Entity::delete_many()
            .filter(registry::Column::Id.eq(id.as_uuid()))
            .filter(held_by(holder))
            .exec(&transaction)
            .await
            .map_err(store_error)?;
        if result.rows_affected != 1 {
            return Err(StoreError::Conflict);
        }
        robot::Entity::delete_many()
            .filter(robot::Column::RegistryId.eq(id.as_uuid()))
            .exec(&transaction)
            .await
            .map_err(store_error)?;
        audit_store::insert_in(&transaction, events).await?;
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(name = "db.registries.stalled", skip_all, fields(otel.kind = "client"))]
    async fn stalled(&self, before: OffsetDateTime) -> Result<Vec<Registry>, StoreError> {
        let free = Condition::any()
            .add(registry::Column::LeaseUntil.is_null())
            .add(registry::Column::LeaseUntil.lt(berth_domain::now()));
        registry::Entity::find()
            .filter(registry::Column::State.is_in([
                RegistryState::Provisioning.as_str(),
                RegistryState::Disabling.as_str(),
                RegistryState::Purging.as_str(),
            ]))
            .filter(registry::Column::UpdatedAt.lte(before))
            .filter(free)
            .order_by_asc(registry::Column::UpdatedAt)
            .all(&self.db)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(registry_from)
            .collect()
    }

    #[tracing::instrument(name = "db.registries.record_usage", skip_all, fields(otel.kind = "client"))]
    async fn record_usage(
        &self,
        id: RegistryId,
        used_bytes: i64,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        registry::Entity::update_many()
            .col_expr(registry::Column::UsedBytes, Expr::value(used_bytes))
            .col_expr(registry::Column::UsedCheckedAt, Expr::value(at))
            .filter(registry::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.registries.insert_robot", skip_all, fields(otel.kind = "client"))]
    async fn insert_robot(&self, robot: &RobotCredential) -> Result<(), StoreError> {
        robot::Entity::insert(robot_row(robot))
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.registries.update_robot", skip_all, fields(otel.kind = "client"))]
    async fn update_robot(
        &self,
        robot: &RobotCredential,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        Self::hold_in(&transaction, robot.registry().as_uuid(), holder).await?;
        Self::write_robot(&transaction, robot, None).await?;
        audit_store::insert_in(&transaction, events).await?;
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(name = "db.registries.update_managed_robot", skip_all, fields(otel.kind = "client"))]
    async fn update_managed_robot(
        &self,
        robot: &RobotCredential,
        holder: LeaseHolder,
        credential: &RegistryCredential,
        password: &Password,
        events: &[AuditEvent],
    ) -> Result<CredentialGuid, StoreError> {
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        Self::hold_in(&transaction, robot.registry().as_uuid(), holder).await?;
        let guid = self
            .credentials
            .upsert_in(&transaction, credential, password)
            .await?;
        Self::write_robot(&transaction, robot, Some(guid)).await?;
        audit_store::insert_in(&transaction, events).await?;
        transaction.commit().await.map_err(store_error)?;
        Ok(CredentialGuid::from_uuid(guid))
    }

    #[tracing::instrument(name = "db.registries.delete_robot", skip_all, fields(otel.kind = "client"))]
    async fn delete_robot(&self, id: RobotId, events: &[AuditEvent]) -> Result<(), StoreError> {
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        Self::delete_managed_credentials(
            &transaction,
            Condition::all().add(robot::Column::Id.eq(id.as_uuid())),
        )
        .await?;
        let result = robot::Entity::delete_by_id(id.as_uuid())
            .exec(&transaction)
            .await
            .map_err(store_error)?;
        if result.rows_affected != 1 {
            return Err(StoreError::NotFound);
        }
        audit_store::insert_in(&transaction, events).await?;
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(name = "db.registries.robots", skip_all, fields(otel.kind = "client"))]
    async fn robots(&self, registry: RegistryId) -> Result<Vec<RobotCredential>, StoreError> {
        robot::Entity::find()
            .filter(robot::Column::RegistryId.eq(registry.as_uuid()))
            .order_by_asc(robot::Column::CreatedAt)
            .order_by_asc(robot::Column::Id)
            .all(&self.db)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(robot_from)
            .collect()
    }

    #[tracing::instrument(name = "db.registries.stalled_robots", skip_all, fields(otel.kind = "client"))]
    async fn stalled_robots(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<RobotCredential>, StoreError> {
        robot::Entity::find()
            .filter(
                robot::Column::State
                    .is_in([RobotState::Creating.as_str(), RobotState::Rotating.as_str()]),
            )
            .filter(robot::Column::UpdatedAt.lte(before))
            .all(&self.db)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(robot_from)
            .collect()
    }
}
