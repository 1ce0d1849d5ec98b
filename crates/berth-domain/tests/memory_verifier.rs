//! `VerificationService` over the in-memory verifier: a known login is valid, another is
//! invalid, an unknown host unreachable; the check is stamped by the service's clock.

use std::sync::Arc;

use berth_domain::actor::{Actor, PlatformScope};
use berth_domain::ambient::{Ambient, FixedClock, SequentialIds};
use berth_domain::credential::{CreateCredentialRequest, Password, RequestedOwner, Username};
use berth_domain::credential_service::CredentialService;
use berth_domain::location::RegistryLocation;
use berth_domain::memory::{MemoryDatabase, MemoryVerifier};
use berth_domain::verification::VerificationOutcome;
use berth_domain::verification_service::VerificationService;
use secrecy::SecretString;
use time::macros::datetime;

#[tokio::test]
async fn the_memory_verifier_answers_each_outcome() {
    let at = datetime!(2026-05-06 07:08:09 UTC);
    let ambient = Ambient::new(
        Arc::new(FixedClock::new(at)),
        Arc::new(SequentialIds::new()),
    );
    let database = MemoryDatabase::new();
    let credentials = Arc::new(database.credentials());
    let directory = Arc::new(database.directory());
    let verifier = MemoryVerifier::new();
    verifier.accept("registry.example.com", "ci", "right");
    let service = CredentialService::new(credentials.clone(), directory.clone());
    let checks =
        VerificationService::new(credentials, directory, Arc::new(verifier)).with_ambient(ambient);
    let admin = Actor::new("admin", [PlatformScope::Admin], []);
    for (location, password, expected) in [
        ("registry.example.com", "right", VerificationOutcome::Valid),
        (
            "registry.example.com/team",
            "wrong",
            VerificationOutcome::Invalid,
        ),
        (
            "elsewhere.example.org",
            "right",
            VerificationOutcome::Unreachable,
        ),
    ] {
        let created = service
            .create(
                &admin,
                CreateCredentialRequest {
                    owner: RequestedOwner::Foundation,
                    location: RegistryLocation::parse(location).unwrap(),
                    username: Username::parse("ci").unwrap(),
                    password: Password::parse(SecretString::from(password)).unwrap(),
                    metadata: Default::default(),
                },
            )
            .await
            .unwrap();
        let verification = checks.verify(&admin, created.guid).await.unwrap();
        assert_eq!(verification.outcome, expected, "{location}");
        assert_eq!(verification.checked_at, at);
        assert!(
            !verification.detail.contains(password),
            "no password in the detail"
        );
    }
}
