//! [`DirectoryStore`] on sea-orm: one routine per operation for organizations, spaces and apps,
//! each kind's table described once by a [`DirectoryTable`].

use std::sync::Arc;

use async_trait::async_trait;
use berth_domain::audit::{AuditEvent, AuditEventGuid};
use berth_domain::directory::{App, Dependents, DirectoryEntry, Organization, ResourceName, Space};
use berth_domain::ids::{AppGuid, OrganizationGuid, SpaceGuid, TypedGuid};
use berth_domain::listing::{Direction, DirectoryOrderField, DirectoryQuery, Page};
use berth_domain::permissions::DirectoryVisibility;
use berth_domain::ports::{DirectoryEntries, DirectoryStore, RoleStore, StoreError};
use berth_domain::roles::PermissionFacts;
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QuerySelect, Select,
};

use crate::entities::{
    app, organization, registry, registry_credential, registry_credential_label, role, space,
};
use crate::errors::{corrupt, store_error};
use crate::paging::fetch_page;
use crate::permission_cache::{Lookup, PermissionCache};
use crate::{audit_store, credential_store};
use time::OffsetDateTime;
use uuid::Uuid;

/// Organizations, spaces and apps in PostgreSQL or SQLite.
#[derive(Clone)]
pub struct SeaOrmDirectoryStore {
    db: DatabaseConnection,
    /// The permission lookup's answers, shared by every store of the process.
    permissions: Arc<PermissionCache>,
}

