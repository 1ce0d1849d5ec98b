//! The registry use cases over the in-memory adapters: the provisioner behaves enough like
//! Harbor for the saga, robots, rotation, disable and purge, and concurrent enables give one
//! registry.

use std::sync::Arc;

use berth_domain::actor::{Actor, PlatformScope};
use berth_domain::directory::ResourceName;
use berth_domain::directory_service::DirectoryService;
use berth_domain::ids::OrganizationGuid;
use berth_domain::memory::{MemoryDatabase, MemoryProvisioner};
use berth_domain::ports::CredentialStore;
use berth_domain::registry::{QuotaGb, RegistryState, RobotAccess, RobotName};
use berth_domain::registry_service::{RegistryError, RegistryService, RegistrySettings};
use time::Duration;

struct World {
    database: MemoryDatabase,
    harbor: Arc<MemoryProvisioner>,
    registries: RegistryService,
    organization: OrganizationGuid,
    admin: Actor,
}

async fn world() -> World {
    let database = MemoryDatabase::new();
    let directory = Arc::new(database.directory());
    let harbor = Arc::new(MemoryProvisioner::new("harbor.example"));
    let admin = Actor::new("admin", [PlatformScope::Admin], []);
    let organization = OrganizationGuid::from_uuid(uuid::Uuid::now_v7());
    DirectoryService::new(directory.clone())
        .put_organization(&admin, organization, ResourceName::parse("acme").unwrap())
        .await
        .unwrap();
    let registries = RegistryService::new(
        Arc::new(database.registries()),
        directory,
        harbor.clone(),
        RegistrySettings {
            default_quota: QuotaGb::new(10).unwrap(),
            lease: Duration::seconds(60),
            lease_wait: Duration::seconds(2),
            usage_cache: Duration::ZERO,
            stale_after: Duration::minutes(10),
            clock_skew: Duration::minutes(1),
        },
    );
    World {
        database,
        harbor,
        registries,
        organization,
        admin,
    }
}

#[tokio::test]
async fn a_registry_lives_its_life_on_the_memory_provisioner() {
    let World {
        database,
        harbor,
        registries,
        organization,
        admin,
    } = world().await;
    let (registry, default_login) = registries.enable(&admin, organization, None).await.unwrap();
    assert_eq!(registry.state(), RegistryState::Ready);
    assert!(harbor.accepts(default_login.username(), default_login.expose_password()));

    let (robot, first) = registries
        .create_robot(
            &admin,
            organization,
            RobotName::parse("ci").unwrap(),
            RobotAccess::PushPull,
            None,
        )
        .await
        .unwrap();
    let (_, second) = registries
        .rotate_robot(&admin, organization, robot.id())
        .await
        .unwrap();
    assert!(!harbor.accepts(first.username(), first.expose_password()));
    assert!(harbor.accepts(second.username(), second.expose_password()));

    // The platform pull robot's login is the organization's managed credential.
    let managed = registries
        .robots(&admin, organization)
        .await
        .unwrap()
        .into_iter()
        .find_map(|robot| robot.credential())
        .expect("the pull robot records its credential");
    let credentials = database.credentials();
    let stored = credentials.get(managed).await.unwrap().unwrap();
    assert!(stored.is_managed());
    let password = credentials.reveal_password(managed).await.unwrap().unwrap();
    assert!(harbor.accepts(stored.username.as_str(), password.expose()));

    harbor.push_repository(registry.project_name(), "team/app");
    registries.disable(&admin, organization).await.unwrap();
    assert!(credentials.get(managed).await.unwrap().is_none());
    assert!(!harbor.accepts(second.username(), second.expose_password()));
    registries.purge(&admin, organization).await.unwrap();
    assert!(
        harbor.projects().is_empty(),
        "the purge deleted the project"
    );
    assert!(matches!(
        registries.robots(&admin, organization).await,
        Err(RegistryError::NotFound)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enables_give_one_registry() {
    let World {
        harbor,
        registries,
        organization,
        admin,
        ..
    } = world().await;
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let registries = registries.clone();
            let admin = admin.clone();
            tokio::spawn(async move { registries.enable(&admin, organization, None).await })
        })
        .collect();
    let mut enabled = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => enabled += 1,
            Err(RegistryError::AlreadyEnabled | RegistryError::Busy) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(enabled, 1);
    assert_eq!(harbor.projects().len(), 1);
}
