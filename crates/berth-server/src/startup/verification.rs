//! The registry verifier: the SSRF-guarded probe, built from `verification.*`, each relaxed
//! control logged so an operator sees what was opened.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_domain::ports::RegistryVerifier;
use berth_registry_probe::{NetworkPolicy, RegistryProbe};

/// # Errors
/// When the HTTP client cannot be built.
pub(super) fn verifier(
    policy: NetworkPolicy,
    deadline: Duration,
) -> anyhow::Result<Arc<dyn RegistryVerifier>> {
    for network in policy.allowed_networks() {
        tracing::warn!(
            %network,
            "verification.allowed_networks: credential verification may contact this private network"
        );
    }
    for registry in policy.insecure_registries() {
        tracing::warn!(
            %registry,
            "verification.insecure_registries: credential verification speaks plain http to this registry"
        );
    }
    let probe = RegistryProbe::new(policy, deadline).context("verification client")?;
    Ok(Arc::new(probe))
}
