//! The platform pull robot: a robot row can be managed by Berth (the organization's pull robot,
//! refused by the robot routes) and names the organization-scoped registry credential that holds
//! its login, so both are written and deleted in one transaction.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{boolean, uuid_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RegistryRobots {
    Table,
    Managed,
    CredentialGuid,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(RegistryRobots::Table)
                    .add_column(boolean(RegistryRobots::Managed).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RegistryRobots::Table)
                    .add_column(uuid_null(RegistryRobots::CredentialGuid))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RegistryRobots::Table)
                    .drop_column(RegistryRobots::CredentialGuid)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RegistryRobots::Table)
                    .drop_column(RegistryRobots::Managed)
                    .to_owned(),
            )
            .await
    }
}