impl SeaOrmDirectoryStore {
    /// The store, reading the permission lookup from the database on every call.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            permissions: Arc::new(PermissionCache::disabled()),
        }
    }

    /// Answers the permission lookup from `cache` (one per process, shared by every store on
    /// it, so that a role written through any of them clears it).
    #[must_use]
    pub fn with_permission_cache(mut self, cache: Arc<PermissionCache>) -> Self {
        self.permissions = cache;
        self
    }

    /// Forgets the cached permission lookups: a role or the directory changed.
    pub(crate) fn permissions_changed(&self) {
        self.permissions.invalidate();
    }

    pub(crate) fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn roles_with(&self, condition: SimpleExpr) -> Result<u64, StoreError> {
        self.count(role::Entity::find().filter(condition)).await
    }

    async fn count<E: EntityTrait>(&self, select: Select<E>) -> Result<u64, StoreError>
    where
        E::Model: FromQueryResult + Send + Sync,
    {
        select.count(&self.db).await.map_err(store_error)
    }

    async fn credentials_with(&self, condition: SimpleExpr) -> Result<u64, StoreError> {
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

/// Turns "no row changed" into [`StoreError::NotFound`].
fn changed(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// How one kind of directory entry maps to its table; the store's routines are written once
/// over it.
trait DirectoryTable: DirectoryEntry {
    type Entity: EntityTrait<Model: FromQueryResult + Send + Sync, ActiveModel: Send>;

    fn columns() -> ListColumns<<Self::Entity as EntityTrait>::Column>;
    fn row(&self) -> <Self::Entity as EntityTrait>::ActiveModel;
    fn from_row(model: <Self::Entity as EntityTrait>::Model) -> Result<Self, StoreError>;
    fn updated_at(&self) -> OffsetDateTime;
    /// The rows a caller with this visibility may see.
    fn visible(visibility: &DirectoryVisibility) -> Condition;
    /// What still refers to the entry whose delete the foreign keys refused.
    fn dependents(
        store: &SeaOrmDirectoryStore,
        guid: Uuid,
    ) -> impl Future<Output = Result<Dependents, StoreError>> + Send;
    /// Deletes, in the delete's transaction, what goes with the entry (an app's credentials),
    /// and returns the events of those deletes, made from the entry's delete `event`.
    fn delete_owned(
        _transaction: &DatabaseTransaction,
        _guid: Uuid,
        _event: &AuditEvent,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, StoreError>> + Send {
        async { Ok(Vec::new()) }
    }
}

impl DirectoryTable for Organization {
    type Entity = organization::Entity;

    fn columns() -> ListColumns<organization::Column> {
        ListColumns {
            guid: organization::Column::Guid,
            name: organization::Column::Name,
            parent: None,
            created_at: organization::Column::CreatedAt,
            updated_at: organization::Column::UpdatedAt,
        }
    }

    fn row(&self) -> organization::ActiveModel {
        organization::ActiveModel {
            guid: ActiveValue::Set(self.guid.as_uuid()),
            name: ActiveValue::Set(self.name.as_str().to_owned()),
            created_at: ActiveValue::Set(self.created_at),
            updated_at: ActiveValue::Set(self.updated_at),
        }
    }

    fn from_row(model: organization::Model) -> Result<Self, StoreError> {
        Ok(Organization {
            guid: OrganizationGuid::from_uuid(model.guid),
            name: name(&model.name)?,
            created_at: model.created_at,
            updated_at: model.updated_at,
        })
    }

    fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    fn visible(visibility: &DirectoryVisibility) -> Condition {
        match visibility {
            DirectoryVisibility::Everything => Condition::all(),
            DirectoryVisibility::Scoped { organizations, .. } => Condition::all()
                .add(organization::Column::Guid.is_in(organizations.iter().map(|g| g.as_uuid()))),
        }
    }

    async fn dependents(
        store: &SeaOrmDirectoryStore,
        guid: Uuid,
    ) -> Result<Dependents, StoreError> {
        Ok(Dependents::new(
            store
                .count(space::Entity::find().filter(space::Column::OrganizationGuid.eq(guid)))
                .await?,
            0,
            store
                .credentials_with(registry_credential::Column::OrganizationGuid.eq(guid))
                .await?,
            store
                .count(registry::Entity::find().filter(registry::Column::OrganizationGuid.eq(guid)))
                .await?,
            store
                .roles_with(role::Column::OrganizationGuid.eq(guid))
                .await?,
        ))
    }
}

impl DirectoryTable for Space {
    type Entity = space::Entity;

    fn columns() -> ListColumns<space::Column> {
        ListColumns {
            guid: space::Column::Guid,
            name: space::Column::Name,
            parent: Some(space::Column::OrganizationGuid),
            created_at: space::Column::CreatedAt,
            updated_at: space::Column::UpdatedAt,
        }
    }

    fn row(&self) -> space::ActiveModel {
        space::ActiveModel {
            guid: ActiveValue::Set(self.guid.as_uuid()),
            name: ActiveValue::Set(self.name.as_str().to_owned()),
            organization_guid: ActiveValue::Set(self.organization.as_uuid()),
            created_at: ActiveValue::Set(self.created_at),
            updated_at: ActiveValue::Set(self.updated_at),
        }
    }

    fn from_row(model: space::Model) -> Result<Self, StoreError> {
        Ok(Space {
            guid: SpaceGuid::from_uuid(model.guid),
            name: name(&model.name)?,
            organization: OrganizationGuid::from_uuid(model.organization_guid),
            created_at: model.created_at,
            updated_at: model.updated_at,
        })
    }

    fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    fn visible(visibility: &DirectoryVisibility) -> Condition {
        space_visibility(
            visibility,
            space::Column::Guid,
            space::Column::OrganizationGuid,
        )
    }

    async fn dependents(
        store: &SeaOrmDirectoryStore,
        guid: Uuid,
    ) -> Result<Dependents, StoreError> {
        Ok(Dependents::new(
            0,
            store
                .count(app::Entity::find().filter(app::Column::SpaceGuid.eq(guid)))
                .await?,
            store
                .credentials_with(registry_credential::Column::SpaceGuid.eq(guid))
                .await?,
            0,
            store.roles_with(role::Column::SpaceGuid.eq(guid)).await?,
        ))
    }
}

impl DirectoryTable for App {
    type Entity = app::Entity;

    fn columns() -> ListColumns<app::Column> {
        ListColumns {
            guid: app::Column::Guid,
            name: app::Column::Name,
            parent: Some(app::Column::SpaceGuid),
            created_at: app::Column::CreatedAt,
            updated_at: app::Column::UpdatedAt,
        }
    }

    fn row(&self) -> app::ActiveModel {
        app::ActiveModel {
            guid: ActiveValue::Set(self.guid.as_uuid()),
            name: ActiveValue::Set(self.name.as_str().to_owned()),
            space_guid: ActiveValue::Set(self.space.as_uuid()),
            organization_guid: ActiveValue::Set(self.organization.as_uuid()),
            created_at: ActiveValue::Set(self.created_at),
            updated_at: ActiveValue::Set(self.updated_at),
        }
    }

    fn from_row(model: app::Model) -> Result<Self, StoreError> {
        Ok(App {
            guid: AppGuid::from_uuid(model.guid),
            name: name(&model.name)?,
            space: SpaceGuid::from_uuid(model.space_guid),
            organization: OrganizationGuid::from_uuid(model.organization_guid),
            created_at: model.created_at,
            updated_at: model.updated_at,
        })
    }

    fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    fn visible(visibility: &DirectoryVisibility) -> Condition {
        space_visibility(
            visibility,
            app::Column::SpaceGuid,
            app::Column::OrganizationGuid,
        )
    }

    async fn dependents(
        store: &SeaOrmDirectoryStore,
        guid: Uuid,
    ) -> Result<Dependents, StoreError> {
        // An app's credentials go with it; one can only refuse the delete when it was created
        // for the app while the delete ran.
        Ok(Dependents::new(
            0,
            0,
            store
                .credentials_with(registry_credential::Column::AppGuid.eq(guid))
                .await?,
            0,
            0,
        ))
    }

    async fn delete_owned(
        transaction: &DatabaseTransaction,
        guid: Uuid,
        event: &AuditEvent,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        // As Cloud Controller: an app's credentials are deleted with it, each with its own
        // event. Only the credentials read here are deleted, so the events name exactly them;
        // one created for the app meanwhile makes the app's delete refuse (its foreign key).
        let owned = registry_credential::Entity::find()
            .filter(registry_credential::Column::AppGuid.eq(guid))
            .all(transaction)
            .await
            .map_err(store_error)?;
        if owned.is_empty() {
            return Ok(Vec::new());
        }
        let guids: Vec<Uuid> = owned.iter().map(|credential| credential.guid).collect();
        // Labels first, as `CredentialStore::delete` orders them, although their foreign key
        // cascades.
        registry_credential_label::Entity::delete_many()
            .filter(registry_credential_label::Column::CredentialGuid.is_in(guids.clone()))
            .exec(transaction)
            .await
            .map_err(store_error)?;
        registry_credential::Entity::delete_many()
            .filter(registry_credential::Column::Guid.is_in(guids))
            .exec(transaction)
            .await
            .map_err(store_error)?;
        owned
            .into_iter()
            .map(|row| {
                let credential = credential_store::to_domain(row)?;
                // The adapter names the new events: the domain's clock and ids stay with the
                // services, and this delete happens inside the store's transaction.
                let guid = AuditEventGuid::from_uuid(Uuid::now_v7());
                Ok(AuditEvent::credential_deleted_with(
                    event,
                    &credential,
                    guid,
                ))
            })
            .collect()
    }
}

#[async_trait]
impl<E: DirectoryTable> DirectoryEntries<E> for SeaOrmDirectoryStore {
    #[tracing::instrument(
        name = "db.directory.insert",
        skip_all,
        fields(otel.kind = "client", berth.directory = E::KIND.as_str())
    )]
    async fn insert(&self, entry: &E, event: &AuditEvent) -> Result<(), StoreError> {
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        E::Entity::insert(entry.row())
            .exec_without_returning(&transaction)
            .await
            .map_err(store_error)?;
        audit_store::insert_in(&transaction, std::slice::from_ref(event)).await?;
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(
        name = "db.directory.update",
        skip_all,
        fields(otel.kind = "client", berth.directory = E::KIND.as_str())
    )]
    async fn update(&self, entry: &E, event: &AuditEvent) -> Result<(), StoreError> {
        let columns = E::columns();
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        let result = E::Entity::update_many()
            .col_expr(columns.name, Expr::value(entry.name().as_str()))
            .col_expr(columns.updated_at, Expr::value(entry.updated_at()))
            .filter(columns.guid.eq(entry.guid().as_uuid()))
            .exec(&transaction)
            .await
            .map_err(store_error)?;
        changed(result.rows_affected)?;
        audit_store::insert_in(&transaction, std::slice::from_ref(event)).await?;
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(
        name = "db.directory.get",
        skip_all,
        fields(otel.kind = "client", berth.directory = E::KIND.as_str())
    )]
    async fn get(&self, guid: E::Guid) -> Result<Option<E>, StoreError> {
        E::Entity::find()
            .filter(E::columns().guid.eq(guid.as_uuid()))
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(E::from_row)
            .transpose()
    }

    #[tracing::instrument(
        name = "db.directory.list",
        skip_all,
        fields(otel.kind = "client", berth.directory = E::KIND.as_str())
    )]
    async fn list(&self, query: &DirectoryQuery) -> Result<Page<E>, StoreError> {
        let visible = E::visible(&query.visibility);
        page_into(
            list::<E::Entity>(&self.db, E::columns(), visible, query).await?,
            E::from_row,
        )
    }

    #[tracing::instrument(
        name = "db.directory.delete",
        skip_all,
        fields(otel.kind = "client", berth.directory = E::KIND.as_str())
    )]
    async fn delete(&self, guid: E::Guid, event: &AuditEvent) -> Result<(), StoreError> {
        let uuid = guid.as_uuid();
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        // The foreign keys make the delete itself refuse when anything still refers to the row,
        // so a concurrent insert can never leave an orphan; the counts only explain the refusal.
        // One transaction: what the entry owns goes with it, and every delete's event is
        // written, or nothing is.
        let deleted = async {
            let owned = E::delete_owned(&transaction, uuid, event).await?;
            let result = E::Entity::delete_many()
                .filter(E::columns().guid.eq(uuid))
                .exec(&transaction)
                .await
                .map_err(store_error)?;
            changed(result.rows_affected)?;
            Ok(owned)
        };
        let owned = match deleted.await {
            Ok(owned) => owned,
            Err(StoreError::MissingParent) => {
                drop(transaction);
                return Err(StoreError::InUse(E::dependents(self, uuid).await?));
            }
            Err(error) => return Err(error),
        };
        let mut events = Vec::with_capacity(owned.len() + 1);
        events.push(event.clone());
        events.extend(owned);
        audit_store::insert_in(&transaction, &events).await?;
        transaction.commit().await.map_err(store_error)?;
        // A deleted space leaves the token space roles' facts; the cache forgets them.
        self.permissions_changed();
        Ok(())
    }
}

