#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod actor;
pub mod ambient;
pub mod audit;
#[cfg(feature = "contract-tests")]
pub mod contract;
pub mod credential;
pub mod credential_service;
pub mod directory;
pub mod directory_service;
pub mod idempotency;
pub mod ids;
pub mod image_reference;
pub mod label_selector;
pub mod listing;
pub mod location;
#[cfg(feature = "memory")]
pub mod memory;
pub mod metadata;
pub mod permissions;
pub mod ports;
pub mod pull_secret_service;
pub mod pull_secrets;
pub mod registry;
pub mod registry_service;
pub mod role_service;
pub mod roles;
pub mod verification;
pub mod verification_service;

use std::fmt;

use time::OffsetDateTime;

/// The kind of directory resource a relationship or error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationshipKind {
    /// Organization.
    Organization,
    /// Space.
    Space,
    /// App.
    App,
}

impl RelationshipKind {
    /// The relationship that gives a credential its scope; the foundation has none and is never
    /// asked for.
    pub fn for_scope(scope: credential::Scope) -> Self {
        match scope {
            credential::Scope::Space => Self::Space,
            credential::Scope::App => Self::App,
            credential::Scope::Foundation | credential::Scope::Organization => Self::Organization,
        }
    }

    /// Its text form, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Organization => "organization",
            Self::Space => "space",
            Self::App => "app",
        }
    }

    /// Capitalised, to begin a sentence.
    pub fn title(self) -> &'static str {
        match self {
            Self::Organization => "Organization",
            Self::Space => "Space",
            Self::App => "App",
        }
    }
}

impl fmt::Display for RelationshipKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The current time at the precision Berth keeps: whole seconds, as Cloud Foundry shows them.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}
