//! [`RegistryStore`] on sea-orm: registry rows with leases, and robot credentials.

use async_trait::async_trait;
use berth_domain::ids::OrganizationGuid;
use berth_domain::ports::{Lease, RegistryStore, StoreError};
use berth_domain::registry::{
    ExpiresInDays, QuotaGb, Registry, RegistryId, RegistryState, RobotAccess, RobotCredential,
    RobotId, RobotName, RobotState,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::entities::{registry, registry_robot as robot};
use crate::errors::{corrupt, store_error};

/// How often [`RegistryStore::acquire_within`] asks again for a lease held by someone else.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Registries and robots in PostgreSQL or SQLite.
#[derive(Clone)]
pub struct SeaOrmRegistryStore {
    db: DatabaseConnection,
}

impl SeaOrmRegistryStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The registry's progress, written only while `holder` holds the lease (and then given up
    /// when `release`).
    async fn write_progress(
        &self,
        registry: &Registry,
        holder: Uuid,
        release: bool,
    ) -> Result<(), StoreError> {
        let mut update = registry::Entity::update_many()
            .col_expr(
                registry::Column::HarborProjectId,
                Expr::value(registry.harbor_project_id),
            )
            .col_expr(
                registry::Column::HarborQuotaId,
                Expr::value(registry.harbor_quota_id),
            )
            .col_expr(
                registry::Column::ProjectRequestedAt,
                Expr::value(registry.project_requested_at),
            )
            .col_expr(
                registry::Column::State,
                Expr::value(registry.state.as_str()),
            )
            .col_expr(
                registry::Column::EverEnabled,
                Expr::value(registry.ever_enabled),
            )
            .col_expr(
                registry::Column::QuotaGb,
                Expr::value(i64::from(registry.quota_gb.get())),
            )
            .col_expr(
                registry::Column::UsedBytes,
                Expr::value(registry.used_bytes),
            )
            .col_expr(
                registry::Column::UsedCheckedAt,
                Expr::value(registry.used_checked_at),
            )
            .col_expr(
                registry::Column::UpdatedAt,
                Expr::value(registry.updated_at),
            )
            .filter(registry::Column::Id.eq(registry.id.0))
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
        let result = update.exec(&self.db).await.map_err(store_error)?;
        if result.rows_affected == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }
}

fn registry_from(model: registry::Model) -> Result<Registry, StoreError> {
    Ok(Registry {
        id: RegistryId(model.id),
        organization: OrganizationGuid::from_uuid(model.organization_guid),
        harbor_project: model.harbor_project,
        harbor_project_id: model.harbor_project_id,
        harbor_quota_id: model.harbor_quota_id,
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
    })
}

