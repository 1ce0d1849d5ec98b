//! [`CredentialStore`] on sea-orm.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use berth_domain::audit::AuditEvent;
use berth_domain::credential::{
    Password, RegistryCredential, RequestedOwner, Scope, ScopeTarget, Username,
};
use berth_domain::ids::{AppGuid, CredentialGuid, OrganizationGuid, SpaceGuid};
use berth_domain::label_selector::{LabelSelector, MAX_LIST_VALUES, MAX_REQUIREMENTS, Requirement};
use berth_domain::listing::{
    CredentialOrderField, CredentialQuery, Direction, MAX_LIST_FILTER_VALUES, Page, TimestampFilter,
};
use berth_domain::location::RegistryLocation;
use berth_domain::metadata::{AnnotationKey, AnnotationValue, LabelKey, LabelValue, Metadata};
use berth_domain::permissions::CredentialVisibility;
use berth_domain::ports::{CredentialStore, LockedCredential, StoreError};
use berth_domain::pull_secrets::{PullLookup, PullMatch, PullQuery, Reveal};
use sea_orm::sea_query::{Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryResult, QuerySelect, QueryTrait,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::audit_store;
use crate::entities::{registry_credential as credentials, registry_credential_label as labels};
use crate::errors::{corrupt, lock_error, store_error};
use crate::paging::{fetch_page, fetch_page_keys_first};
use crate::sealing::{KeyRing, SealBinding};

pub(crate) const TABLE: &str = "registry_credentials";
pub(crate) const PASSWORD_COLUMN: &str = "password";

/// Where a credential's password seal is bound: its table, row and column.
pub(crate) fn password_binding(guid: &str) -> SealBinding<'_> {
    SealBinding {
        table: TABLE,
        row: guid,
        column: PASSWORD_COLUMN,
    }
}

/// Registry credentials in PostgreSQL or SQLite, passwords sealed with the key ring.
#[derive(Clone)]
pub struct SeaOrmCredentialStore {
    db: DatabaseConnection,
    keys: Arc<KeyRing>,
    /// `get`'s statement, built once: rebuilding it per call showed in the benchmark's profile.
    get_by_guid: Statement,
}

impl SeaOrmCredentialStore {
    pub fn new(db: DatabaseConnection, keys: Arc<KeyRing>) -> Self {
        let get_by_guid = credentials::Entity::find_by_id(Uuid::nil())
            .limit(1)
            .build(db.get_database_backend());
        Self {
            db,
            keys,
            get_by_guid,
        }
    }

    fn seal(&self, guid: &str, password: &Password) -> Result<crate::sealing::Sealed, StoreError> {
        self.keys
            .seal(password_binding(guid), password.expose().as_bytes())
            .map_err(|error| StoreError::Unexpected(Box::new(error)))
    }

    fn credential_row(
        &self,
        credential: &RegistryCredential,
        password: &Password,
    ) -> Result<credentials::ActiveModel, StoreError> {
        let guid = credential.guid.as_uuid();
        let sealed = self.seal(&guid.to_string(), password)?;
        Ok(credentials::ActiveModel {
            guid: ActiveValue::Set(guid),
            scope: ActiveValue::Set(credential.scope().as_str().to_owned()),
            scope_key: ActiveValue::Set(scope_key(&credential.target)),
            organization_guid: ActiveValue::Set(
                credential.target.organization().map(|g| g.as_uuid()),
            ),
            space_guid: ActiveValue::Set(credential.target.space().map(|g| g.as_uuid())),
            app_guid: ActiveValue::Set(credential.target.app().map(|g| g.as_uuid())),
            location: ActiveValue::Set(credential.location.to_string()),
            username: ActiveValue::Set(credential.username.as_str().to_owned()),
            password_ciphertext: ActiveValue::Set(sealed.bytes),
            password_key_label: ActiveValue::Set(sealed.label),
            labels: ActiveValue::Set(labels_json(&credential.metadata)),
            annotations: ActiveValue::Set(annotations_json(&credential.metadata)),
            created_at: ActiveValue::Set(credential.created_at),
            updated_at: ActiveValue::Set(credential.updated_at),
            revision: ActiveValue::Set(credential.revision),
        })
    }

    /// Stores many new credentials in one transaction, a few statements for the lot: for bulk
    /// loads (the benchmark's data set, imports), where one [`CredentialStore::insert`] per row
    /// would take minutes. Passwords are sealed exactly as `insert` seals them.
    ///
    /// # Errors
    /// As `insert`: [`StoreError::Conflict`] when a (scope target, location) is taken,
    /// [`StoreError::MissingParent`] when a directory parent is missing; nothing is stored then.
    pub async fn import(&self, batch: &[(RegistryCredential, Password)]) -> Result<(), StoreError> {
        // Below both databases' limits on bound parameters per statement (15 per row).
        const ROWS_PER_STATEMENT: usize = 1_000;
        let mut rows = Vec::with_capacity(batch.len());
        let mut label_rows_all = Vec::new();
        for (credential, password) in batch {
            rows.push(self.credential_row(credential, password)?);
            label_rows_all.extend(label_rows(credential));
        }
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            credentials::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&transaction)
                .await
                .map_err(store_error)?;
        }
        for chunk in label_rows_all.chunks(ROWS_PER_STATEMENT * 5) {
            labels::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&transaction)
                .await
                .map_err(store_error)?;
        }
        transaction.commit().await.map_err(store_error)
    }
}

