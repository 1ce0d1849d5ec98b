//! [`RegistryVerifier`] in memory: a registry that knows some logins.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::credential::{Password, Username};
use crate::location::RegistryLocation;
use crate::ports::RegistryVerifier;
use crate::verification::{Probe, VerificationOutcome};

/// Answers [`VerificationOutcome::Valid`] for the logins it was given (per registry host),
/// [`VerificationOutcome::Invalid`] for any other login on a host it knows, and
/// [`VerificationOutcome::Unreachable`] for hosts it does not know. Never contacts anything.
#[derive(Clone, Debug, Default)]
pub struct MemoryVerifier {
    /// (host, username, password).
    logins: Arc<Mutex<BTreeSet<(String, String, String)>>>,
}

impl MemoryVerifier {
    /// A verifier that knows no registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `host` (such as `registry.example.com`) accept `username` with `password`.
    pub fn accept(&self, host: &str, username: &str, password: &str) {
        self.logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((host.to_owned(), username.to_owned(), password.to_owned()));
    }
}

#[async_trait]
impl RegistryVerifier for MemoryVerifier {
    async fn verify(
        &self,
        location: &RegistryLocation,
        username: &Username,
        password: &Password,
    ) -> Probe {
        // A location is a host, then an optional path.
        let host = location.as_str().split('/').next().unwrap_or_default();
        let endpoint = format!("https://{host}/v2/");
        let logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
        let (outcome, detail) = if !logins.iter().any(|(known, _, _)| known == host) {
            (
                VerificationOutcome::Unreachable,
                format!("{host} is not a registry this verifier knows"),
            )
        } else if logins.iter().any(|(known, user, secret)| {
            known == host && user == username.as_str() && secret == password.expose()
        }) {
            (
                VerificationOutcome::Valid,
                "the registry accepted the credentials".to_owned(),
            )
        } else {
            (
                VerificationOutcome::Invalid,
                "the registry refused the credentials".to_owned(),
            )
        };
        Probe {
            outcome,
            detail,
            endpoint,
        }
    }
}