fn robot_from(model: robot::Model) -> Result<RobotCredential, StoreError> {
    Ok(RobotCredential {
        id: RobotId(model.id),
        registry: RegistryId(model.registry_id),
        name: RobotName::parse(&model.name).map_err(|_| corrupt("robot name"))?,
        access: RobotAccess::parse(&model.access).ok_or_else(|| corrupt("robot access"))?,
        is_default: model.is_default,
        expires_in_days: model
            .expires_in_days
            .map(|days| {
                u64::try_from(days)
                    .ok()
                    .and_then(|d| ExpiresInDays::new(d).ok())
                    .ok_or_else(|| corrupt("robot expiry"))
            })
            .transpose()?,
        harbor_robot_id: model.harbor_robot_id,
        username: model.username,
        expires_at: model.expires_at,
        state: RobotState::parse(&model.state).ok_or_else(|| corrupt("robot state"))?,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

fn robot_row(robot: &RobotCredential) -> robot::ActiveModel {
    robot::ActiveModel {
        id: ActiveValue::Set(robot.id.0),
        registry_id: ActiveValue::Set(robot.registry.0),
        name: ActiveValue::Set(robot.name.as_str().to_owned()),
        access: ActiveValue::Set(robot.access.as_str().to_owned()),
        is_default: ActiveValue::Set(robot.is_default),
        expires_in_days: ActiveValue::Set(robot.expires_in_days.map(|d| i64::from(d.get()))),
        harbor_robot_id: ActiveValue::Set(robot.harbor_robot_id),
        username: ActiveValue::Set(robot.username.clone()),
        expires_at: ActiveValue::Set(robot.expires_at),
        state: ActiveValue::Set(robot.state.as_str().to_owned()),
        created_at: ActiveValue::Set(robot.created_at),
        updated_at: ActiveValue::Set(robot.updated_at),
    }
}

fn held_by(holder: Uuid) -> Condition {
    Condition::all().add(registry::Column::LeaseHolder.eq(holder))
}

#[async_trait]
impl RegistryStore for SeaOrmRegistryStore {
    #[tracing::instrument(name = "db.registries.claim", skip_all, fields(otel.kind = "client"))]
    async fn claim(&self, registry: &Registry, lease: Lease) -> Result<(), StoreError> {
        let row = registry::ActiveModel {
            id: ActiveValue::Set(registry.id.0),
            organization_guid: ActiveValue::Set(registry.organization.as_uuid()),
            harbor_project: ActiveValue::Set(registry.harbor_project.clone()),
            harbor_project_id: ActiveValue::Set(registry.harbor_project_id),
            harbor_quota_id: ActiveValue::Set(registry.harbor_quota_id),
            project_requested_at: ActiveValue::Set(registry.project_requested_at),
            endpoint: ActiveValue::Set(registry.endpoint.clone()),
            state: ActiveValue::Set(registry.state.as_str().to_owned()),
            ever_enabled: ActiveValue::Set(registry.ever_enabled),
            quota_gb: ActiveValue::Set(i64::from(registry.quota_gb.get())),
            used_bytes: ActiveValue::Set(registry.used_bytes),
            used_checked_at: ActiveValue::Set(registry.used_checked_at),
            lease_holder: ActiveValue::Set(Some(lease.holder)),
            lease_until: ActiveValue::Set(Some(lease.until)),
            created_at: ActiveValue::Set(registry.created_at),
            updated_at: ActiveValue::Set(registry.updated_at),
        };
        registry::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.registries.get", skip_all, fields(otel.kind = "client"))]
    async fn get(&self, id: RegistryId) -> Result<Option<Registry>, StoreError> {
        registry::Entity::find_by_id(id.0)
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
            .col_expr(registry::Column::LeaseHolder, Expr::value(lease.holder))
            .col_expr(registry::Column::LeaseUntil, Expr::value(lease.until))
            .filter(registry::Column::Id.eq(id.0))
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
    async fn save(&self, registry: &Registry, holder: Uuid) -> Result<(), StoreError> {
        self.write_progress(registry, holder, false).await
    }

    #[tracing::instrument(name = "db.registries.save_and_release", skip_all, fields(otel.kind = "client"))]
    async fn save_and_release(&self, registry: &Registry, holder: Uuid) -> Result<(), StoreError> {
        self.write_progress(registry, holder, true).await
    }

    #[tracing::instrument(name = "db.registries.release", skip_all, fields(otel.kind = "client"))]
    async fn release(&self, id: RegistryId, holder: Uuid) -> Result<(), StoreError> {
        registry::Entity::update_many()
            .col_expr(
                registry::Column::LeaseHolder,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(
                registry::Column::LeaseUntil,
                Expr::value(Option::<OffsetDateTime>::None),
            )
            .filter(registry::Column::Id.eq(id.0))
            .filter(held_by(holder))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.registries.delete", skip_all, fields(otel.kind = "client"))]
    async fn delete(&self, id: RegistryId, holder: Uuid) -> Result<(), StoreError> {
        let transaction = self.db.begin().await.map_err(store_error)?;
        let result = registry::Entity::delete_many()
            .filter(registry::Column::Id.eq(id.0))
            .filter(held_by(holder))
            .exec(&transaction)
            .await
            .map_err(store_error)?;
        if result.rows_affected != 1 {
            return Err(StoreError::Conflict);
        }
        robot::Entity::delete_many()
            .filter(robot::Column::RegistryId.eq(id.0))
            .exec(&transaction)
            .await
            .map_err(store_error)?;
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
            .filter(registry::Column::Id.eq(id.0))
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
    async fn update_robot(&self, robot: &RobotCredential, holder: Uuid) -> Result<(), StoreError> {
        let transaction = self.db.begin().await.map_err(store_error)?;
        // A no-op write on the registry row: it proves the lease is still ours and, on
        // PostgreSQL, locks the row until commit, so no one can take the lease in between.
        let held = registry::Entity::update_many()
            .col_expr(registry::Column::LeaseHolder, Expr::value(holder))
            .filter(registry::Column::Id.eq(robot.registry.0))
            .filter(held_by(holder))
            .exec(&transaction)
            .await
            .map_err(store_error)?;
        if held.rows_affected != 1 {
            return Err(StoreError::Conflict);
        }
        let result = robot::Entity::update_many()
            .col_expr(
                robot::Column::HarborRobotId,
                Expr::value(robot.harbor_robot_id),
            )
            .col_expr(robot::Column::Username, Expr::value(robot.username.clone()))
            .col_expr(robot::Column::ExpiresAt, Expr::value(robot.expires_at))
            .col_expr(robot::Column::State, Expr::value(robot.state.as_str()))
            .col_expr(robot::Column::UpdatedAt, Expr::value(robot.updated_at))
            .filter(robot::Column::Id.eq(robot.id.0))
            .exec(&transaction)
            .await
            .map_err(store_error)?;
        if result.rows_affected != 1 {
            return Err(StoreError::NotFound);
        }
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(name = "db.registries.delete_robot", skip_all, fields(otel.kind = "client"))]
    async fn delete_robot(&self, id: RobotId) -> Result<(), StoreError> {
        let result = robot::Entity::delete_by_id(id.0)
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        if result.rows_affected == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    #[tracing::instrument(name = "db.registries.robots", skip_all, fields(otel.kind = "client"))]
    async fn robots(&self, registry: RegistryId) -> Result<Vec<RobotCredential>, StoreError> {
        robot::Entity::find()
            .filter(robot::Column::RegistryId.eq(registry.0))
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
            .filter(robot::Column::State.eq(RobotState::Creating.as_str()))
            .filter(robot::Column::UpdatedAt.lte(before))
            .all(&self.db)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(robot_from)
            .collect()
    }
}
