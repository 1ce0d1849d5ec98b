//! The pruner task: deletes idempotency records whose replay window has ended.

use std::time::Duration;

use berth_domain::idempotency::IdempotencyService;
use berth_http::logging::error_chain;

/// How often the pruner looks: records live 24 hours, so a few minutes' lag is nothing.
pub(super) const PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Rows deleted per statement: short statements, so no replica waits long on another.
const PRUNE_BATCH: u32 = 1000;

/// Prunes now and then every `interval`. Every replica may run it: batches are by primary key,
/// and two replicas deleting the same rows just find them gone.
pub(super) async fn prune_forever(idempotency: IdempotencyService, interval: Duration) {
    loop {
        match idempotency.prune_expired(PRUNE_BATCH).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned expired idempotency records"),
            Err(error) => tracing::warn!(error = %error_chain(&error), "pruner pass failed"),
        }
        tokio::time::sleep(interval).await;
    }
}