#[async_trait]
impl DirectoryStore for SeaOrmDirectoryStore {
    fn organizations(&self) -> &dyn DirectoryEntries<Organization> {
        self
    }

    fn spaces(&self) -> &dyn DirectoryEntries<Space> {
        self
    }

    fn apps(&self) -> &dyn DirectoryEntries<App> {
        self
    }

    fn roles(&self) -> &dyn RoleStore {
        self
    }

    #[tracing::instrument(name = "db.directory.permission_facts", skip_all, fields(otel.kind = "client"))]
    async fn permission_facts(
        &self,
        user: &str,
        spaces: &[SpaceGuid],
    ) -> Result<PermissionFacts, StoreError> {
        let generation = match self.permissions.lookup(user, spaces) {
            Lookup::Hit(facts) => return Ok(facts),
            Lookup::Miss(generation) => generation,
        };
        let facts = self.read_permission_facts(user, spaces).await?;
        self.permissions.store(generation, user, spaces, &facts);
        Ok(facts)
    }

    #[tracing::instrument(name = "db.directory.space_organizations", skip_all, fields(otel.kind = "client"))]
    async fn space_organizations(
        &self,
        spaces: &[SpaceGuid],
    ) -> Result<Vec<(SpaceGuid, OrganizationGuid)>, StoreError> {
        let rows: Vec<(Uuid, Uuid)> = space::Entity::find()
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
}
