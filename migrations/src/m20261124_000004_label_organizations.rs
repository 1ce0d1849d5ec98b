//! The organization of each label's credential, on the label row, and an index that starts
//! with it: a label selector inside one organization then reads that organization's labels
//! only, however many other organizations there are (docs/BENCHMARKS.md, "Growth").

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RegistryCredentials {
    Table,
    Guid,
    OrganizationGuid,
}

#[derive(DeriveIden)]
enum RegistryCredentialLabels {
    Table,
    CredentialGuid,
    /// A copy of the credential's organization (NULL for foundation credentials). A credential
    /// never changes organization, so the copy never goes stale.
    OrganizationGuid,
    Key,
    Value,
}

const INDEX: &str = "idx_registry_credential_labels_organization_key_value";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RegistryCredentialLabels::Table)
                    .add_column(
                        ColumnDef::new(RegistryCredentialLabels::OrganizationGuid)
                            .uuid()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        let organization = Query::select()
            .column((
                RegistryCredentials::Table,
                RegistryCredentials::OrganizationGuid,
            ))
            .from(RegistryCredentials::Table)
            .and_where(
                Expr::col((RegistryCredentials::Table, RegistryCredentials::Guid)).equals((
                    RegistryCredentialLabels::Table,
                    RegistryCredentialLabels::CredentialGuid,
                )),
            )
            .to_owned();
        manager
            .exec_stmt(
                Query::update()
                    .table(RegistryCredentialLabels::Table)
                    .value(
                        RegistryCredentialLabels::OrganizationGuid,
                        SimpleExpr::SubQuery(
                            None,
                            Box::new(organization.into_sub_query_statement()),
                        ),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(RegistryCredentialLabels::Table)
                    .col(RegistryCredentialLabels::OrganizationGuid)
                    .col(RegistryCredentialLabels::Key)
                    .col(RegistryCredentialLabels::Value)
                    .col(RegistryCredentialLabels::CredentialGuid)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(RegistryCredentialLabels::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RegistryCredentialLabels::Table)
                    .drop_column(RegistryCredentialLabels::OrganizationGuid)
                    .to_owned(),
            )
            .await
    }
}
