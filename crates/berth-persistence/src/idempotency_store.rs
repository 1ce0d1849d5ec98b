//! The sea-orm adapter of [`IdempotencyStore`]: one row per (caller, key), sealed like every
//! secret Berth keeps, its associated data binding it to the caller and the key.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use berth_domain::idempotency::{
    Claim, ClaimOutcome, KeyOwner, KeyRecord, RequestFingerprint, StoredAnswer,
};
use berth_domain::ports::{IdempotencyStore, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ActiveValue, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::entities::idempotency_key as record;
use crate::errors::{corrupt, store_error};
use crate::sealing::{KeyRing, SealBinding, Sealed};

pub(crate) const TABLE: &str = "idempotency_keys";
const FINGERPRINT: &str = "fingerprint";
const ANSWER: &str = "answer";
/// A claim races a release or a takeover at most this many times before it gives up.
const CLAIM_ATTEMPTS: usize = 4;

pub struct SeaOrmIdempotencyStore {
    db: DatabaseConnection,
    keys: Arc<KeyRing>,
}

impl SeaOrmIdempotencyStore {
    pub fn new(db: DatabaseConnection, keys: Arc<KeyRing>) -> Self {
        Self { db, keys }
    }
}

/// The caller as stored: a fixed-length digest of the token's subject.
fn principal_digest(principal: &str) -> String {
    Sha256::digest(principal.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The row's identity in the associated data: a value sealed for one caller and key never
/// opens under another.
fn row_name(digest: &str, key: &str) -> String {
    format!("{digest}/{key}")
}

fn binding<'a>(row: &'a str, column: &'a str) -> SealBinding<'a> {
    SealBinding {
        table: TABLE,
        row,
        column,
    }
}

fn seal(keys: &KeyRing, row: &str, column: &str, plaintext: &[u8]) -> Result<Sealed, StoreError> {
    keys.seal(binding(row, column), plaintext)
        .map_err(|error| StoreError::Unexpected(Box::new(error)))
}

fn open(
    keys: &KeyRing,
    row: &str,
    column: &str,
    label: &str,
    bytes: &[u8],
) -> Result<Vec<u8>, StoreError> {
    keys.open(binding(row, column), label, bytes)
        .map_err(|error| {
            tracing::error!(
                table = TABLE,
                column,
                error = %error,
                "an idempotency record does not open"
            );
            StoreError::Unexpected(Box::new(error))
        })
}

/// The answer as sealed: JSON, its body in base64.
fn encode_answer(answer: &StoredAnswer) -> Vec<u8> {
    serde_json::json!({
        "status": answer.status,
        "content_type": answer.content_type,
        "location": answer.location,
        "body": BASE64.encode(&answer.body),
    })
    .to_string()
    .into_bytes()
}

fn decode_answer(bytes: &[u8]) -> Result<StoredAnswer, StoreError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| corrupt("idempotency answer"))?;
    let text = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let status = value
        .get("status")
        .and_then(serde_json::Value::as_u64)
        .and_then(|status| u16::try_from(status).ok())
        .ok_or_else(|| corrupt("idempotency answer status"))?;
    let body = text("body")
        .and_then(|body| BASE64.decode(body).ok())
        .ok_or_else(|| corrupt("idempotency answer body"))?;
    Ok(StoredAnswer {
        status,
        content_type: text("content_type"),
        location: text("location"),
        body,
    })
}

impl SeaOrmIdempotencyStore {
    fn row_filter(digest: &str, key: &str) -> Condition {
        Condition::all()
            .add(record::Column::PrincipalDigest.eq(digest))
            .add(record::Column::IdempotencyKey.eq(key))
    }

    /// Inserts the claim; `false` when a row holds the key.
    async fn insert_claim(&self, row: &record::ActiveModel) -> Result<bool, StoreError> {
        let inserted = record::Entity::insert(row.clone())
            .on_conflict(
                OnConflict::columns([
                    record::Column::PrincipalDigest,
                    record::Column::IdempotencyKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(inserted == 1)
    }

    /// Takes over a row whose claim (unanswered) or replay window (answered) has run out.
    async fn take_over(
        &self,
        digest: &str,
        key: &str,
        row: &record::ActiveModel,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let lapsed = Condition::any()
            .add(
                Condition::all()
                    .add(record::Column::AnswerCiphertext.is_null())
                    .add(record::Column::ClaimedUntil.lt(now)),
            )
            .add(record::Column::ExpiresAt.lt(now));
        let result = record::Entity::update_many()
            .set(row.clone())
            .filter(Self::row_filter(digest, key))
            .filter(lapsed)
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected == 1)
    }

    async fn read(&self, digest: &str, key: &str) -> Result<Option<KeyRecord>, StoreError> {
        let Some(model) = record::Entity::find()
            .filter(Self::row_filter(digest, key))
            .one(&self.db)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let row = row_name(digest, key);
        let fingerprint = open(
            &self.keys,
            &row,
            FINGERPRINT,
            &model.fingerprint_key_label,
            &model.fingerprint_ciphertext,
        )?;
        let fingerprint: [u8; 32] = fingerprint
            .try_into()
            .map_err(|_| corrupt("idempotency fingerprint"))?;
        let answer = match (model.answer_ciphertext, model.answer_key_label) {
            (Some(bytes), Some(label)) => Some(decode_answer(&open(
                &self.keys, &row, ANSWER, &label, &bytes,
            )?)?),
            _ => None,
        };
        Ok(Some(KeyRecord::new(
            RequestFingerprint::new(fingerprint),
            answer,
        )))
    }
}

#[async_trait]
impl IdempotencyStore for SeaOrmIdempotencyStore {
    #[tracing::instrument(name = "db.idempotency_keys.claim", skip_all, fields(otel.kind = "client"))]
    async fn claim(&self, claim: &Claim) -> Result<ClaimOutcome, StoreError> {
        let digest = principal_digest(&claim.owner.principal);
        let key = claim.owner.key.as_str();
        let row_id = row_name(&digest, key);
        let sealed = seal(
            &self.keys,
            &row_id,
            FINGERPRINT,
            claim.fingerprint.as_bytes(),
        )?;
        let row = record::ActiveModel {
            principal_digest: ActiveValue::Set(digest.clone()),
            idempotency_key: ActiveValue::Set(key.to_owned()),
            fingerprint_ciphertext: ActiveValue::Set(sealed.bytes),
            fingerprint_key_label: ActiveValue::Set(sealed.label),
            answer_ciphertext: ActiveValue::Set(None),
            answer_key_label: ActiveValue::Set(None),
            claimed_until: ActiveValue::Set(claim.claimed_until),
            // An unanswered claim is pruned once it runs out.
            expires_at: ActiveValue::Set(claim.claimed_until),
            created_at: ActiveValue::Set(claim.now),
        };
        // Insert, or take over a lapsed row, or read the live one; a row released or taken over
        // between those statements sends the claim round again.
        for _ in 0..CLAIM_ATTEMPTS {
            if self.insert_claim(&row).await?
                || self.take_over(&digest, key, &row, claim.now).await?
            {
                return Ok(ClaimOutcome::Claimed);
            }
            if let Some(held) = self.read(&digest, key).await? {
                return Ok(ClaimOutcome::Held(held));
            }
        }
        Err(StoreError::Conflict)
    }

    #[tracing::instrument(name = "db.idempotency_keys.complete", skip_all, fields(otel.kind = "client"))]
    async fn complete(
        &self,
        owner: &KeyOwner,
        answer: &StoredAnswer,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let digest = principal_digest(&owner.principal);
        let key = owner.key.as_str();
        let sealed = seal(
            &self.keys,
            &row_name(&digest, key),
            ANSWER,
            &encode_answer(answer),
        )?;
        let result = record::Entity::update_many()
            .col_expr(record::Column::AnswerCiphertext, Expr::value(sealed.bytes))
            .col_expr(record::Column::AnswerKeyLabel, Expr::value(sealed.label))
            .col_expr(record::Column::ExpiresAt, Expr::value(expires_at))
            .filter(Self::row_filter(&digest, key))
            .filter(record::Column::AnswerCiphertext.is_null())
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        if result.rows_affected == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    #[tracing::instrument(name = "db.idempotency_keys.release", skip_all, fields(otel.kind = "client"))]
    async fn release(&self, owner: &KeyOwner) -> Result<(), StoreError> {
        let digest = principal_digest(&owner.principal);
        record::Entity::delete_many()
            .filter(Self::row_filter(&digest, owner.key.as_str()))
            .filter(record::Column::AnswerCiphertext.is_null())
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.idempotency_keys.prune", skip_all, fields(otel.kind = "client"))]
    async fn prune(&self, now: OffsetDateTime, batch: u32) -> Result<u64, StoreError> {
        // One batch by primary key through the expiry index: replicas pruning at once delete
        // disjoint or already-deleted rows, never wait on each other for long.
        let expired = Query::select()
            .columns([
                record::Column::PrincipalDigest,
                record::Column::IdempotencyKey,
            ])
            .from(record::Entity)
            .and_where(record::Column::ExpiresAt.lt(now))
            .limit(u64::from(batch))
            .to_owned();
        let result = record::Entity::delete_many()
            .filter(
                Expr::tuple([
                    Expr::col(record::Column::PrincipalDigest),
                    Expr::col(record::Column::IdempotencyKey),
                ])
                .in_subquery(expired),
            )
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected)
    }
}

/// The key operations of `crate::keys` on idempotency records: they hold sealed answers for a
/// day, so the key ring must keep their labels, and a rotation re-seals them like passwords.
pub(crate) mod keys {
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{
        ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
        QuerySelect,
    };

    use super::{ANSWER, FINGERPRINT, TABLE, binding, record};
    use crate::keys::{KeyOperationError, LabelCount, RotationReport};
    use crate::sealing::KeyRing;

    /// Rows per label of either sealed column.
    pub(crate) async fn label_counts(
        db: &DatabaseConnection,
    ) -> Result<Vec<LabelCount>, KeyOperationError> {
        let mut counts: Vec<LabelCount> = Vec::new();
        for column in [
            record::Column::FingerprintKeyLabel,
            record::Column::AnswerKeyLabel,
        ] {
            let rows: Vec<(Option<String>, i64)> = record::Entity::find()
                .select_only()
                .column(column)
                .column_as(Expr::col(record::Column::IdempotencyKey).count(), "rows")
                .filter(column.is_not_null())
                .group_by(column)
                .into_tuple()
                .all(db)
                .await?;
            for (label, rows) in rows {
                let Some(label) = label else { continue };
                let rows = u64::try_from(rows).unwrap_or_default();
                match counts.iter_mut().find(|count| count.label == label) {
                    Some(count) => count.rows += rows,
                    None => counts.push(LabelCount {
                        table: TABLE,
                        label,
                        rows,
                    }),
                }
            }
        }
        counts.sort_by(|a, b| a.label.cmp(&b.label));
        Ok(counts)
    }

    /// Re-seals every record with a column under another label than the current one.
    pub(crate) async fn rotate(
        db: &DatabaseConnection,
        keys: &KeyRing,
        batch_size: u64,
    ) -> Result<RotationReport, KeyOperationError> {
        let current = keys.current_label().to_owned();
        let mut report = RotationReport::default();
        let mut after: Option<(String, String)> = None;
        loop {
            let stale = Condition::any()
                .add(record::Column::FingerprintKeyLabel.ne(current.as_str()))
                .add(record::Column::AnswerKeyLabel.ne(current.as_str()));
            let mut query = record::Entity::find()
                .filter(stale)
                .order_by_asc(record::Column::PrincipalDigest)
                .order_by_asc(record::Column::IdempotencyKey)
                .limit(batch_size);
            if let Some((digest, key)) = &after {
                query = query.filter(
                    Condition::any()
                        .add(record::Column::PrincipalDigest.gt(digest.as_str()))
                        .add(
                            Condition::all()
                                .add(record::Column::PrincipalDigest.eq(digest.as_str()))
                                .add(record::Column::IdempotencyKey.gt(key.as_str())),
                        ),
                );
            }
            let rows = query.all(db).await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.principal_digest.clone(), last.idempotency_key.clone()));
            for model in rows {
                let row = super::row_name(&model.principal_digest, &model.idempotency_key);
                let reseal = |column: &str, label: &str, bytes: &[u8]| {
                    let plaintext = keys
                        .open(binding(&row, column), label, bytes)
                        .map_err(KeyOperationError::SealIdempotency)?;
                    keys.seal(binding(&row, column), &plaintext)
                        .map_err(KeyOperationError::SealIdempotency)
                };
                let fingerprint = reseal(
                    FINGERPRINT,
                    &model.fingerprint_key_label,
                    &model.fingerprint_ciphertext,
                )?;
                let mut update = record::Entity::update_many()
                    .col_expr(
                        record::Column::FingerprintCiphertext,
                        Expr::value(fingerprint.bytes),
                    )
                    .col_expr(
                        record::Column::FingerprintKeyLabel,
                        Expr::value(fingerprint.label),
                    )
                    .filter(record::Column::PrincipalDigest.eq(model.principal_digest.as_str()))
                    .filter(record::Column::IdempotencyKey.eq(model.idempotency_key.as_str()))
                    .filter(record::Column::FingerprintCiphertext.eq(model.fingerprint_ciphertext));
                update = match (model.answer_ciphertext, model.answer_key_label) {
                    (Some(bytes), Some(label)) => {
                        let answer = reseal(ANSWER, &label, &bytes)?;
                        update
                            .col_expr(record::Column::AnswerCiphertext, Expr::value(answer.bytes))
                            .col_expr(record::Column::AnswerKeyLabel, Expr::value(answer.label))
                            .filter(record::Column::AnswerCiphertext.eq(bytes))
                    }
                    _ => update.filter(record::Column::AnswerCiphertext.is_null()),
                };
                if update.exec(db).await?.rows_affected == 1 {
                    report.rotated += 1;
                } else {
                    report.raced += 1;
                }
            }
        }
        Ok(report)
    }
}
