//! Registry credentials, their sealed passwords, and a label table for label selectors.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, blob, string_len, text, timestamp_with_time_zone, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

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

#[derive(DeriveIden)]
enum Apps {
    Table,
    Guid,
}

#[derive(DeriveIden)]
enum RegistryCredentials {
    Table,
    Guid,
    Scope,
    /// `foundation` or `<scope>:<guid>`: one non-null column so that the uniqueness of
    /// (scope target, location) holds on every database (NULLs never collide in a unique index).
    ScopeKey,
    OrganizationGuid,
    SpaceGuid,
    AppGuid,
    Location,
    Username,
    PasswordCiphertext,
    PasswordKeyLabel,
    /// The labels as a JSON object, to render responses without a second query; the label table
    /// below is the one selectors search.
    Labels,
    Annotations,
    CreatedAt,
    UpdatedAt,
    /// Bumped by every change, so concurrent read-modify-write updates never lose one another.
    Revision,
}

#[derive(DeriveIden)]
enum RegistryCredentialLabels {
    Table,
    CredentialGuid,
    Key,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RegistryCredentials::Table)
                    .col(uuid(RegistryCredentials::Guid).primary_key())
                    .col(string_len(RegistryCredentials::Scope, 16))
                    .col(string_len(RegistryCredentials::ScopeKey, 64))
                    .col(uuid_null(RegistryCredentials::OrganizationGuid))
                    .col(uuid_null(RegistryCredentials::SpaceGuid))
                    .col(uuid_null(RegistryCredentials::AppGuid))
                    .col(string_len(RegistryCredentials::Location, 512))
                    .col(string_len(RegistryCredentials::Username, 255))
                    .col(blob(RegistryCredentials::PasswordCiphertext))
                    .col(string_len(RegistryCredentials::PasswordKeyLabel, 64))
                    .col(text(RegistryCredentials::Labels))
                    .col(text(RegistryCredentials::Annotations))
                    .col(timestamp_with_time_zone(RegistryCredentials::CreatedAt))
                    .col(timestamp_with_time_zone(RegistryCredentials::UpdatedAt))
                    .col(big_integer(RegistryCredentials::Revision).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_registry_credentials_organization")
                            .from(
                                RegistryCredentials::Table,
                                RegistryCredentials::OrganizationGuid,
                            )
                            .to(Organizations::Table, Organizations::Guid)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_registry_credentials_space")
                            .from(RegistryCredentials::Table, RegistryCredentials::SpaceGuid)
                            .to(Spaces::Table, Spaces::Guid)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_registry_credentials_app")
                            .from(RegistryCredentials::Table, RegistryCredentials::AppGuid)
                            .to(Apps::Table, Apps::Guid)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_registry_credentials_scope_key_location")
                    .table(RegistryCredentials::Table)
                    .col(RegistryCredentials::ScopeKey)
                    .col(RegistryCredentials::Location)
                    .unique()
                    .to_owned(),
            )
            .await?;
        let indexes = [
            (
                "idx_registry_credentials_organization",
                RegistryCredentials::OrganizationGuid,
            ),
            (
                "idx_registry_credentials_space",
                RegistryCredentials::SpaceGuid,
            ),
            ("idx_registry_credentials_app", RegistryCredentials::AppGuid),
            (
                "idx_registry_credentials_created_at",
                RegistryCredentials::CreatedAt,
            ),
            (
                "idx_registry_credentials_updated_at",
                RegistryCredentials::UpdatedAt,
            ),
            (
                "idx_registry_credentials_location",
                RegistryCredentials::Location,
            ),
            (
                "idx_registry_credentials_key_label",
                RegistryCredentials::PasswordKeyLabel,
            ),
        ];
        for (name, column) in indexes {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(RegistryCredentials::Table)
                        .col(column)
                        .col(RegistryCredentials::Guid)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RegistryCredentialLabels::Table)
                    .col(uuid(RegistryCredentialLabels::CredentialGuid))
                    .col(string_len(RegistryCredentialLabels::Key, 320))
                    .col(string_len(RegistryCredentialLabels::Value, 63))
                    .primary_key(
                        Index::create()
                            .col(RegistryCredentialLabels::CredentialGuid)
                            .col(RegistryCredentialLabels::Key),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_registry_credential_labels_credential")
                            .from(
                                RegistryCredentialLabels::Table,
                                RegistryCredentialLabels::CredentialGuid,
                            )
                            .to(RegistryCredentials::Table, RegistryCredentials::Guid)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_registry_credential_labels_key_value")
                    .table(RegistryCredentialLabels::Table)
                    .col(RegistryCredentialLabels::Key)
                    .col(RegistryCredentialLabels::Value)
                    .col(RegistryCredentialLabels::CredentialGuid)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(RegistryCredentialLabels::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(RegistryCredentials::Table).to_owned())
            .await
    }
}
