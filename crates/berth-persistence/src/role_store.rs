//! [`RoleStore`] on sea-orm, and the one-statement permission lookup of directory roles.
//!
//! Role writes hold their organization's row (`FOR UPDATE` on PostgreSQL; on SQLite `BEGIN
//! IMMEDIATE` takes the database's write lock), so adding a space role and deleting the user's
//! last organization role in that organization happen one after the other, on any replica.

use async_trait::async_trait;
use berth_domain::actor::{Role, RoleTarget, RoleType};
use berth_domain::audit::AuditEvent;
use berth_domain::ids::{OrganizationGuid, SpaceGuid};
use berth_domain::listing::Page;
use berth_domain::permissions::DirectoryVisibility;
use berth_domain::ports::{RoleRemoval, RoleStore, RoleUpsert, StoreError};
use berth_domain::roles::{
    PermissionFacts, RoleAssignment, RoleGuid, RoleOrderField, RoleQuery, UserGuid,
};
use sea_orm::sea_query::{Alias, Expr, Query, UnionType};
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use uuid::Uuid;

use crate::audit_store;
use crate::directory_store::SeaOrmDirectoryStore;
use crate::entities::{organization, role, space};
use crate::errors::{corrupt, lock_error, store_error};
use crate::paging::fetch_page;

fn row(assignment: &RoleAssignment) -> role::ActiveModel {
    let (space, target) = match assignment.role.target() {
        RoleTarget::Organization(organization) => (None, organization.as_uuid()),
        RoleTarget::Space(space) => (Some(space.as_uuid()), space.as_uuid()),
    };
    role::ActiveModel {
        guid: ActiveValue::Set(assignment.guid.as_uuid()),
        user_guid: ActiveValue::Set(assignment.user.as_str().to_owned()),
        role_type: ActiveValue::Set(assignment.role.role_type().as_str().to_owned()),
        organization_guid: ActiveValue::Set(assignment.organization.as_uuid()),
        space_guid: ActiveValue::Set(space),
        target_guid: ActiveValue::Set(target),
        created_at: ActiveValue::Set(assignment.created_at),
        updated_at: ActiveValue::Set(assignment.updated_at),
    }
}

/// A stored role type and target back into a [`Role`].
fn role_of(role_type: &str, organization: Uuid, space: Option<Uuid>) -> Result<Role, StoreError> {
    let kind = RoleType::parse(role_type).map_err(|_| corrupt("role_type"))?;
    match space {
        Some(space) => kind.in_space(SpaceGuid::from_uuid(space)),
        None => kind.in_organization(OrganizationGuid::from_uuid(organization)),
    }
    .map_err(|_| corrupt("role_type"))
}

