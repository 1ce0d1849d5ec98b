use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_guid: Uuid,
    pub harbor_project: String,
    pub harbor_project_id: Option<i64>,
    pub harbor_quota_id: Option<i64>,
    pub project_requested_at: Option<TimeDateTimeWithTimeZone>,
    pub endpoint: String,
    pub state: String,
    pub ever_enabled: bool,
    pub quota_gb: i64,
    pub used_bytes: Option<i64>,
    pub used_checked_at: Option<TimeDateTimeWithTimeZone>,
    pub lease_holder: Option<Uuid>,
    pub lease_until: Option<TimeDateTimeWithTimeZone>,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
