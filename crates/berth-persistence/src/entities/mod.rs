//! sea-orm entities: private to this crate; the domain never sees them.

pub mod app;
pub mod organization;
pub mod registry_credential;
pub mod registry_credential_label;
pub mod space;
