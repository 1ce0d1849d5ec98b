//! The reconciler task: finishes or rolls back registries whose provisioning stalled.

use std::time::Duration;

use berth_domain::registry_service::RegistryService;
use berth_http::logging::error_chain;

/// Runs the reconciler now and then every `interval`. Every replica may run it: rows are leased.
pub(super) async fn reconcile_forever(registries: RegistryService, interval: Duration) {
    loop {
        match registries.reconcile().await {
            Ok(report) if !report.is_empty() => {
                for failure in &report.failures {
                    tracing::warn!(
                        registry = %failure.registry,
                        robot = failure.robot.map(tracing::field::display),
                        error = %error_chain(&failure.cause),
                        "reconciler could not settle a registry; the next pass tries again"
                    );
                }
                tracing::info!(
                    rolled_back = report.rolled_back,
                    disabled = report.disabled,
                    purged = report.purged,
                    robots_removed = report.robots_removed,
                    rotations_finished = report.rotations_finished,
                    failed = report.failures.len(),
                    "reconciled stalled registries"
                )
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error_chain(&error), "reconciler pass failed"),
        }
        tokio::time::sleep(interval).await;
    }
}