fn from_row(model: role::Model) -> Result<RoleAssignment, StoreError> {
    Ok(RoleAssignment {
        guid: RoleGuid::from_uuid(model.guid),
        user: UserGuid::parse(&model.user_guid).map_err(|_| corrupt("user_guid"))?,
        role: role_of(&model.role_type, model.organization_guid, model.space_guid)?,
        organization: OrganizationGuid::from_uuid(model.organization_guid),
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

/// The roles a caller with this visibility may see: org roles of its organizations, roles in
/// its spaces, every space role of the organizations it manages, and its own.
fn visible(visibility: &DirectoryVisibility, viewer: Option<&str>) -> Condition {
    match visibility {
        DirectoryVisibility::Everything => Condition::all(),
        DirectoryVisibility::Scoped {
            organizations,
            managed_organizations,
            spaces,
        } => {
            let mut any = Condition::any()
                .add(Condition::all().add(role::Column::SpaceGuid.is_null()).add(
                    role::Column::OrganizationGuid.is_in(organizations.iter().map(|g| g.as_uuid())),
                ))
                .add(role::Column::SpaceGuid.is_in(spaces.iter().map(|g| g.as_uuid())))
                .add(
                    Condition::all()
                        .add(role::Column::SpaceGuid.is_not_null())
                        .add(
                            role::Column::OrganizationGuid
                                .is_in(managed_organizations.iter().map(|g| g.as_uuid())),
                        ),
                );
            if let Some(viewer) = viewer {
                any = any.add(role::Column::UserGuid.eq(viewer));
            }
            any
        }
    }
}

impl SeaOrmDirectoryStore {
    /// A transaction holding the write lock of `organization`'s row; `None` when it does not
    /// exist.
    async fn holding_organization(
        &self,
        organization: OrganizationGuid,
    ) -> Result<Option<DatabaseTransaction>, StoreError> {
        let transaction = self
            .connection()
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .map_err(lock_error)?;
        let found = organization::Entity::find_by_id(organization.as_uuid())
            .lock_exclusive()
            .one(&transaction)
            .await
            .map_err(lock_error)?;
        Ok(found.map(|_| transaction))
    }

    async fn role_by_guid(
        &self,
        connection: &impl ConnectionTrait,
        guid: RoleGuid,
    ) -> Result<Option<RoleAssignment>, StoreError> {
        role::Entity::find_by_id(guid.as_uuid())
            .one(connection)
            .await
            .map_err(store_error)?
            .map(from_row)
            .transpose()
    }
}

/// Roles of `user` in `organization` matching `space_role`, `except` one guid.
async fn count_roles(
    transaction: &DatabaseTransaction,
    user: &UserGuid,
    organization: OrganizationGuid,
    space_role: bool,
    except: Option<Uuid>,
) -> Result<u64, StoreError> {
    let mut condition = Condition::all()
        .add(role::Column::UserGuid.eq(user.as_str()))
        .add(role::Column::OrganizationGuid.eq(organization.as_uuid()))
        .add(if space_role {
            role::Column::SpaceGuid.is_not_null()
        } else {
            role::Column::SpaceGuid.is_null()
        });
    if let Some(except) = except {
        condition = condition.add(role::Column::Guid.ne(except));
    }
    role::Entity::find()
        .filter(condition)
        .count(transaction)
        .await
        .map_err(store_error)
}

#[async_trait]
impl RoleStore for SeaOrmDirectoryStore {
    #[tracing::instrument(name = "db.roles.upsert", skip_all, fields(otel.kind = "client"))]
    async fn upsert(
        &self,
        assignment: &RoleAssignment,
        event: &AuditEvent,
    ) -> Result<RoleUpsert, StoreError> {
        let Some(transaction) = self.holding_organization(assignment.organization).await? else {
            return Err(StoreError::MissingParent);
        };
        if let Some(existing) = self.role_by_guid(&transaction, assignment.guid).await? {
            return Ok(RoleUpsert::Exists(existing));
        }
        if assignment.space().is_some()
            && count_roles(
                &transaction,
                &assignment.user,
                assignment.organization,
                false,
                None,
            )
            .await?
                == 0
        {
            return Ok(RoleUpsert::NoOrganizationRole);
        }
        let inserted = role::Entity::insert(row(assignment))
            .exec_without_returning(&transaction)
            .await
            .map_err(store_error);
        match inserted {
            Ok(_) => {
                audit_store::insert_in(&transaction, std::slice::from_ref(event)).await?;
                transaction.commit().await.map_err(store_error)?;
                self.permissions_changed();
                Ok(RoleUpsert::Created)
            }
            Err(StoreError::Conflict) => {
                // The guid or the grant was taken by a writer that committed first; the
                // transaction is spent (PostgreSQL aborts it), so look outside it.
                drop(transaction);
                match self
                    .role_by_guid(self.connection(), assignment.guid)
                    .await?
                {
                    Some(existing) => Ok(RoleUpsert::Exists(existing)),
                    None => Ok(RoleUpsert::GrantTaken),
                }
            }
            Err(error) => Err(error),
        }
    }

    #[tracing::instrument(name = "db.roles.get", skip_all, fields(otel.kind = "client"))]
    async fn get(&self, guid: RoleGuid) -> Result<Option<RoleAssignment>, StoreError> {
        self.role_by_guid(self.connection(), guid).await
    }

    #[tracing::instrument(name = "db.roles.list", skip_all, fields(otel.kind = "client"))]
    async fn list(&self, query: &RoleQuery) -> Result<Page<RoleAssignment>, StoreError> {
        let mut condition =
            Condition::all().add(visible(&query.visibility, query.viewer.as_deref()));
        if let Some(guids) = &query.guids {
            condition = condition.add(role::Column::Guid.is_in(guids.iter().copied()));
        }
        if let Some(types) = &query.types {
            condition =
                condition.add(role::Column::RoleType.is_in(types.iter().map(|kind| kind.as_str())));
        }
        if let Some(users) = &query.user_guids {
            condition = condition.add(role::Column::UserGuid.is_in(users.iter().cloned()));
        }
        if let Some(organizations) = &query.organization_guids {
            // As Cloud Controller: the organization roles of these organizations.
            condition = condition.add(
                Condition::all()
                    .add(role::Column::SpaceGuid.is_null())
                    .add(role::Column::OrganizationGuid.is_in(organizations.iter().copied())),
            );
        }
        if let Some(spaces) = &query.space_guids {
            condition = condition.add(role::Column::SpaceGuid.is_in(spaces.iter().copied()));
        }
        let order = query.order_or_default();
        let column = match order.field {
            RoleOrderField::CreatedAt => role::Column::CreatedAt,
            RoleOrderField::UpdatedAt => role::Column::UpdatedAt,
        };
        let page = fetch_page(
            self.connection(),
            role::Entity::find().filter(condition),
            column,
            role::Column::Guid,
            order.direction,
            query.page,
        )
        .await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(from_row)
                .collect::<Result<_, _>>()?,
            total_results: page.total_results,
        })
    }

    #[tracing::instrument(name = "db.roles.delete", skip_all, fields(otel.kind = "client"))]
    async fn delete(&self, guid: RoleGuid, event: &AuditEvent) -> Result<RoleRemoval, StoreError> {
        let Some(stored) = self.role_by_guid(self.connection(), guid).await? else {
            return Err(StoreError::NotFound);
        };
        let Some(transaction) = self.holding_organization(stored.organization).await? else {
            return Err(StoreError::NotFound);
        };
        if stored.space().is_none()
            && count_roles(
                &transaction,
                &stored.user,
                stored.organization,
                false,
                Some(guid.as_uuid()),
            )
            .await?
                == 0
        {
            let space_roles =
                count_roles(&transaction, &stored.user, stored.organization, true, None).await?;
            if space_roles > 0 {
                return Ok(RoleRemoval::SpaceRolesRemain(space_roles));
            }
        }
        let result = role::Entity::delete_by_id(guid.as_uuid())
            .exec(&transaction)
            .await
            .map_err(store_error)?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        audit_store::insert_in(&transaction, std::slice::from_ref(event)).await?;
        transaction.commit().await.map_err(store_error)?;
        self.permissions_changed();
        Ok(RoleRemoval::Deleted)
    }
}

impl SeaOrmDirectoryStore {
    /// [`berth_domain::ports::DirectoryStore::permission_facts`]: one `UNION ALL` statement,
    /// the user's roles from the `(user_guid, ...)` unique index and the token's spaces from
    /// the spaces' primary key.
    pub(crate) async fn read_permission_facts(
        &self,
        user: &str,
        spaces: &[SpaceGuid],
    ) -> Result<PermissionFacts, StoreError> {
        let mut statement = Query::select()
            .expr_as(Expr::col(role::Column::RoleType), Alias::new("role_type"))
            .expr_as(
                Expr::col(role::Column::OrganizationGuid),
                Alias::new("organization_guid"),
            )
            .expr_as(Expr::col(role::Column::SpaceGuid), Alias::new("space_guid"))
            .from(role::Entity)
            .and_where(role::Column::UserGuid.eq(user))
            .to_owned();
        if !spaces.is_empty() {
            statement.union(
                UnionType::All,
                Query::select()
                    .expr_as(Expr::val(Option::<String>::None), Alias::new("role_type"))
                    .expr_as(
                        Expr::col(space::Column::OrganizationGuid),
                        Alias::new("organization_guid"),
                    )
                    .expr_as(Expr::col(space::Column::Guid), Alias::new("space_guid"))
                    .from(space::Entity)
                    .and_where(space::Column::Guid.is_in(spaces.iter().map(|g| g.as_uuid())))
                    .to_owned(),
            );
        }
        let rows = self
            .connection()
            .query_all(&statement)
            .await
            .map_err(store_error)?;
        let mut facts = PermissionFacts::default();
        for row in rows {
            let role_type: Option<String> = row.try_get("", "role_type").map_err(store_error)?;
            let organization: Uuid = row.try_get("", "organization_guid").map_err(store_error)?;
            let space: Option<Uuid> = row.try_get("", "space_guid").map_err(store_error)?;
            if let Some(space) = space {
                facts.space_organizations.push((
                    SpaceGuid::from_uuid(space),
                    OrganizationGuid::from_uuid(organization),
                ));
            }
            if let Some(role_type) = role_type {
                facts.roles.push(role_of(&role_type, organization, space)?);
            }
        }
        Ok(facts)
    }
}
