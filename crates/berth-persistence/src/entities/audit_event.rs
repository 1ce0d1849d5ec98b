use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub guid: Uuid,
    pub created_at: TimeDateTimeWithTimeZone,
    #[sea_orm(column_name = "type")]
    pub event_type: String,
    pub actor_guid: String,
    pub actor_type: String,
    pub actor_name: String,
    pub target_guid: String,
    pub target_type: String,
    pub target_name: String,
    pub data: String,
    pub organization_guid: Option<Uuid>,
    pub space_guid: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
