//! Verifying a credential against its registry: what a check can conclude.

use std::fmt;

use time::OffsetDateTime;

/// What checking a credential against its registry concluded (`reference/registry-auth.md` 1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerificationOutcome {
    /// The registry accepted the credentials: `/v2/` answered 200 with them.
    Valid,
    /// The registry (or its token service) refused the credentials with 401 or 403.
    Invalid,
    /// The registry answered, but not in a way that proves or disproves the credentials
    /// (anonymous access, an unsupported challenge, no token, rate limiting).
    Unverified,
    /// The registry could not be reached or did not behave as a registry (DNS, connection, TLS,
    /// deadline, 5xx, not a v2 registry).
    Unreachable,
    /// The deployment's network policy forbids contacting the registry or its token service;
    /// nothing was sent there.
    Blocked,
}

impl VerificationOutcome {
    /// Every outcome.
    pub const ALL: [Self; 5] = [
        Self::Valid,
        Self::Invalid,
        Self::Unverified,
        Self::Unreachable,
        Self::Blocked,
    ];

    /// Its text form, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Unverified => "unverified",
            Self::Unreachable => "unreachable",
            Self::Blocked => "blocked",
        }
    }
}

impl fmt::Display for VerificationOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a [`RegistryVerifier`](crate::ports::RegistryVerifier) observed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Probe {
    /// What the check concluded.
    pub outcome: VerificationOutcome,
    /// For a person: what happened and what to do about it. Never holds a password or token.
    pub detail: String,
    /// The registry base URL contacted (or that would have been, when blocked).
    pub endpoint: String,
}

impl Probe {
    /// What a verifier observed.
    pub fn new(outcome: VerificationOutcome, detail: String, endpoint: String) -> Self {
        Self {
            outcome,
            detail,
            endpoint,
        }
    }
}

/// The answer of a verification: the probe and when it was made. Issue 14 records it as an
/// audit event; until then the use case returns it and nothing is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// What the check concluded.
    pub outcome: VerificationOutcome,
    /// For a person: what happened.
    pub detail: String,
    /// The registry endpoint contacted.
    pub endpoint: String,
    /// When the check ran.
    pub checked_at: OffsetDateTime,
}
