//! Idempotency keys: one record per (caller, key), claimed while its request runs, then holding
//! the sealed answer for replays until it expires. The caller is kept as a digest of the token's
//! subject (fixed length, and no subject is stored in the clear), the request as a sealed digest.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    blob, blob_null, string_len, string_len_null, timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    PrincipalDigest,
    IdempotencyKey,
    FingerprintCiphertext,
    FingerprintKeyLabel,
    AnswerCiphertext,
    AnswerKeyLabel,
    ClaimedUntil,
    ExpiresAt,
    CreatedAt,
}

const EXPIRY_INDEX: &str = "idx_idempotency_keys_expires_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(string_len(IdempotencyKeys::PrincipalDigest, 64))
                    .col(string_len(IdempotencyKeys::IdempotencyKey, 255))
                    .col(blob(IdempotencyKeys::FingerprintCiphertext))
                    .col(string_len(IdempotencyKeys::FingerprintKeyLabel, 64))
                    .col(blob_null(IdempotencyKeys::AnswerCiphertext))
                    .col(string_len_null(IdempotencyKeys::AnswerKeyLabel, 64))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ClaimedUntil))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::PrincipalDigest)
                            .col(IdempotencyKeys::IdempotencyKey),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(EXPIRY_INDEX)
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}
