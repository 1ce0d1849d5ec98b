//! Building the application: [`Runtime::resolve`] turns settings into what to run, and
//! [`Application::build`], the one function `main` and the tests both call, builds it.
//!
//! One job a file: `runtime` (settings to a runtime, dev mode or production), `database`
//! (connect, migrate, check the key ring), `harbor` (the Harbor client, or dev mode's embedded
//! emulator), `application` (adapters wired into the services, listeners bound), `ops_probe`
//! (what `/readyz` and `/metrics` read), `reconciler`, `pruner` and `access_log` (the background tasks: the last writes
//! pull-secret access events in batches),
//! `request_id` (the middleware) and `verification` (the SSRF-guarded registry verifier).

mod access_log;
mod application;
mod database;
mod harbor;
mod ops_probe;
mod pruner;
mod reconciler;
mod request_id;
mod runtime;
mod verification;

pub use application::Application;
pub use harbor::EmbeddedHarbor;
pub use runtime::{DevParts, HarborChoice, Mode, Runtime};