/// Writes done inside another store's transaction (the registry store's, for the platform pull
/// robot's credential), sealed exactly as [`CredentialStore::insert`] and updates seal.
impl SeaOrmCredentialStore {
    /// Inserts `credential`, or takes over the credential already at its scope target and
    /// location (its guid kept; username, password and the labels `credential` carries
    /// replaced), inside `transaction`; returns the guid written.
    pub(crate) async fn upsert_in(
        &self,
        transaction: &DatabaseTransaction,
        credential: &RegistryCredential,
        password: &Password,
    ) -> Result<Uuid, StoreError> {
        let existing = credentials::Entity::find()
            .filter(credentials::Column::ScopeKey.eq(scope_key(&credential.target)))
            .filter(credentials::Column::Location.eq(credential.location.as_str()))
            .one(transaction)
            .await
            .map_err(store_error)?;
        let Some(existing) = existing else {
            credentials::Entity::insert(self.credential_row(credential, password)?)
                .exec_without_returning(transaction)
                .await
                .map_err(store_error)?;
            let label_rows = label_rows(credential);
            if !label_rows.is_empty() {
                labels::Entity::insert_many(label_rows)
                    .exec_without_returning(transaction)
                    .await
                    .map_err(store_error)?;
            }
            return Ok(credential.guid.as_uuid());
        };
        let current = to_domain(existing)?;
        let guid = current.guid.as_uuid();
        let metadata = credential
            .metadata
            .labels()
            .iter()
            .fold(current.metadata.clone(), |metadata, (key, value)| {
                metadata.with_label(key.clone(), value.clone())
            });
        let sealed = self.seal(&guid.to_string(), password)?;
        credentials::Entity::update_many()
            .col_expr(
                credentials::Column::Username,
                Expr::value(credential.username.as_str()),
            )
            .col_expr(
                credentials::Column::PasswordCiphertext,
                Expr::value(sealed.bytes),
            )
            .col_expr(
                credentials::Column::PasswordKeyLabel,
                Expr::value(sealed.label),
            )
            .col_expr(
                credentials::Column::Labels,
                Expr::value(labels_json(&metadata)),
            )
            .col_expr(
                credentials::Column::UpdatedAt,
                Expr::value(credential.updated_at),
            )
            .col_expr(
                credentials::Column::Revision,
                Expr::value(current.revision + 1),
            )
            .filter(credentials::Column::Guid.eq(guid))
            .exec(transaction)
            .await
            .map_err(store_error)?;
        labels::Entity::delete_many()
            .filter(labels::Column::CredentialGuid.eq(guid))
            .exec(transaction)
            .await
            .map_err(store_error)?;
        let label_rows = label_rows(&RegistryCredential {
            metadata,
            ..current
        });
        if !label_rows.is_empty() {
            labels::Entity::insert_many(label_rows)
                .exec_without_returning(transaction)
                .await
                .map_err(store_error)?;
        }
        Ok(guid)
    }

