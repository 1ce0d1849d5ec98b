//! Contract tests of `RegistryStore`: a registry and its robots read back as written (through
//! `Registry::restore` and `RobotCredential::restore`), and only the lease holder writes.

use berth_domain::directory::{Organization, ResourceName};
use berth_domain::ids::OrganizationGuid;
use berth_domain::ports::{DirectoryStore, Lease, LeaseHolder, RegistryStore, StoreError};
use berth_domain::registry::{
    ExpiresInDays, ProvisionedProjectId, ProvisionedQuotaId, ProvisionedRobotId, QuotaGb, Registry,
    RobotAccess, RobotCredential, RobotName, RobotSpec,
};
use berth_persistence::SeaOrmRegistryStore;

use crate::{Harness, ring};

async fn organization(harness: &Harness) -> OrganizationGuid {
    let now = berth_domain::now();
    let guid = OrganizationGuid::from_uuid(uuid::Uuid::new_v4());
    harness
        .directory
        .organizations()
        .insert(&Organization {
            guid,
            name: ResourceName::parse("o").unwrap(),
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    guid
}

fn lease(holder: LeaseHolder) -> Lease {
    Lease {
        holder,
        until: berth_domain::now() + time::Duration::seconds(60),
    }
}

async fn harness() -> (Harness, SeaOrmRegistryStore) {
    let keys = ring(&["k1"], "k1").0;
    let harness = Harness::new(keys.clone()).await;
    let store = SeaOrmRegistryStore::new(harness.connection.clone(), keys);
    (harness, store)
}

#[tokio::test]
async fn a_claimed_registry_reads_back_as_written_and_is_one_per_organization() {
    let (harness, store) = harness().await;
    let organization = organization(&harness).await;
    let quota = QuotaGb::new(10).unwrap();
    let registry = Registry::claim(organization, "r.example".into(), quota, berth_domain::now());
    let holder = LeaseHolder::generate();
    store.claim(&registry, lease(holder)).await.unwrap();
    assert_eq!(
        store.get(registry.id()).await.unwrap(),
        Some(registry.clone())
    );
    assert_eq!(
        store.get_by_organization(organization).await.unwrap(),
        Some(registry.clone())
    );

    let again = Registry::claim(organization, "r.example".into(), quota, berth_domain::now());
    assert!(matches!(
        store.claim(&again, lease(LeaseHolder::generate())).await,
        Err(StoreError::Conflict)
    ));
    let unknown = OrganizationGuid::from_uuid(uuid::Uuid::new_v4());
    let orphan = Registry::claim(unknown, "r.example".into(), quota, berth_domain::now());
    assert!(matches!(
        store.claim(&orphan, lease(LeaseHolder::generate())).await,
        Err(StoreError::MissingParent)
    ));

    // Every step the saga records is read back.
    let mut progressed = registry.clone();
    progressed.record_project(ProvisionedProjectId::new(7));
    progressed.record_quota(ProvisionedQuotaId::new(9), 1234, berth_domain::now());
    progressed.mark_ready();
    store.save(&progressed, holder).await.unwrap();
    assert_eq!(store.get(registry.id()).await.unwrap(), Some(progressed));
}

#[tokio::test]
async fn only_the_lease_holder_writes_a_registry_or_records_its_robots() {
    let (harness, store) = harness().await;
    let organization = organization(&harness).await;
    let registry = Registry::claim(
        organization,
        "r.example".into(),
        QuotaGb::new(10).unwrap(),
        berth_domain::now(),
    );
    let holder = LeaseHolder::generate();
    store.claim(&registry, lease(holder)).await.unwrap();
    let other = LeaseHolder::generate();
    assert!(
        !store
            .acquire(registry.id(), lease(other), berth_domain::now())
            .await
            .unwrap()
    );
    assert!(matches!(
        store.save(&registry, other).await,
        Err(StoreError::Conflict)
    ));

    let mut robot = RobotCredential::creating(
        registry.id(),
        RobotSpec {
            name: RobotName::parse("ci").unwrap(),
            access: RobotAccess::Pull,
            expires_in_days: Some(ExpiresInDays::new(30).unwrap()),
            is_default: false,
            managed: false,
        },
        berth_domain::now(),
    );
    store.insert_robot(&robot).await.unwrap();
    assert_eq!(
        store.robots(registry.id()).await.unwrap(),
        vec![robot.clone()]
    );
    robot.activate(
        ProvisionedRobotId::new(3),
        "robot$org+ci".into(),
        None,
        berth_domain::now(),
    );
    assert!(matches!(
        store.update_robot(&robot, other).await,
        Err(StoreError::Conflict)
    ));
    store.update_robot(&robot, holder).await.unwrap();
    assert_eq!(store.robots(registry.id()).await.unwrap(), vec![robot]);

    // Given up, the lease is anyone's; the old holder no longer writes.
    store.save_and_release(&registry, holder).await.unwrap();
    assert!(
        store
            .acquire(registry.id(), lease(other), berth_domain::now())
            .await
            .unwrap()
    );
    assert!(matches!(
        store.save(&registry, holder).await,
        Err(StoreError::Conflict)
    ));
}
