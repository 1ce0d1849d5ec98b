//! Audit events on sea-orm: the rows every other store writes inside its own transactions
//! ([`insert_in`]), and [`AuditEventStore`] to list, read and prune them.

use async_trait::async_trait;
use berth_domain::audit::{
    AccessLog, AuditActor, AuditData, AuditEvent, AuditEventGuid, AuditEventStore, AuditEventType,
    AuditQuery, AuditTarget, AuditValue, PRIVATE_DATA_HIDDEN,
};
use berth_domain::ids::{OrganizationGuid, SpaceGuid};
use berth_domain::listing::{Page, TimestampFilter};
use berth_domain::permissions::AuditVisibility;
use berth_domain::ports::StoreError;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, Value,
};
use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::entities::audit_event as events;
use crate::errors::{corrupt, store_error};
use crate::paging::fetch_page;

/// The columns of an event row, in the order [`values`] gives them.
pub(crate) const COLUMNS: &str = concat!(
    r#""guid", "created_at", "type", "actor_guid", "actor_type", "actor_name", "#,
    r#""target_guid", "target_type", "target_name", "data", "organization_guid", "space_guid""#
);

/// Events per multi-row statement: 12 values a row, under both databases' bound-value limits.
const ROWS_PER_STATEMENT: usize = 1_000;

/// `data` as stored: JSON, every [`AuditValue::Hidden`] written as [`PRIVATE_DATA_HIDDEN`]. The
/// one place an event's data becomes text, so no other path can put a secret in.
pub(crate) fn data_json(data: &AuditData) -> String {
    fn object(data: &AuditData) -> Json {
        Json::Object(
            data.entries()
                .map(|(key, value)| {
                    let value = match value {
                        AuditValue::Text(text) => Json::String(text.clone()),
                        AuditValue::Integer(number) => Json::from(*number),
                        AuditValue::Bool(flag) => Json::Bool(*flag),
                        AuditValue::Hidden => Json::String(PRIVATE_DATA_HIDDEN.to_owned()),
                        AuditValue::Map(inner) => object(inner),
                    };
                    (key.clone(), value)
                })
                .collect(),
        )
    }
    object(data).to_string()
}

fn parse_data(text: &str) -> Result<AuditData, StoreError> {
    fn from_object(map: serde_json::Map<String, Json>) -> Result<AuditData, StoreError> {
        map.into_iter()
            .try_fold(AuditData::new(), |data, (key, value)| {
                Ok(match value {
                    Json::String(text) if text == PRIVATE_DATA_HIDDEN => data.hidden(&key),
                    Json::String(text) => data.text(&key, text),
                    Json::Bool(flag) => data.flag(&key, flag),
                    Json::Number(number) => {
                        data.integer(&key, number.as_i64().ok_or_else(|| corrupt("event data"))?)
                    }
                    Json::Object(inner) => data.map(&key, from_object(inner)?),
                    _ => return Err(corrupt("event data")),
                })
            })
    }
    match serde_json::from_str(text) {
        Ok(Json::Object(map)) => from_object(map),
        _ => Err(corrupt("event data")),
    }
}

/// An event's values, in the order of [`COLUMNS`].
pub(crate) fn values(event: &AuditEvent) -> Vec<Value> {
    vec![
        event.guid.as_uuid().into(),
        event.created_at.into(),
        event.event_type.as_str().into(),
        event.actor.guid.clone().into(),
        event.actor.kind.clone().into(),
        event.actor.name.clone().into(),
        event.target.guid.clone().into(),
        event.target.kind.clone().into(),
        event.target.name.clone().into(),
        data_json(&event.data).into(),
        event.organization.map(|g| g.as_uuid()).into(),
        event.space.map(|g| g.as_uuid()).into(),
    ]
}

