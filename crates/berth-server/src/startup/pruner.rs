//! The pruner task: deletes idempotency records whose replay window has ended and audit events
//! older than `audit.retention_days`.

use std::time::Duration;

use berth_domain::audit::AuditService;
use berth_domain::idempotency::IdempotencyService;
use berth_http::logging::error_chain;

/// How often the pruner looks: records live 24 hours and events days, so a few minutes' lag is
/// nothing.
pub(super) const PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Rows deleted per statement: short statements, so no replica waits long on another.
const PRUNE_BATCH: u32 = 1000;
/// Batches of audit events per pass: a backlog (a lowered retention) drains over a few passes
/// instead of holding the database in one long run.
const AUDIT_BATCHES_PER_PASS: u32 = 100;

/// What to prune.
pub(super) struct Pruned {
    pub idempotency: IdempotencyService,
    pub audit: AuditService,
    pub audit_retention_days: u32,
}

/// Prunes now and then every `interval`. Every replica may run it: batches are by primary key,
/// and two replicas deleting the same rows just find them gone.
pub(super) async fn prune_forever(pruned: Pruned, interval: Duration) {
    loop {
        match pruned.idempotency.prune_expired(PRUNE_BATCH).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(pruned = count, "pruned expired idempotency records"),
            Err(error) => tracing::warn!(error = %error_chain(&error), "pruner pass failed"),
        }
        prune_audit_events(&pruned.audit, pruned.audit_retention_days, PRUNE_BATCH).await;
        tokio::time::sleep(interval).await;
    }
}

/// Deletes events past retention, batch after batch, until a batch comes back short (or the
/// pass's share is done); returns how many.
pub(super) async fn prune_audit_events(
    audit: &AuditService,
    retention_days: u32,
    batch: u32,
) -> u64 {
    let mut total = 0;
    for _ in 0..AUDIT_BATCHES_PER_PASS {
        match audit.prune_older_than(retention_days, batch).await {
            Ok(count) => {
                total += count;
                if count < u64::from(batch) {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "audit event pruning failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(pruned = total, retention_days, "pruned old audit events");
    }
    total
}
