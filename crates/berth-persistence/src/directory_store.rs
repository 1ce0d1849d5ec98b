//! [`DirectoryStore`] on sea-orm.

use async_trait::async_trait;
use berth_domain::directory::{App, Dependents, Organization, ResourceName, Space};
use berth_domain::ids::{AppGuid, OrganizationGuid, SpaceGuid};
use berth_domain::listing::{Direction, DirectoryOrderField, DirectoryQuery, Page};
use berth_domain::permissions::DirectoryVisibility;
use berth_domain::ports::{DirectoryStore, StoreError};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, DatabaseConnection, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QuerySelect, Select,
};

use crate::entities::{app, organization, registry, registry_credential, space};
use crate::errors::{corrupt, store_error};
use crate::paging::fetch_page;

/// Organizations, spaces and apps in PostgreSQL or SQLite.
#[derive(Clone)]
pub struct SeaOrmDirectoryStore {
    db: DatabaseConnection,
}

impl SeaOrmDirectoryStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn count<E: EntityTrait>(&self, select: Select<E>) -> Result<u64, StoreError>
    where
        E::Model: FromQueryResult + Send + Sync,
    {
        select.count(&self.db).await.map_err(store_error)
    }

    async fn credentials_with(&self, condition: Condition) -> Result<u64, StoreError> {
        self.count(registry_credential::Entity::find().filter(condition))
            .await
    }
}

/// Spaces (and, through `space_column`, apps) the caller may see: its spaces, and every space of
/// the organizations it manages.
fn space_visibility(
    visibility: &DirectoryVisibility,
    space_column: impl ColumnTrait,
    organization_column: impl ColumnTrait,
) -> Condition {
    match visibility {
        DirectoryVisibility::Everything => Condition::all(),
        DirectoryVisibility::Scoped {
            managed_organizations,
            spaces,
            ..
        } => Condition::any()
            .add(space_column.is_in(spaces.iter().map(|g| g.as_uuid())))
            .add(organization_column.is_in(managed_organizations.iter().map(|g| g.as_uuid()))),
    }
}

fn name(text: &str) -> Result<ResourceName, StoreError> {
    ResourceName::parse(text).map_err(|_| corrupt("name"))
}

/// The columns every directory table shares, so one listing routine serves all three.
struct ListColumns<C> {
    guid: C,
    name: C,
    parent: Option<C>,
    created_at: C,
    updated_at: C,
}

async fn list<E>(
    db: &DatabaseConnection,
    columns: ListColumns<E::Column>,
    visible: Condition,
    query: &DirectoryQuery,
) -> Result<Page<E::Model>, StoreError>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
{
    let mut condition = Condition::all().add(visible);
    if let Some(guids) = &query.guids {
        condition = condition.add(columns.guid.is_in(guids.iter().copied()));
    }
    if let Some(names) = &query.names {
        condition = condition.add(columns.name.is_in(names.iter().cloned()));
    }
    if let (Some(parents), Some(parent)) = (&query.parent_guids, columns.parent) {
        condition = condition.add(parent.is_in(parents.iter().copied()));
    }
    let filtered = E::find().filter(condition);
    let order = query.order.unwrap_or(berth_domain::listing::Ordering {
        field: DirectoryOrderField::CreatedAt,
        direction: Direction::Ascending,
    });
    let column = match order.field {
        DirectoryOrderField::CreatedAt => columns.created_at,
        DirectoryOrderField::UpdatedAt => columns.updated_at,
        DirectoryOrderField::Name => columns.name,
    };
    fetch_page(
        db,
        filtered,
        column,
        columns.guid,
        order.direction,
        query.page,
    )
    .await
}

fn page_into<M, T>(
    page: Page<M>,
    convert: impl Fn(M) -> Result<T, StoreError>,
) -> Result<Page<T>, StoreError> {
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(convert)
            .collect::<Result<_, _>>()?,
        total_results: page.total_results,
    })
}

