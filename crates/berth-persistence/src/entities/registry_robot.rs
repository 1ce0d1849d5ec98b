use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_robots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub registry_id: Uuid,
    pub name: String,
    pub access: String,
    pub is_default: bool,
    pub expires_in_days: Option<i64>,
    pub harbor_robot_id: Option<i64>,
    pub username: Option<String>,
    pub expires_at: Option<TimeDateTimeWithTimeZone>,
    pub state: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
    pub managed: bool,
    pub credential_guid: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