    /// Deletes a credential and its labels inside `transaction`; one already gone is fine.
    pub(crate) async fn delete_in(
        transaction: &DatabaseTransaction,
        guid: Uuid,
    ) -> Result<(), StoreError> {
        credentials::Entity::delete_by_id(guid)
            .exec(transaction)
            .await
            .map_err(store_error)?;
        labels::Entity::delete_many()
            .filter(labels::Column::CredentialGuid.eq(guid))
            .exec(transaction)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// The one non-null column the uniqueness of (scope target, location) is enforced on.
fn scope_key(target: &ScopeTarget) -> String {
    match *target {
        ScopeTarget::Foundation => owner_key(RequestedOwner::Foundation),
        ScopeTarget::Organization(guid) => owner_key(RequestedOwner::Organization(guid)),
        ScopeTarget::Space { space, .. } => owner_key(RequestedOwner::Space(space)),
        ScopeTarget::App { app, .. } => owner_key(RequestedOwner::App(app)),
    }
}

/// The scope key of an owner's own credentials: its parents play no part in it.
fn owner_key(owner: RequestedOwner) -> String {
    match owner {
        RequestedOwner::Foundation => "foundation".to_owned(),
        RequestedOwner::Organization(guid) => format!("organization:{guid}"),
        RequestedOwner::Space(guid) => format!("space:{guid}"),
        RequestedOwner::App(guid) => format!("app:{guid}"),
    }
}

fn labels_json(metadata: &Metadata) -> String {
    let map: serde_json::Map<String, serde_json::Value> = metadata
        .labels()
        .iter()
        .map(|(key, value)| (key.to_string(), value.as_str().into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn annotations_json(metadata: &Metadata) -> String {
    let map: serde_json::Map<String, serde_json::Value> = metadata
        .annotations()
        .iter()
        .map(|(key, value)| (key.to_string(), value.as_str().into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn label_rows(credential: &RegistryCredential) -> Vec<labels::ActiveModel> {
    let guid = credential.guid.as_uuid();
    let organization = credential.target.organization().map(|g| g.as_uuid());
    let metadata = &credential.metadata;
    metadata
        .labels()
        .iter()
        .map(|(key, value)| labels::ActiveModel {
            credential_guid: ActiveValue::Set(guid),
            key: ActiveValue::Set(key.to_string()),
            value: ActiveValue::Set(value.to_string()),
            organization_guid: ActiveValue::Set(organization),
        })
        .collect()
}

/// On PostgreSQL, the credential, its labels and its audit event in one statement (data-modifying
/// `WITH`s): one round trip instead of five (`BEGIN`, three `INSERT`s, `COMMIT`), and as atomic,
/// since a statement is its own transaction. The benchmark's `POST` figure is what this is for.
fn insert_with_labels(
    row: credentials::ActiveModel,
    credential: &RegistryCredential,
    event: &AuditEvent,
) -> Statement {
    let mut statement = credentials::Entity::insert(row).build(DbBackend::Postgres);
    let mut values = statement
        .values
        .take()
        .map(|values| values.0)
        .unwrap_or_default();
    let audit = audit_cte(&mut values, event);
    let labels = credential.metadata.labels();
    if labels.is_empty() {
        return Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("WITH {audit} {}", statement.sql),
            values,
        );
    }
    let mut sql = format!(
        concat!(
            r#"WITH {}, "credential" AS ({} RETURNING "guid", "organization_guid") "#,
            r#"INSERT INTO "registry_credential_labels" "#,
            r#"("credential_guid", "organization_guid", "key", "value") "#,
            r#"SELECT "credential"."guid", "credential"."organization_guid", "label"."key", "#,
            r#""label"."value" FROM "credential" CROSS JOIN (VALUES "#,
        ),
        audit, statement.sql
    );
    for (index, (key, value)) in labels.iter().enumerate() {
        if index > 0 {
            sql.push_str(", ");
        }
        values.push(key.to_string().into());
        values.push(value.to_string().into());
        sql.push_str(&format!("(${}, ${})", values.len() - 1, values.len()));
    }
    sql.push_str(r#") AS "label" ("key", "value")"#);
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Deletes a credential's labels and writes `event`, in `transaction`. On PostgreSQL in one
/// statement (the event's insert rides along as a data-modifying `WITH`), so an update or a
/// delete costs no extra round trip for its event; on SQLite (in process) as two.
async fn delete_labels_with_event(
    transaction: &DatabaseTransaction,
    guid: Uuid,
    event: &AuditEvent,
) -> Result<(), sea_orm::DbErr> {
    let delete = labels::Entity::delete_many().filter(labels::Column::CredentialGuid.eq(guid));
    if transaction.get_database_backend() != DbBackend::Postgres {
        delete.exec(transaction).await?;
        return crate::audit_store::insert_rows(transaction, std::slice::from_ref(event)).await;
    }
    let statement = delete.build(DbBackend::Postgres);
    let mut values = statement.values.map(|values| values.0).unwrap_or_default();
    let audit = audit_cte(&mut values, event);
    transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("WITH {audit} {}", statement.sql),
            values,
        ))
        .await
        .map(drop)
}

/// `"audit" AS (INSERT INTO "audit_events" ... VALUES ($n, ...))`, its values appended to
/// `values` (PostgreSQL's numbered placeholders may appear in any order in the text).
fn audit_cte(values: &mut Vec<sea_orm::Value>, event: &AuditEvent) -> String {
    let first = values.len() + 1;
    let event_values = crate::audit_store::values(event);
    let placeholders: Vec<String> = (first..first + event_values.len())
        .map(|n| format!("${n}"))
        .collect();
    values.extend(event_values);
    format!(
        r#""audit" AS (INSERT INTO "audit_events" ({}) VALUES ({}))"#,
        crate::audit_store::COLUMNS,
        placeholders.join(", ")
    )
}

fn parse_string_map(json: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(json).map_err(|_| corrupt("metadata"))
}

pub(crate) fn to_domain(model: credentials::Model) -> Result<RegistryCredential, StoreError> {
    let organization = model.organization_guid.map(OrganizationGuid::from_uuid);
    let space = model.space_guid.map(SpaceGuid::from_uuid);
    let app = model.app_guid.map(AppGuid::from_uuid);
    let target = match (model.scope.as_str(), organization, space, app) {
        ("foundation", None, None, None) => ScopeTarget::Foundation,
        ("organization", Some(organization), None, None) => ScopeTarget::Organization(organization),
        ("space", Some(organization), Some(space), None) => ScopeTarget::Space {
            organization,
            space,
        },
        ("app", Some(organization), Some(space), Some(app)) => ScopeTarget::App {
            organization,
            space,
            app,
        },
        _ => return Err(corrupt("scope")),
    };
    let mut label_map = BTreeMap::new();
    for (key, value) in parse_string_map(&model.labels)? {
        label_map.insert(
            LabelKey::parse(&key).map_err(|_| corrupt("label"))?,
            LabelValue::parse(&value).map_err(|_| corrupt("label"))?,
        );
    }
    let mut annotation_map = BTreeMap::new();
    for (key, value) in parse_string_map(&model.annotations)? {
        annotation_map.insert(
            AnnotationKey::parse(&key).map_err(|_| corrupt("annotation"))?,
            AnnotationValue::parse(&value).map_err(|_| corrupt("annotation"))?,
        );
    }
    Ok(RegistryCredential {
        guid: CredentialGuid::from_uuid(model.guid),
        target,
        location: RegistryLocation::parse(&model.location).map_err(|_| corrupt("location"))?,
        username: Username::parse(&model.username).map_err(|_| corrupt("username"))?,
        metadata: Metadata::from_stored(label_map, annotation_map),
        created_at: model.created_at,
        updated_at: model.updated_at,
        revision: model.revision,
    })
}

fn timestamp_condition(column: credentials::Column, filter: &TimestampFilter) -> Condition {
    let mut condition = Condition::all();
    if !filter.equals.is_empty() {
        // Stored timestamps are whole seconds, so equality is exact.
        condition = condition.add(column.is_in(filter.equals.iter().copied()));
    }
    if let Some(bound) = filter.lt {
        condition = condition.add(column.lt(bound));
    }
    if let Some(bound) = filter.lte {
        condition = condition.add(column.lte(bound));
    }
    if let Some(bound) = filter.gt {
        condition = condition.add(column.gt(bound));
    }
    if let Some(bound) = filter.gte {
        condition = condition.add(column.gte(bound));
    }
    condition
}

/// `EXISTS (SELECT 1 FROM labels WHERE credential = outer.guid AND key = k [AND value IN (...)])`,
/// and, when the list is filtered to some organizations, `AND organization IN (...)`: the same
/// rows, but the database can then read those organizations' labels alone through their index
/// instead of every credential's label of that key.
fn label_exists(
    key: &LabelKey,
    values: Option<Vec<String>>,
    organizations: Option<&[Uuid]>,
) -> SimpleExpr {
    let mut subquery = Query::select();
    subquery
        .expr(Expr::val(1))
        .from(labels::Entity)
        .and_where(
            Expr::col((labels::Entity, labels::Column::CredentialGuid))
                .equals((credentials::Entity, credentials::Column::Guid)),
        )
        .and_where(Expr::col((labels::Entity, labels::Column::Key)).eq(key.as_str()));
    if let Some(values) = values {
        subquery.and_where(Expr::col((labels::Entity, labels::Column::Value)).is_in(values));
    }
    if let Some(organizations) = organizations {
        subquery.and_where(
            Expr::col((labels::Entity, labels::Column::OrganizationGuid))
                .is_in(organizations.iter().copied()),
        );
    }
    Expr::exists(subquery.to_owned())
}

fn selector_condition(selector: &LabelSelector, organizations: Option<&[Uuid]>) -> Condition {
    let values = |list: &[LabelValue]| Some(list.iter().map(|v| v.to_string()).collect());
    let exists = |key, values| label_exists(key, values, organizations);
    selector
        .requirements()
        .iter()
        .fold(Condition::all(), |condition, requirement| {
            let expr = match requirement {
                Requirement::Exists(key) => exists(key, None),
                Requirement::NotExists(key) => exists(key, None).not(),
                Requirement::Equals(key, value) => exists(key, Some(vec![value.to_string()])),
                Requirement::NotEquals(key, value) => {
                    exists(key, Some(vec![value.to_string()])).not()
                }
                Requirement::In(key, list) => exists(key, values(list)),
                Requirement::NotIn(key, list) => exists(key, values(list)).not(),
            };
            condition.add(expr)
        })
}

/// What the caller may see, as a condition inside the list query itself.
fn visibility_condition(visibility: &CredentialVisibility) -> Condition {
    let CredentialVisibility::Scoped {
        organizations,
        managed_organizations,
        spaces,
    } = visibility
    else {
        return Condition::all();
    };
    let narrow = [Scope::Space.as_str(), Scope::App.as_str()];
    Condition::any()
        .add(credentials::Column::Scope.eq(Scope::Foundation.as_str()))
        .add(
            Condition::all()
                .add(credentials::Column::Scope.eq(Scope::Organization.as_str()))
                .add(
                    credentials::Column::OrganizationGuid
                        .is_in(organizations.iter().map(|g| g.as_uuid())),
                ),
        )
        .add(
            Condition::all()
                .add(credentials::Column::Scope.is_in(narrow))
                .add(
                    credentials::Column::OrganizationGuid
                        .is_in(managed_organizations.iter().map(|g| g.as_uuid())),
                ),
        )
        .add(
            Condition::all()
                .add(credentials::Column::Scope.is_in(narrow))
                .add(credentials::Column::SpaceGuid.is_in(spaces.iter().map(|g| g.as_uuid()))),
        )
}

/// Values bound by the largest list statement the API lets through, the caller's visibility
/// aside: six list filters at their bound, both timestamp filters with a full list and all four
/// operators, a full label selector whose every lookup binds its selected constant, its key,
/// its values and the organization filter, and `LIMIT`/`OFFSET`.
const WORST_LIST_BINDS: usize = 6 * MAX_LIST_FILTER_VALUES
    + 2 * (MAX_LIST_FILTER_VALUES + 4)
    + MAX_REQUIREMENTS * (2 + MAX_LIST_VALUES + MAX_LIST_FILTER_VALUES)
    + 2;

/// The lower of the two databases' limits on values bound to one statement: the bundled
/// SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (PostgreSQL's is 65535).
const SQLITE_MAX_BINDS: usize = 32_766;

// At most half the limit: the rest is left to the visibility lists, which grow with the roles
// in the caller's token (itself bounded by the request head).
const _: () = assert!(WORST_LIST_BINDS <= SQLITE_MAX_BINDS / 2);

fn query_condition(query: &CredentialQuery) -> Condition {
    let mut condition = Condition::all().add(visibility_condition(&query.visibility));
    if let Some(guids) = &query.guids {
        let list: Vec<Uuid> = guids.iter().map(CredentialGuid::as_uuid).collect();
        condition = condition.add(credentials::Column::Guid.is_in(list));
    }
    let organizations: Option<Vec<Uuid>> = query
        .organization_guids
        .as_ref()
        .map(|guids| guids.iter().map(OrganizationGuid::as_uuid).collect());
    if let Some(list) = &organizations {
        condition = condition.add(credentials::Column::OrganizationGuid.is_in(list.clone()));
    }
    if let Some(guids) = &query.space_guids {
        let list: Vec<Uuid> = guids.iter().map(SpaceGuid::as_uuid).collect();
        condition = condition.add(credentials::Column::SpaceGuid.is_in(list));
    }
    if let Some(guids) = &query.app_guids {
        let list: Vec<Uuid> = guids.iter().map(AppGuid::as_uuid).collect();
        condition = condition.add(credentials::Column::AppGuid.is_in(list));
    }
    if let Some(scopes) = &query.scopes {
        condition =
            condition.add(credentials::Column::Scope.is_in(scopes.iter().map(|s| s.as_str())));
    }
    if let Some(locations) = &query.locations {
        condition = condition.add(credentials::Column::Location.is_in(locations.iter().cloned()));
    }
    if let Some(selector) = &query.label_selector {
        condition = condition.add(selector_condition(selector, organizations.as_deref()));
    }
    condition
        .add(timestamp_condition(
            credentials::Column::CreatedAt,
            &query.created_ats,
        ))
        .add(timestamp_condition(
            credentials::Column::UpdatedAt,
            &query.updated_ats,
        ))
}

/// A credential read inside a transaction that holds its write lock; dropping it rolls back.
struct SeaOrmLockedCredential {
    current: RegistryCredential,
    transaction: DatabaseTransaction,
    store: SeaOrmCredentialStore,
}

#[async_trait]
impl LockedCredential for SeaOrmLockedCredential {
    fn current(&self) -> &RegistryCredential {
        &self.current
    }

    #[tracing::instrument(name = "db.credentials.update", skip_all, fields(otel.kind = "client"))]
    async fn write(
        self: Box<Self>,
        credential: &RegistryCredential,
        password: Option<&Password>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let Self {
            current,
            transaction,
            store,
        } = *self;
        let guid = current.guid.as_uuid();
        let mut update = credentials::Entity::update_many()
            .col_expr(
                credentials::Column::Username,
                Expr::value(credential.username.as_str()),
            )
            .col_expr(
                credentials::Column::Labels,
                Expr::value(labels_json(&credential.metadata)),
            )
            .col_expr(
                credentials::Column::Annotations,
                Expr::value(annotations_json(&credential.metadata)),
            )
            .col_expr(
                credentials::Column::UpdatedAt,
                Expr::value(credential.updated_at),
            )
            .col_expr(
                credentials::Column::Revision,
                Expr::value(current.revision + 1),
            )
            .filter(credentials::Column::Guid.eq(guid));
        if let Some(password) = password {
            let sealed = store.seal(&guid.to_string(), password)?;
            update = update
                .col_expr(
                    credentials::Column::PasswordCiphertext,
                    Expr::value(sealed.bytes),
                )
                .col_expr(
                    credentials::Column::PasswordKeyLabel,
                    Expr::value(sealed.label),
                );
        }
        let result = update.exec(&transaction).await.map_err(lock_error)?;
        if result.rows_affected != 1 {
            // The row was read under this transaction's lock; it cannot have gone.
            return Err(StoreError::Unexpected(
                "a locked credential was not there to update".into(),
            ));
        }
        delete_labels_with_event(&transaction, guid, event)
            .await
            .map_err(lock_error)?;
        let label_rows = label_rows(&RegistryCredential {
            guid: current.guid,
            target: current.target,
            ..credential.clone()
        });
        if !label_rows.is_empty() {
            labels::Entity::insert_many(label_rows)
                .exec_without_returning(&transaction)
                .await
                .map_err(lock_error)?;
        }
        transaction.commit().await.map_err(lock_error)
    }
}

#[async_trait]
impl CredentialStore for SeaOrmCredentialStore {
    #[tracing::instrument(name = "db.credentials.insert", skip_all, fields(otel.kind = "client"))]
    async fn insert(
        &self,
        credential: &RegistryCredential,
        password: &Password,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let row = self.credential_row(credential, password)?;
        if self.db.get_database_backend() == DbBackend::Postgres {
            let statement = insert_with_labels(row, credential, event);
            return self
                .db
                .execute_raw(statement)
                .await
                .map(drop)
                .map_err(store_error);
        }
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        credentials::Entity::insert(row)
            .exec_without_returning(&transaction)
            .await
            .map_err(store_error)?;
        let label_rows = label_rows(credential);
        if !label_rows.is_empty() {
            labels::Entity::insert_many(label_rows)
                .exec_without_returning(&transaction)
                .await
                .map_err(store_error)?;
        }
        audit_store::insert_in(&transaction, std::slice::from_ref(event)).await?;
        transaction.commit().await.map_err(store_error)
    }

    #[tracing::instrument(name = "db.credentials.get", skip_all, fields(otel.kind = "client"))]
    async fn get(&self, guid: CredentialGuid) -> Result<Option<RegistryCredential>, StoreError> {
        let mut statement = self.get_by_guid.clone();
        if let Some(values) = statement.values.as_mut()
            && let Some(first) = values.0.first_mut()
        {
            *first = guid.as_uuid().into();
        }
        credentials::Model::find_by_statement(statement)
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(to_domain)
            .transpose()
    }

    #[tracing::instrument(name = "db.credentials.lock", skip_all, fields(otel.kind = "client"))]
    async fn lock(
        &self,
        guid: CredentialGuid,
    ) -> Result<Option<Box<dyn LockedCredential>>, StoreError> {
        // SQLite has no row locks: `BEGIN IMMEDIATE` takes the database's write lock before the
        // read (waiting its busy timeout for it), so the read sees the last write and no other
        // writer can come in between. PostgreSQL locks the one row (`FOR UPDATE`).
        let transaction = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .map_err(lock_error)?;
        let model = credentials::Entity::find_by_id(guid.as_uuid())
            .lock_exclusive()
            .one(&transaction)
            .await
            .map_err(lock_error)?;
        let Some(model) = model else {
            return Ok(None);
        };
        Ok(Some(Box::new(SeaOrmLockedCredential {
            current: to_domain(model)?,
            transaction,
            store: self.clone(),
        })))
    }

    #[tracing::instrument(name = "db.credentials.delete", skip_all, fields(otel.kind = "client"))]
    async fn delete(&self, guid: CredentialGuid, event: &AuditEvent) -> Result<(), StoreError> {
        // The credential row first, then its labels: the order an update locks them in, so a
        // delete and an update of one credential wait for each other instead of deadlocking.
        let transaction = crate::begin_write(&self.db).await.map_err(lock_error)?;
        let result = credentials::Entity::delete_by_id(guid.as_uuid())
            .exec(&transaction)
            .await
            .map_err(lock_error)?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        // Cascaded by the foreign key already; explicit so no label outlives its credential
        // even on a connection without foreign-key enforcement.
        delete_labels_with_event(&transaction, guid.as_uuid(), event)
            .await
            .map_err(lock_error)?;
        transaction.commit().await.map_err(lock_error)
    }

    #[tracing::instrument(name = "db.credentials.list", skip_all, fields(otel.kind = "client"))]
    async fn list(&self, query: &CredentialQuery) -> Result<Page<RegistryCredential>, StoreError> {
        let order = query.order.unwrap_or(berth_domain::listing::Ordering {
            field: CredentialOrderField::CreatedAt,
            direction: Direction::Ascending,
        });
        let column = match order.field {
            CredentialOrderField::CreatedAt => credentials::Column::CreatedAt,
            CredentialOrderField::UpdatedAt => credentials::Column::UpdatedAt,
            CredentialOrderField::Location => credentials::Column::Location,
        };
        let filtered = credentials::Entity::find().filter(query_condition(query));
        // A label selector is a join whose match rate the planner underestimates (it takes the
        // organization-narrowed label rows as independent of the organization's credentials),
        // so it would read every match whole before keeping a page: find the page's guids first.
        let direction = order.direction;
        let guid = credentials::Column::Guid;
        let page = if query.label_selector.is_some() {
            fetch_page_keys_first(&self.db, filtered, column, guid, direction, query.page).await?
        } else {
            fetch_page(&self.db, filtered, column, guid, direction, query.page).await?
        };
        let total_results = page.total_results;
        let items = page
            .items
            .into_iter()
            .map(to_domain)
            .collect::<Result<_, _>>()?;
        Ok(Page::new(items, total_results))
    }

    #[tracing::instrument(name = "db.credentials.reveal_password", skip_all, fields(otel.kind = "client"))]
    async fn reveal_password(&self, guid: CredentialGuid) -> Result<Option<Password>, StoreError> {
        let Some((ciphertext, label)) = credentials::Entity::find_by_id(guid.as_uuid())
            .select_only()
            .column(credentials::Column::PasswordCiphertext)
            .column(credentials::Column::PasswordKeyLabel)
            .into_tuple::<(Vec<u8>, String)>()
            .one(&self.db)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let row = guid.to_string();
        let plaintext = self
            .keys
            .open(password_binding(&row), &label, &ciphertext)
            .map_err(|error| StoreError::Unexpected(Box::new(error)))?;
        let text = String::from_utf8(plaintext).map_err(|_| corrupt("password"))?;
        Password::parse(SecretString::from(text))
            .map(Some)
            .map_err(|_| corrupt("password"))
    }

    #[tracing::instrument(name = "db.credentials.pull_matches", skip_all, fields(otel.kind = "client"))]
    async fn pull_matches(
        &self,
        query: &PullQuery,
        reveal: Reveal,
    ) -> Result<Option<PullLookup>, StoreError> {
        let statement = pull_statement(self.db.get_database_backend(), query);
        let rows = self
            .db
            .query_all_raw(statement)
            .await
            .map_err(store_error)?;
        // An owner that exists gives at least one row (the outer join's); the foundation always
        // exists.
        let context = match (query.owner(), rows.first()) {
            (RequestedOwner::Foundation, _) => ScopeTarget::Foundation,
            (_, None) => return Ok(None),
            (owner, Some(first)) => locate(owner, first)?,
        };
        let mut matches = Vec::with_capacity(rows.len());
        let mut sealed = Vec::with_capacity(rows.len());
        for row in &rows {
            // Read by position (the statement's column order): by name cost a lookup per column.
            let Some(guid) = get::<Option<Uuid>>(row, 2)? else {
                // The outer join's row of an owner with no match.
                continue;
            };
            let scope: String = get(row, 3)?;
            let location: String = get(row, 4)?;
            let username: String = get(row, 5)?;
            matches.push(PullMatch::new(
                CredentialGuid::from_uuid(guid),
                Scope::parse(&scope).ok_or_else(|| corrupt("scope"))?,
                RegistryLocation::parse(&location).map_err(|_| corrupt("location"))?,
                Username::parse(&username).map_err(|_| corrupt("username"))?,
            ));
            sealed.push((get::<Vec<u8>>(row, 6)?, get::<String>(row, 7)?));
        }
        let mut passwords = Vec::new();
        if reveal == Reveal::Winners {
            let winners = query.winning_guids(&context, &matches);
            for (found, (ciphertext, label)) in matches.iter().zip(&sealed) {
                if winners.contains(&found.guid) {
                    passwords.push((
                        found.guid,
                        self.open_password(found.guid, label, ciphertext)?,
                    ));
                }
            }
        }
        Ok(Some(PullLookup::new(context, matches, passwords)))
    }
}

/// The pull lookup's one statement. The owner's row (by primary key) gives its parents, and an
/// outer join brings every credential of the chain stored under a candidate location: the
/// owner's own and the foundation's by their scope key, the parents' by their guid columns
/// (which only the joined row knows), all probed through the location index. Written by hand:
/// building it with sea-query per request cost more than running it. Public for the benchmark's
/// floor, which runs this very statement without the rest of a resolution around it.
pub fn pull_statement(backend: DbBackend, query: &PullQuery) -> Statement {
    const CHAIN: &str = r#""c"."guid", "c"."scope", "c"."location", "c"."username", "c"."password_ciphertext", "c"."password_key_label""#;
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(query.locations().len() + 2);
    let mut bind = |sql: &mut String, value: sea_orm::Value| {
        values.push(value);
        match backend {
            DbBackend::Postgres => {
                sql.push('$');
                sql.push_str(&values.len().to_string());
            }
            _ => sql.push('?'),
        }
    };
    let mut locations = String::with_capacity(query.locations().len() * 5);
    for (index, location) in query.locations().iter().enumerate() {
        if index > 0 {
            locations.push_str(", ");
        }
        bind(&mut locations, location.as_str().into());
    }
    let owner = query.owner();
    // (the owner's table and alias, its parents' columns, how its parents' credentials join)
    let (from, parents, parents_join, guid) = match owner {
        RequestedOwner::Foundation => {
            let sql = format!(
                concat!(
                    r#"SELECT NULL AS "context_organization", NULL AS "context_space", {} "#,
                    r#"FROM "registry_credentials" AS "c" "#,
                    r#"WHERE "c"."scope_key" = 'foundation' AND "c"."location" IN ({})"#,
                ),
                CHAIN, locations,
            );
            return Statement::from_sql_and_values(backend, sql, values);
        }
        RequestedOwner::Organization(guid) => (
            r#""organizations" AS "o""#,
            r#""o"."guid" AS "context_organization", NULL AS "context_space""#,
            "",
            guid.as_uuid(),
        ),
        RequestedOwner::Space(guid) => (
            r#""spaces" AS "o""#,
            r#""o"."organization_guid" AS "context_organization", "o"."guid" AS "context_space""#,
            concat!(
                r#" OR ("c"."scope" = 'organization' AND "#,
                r#""c"."organization_guid" = "o"."organization_guid")"#,
            ),
            guid.as_uuid(),
        ),
        RequestedOwner::App(guid) => (
            r#""apps" AS "o""#,
            concat!(
                r#""o"."organization_guid" AS "context_organization", "#,
                r#""o"."space_guid" AS "context_space""#,
            ),
            concat!(
                r#" OR ("c"."scope" = 'space' AND "c"."space_guid" = "o"."space_guid")"#,
                r#" OR ("c"."scope" = 'organization' AND "#,
                r#""c"."organization_guid" = "o"."organization_guid")"#,
            ),
            guid.as_uuid(),
        ),
    };
    let mut own_key = String::new();
    bind(&mut own_key, owner_key(owner).into());
    let mut guid_value = String::new();
    bind(&mut guid_value, guid.into());
    let guid = guid_value;
    let sql = format!(
        concat!(
            r#"SELECT {}, {} FROM {} LEFT JOIN "registry_credentials" AS "c" "#,
            r#"ON "c"."location" IN ({}) AND ("c"."scope_key" IN ({}, 'foundation'){}) "#,
            r#"WHERE "o"."guid" = {}"#,
        ),
        parents, CHAIN, from, locations, own_key, parents_join, guid,
    );
    Statement::from_sql_and_values(backend, sql, values)
}

/// The owner with its parents, from the first row of the pull lookup (its first two columns).
fn locate(owner: RequestedOwner, row: &QueryResult) -> Result<ScopeTarget, StoreError> {
    let organization = || {
        get::<Option<Uuid>>(row, 0)?
            .map(OrganizationGuid::from_uuid)
            .ok_or_else(|| corrupt("owner's organization"))
    };
    let space = || {
        get::<Option<Uuid>>(row, 1)?
            .map(SpaceGuid::from_uuid)
            .ok_or_else(|| corrupt("owner's space"))
    };
    Ok(match owner {
        RequestedOwner::Foundation => ScopeTarget::Foundation,
        RequestedOwner::Organization(guid) => ScopeTarget::Organization(guid),
        RequestedOwner::Space(guid) => ScopeTarget::Space {
            organization: organization()?,
            space: guid,
        },
        RequestedOwner::App(guid) => ScopeTarget::App {
            organization: organization()?,
            space: space()?,
            app: guid,
        },
    })
}

/// A column of a pull lookup row, by position.
fn get<T: sea_orm::TryGetable>(row: &QueryResult, index: usize) -> Result<T, StoreError> {
    row.try_get_by_index(index).map_err(store_error)
}

/// A winner's sealed password did not open: logged (with the credential's guid) by the surface
/// that answers 500.
#[derive(Debug, thiserror::Error)]
#[error("the sealed password of registry credential {guid} does not open")]
pub struct SealedPasswordError {
    guid: CredentialGuid,
    #[source]
    source: crate::sealing::SealError,
}

impl SeaOrmCredentialStore {
    fn open_password(
        &self,
        guid: CredentialGuid,
        label: &str,
        ciphertext: &[u8],
    ) -> Result<Password, StoreError> {
        let row = guid.to_string();
        let plaintext = self
            .keys
            .open(password_binding(&row), label, ciphertext)
            .map_err(|source| {
                StoreError::Unexpected(Box::new(SealedPasswordError { guid, source }))
            })?;
        let text = String::from_utf8(plaintext).map_err(|_| corrupt("password"))?;
        Password::parse(SecretString::from(text)).map_err(|_| corrupt("password"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement of a list with every filter at its bound binds what
    /// [`WORST_LIST_BINDS`] says (paging aside), on both databases.
    #[test]
    fn the_worst_list_binds_what_the_bound_says() {
        let guids = || (0..MAX_LIST_FILTER_VALUES).map(|_| Uuid::new_v4());
        let instant =
            |i: usize| time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(i as i64);
        let timestamps = TimestampFilter {
            equals: (0..MAX_LIST_FILTER_VALUES).map(instant).collect(),
            lt: Some(instant(1)),
            lte: Some(instant(2)),
            gt: Some(instant(3)),
            gte: Some(instant(4)),
        };
        let values: Vec<String> = (0..MAX_LIST_VALUES).map(|i| format!("v{i}")).collect();
        let selector: Vec<String> = (0..MAX_REQUIREMENTS)
            .map(|i| format!("k{i} in ({})", values.join(",")))
            .collect();
        let query = CredentialQuery {
            guids: Some(guids().map(CredentialGuid::from_uuid).collect()),
            organization_guids: Some(guids().map(OrganizationGuid::from_uuid).collect()),
            space_guids: Some(guids().map(SpaceGuid::from_uuid).collect()),
            app_guids: Some(guids().map(AppGuid::from_uuid).collect()),
            scopes: Some(vec![Scope::App; MAX_LIST_FILTER_VALUES]),
            locations: Some(vec!["r.io".to_owned(); MAX_LIST_FILTER_VALUES]),
            label_selector: Some(LabelSelector::parse(&selector.join(",")).unwrap()),
            created_ats: timestamps.clone(),
            updated_ats: timestamps,
            ..CredentialQuery::default()
        };
        let bound = |query: &CredentialQuery, backend| {
            let statement = credentials::Entity::find()
                .filter(query_condition(query))
                .build(backend);
            statement.values.map_or(0, |values| values.0.len())
        };
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let visibility = bound(&CredentialQuery::default(), backend);
            let paging = 2;
            assert_eq!(
                bound(&query, backend) - visibility + paging,
                WORST_LIST_BINDS,
                "{backend:?}"
            );
        }
    }
}
