//! Organization registries (one per organization) and their robot credentials.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, string_len, string_len_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Guid,
}

#[derive(DeriveIden)]
enum Registries {
    Table,
    Id,
    /// Unique: the database, not a lock, guarantees one registry per organization.
    OrganizationGuid,
    HarborProject,
    HarborProjectId,
    HarborQuotaId,
    ProjectRequestedAt,
    Endpoint,
    State,
    EverEnabled,
    QuotaGb,
    UsedBytes,
    UsedCheckedAt,
    /// Who works on the row, until when: replicas and the reconciler take turns through it.
    LeaseHolder,
    LeaseUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RegistryRobots {
    Table,
    Id,
    RegistryId,
    Name,
    Access,
    IsDefault,
    ExpiresInDays,
    HarborRobotId,
    Username,
    ExpiresAt,
    State,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Registries::Table)
                    .col(uuid(Registries::Id).primary_key())
                    .col(uuid(Registries::OrganizationGuid).unique_key())
                    .col(string_len(Registries::HarborProject, 255))
                    .col(big_integer_null(Registries::HarborProjectId))
                    .col(big_integer_null(Registries::HarborQuotaId))
                    .col(timestamp_with_time_zone_null(
                        Registries::ProjectRequestedAt,
                    ))
                    .col(string_len(Registries::Endpoint, 512))
                    .col(string_len(Registries::State, 16))
                    .col(boolean(Registries::EverEnabled))
                    .col(big_integer(Registries::QuotaGb))
                    .col(big_integer_null(Registries::UsedBytes))
                    .col(timestamp_with_time_zone_null(Registries::UsedCheckedAt))
                    .col(uuid_null(Registries::LeaseHolder))
                    .col(timestamp_with_time_zone_null(Registries::LeaseUntil))
                    .col(timestamp_with_time_zone(Registries::CreatedAt))
                    .col(timestamp_with_time_zone(Registries::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_registries_organization")
                            .from(Registries::Table, Registries::OrganizationGuid)
                            .to(Organizations::Table, Organizations::Guid)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_registries_state_updated_at")
                    .table(Registries::Table)
                    .col(Registries::State)
                    .col(Registries::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RegistryRobots::Table)
                    .col(uuid(RegistryRobots::Id).primary_key())
                    .col(uuid(RegistryRobots::RegistryId))
                    .col(string_len(RegistryRobots::Name, 64))
                    .col(string_len(RegistryRobots::Access, 16))
                    .col(boolean(RegistryRobots::IsDefault))
                    .col(big_integer_null(RegistryRobots::ExpiresInDays))
                    .col(big_integer_null(RegistryRobots::HarborRobotId))
                    .col(string_len_null(RegistryRobots::Username, 512))
                    .col(timestamp_with_time_zone_null(RegistryRobots::ExpiresAt))
                    .col(string_len(RegistryRobots::State, 16))
                    .col(timestamp_with_time_zone(RegistryRobots::CreatedAt))
                    .col(timestamp_with_time_zone(RegistryRobots::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_registry_robots_registry")
                            .from(RegistryRobots::Table, RegistryRobots::RegistryId)
                            .to(Registries::Table, Registries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_registry_robots_registry_name")
                    .table(RegistryRobots::Table)
                    .col(RegistryRobots::RegistryId)
                    .col(RegistryRobots::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_registry_robots_state_updated_at")
                    .table(RegistryRobots::Table)
                    .col(RegistryRobots::State)
                    .col(RegistryRobots::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RegistryRobots::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Registries::Table).to_owned())
            .await
    }
}
