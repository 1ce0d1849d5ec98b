//! With a fixed clock and counting ids, the services' output is the same on every run: ids,
//! timestamps and all, audit events included.

use std::sync::Arc;

use berth_domain::actor::{Actor, PlatformScope};
use berth_domain::ambient::{Ambient, FixedClock, SequentialIds};
use berth_domain::audit::{AuditEvent, AuditEventStore, AuditEventType, AuditQuery};
use berth_domain::credential::{
    CreateCredentialRequest, Password, RegistryCredential, RequestedOwner, Username,
};
use berth_domain::credential_service::CredentialService;
use berth_domain::directory::ResourceName;
use berth_domain::directory_service::DirectoryService;
use berth_domain::ids::OrganizationGuid;
use berth_domain::listing::PageRequest;
use berth_domain::location::RegistryLocation;
use berth_domain::memory::{MemoryDatabase, MemoryProvisioner};
use berth_domain::permissions::AuditVisibility;
use berth_domain::registry::{QuotaGb, Registry, RobotCredential};
use berth_domain::registry_service::{RegistryService, RegistrySettings};
use secrecy::SecretString;
use time::Duration;
use time::macros::datetime;

/// Mirrors an organization, stores a credential and enables the registry, on fresh adapters.
async fn run() -> (
    RegistryCredential,
    Registry,
    Vec<RobotCredential>,
    Vec<AuditEvent>,
) {
    let clock = Arc::new(FixedClock::new(datetime!(2026-03-04 05:06:07 UTC)));
    let ambient = Ambient::new(clock.clone(), Arc::new(SequentialIds::new()));
    let database = MemoryDatabase::with_clock(clock.clone());
    let directory = Arc::new(database.directory());
    let harbor = Arc::new(MemoryProvisioner::new("harbor.example").with_clock(clock.clone()));
    let admin = Actor::new("admin", [PlatformScope::Admin], []);
    let organization = OrganizationGuid::parse("4b5a8f1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b").unwrap();
    DirectoryService::new(directory.clone())
        .with_ambient(ambient.clone())
        .put_organization(&admin, organization, ResourceName::parse("acme").unwrap())
        .await
        .unwrap();
    clock.advance(Duration::seconds(1));
    let credential = CredentialService::new(Arc::new(database.credentials()), directory.clone())
        .with_ambient(ambient.clone())
        .create(
            &admin,
            CreateCredentialRequest {
                owner: RequestedOwner::Organization(organization),
                location: RegistryLocation::parse("registry.example.com").unwrap(),
                username: Username::parse("ci").unwrap(),
                password: Password::parse(SecretString::from("s3cret")).unwrap(),
                metadata: Default::default(),
            },
        )
        .await
        .unwrap();
    clock.advance(Duration::seconds(1));
    let registries = RegistryService::new(
        Arc::new(database.registries()),
        directory,
        harbor,
        RegistrySettings {
            default_quota: QuotaGb::new(10).unwrap(),
            lease: Duration::seconds(60),
            lease_wait: Duration::seconds(2),
            usage_cache: Duration::minutes(1),
            stale_after: Duration::minutes(10),
            clock_skew: Duration::minutes(1),
        },
    )
    .with_ambient(ambient);
    let (registry, _) = registries.enable(&admin, organization, None).await.unwrap();
    let robots = registries.robots(&admin, organization).await.unwrap();
    let events = database
        .audit_events()
        .list(&AuditQuery {
            visibility: AuditVisibility::Everything,
            page: PageRequest::new(1, 100).unwrap(),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .items;
    (credential, registry, robots, events)
}

#[tokio::test]
async fn a_fixed_clock_and_id_source_give_the_same_output_every_run() {
    let first = run().await;
    // Id 1 is the organization's audit event, 3 the credential's.
    assert_eq!(
        first.0.guid.to_string(),
        "00000000-0000-0000-0000-000000000002"
    );
    assert_eq!(first.0.created_at, datetime!(2026-03-04 05:06:08 UTC));
    assert_eq!(
        first.1.id().to_string(),
        "00000000-0000-0000-0000-000000000004"
    );
    assert_eq!(first.1.created_at(), datetime!(2026-03-04 05:06:09 UTC));
    assert!(!first.2.is_empty());
    let events = &first.3;
    assert_eq!(
        events[..2]
            .iter()
            .map(|event| (event.guid.to_string(), event.event_type, event.created_at))
            .collect::<Vec<_>>(),
        [
            (
                "00000000-0000-0000-0000-000000000001".to_owned(),
                AuditEventType::OrganizationUpsert,
                datetime!(2026-03-04 05:06:07 UTC)
            ),
            (
                "00000000-0000-0000-0000-000000000003".to_owned(),
                AuditEventType::CredentialCreate,
                datetime!(2026-03-04 05:06:08 UTC)
            ),
        ]
    );
    assert!(
        events
            .iter()
            .any(|event| event.event_type == AuditEventType::RegistryEnable),
        "the enable's event is kept: {events:?}"
    );
    assert_eq!(run().await, first);
}
