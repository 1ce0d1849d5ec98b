//! sea-orm entities: private to this crate; the domain never sees them.

pub mod app;
pub mod audit_event;
pub mod idempotency_key;
pub mod organization;
pub mod registry;
pub mod registry_credential;
pub mod registry_credential_label;
pub mod registry_robot;
pub mod role;
pub mod space;
