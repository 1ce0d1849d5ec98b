//! Key operations on sealed rows: which labels are in use, and re-sealing under the current key.

use std::sync::Arc;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::credential_store::password_binding;
use crate::entities::registry_credential as credentials;
use crate::idempotency_store::keys as idempotency_keys;
use crate::sealing::{KeyRing, SealError};

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyOperationError {
    #[error("database error")]
    Database(#[from] DbErr),
    #[error("the password of registry credential {guid} does not open")]
    Seal {
        guid: Uuid,
        #[source]
        source: SealError,
    },
    #[error("an idempotency record does not open")]
    SealIdempotency(#[source] SealError),
}

/// Rows sealed under one label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelCount {
    pub table: &'static str,
    pub label: String,
    pub rows: u64,
}

/// Counts sealed rows per key label, over every table that holds sealed values.
///
/// # Errors
/// [`KeyOperationError::Database`].
pub async fn label_counts(db: &DatabaseConnection) -> Result<Vec<LabelCount>, KeyOperationError> {
    let rows: Vec<(String, i64)> = credentials::Entity::find()
        .select_only()
        .column(credentials::Column::PasswordKeyLabel)
        .column_as(Expr::col(credentials::Column::Guid).count(), "rows")
        .group_by(credentials::Column::PasswordKeyLabel)
        .order_by_asc(credentials::Column::PasswordKeyLabel)
        .into_tuple()
        .all(db)
        .await?;
    let mut counts: Vec<LabelCount> = rows
        .into_iter()
        .map(|(label, rows)| LabelCount {
            table: crate::credential_store::TABLE,
            label,
            rows: u64::try_from(rows).unwrap_or_default(),
        })
        .collect();
    counts.extend(idempotency_keys::label_counts(db).await?);
    Ok(counts)
}

/// Labels in use by stored rows that the key ring lacks: Berth must not start with any.
///
/// # Errors
/// [`KeyOperationError::Database`].
pub async fn missing_labels(
    db: &DatabaseConnection,
    keys: &KeyRing,
) -> Result<Vec<String>, KeyOperationError> {
    Ok(label_counts(db)
        .await?
        .into_iter()
        .filter(|count| !keys.contains(&count.label))
        .map(|count| count.label)
        .collect())
}

/// What a rotation pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotationReport {
    /// Rows re-sealed under the current label.
    pub rotated: u64,
    /// Rows changed by someone else between read and write; they already carry a fresh seal
    /// unless a later pass finds them again.
    pub raced: u64,
}

/// Re-seals every row not under the current label, `batch_size` rows at a time.
///
/// Online and idempotent: each row is rewritten only if it still holds the ciphertext that was
/// read (a concurrent change wins), `updated_at` is left alone, and a second run finds nothing.
///
/// # Errors
/// [`KeyOperationError::Seal`] when a row does not open (its label is missing or it was
/// tampered with); rows already rotated stay rotated.
pub async fn rotate(
    db: &DatabaseConnection,
    keys: Arc<KeyRing>,
    batch_size: u64,
) -> Result<RotationReport, KeyOperationError> {
    let current = keys.current_label().to_owned();
    let mut report = RotationReport::default();
    let mut cursor: Option<Uuid> = None;
    loop {
        let mut batch = credentials::Entity::find()
            .select_only()
            .column(credentials::Column::Guid)
            .column(credentials::Column::PasswordKeyLabel)
            .column(credentials::Column::PasswordCiphertext)
            .filter(credentials::Column::PasswordKeyLabel.ne(current.as_str()))
            .order_by_asc(credentials::Column::Guid)
            .limit(Ord::max(batch_size, 1));
        if let Some(after) = cursor {
            batch = batch.filter(credentials::Column::Guid.gt(after));
        }
        let rows: Vec<(Uuid, String, Vec<u8>)> = batch.into_tuple().all(db).await?;
        let Some(last) = rows.last() else { break };
        cursor = Some(last.0);
        for (guid, label, ciphertext) in rows {
            let row = guid.to_string();
            let binding = password_binding(&row);
            let plaintext = keys
                .open(binding, &label, &ciphertext)
                .map_err(|source| KeyOperationError::Seal { guid, source })?;
            let sealed = keys
                .seal(binding, &plaintext)
                .map_err(|source| KeyOperationError::Seal { guid, source })?;
            let result = credentials::Entity::update_many()
                .col_expr(
                    credentials::Column::PasswordCiphertext,
                    Expr::value(sealed.bytes),
                )
                .col_expr(
                    credentials::Column::PasswordKeyLabel,
                    Expr::value(sealed.label),
                )
                .filter(credentials::Column::Guid.eq(guid))
                .filter(credentials::Column::PasswordKeyLabel.eq(label))
                .filter(credentials::Column::PasswordCiphertext.eq(ciphertext))
                .exec(db)
                .await?;
            if result.rows_affected == 1 {
                report.rotated += 1;
            } else {
                report.raced += 1;
            }
        }
    }
    let idempotency = idempotency_keys::rotate(db, &keys, Ord::max(batch_size, 1)).await?;
    report.rotated += idempotency.rotated;
    report.raced += idempotency.raced;
    Ok(report)
}
