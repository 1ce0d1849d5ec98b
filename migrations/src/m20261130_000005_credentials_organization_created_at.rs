//! An index on (organization, created_at, guid) of the credentials: one organization's list, in
//! its default order, is a walk of that organization's index entries, however many other
//! organizations there are (bench/README.md, "Growth"). Without it the page walked the global
//! `created_at` index and filtered out every other organization's rows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RegistryCredentials {
    Table,
    Guid,
    OrganizationGuid,
    CreatedAt,
}

const INDEX: &str = "idx_registry_credentials_organization_created_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(RegistryCredentials::Table)
                    .col(RegistryCredentials::OrganizationGuid)
                    .col(RegistryCredentials::CreatedAt)
                    .col(RegistryCredentials::Guid)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(RegistryCredentials::Table)
                    .to_owned(),
            )
            .await
    }
}
