//! The end-to-end journeys, one file each, against the deployment `BERTH_E2E_*` names
//! (`berth_e2e::Deployment`). Every test is ignored in the unit run: `cargo xtask e2e` starts a
//! deployment and runs them with `--run-ignored only`.
//!
//! To add a journey: a new file here with `#[tokio::test]` functions marked
//! `#[ignore = "needs a deployment: run cargo xtask e2e"]`, each starting from
//! `Deployment::from_env()?` and making its own organizations (fresh guids).

mod audit;
mod credentials;
mod directory;
mod idempotency;
mod permissions;
mod registries;
mod replicas;
mod resolve;
mod robots;
