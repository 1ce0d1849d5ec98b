use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub guid: Uuid,
    pub scope: String,
    pub scope_key: String,
    pub organization_guid: Option<Uuid>,
    pub space_guid: Option<Uuid>,
    pub app_guid: Option<Uuid>,
    pub location: String,
    pub username: String,
    pub password_ciphertext: Vec<u8>,
    pub password_key_label: String,
    pub labels: String,
    pub annotations: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
    pub revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