fn row(event: &AuditEvent) -> events::ActiveModel {
    events::ActiveModel {
        guid: ActiveValue::Set(event.guid.as_uuid()),
        created_at: ActiveValue::Set(event.created_at),
        event_type: ActiveValue::Set(event.event_type.as_str().to_owned()),
        actor_guid: ActiveValue::Set(event.actor.guid.clone()),
        actor_type: ActiveValue::Set(event.actor.kind.clone()),
        actor_name: ActiveValue::Set(event.actor.name.clone()),
        target_guid: ActiveValue::Set(event.target.guid.clone()),
        target_type: ActiveValue::Set(event.target.kind.clone()),
        target_name: ActiveValue::Set(event.target.name.clone()),
        data: ActiveValue::Set(data_json(&event.data)),
        organization_guid: ActiveValue::Set(event.organization.map(|g| g.as_uuid())),
        space_guid: ActiveValue::Set(event.space.map(|g| g.as_uuid())),
    }
}

/// Writes events inside the caller's transaction (or connection), so they commit or roll back
/// with the change they record.
pub(crate) async fn insert_in<C: ConnectionTrait>(
    connection: &C,
    batch: &[AuditEvent],
) -> Result<(), StoreError> {
    insert_rows(connection, batch).await.map_err(store_error)
}

/// [`insert_in`] with the database's own error, for callers that classify it themselves.
pub(crate) async fn insert_rows<C: ConnectionTrait>(
    connection: &C,
    batch: &[AuditEvent],
) -> Result<(), sea_orm::DbErr> {
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        events::Entity::insert_many(chunk.iter().map(row))
            .exec_without_returning(connection)
            .await?;
    }
    Ok(())
}

fn to_domain(model: events::Model) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent::stored(
        AuditEventGuid::from_uuid(model.guid),
        model.created_at,
        AuditEventType::parse(&model.event_type).ok_or_else(|| corrupt("event type"))?,
        AuditActor::new(model.actor_guid, model.actor_type, model.actor_name),
        AuditTarget::new(model.target_guid, &model.target_type, model.target_name),
        parse_data(&model.data)?,
    )
    .placed(
        model.organization_guid.map(OrganizationGuid::from_uuid),
        model.space_guid.map(SpaceGuid::from_uuid),
    ))
}

fn timestamp_condition(filter: &TimestampFilter) -> Condition {
    let column = events::Column::CreatedAt;
    let mut condition = Condition::all();
    if !filter.equals.is_empty() {
        condition = condition.add(column.is_in(filter.equals.iter().copied()));
    }
    for (bound, compare) in [
        (
            filter.lt,
            ColumnTrait::lt as fn(&events::Column, OffsetDateTime) -> _,
        ),
        (filter.lte, ColumnTrait::lte),
        (filter.gt, ColumnTrait::gt),
        (filter.gte, ColumnTrait::gte),
    ] {
        if let Some(bound) = bound {
            condition = condition.add(compare(&column, bound));
        }
    }
    condition
}

fn visibility_condition(visibility: &AuditVisibility) -> Condition {
    match visibility {
        AuditVisibility::Everything => Condition::all(),
        AuditVisibility::Scoped {
            organizations,
            spaces,
        } => Condition::any()
            .add(
                events::Column::OrganizationGuid
                    .is_in(organizations.iter().map(OrganizationGuid::as_uuid)),
            )
            .add(events::Column::SpaceGuid.is_in(spaces.iter().map(SpaceGuid::as_uuid))),
    }
}

fn query_condition(query: &AuditQuery) -> Condition {
    let mut condition = Condition::all().add(visibility_condition(&query.visibility));
    if let Some(types) = &query.types {
        condition =
            condition.add(events::Column::EventType.is_in(types.iter().map(|t| t.as_str())));
    }
    if let Some(targets) = &query.target_guids {
        condition = condition.add(events::Column::TargetGuid.is_in(targets.iter().cloned()));
    }
    if let Some(spaces) = &query.space_guids {
        condition =
            condition.add(events::Column::SpaceGuid.is_in(spaces.iter().map(SpaceGuid::as_uuid)));
    }
    if let Some(organizations) = &query.organization_guids {
        condition = condition.add(
            events::Column::OrganizationGuid
                .is_in(organizations.iter().map(OrganizationGuid::as_uuid)),
        );
    }
    condition
        .add(timestamp_condition(&query.created_ats))
        .add(timestamp_condition(&query.updated_ats))
}

