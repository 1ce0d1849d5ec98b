//! Audit events (`/v3/audit_events`): one row per change, written in the change's transaction,
//! and one per password revealed by pull-secret resolution. Rows never change; they are pruned
//! after `audit.retention_days`. Targets and actors are text: not all of them are UUIDs (the
//! `system` actor, a token's subject). `data` is JSON with every secret already hidden.
//!
//! The indexes serve the lists: one organization's (or space's) events in time order are a walk
//! of that organization's index entries however many events the table holds, and the
//! `(created_at, guid)` index serves the unfiltered list and the pruner's oldest-first batches.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len, text, timestamp_with_time_zone, uuid, uuid_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Guid,
    CreatedAt,
    Type,
    ActorGuid,
    ActorType,
    ActorName,
    TargetGuid,
    TargetType,
    TargetName,
    Data,
    OrganizationGuid,
    SpaceGuid,
}

const ORGANIZATION_INDEX: &str = "idx_audit_events_organization_created_at";
const SPACE_INDEX: &str = "idx_audit_events_space_created_at";
const CREATED_AT_INDEX: &str = "idx_audit_events_created_at";
const TARGET_INDEX: &str = "idx_audit_events_target";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(uuid(AuditEvents::Guid).primary_key())
                    .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                    .col(string_len(AuditEvents::Type, 64))
                    .col(string_len(AuditEvents::ActorGuid, 255))
                    .col(string_len(AuditEvents::ActorType, 32))
                    .col(string_len(AuditEvents::ActorName, 255))
                    .col(string_len(AuditEvents::TargetGuid, 255))
                    .col(string_len(AuditEvents::TargetType, 64))
                    .col(text(AuditEvents::TargetName))
                    .col(text(AuditEvents::Data))
                    .col(uuid_null(AuditEvents::OrganizationGuid))
                    .col(uuid_null(AuditEvents::SpaceGuid))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                ORGANIZATION_INDEX,
                &[
                    AuditEvents::OrganizationGuid,
                    AuditEvents::CreatedAt,
                    AuditEvents::Guid,
                ][..],
            ),
            (
                SPACE_INDEX,
                &[
                    AuditEvents::SpaceGuid,
                    AuditEvents::CreatedAt,
                    AuditEvents::Guid,
                ][..],
            ),
            (
                CREATED_AT_INDEX,
                &[AuditEvents::CreatedAt, AuditEvents::Guid][..],
            ),
            (TARGET_INDEX, &[AuditEvents::TargetGuid][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditEvents::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
