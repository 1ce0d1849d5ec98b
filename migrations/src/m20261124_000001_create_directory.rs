//! Organizations, spaces and apps: Berth's copy of the platform's directory.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len, timestamp_with_time_zone, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Guid,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Spaces {
    Table,
    Guid,
    Name,
    OrganizationGuid,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Apps {
    Table,
    Guid,
    Name,
    SpaceGuid,
    OrganizationGuid,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(uuid(Organizations::Guid).primary_key())
                    .col(string_len(Organizations::Name, 255))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .col(timestamp_with_time_zone(Organizations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Spaces::Table)
                    .col(uuid(Spaces::Guid).primary_key())
                    .col(string_len(Spaces::Name, 255))
                    .col(uuid(Spaces::OrganizationGuid))
                    .col(timestamp_with_time_zone(Spaces::CreatedAt))
                    .col(timestamp_with_time_zone(Spaces::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_spaces_organization")
                            .from(Spaces::Table, Spaces::OrganizationGuid)
                            .to(Organizations::Table, Organizations::Guid)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Apps::Table)
                    .col(uuid(Apps::Guid).primary_key())
                    .col(string_len(Apps::Name, 255))
                    .col(uuid(Apps::SpaceGuid))
                    .col(uuid(Apps::OrganizationGuid))
                    .col(timestamp_with_time_zone(Apps::CreatedAt))
                    .col(timestamp_with_time_zone(Apps::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_apps_space")
                            .from(Apps::Table, Apps::SpaceGuid)
                            .to(Spaces::Table, Spaces::Guid)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_apps_organization")
                            .from(Apps::Table, Apps::OrganizationGuid)
                            .to(Organizations::Table, Organizations::Guid)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, table, column) in [
            (
                "idx_spaces_organization_guid",
                Spaces::Table.into_iden(),
                Spaces::OrganizationGuid.into_iden(),
            ),
            (
                "idx_apps_space_guid",
                Apps::Table.into_iden(),
                Apps::SpaceGuid.into_iden(),
            ),
            (
                "idx_apps_organization_guid",
                Apps::Table.into_iden(),
                Apps::OrganizationGuid.into_iden(),
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Apps::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Spaces::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Organizations::Table).to_owned())
            .await
    }
}