/// Audit events in PostgreSQL or SQLite.
#[derive(Clone)]
pub struct SeaOrmAuditStore {
    db: DatabaseConnection,
}

impl SeaOrmAuditStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Writes a batch of events in one transaction, as multi-row inserts (the access log's
    /// flushes, the benchmark's seeding).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a guid already stored (nothing is written then);
    /// otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    pub async fn insert_batch(&self, batch: &[AuditEvent]) -> Result<(), StoreError> {
        if batch.len() <= ROWS_PER_STATEMENT {
            return insert_in(&self.db, batch).await;
        }
        let transaction = crate::begin_write(&self.db).await.map_err(store_error)?;
        insert_in(&transaction, batch).await?;
        transaction.commit().await.map_err(store_error)
    }
}

/// Writes each call's events at once, in one transaction: for embedders and tests that want
/// them readable when `record` returns. Berth's server batches through its own writer
/// (`startup/access_log.rs`) instead, off the request's path.
#[async_trait]
impl AccessLog for SeaOrmAuditStore {
    async fn record(&self, events: Vec<AuditEvent>) {
        if events.is_empty() {
            return;
        }
        if let Err(error) = self.insert_batch(&events).await {
            // The read already happened: the loss is counted in the log, never hidden.
            tracing::error!(
                lost = events.len(),
                error = %error,
                "audit access events were lost: the database refused them"
            );
        }
    }
}

#[async_trait]
impl AuditEventStore for SeaOrmAuditStore {
    #[tracing::instrument(name = "db.audit_events.list", skip_all, fields(otel.kind = "client"))]
    async fn list(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, StoreError> {
        let filtered = events::Entity::find().filter(query_condition(query));
        // Both order fields are the event's time: events never change.
        let page = fetch_page(
            &self.db,
            filtered,
            events::Column::CreatedAt,
            events::Column::Guid,
            query.direction(),
            query.page,
        )
        .await?;
        Ok(Page {
            total_results: page.total_results,
            items: page
                .items
                .into_iter()
                .map(to_domain)
                .collect::<Result<_, _>>()?,
        })
    }

    #[tracing::instrument(name = "db.audit_events.get", skip_all, fields(otel.kind = "client"))]
    async fn get(&self, guid: AuditEventGuid) -> Result<Option<AuditEvent>, StoreError> {
        events::Entity::find_by_id(guid.as_uuid())
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(to_domain)
            .transpose()
    }

    #[tracing::instrument(name = "db.audit_events.prune", skip_all, fields(otel.kind = "client"))]
    async fn prune(&self, before: OffsetDateTime, batch: u32) -> Result<u64, StoreError> {
        // One batch by primary key, oldest first through the (created_at, guid) index: replicas
        // pruning at once delete disjoint or already-deleted rows and never wait long.
        let expired = Query::select()
            .column(events::Column::Guid)
            .from(events::Entity)
            .and_where(events::Column::CreatedAt.lt(before))
            .order_by(events::Column::CreatedAt, sea_orm::Order::Asc)
            .limit(u64::from(batch))
            .to_owned();
        let result = events::Entity::delete_many()
            .filter(Expr::col(events::Column::Guid).in_subquery(expired))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_values_are_stored_as_the_marker_and_read_back_hidden() {
        let data = AuditData::request(
            AuditData::new()
                .text("username", "ci")
                .hidden("password")
                .integer("quota_gb", 5)
                .flag("enabled", true),
        );
        let json = data_json(&data);
        assert_eq!(
            json,
            r#"{"request":{"enabled":true,"password":"[PRIVATE DATA HIDDEN]","quota_gb":5,"username":"ci"}}"#
        );
        let back = parse_data(&json).unwrap();
        assert_eq!(data_json(&back), json);
    }
}
