//! The reconciler task: finishes or rolls back registries whose provisioning stalled.

use std::time::Duration;

use berth_domain::registry_service::RegistryService;

/// Runs the reconciler now and then every `interval`. Every replica may run it: rows are leased.
pub(super) async fn reconcile_forever(registries: RegistryService, interval: Duration) {
    loop {
        match registries.reconcile().await {
            Ok(report) if report != Default::default() => {
                tracing::info!(?report, "reconciled stalled registries")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reconciler pass failed"),
        }
        tokio::time::sleep(interval).await;
    }
}
