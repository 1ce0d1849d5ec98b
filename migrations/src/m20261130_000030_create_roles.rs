//! Roles in the directory, as Cloud Controller keeps them: one row per (user, role type, target),
//! the target an organization or a space. A space role also names its space's organization, so
//! the permission lookup reads one user's roles from one index without a join, and an
//! organization or space with roles refuses to be deleted (foreign keys with `RESTRICT`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len, timestamp_with_time_zone, uuid, uuid_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Roles {
    Table,
    Guid,
    UserGuid,
    RoleType,
    OrganizationGuid,
    SpaceGuid,
    /// The space for a space role, else the organization: one non-null column for uniqueness.
    TargetGuid,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Guid,
}

#[derive(DeriveIden)]
enum Spaces {
    Table,
    Guid,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Roles::Table)
                    .col(uuid(Roles::Guid).primary_key())
                    .col(string_len(Roles::UserGuid, 255))
                    .col(string_len(Roles::RoleType, 64))
                    .col(uuid(Roles::OrganizationGuid))
                    .col(uuid_null(Roles::SpaceGuid))
                    .col(uuid(Roles::TargetGuid))
                    .col(timestamp_with_time_zone(Roles::CreatedAt))
                    .col(timestamp_with_time_zone(Roles::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_roles_organization")
                            .from(Roles::Table, Roles::OrganizationGuid)
                            .to(Organizations::Table, Organizations::Guid)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_roles_space")
                            .from(Roles::Table, Roles::SpaceGuid)
                            .to(Spaces::Table, Spaces::Guid)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // Leads with the user: the permission lookup of every request is a range of it.
        manager
            .create_index(
                Index::create()
                    .name("uq_roles_user_type_target")
                    .table(Roles::Table)
                    .col(Roles::UserGuid)
                    .col(Roles::RoleType)
                    .col(Roles::TargetGuid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_roles_organization_guid", Roles::OrganizationGuid),
            ("idx_roles_space_guid", Roles::SpaceGuid),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Roles::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_roles_created_at_guid")
                    .table(Roles::Table)
                    .col(Roles::CreatedAt)
                    .col(Roles::Guid)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Roles::Table).to_owned())
            .await
    }
}
