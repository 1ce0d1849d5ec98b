//! Black-box tests of the HTTP API: the app on port 0, a fresh database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod audit_events;
mod authentication;
mod bad_input;
mod credentials;
mod credentials_list;
mod directory;
mod helpers;
mod http_semantics;
mod idempotency;
mod lifecycle;
mod permissions;
mod pull_secrets;
mod registries;
mod roles;
mod sealing;
mod uaa;
mod verification;