fn organization_from(model: organization::Model) -> Result<Organization, StoreError> {
    Ok(Organization {
        guid: OrganizationGuid::from_uuid(model.guid),
        name: name(&model.name)?,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

fn space_from(model: space::Model) -> Result<Space, StoreError> {
    Ok(Space {
        guid: SpaceGuid::from_uuid(model.guid),
        name: name(&model.name)?,
        organization: OrganizationGuid::from_uuid(model.organization_guid),
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

fn app_from(model: app::Model) -> Result<App, StoreError> {
    Ok(App {
        guid: AppGuid::from_uuid(model.guid),
        name: name(&model.name)?,
        space: SpaceGuid::from_uuid(model.space_guid),
        organization: OrganizationGuid::from_uuid(model.organization_guid),
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

/// Turns "no row changed" into [`StoreError::NotFound`].
fn changed(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl DirectoryStore for SeaOrmDirectoryStore {
    #[tracing::instrument(name = "db.directory.insert_organization", skip_all, fields(otel.kind = "client"))]
    async fn insert_organization(&self, organization: &Organization) -> Result<(), StoreError> {
        let row = organization::ActiveModel {
            guid: ActiveValue::Set(organization.guid.as_uuid()),
            name: ActiveValue::Set(organization.name.as_str().to_owned()),
            created_at: ActiveValue::Set(organization.created_at),
            updated_at: ActiveValue::Set(organization.updated_at),
        };
        organization::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.directory.update_organization", skip_all, fields(otel.kind = "client"))]
    async fn update_organization(&self, organization: &Organization) -> Result<(), StoreError> {
        let result = organization::Entity::update_many()
            .col_expr(
                organization::Column::Name,
                Expr::value(organization.name.as_str()),
            )
            .col_expr(
                organization::Column::UpdatedAt,
                Expr::value(organization.updated_at),
            )
            .filter(organization::Column::Guid.eq(organization.guid.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        changed(result.rows_affected)
    }

    #[tracing::instrument(name = "db.directory.get_organization", skip_all, fields(otel.kind = "client"))]
    async fn get_organization(
        &self,
        guid: OrganizationGuid,
    ) -> Result<Option<Organization>, StoreError> {
        organization::Entity::find_by_id(guid.as_uuid())
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(organization_from)
            .transpose()
    }

    #[tracing::instrument(name = "db.directory.list_organizations", skip_all, fields(otel.kind = "client"))]
    async fn list_organizations(
        &self,
        query: &DirectoryQuery,
    ) -> Result<Page<Organization>, StoreError> {
        let columns = ListColumns {
            guid: organization::Column::Guid,
            name: organization::Column::Name,
            parent: None,
            created_at: organization::Column::CreatedAt,
            updated_at: organization::Column::UpdatedAt,
        };
        let visible = match &query.visibility {
            DirectoryVisibility::Everything => Condition::all(),
            DirectoryVisibility::Scoped { organizations, .. } => Condition::all()
                .add(organization::Column::Guid.is_in(organizations.iter().map(|g| g.as_uuid()))),
        };
        page_into(
            list::<organization::Entity>(&self.db, columns, visible, query).await?,
            organization_from,
        )
    }

    #[tracing::instrument(name = "db.directory.delete_organization", skip_all, fields(otel.kind = "client"))]
    async fn delete_organization(&self, guid: OrganizationGuid) -> Result<(), StoreError> {
        let uuid = guid.as_uuid();
        // The foreign keys make the delete itself refuse when anything still refers to the row,
        // so a concurrent insert can never leave an orphan; the counts only explain the refusal.
        match organization::Entity::delete_by_id(uuid)
            .exec(&self.db)
            .await
            .map_err(store_error)
        {
            Ok(result) => changed(result.rows_affected),
            Err(StoreError::MissingParent) => Err(StoreError::InUse(Dependents {
                registries: self
                    .count(
                        registry::Entity::find()
                            .filter(registry::Column::OrganizationGuid.eq(uuid)),
                    )
                    .await?,
                spaces: self
                    .count(space::Entity::find().filter(space::Column::OrganizationGuid.eq(uuid)))
                    .await?,
                apps: 0,
                credentials: self
                    .credentials_with(
                        Condition::all()
                            .add(registry_credential::Column::OrganizationGuid.eq(uuid)),
                    )
                    .await?,
            })),
            Err(error) => Err(error),
        }
    }

    #[tracing::instrument(name = "db.directory.insert_space", skip_all, fields(otel.kind = "client"))]
    async fn insert_space(&self, space: &Space) -> Result<(), StoreError> {
        let row = space::ActiveModel {
            guid: ActiveValue::Set(space.guid.as_uuid()),
            name: ActiveValue::Set(space.name.as_str().to_owned()),
            organization_guid: ActiveValue::Set(space.organization.as_uuid()),
            created_at: ActiveValue::Set(space.created_at),
            updated_at: ActiveValue::Set(space.updated_at),
        };
        space::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.directory.update_space", skip_all, fields(otel.kind = "client"))]
    async fn update_space(&self, space: &Space) -> Result<(), StoreError> {
        let result = space::Entity::update_many()
            .col_expr(space::Column::Name, Expr::value(space.name.as_str()))
            .col_expr(space::Column::UpdatedAt, Expr::value(space.updated_at))
            .filter(space::Column::Guid.eq(space.guid.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        changed(result.rows_affected)
    }

    #[tracing::instrument(name = "db.directory.get_space", skip_all, fields(otel.kind = "client"))]
    async fn get_space(&self, guid: SpaceGuid) -> Result<Option<Space>, StoreError> {
        space::Entity::find_by_id(guid.as_uuid())
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(space_from)
            .transpose()
    }

    #[tracing::instrument(name = "db.directory.list_spaces", skip_all, fields(otel.kind = "client"))]
    async fn list_spaces(&self, query: &DirectoryQuery) -> Result<Page<Space>, StoreError> {
        let columns = ListColumns {
            guid: space::Column::Guid,
            name: space::Column::Name,
            parent: Some(space::Column::OrganizationGuid),
            created_at: space::Column::CreatedAt,
            updated_at: space::Column::UpdatedAt,
        };
        let visible = space_visibility(
            &query.visibility,
            space::Column::Guid,
            space::Column::OrganizationGuid,
        );
        page_into(
            list::<space::Entity>(&self.db, columns, visible, query).await?,
            space_from,
        )
    }

    #[tracing::instrument(name = "db.directory.delete_space", skip_all, fields(otel.kind = "client"))]
    async fn delete_space(&self, guid: SpaceGuid) -> Result<(), StoreError> {
        let uuid = guid.as_uuid();
        match space::Entity::delete_by_id(uuid)
            .exec(&self.db)
            .await
            .map_err(store_error)
        {
            Ok(result) => changed(result.rows_affected),
            Err(StoreError::MissingParent) => Err(StoreError::InUse(Dependents {
                registries: 0,
                spaces: 0,
                apps: self
                    .count(app::Entity::find().filter(app::Column::SpaceGuid.eq(uuid)))
                    .await?,
                credentials: self
                    .credentials_with(
                        Condition::all().add(registry_credential::Column::SpaceGuid.eq(uuid)),
                    )
                    .await?,
            })),
            Err(error) => Err(error),
        }
    }

    #[tracing::instrument(name = "db.directory.space_organizations", skip_all, fields(otel.kind = "client"))]
    async fn space_organizations(
        &self,
        spaces: &[SpaceGuid],
    ) -> Result<Vec<(SpaceGuid, OrganizationGuid)>, StoreError> {
        let rows: Vec<(uuid::Uuid, uuid::Uuid)> = space::Entity::find()
            .select_only()
            .column(space::Column::Guid)
            .column(space::Column::OrganizationGuid)
            .filter(space::Column::Guid.is_in(spaces.iter().map(|g| g.as_uuid())))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(space, organization)| {
                (
                    SpaceGuid::from_uuid(space),
                    OrganizationGuid::from_uuid(organization),
                )
            })
            .collect())
    }

    #[tracing::instrument(name = "db.directory.insert_app", skip_all, fields(otel.kind = "client"))]
    async fn insert_app(&self, app: &App) -> Result<(), StoreError> {
        let row = app::ActiveModel {
            guid: ActiveValue::Set(app.guid.as_uuid()),
            name: ActiveValue::Set(app.name.as_str().to_owned()),
            space_guid: ActiveValue::Set(app.space.as_uuid()),
            organization_guid: ActiveValue::Set(app.organization.as_uuid()),
            created_at: ActiveValue::Set(app.created_at),
            updated_at: ActiveValue::Set(app.updated_at),
        };
        app::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.directory.update_app", skip_all, fields(otel.kind = "client"))]
    async fn update_app(&self, app: &App) -> Result<(), StoreError> {
        let result = app::Entity::update_many()
            .col_expr(app::Column::Name, Expr::value(app.name.as_str()))
            .col_expr(app::Column::UpdatedAt, Expr::value(app.updated_at))
            .filter(app::Column::Guid.eq(app.guid.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        changed(result.rows_affected)
    }

    #[tracing::instrument(name = "db.directory.get_app", skip_all, fields(otel.kind = "client"))]
    async fn get_app(&self, guid: AppGuid) -> Result<Option<App>, StoreError> {
        app::Entity::find_by_id(guid.as_uuid())
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(app_from)
            .transpose()
    }

    #[tracing::instrument(name = "db.directory.list_apps", skip_all, fields(otel.kind = "client"))]
    async fn list_apps(&self, query: &DirectoryQuery) -> Result<Page<App>, StoreError> {
        let columns = ListColumns {
            guid: app::Column::Guid,
            name: app::Column::Name,
            parent: Some(app::Column::SpaceGuid),
            created_at: app::Column::CreatedAt,
            updated_at: app::Column::UpdatedAt,
        };
        let visible = space_visibility(
            &query.visibility,
            app::Column::SpaceGuid,
            app::Column::OrganizationGuid,
        );
        page_into(
            list::<app::Entity>(&self.db, columns, visible, query).await?,
            app_from,
        )
    }

    #[tracing::instrument(name = "db.directory.delete_app", skip_all, fields(otel.kind = "client"))]
    async fn delete_app(&self, guid: AppGuid) -> Result<(), StoreError> {
        let uuid = guid.as_uuid();
        match app::Entity::delete_by_id(uuid)
            .exec(&self.db)
            .await
            .map_err(store_error)
        {
            Ok(result) => changed(result.rows_affected),
            Err(StoreError::MissingParent) => Err(StoreError::InUse(Dependents {
                registries: 0,
                spaces: 0,
                apps: 0,
                credentials: self
                    .credentials_with(
                        Condition::all().add(registry_credential::Column::AppGuid.eq(uuid)),
                    )
                    .await?,
            })),
            Err(error) => Err(error),
        }
    }
}
