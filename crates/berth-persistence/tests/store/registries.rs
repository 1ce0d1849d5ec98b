//! Contract tests of `RegistryStore`: a registry and its robots read back as written (through
//! `Registry::restore` and `RobotCredential::restore`), and only the lease holder writes.

use berth_domain::credential::{Password, RegistryCredential, ScopeTarget, Username};
use berth_domain::directory::{Organization, ResourceName};
use berth_domain::ids::{CredentialGuid, OrganizationGuid};
use berth_domain::location::RegistryLocation;
use berth_domain::metadata::{LabelKey, LabelValue, Metadata};
use berth_domain::ports::{
    CredentialStore, DirectoryStore, Lease, LeaseHolder, RegistryStore, StoreError,
};
use berth_domain::registry::{
    ExpiresInDays, MANAGED_BY_LABEL, MANAGED_BY_REGISTRY, ProvisionedProjectId, ProvisionedQuotaId,
    ProvisionedRobotId, QuotaGb, Registry, RegistryId, RobotAccess, RobotCredential, RobotId,
    RobotName, RobotSpec,
};
use berth_persistence::SeaOrmRegistryStore;
use secrecy::SecretString;

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
    let registry = Registry::claim(
        RegistryId::generate(),
        organization,
        "r.example".into(),
        quota,
        berth_domain::now(),
    );
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

    let again = Registry::claim(
        RegistryId::generate(),
        organization,
        "r.example".into(),
        quota,
        berth_domain::now(),
    );
    assert!(matches!(
        store.claim(&again, lease(LeaseHolder::generate())).await,
        Err(StoreError::Conflict)
    ));
    let unknown = OrganizationGuid::from_uuid(uuid::Uuid::new_v4());
    let orphan = Registry::claim(
        RegistryId::generate(),
        unknown,
        "r.example".into(),
        quota,
        berth_domain::now(),
    );
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
        RegistryId::generate(),
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
        RobotId::generate(),
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

/// The platform pull robot's credential: organization-scoped at the project's location,
/// labelled managed.
fn managed_credential(registry: &Registry, username: &str) -> RegistryCredential {
    let label = LabelKey::parse(MANAGED_BY_LABEL).unwrap();
    let value = LabelValue::parse(MANAGED_BY_REGISTRY).unwrap();
    let now = berth_domain::now();
    RegistryCredential {
        guid: CredentialGuid::generate(),
        target: ScopeTarget::Organization(registry.organization()),
        location: RegistryLocation::parse(&registry.pull_location()).unwrap(),
        username: Username::parse(username).unwrap(),
        metadata: Metadata::default().with_label(label, value),
        created_at: now,
        updated_at: now,
        revision: 0,
    }
}

fn password(text: &str) -> Password {
    Password::parse(SecretString::from(text.to_owned())).unwrap()
}

async fn revealed(harness: &Harness, guid: CredentialGuid) -> Option<String> {
    harness
        .credentials
        .reveal_password(guid)
        .await
        .unwrap()
        .map(|password| password.expose().to_owned())
}

#[tokio::test]
async fn the_managed_robot_and_its_credential_are_written_and_deleted_together() {
    let (harness, store) = harness().await;
    let organization = organization(&harness).await;
    let registry = Registry::claim(
        RegistryId::generate(),
        organization,
        "r.example".into(),
        QuotaGb::new(10).unwrap(),
        berth_domain::now(),
    );
    let holder = LeaseHolder::generate();
    store.claim(&registry, lease(holder)).await.unwrap();
    // A caller's credential already at the project's location is taken over, its guid kept.
    let mut own = managed_credential(&registry, "someone");
    own.metadata = Metadata::default().with_label(
        LabelKey::parse("team").unwrap(),
        LabelValue::parse("web").unwrap(),
    );
    harness
        .credentials
        .insert(&own, &password("theirs"))
        .await
        .unwrap();

    let mut robot = RobotCredential::creating(
        RobotId::generate(),
        registry.id(),
        RobotSpec::pull_robot(),
        berth_domain::now(),
    );
    store.insert_robot(&robot).await.unwrap();
    robot.activate(
        ProvisionedRobotId::new(8),
        "robot$p+berth-pull".into(),
        None,
        berth_domain::now(),
    );
    let credential = managed_credential(&registry, "robot$p+berth-pull");
    // Not the lease holder: neither the robot nor the credential is written.
    assert!(matches!(
        store
            .update_managed_robot(
                &robot,
                LeaseHolder::generate(),
                &credential,
                &password("s1")
            )
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        revealed(&harness, own.guid).await.as_deref(),
        Some("theirs")
    );
    assert_eq!(
        store.robots(registry.id()).await.unwrap()[0].state(),
        berth_domain::registry::RobotState::Creating
    );

    let guid = store
        .update_managed_robot(&robot, holder, &credential, &password("s1"))
        .await
        .unwrap();
    assert_eq!(guid, own.guid, "taken over");
    let stored = harness.credentials.get(guid).await.unwrap().unwrap();
    assert!(stored.is_managed());
    assert_eq!(stored.username.as_str(), "robot$p+berth-pull");
    assert_eq!(stored.metadata.label("team"), Some("web"));
    assert_eq!(revealed(&harness, guid).await.as_deref(), Some("s1"));
    let recorded = store.robots(registry.id()).await.unwrap();
    assert_eq!(recorded[0].credential(), Some(guid));
    assert!(recorded[0].managed());

    // A rotation: the same credential, the new password, one revision more.
    let again = store
        .update_managed_robot(&robot, holder, &credential, &password("s2"))
        .await
        .unwrap();
    assert_eq!(again, guid);
    assert_eq!(revealed(&harness, guid).await.as_deref(), Some("s2"));
    assert_eq!(
        harness
            .credentials
            .get(guid)
            .await
            .unwrap()
            .unwrap()
            .revision,
        stored.revision + 1
    );

    // Deleting the robot deletes its credential in the same transaction.
    store.delete_robot(robot.id()).await.unwrap();
    assert!(harness.credentials.get(guid).await.unwrap().is_none());

    // So does deleting the registry.
    let mut second = RobotCredential::creating(
        RobotId::generate(),
        registry.id(),
        RobotSpec::pull_robot(),
        berth_domain::now(),
    );
    store.insert_robot(&second).await.unwrap();
    second.activate(
        ProvisionedRobotId::new(9),
        "robot$p+berth-pull".into(),
        None,
        berth_domain::now(),
    );
    let fresh = store
        .update_managed_robot(&second, holder, &credential, &password("s3"))
        .await
        .unwrap();
    assert_eq!(fresh, credential.guid, "inserted when none is there");
    store.delete(registry.id(), holder).await.unwrap();
    assert!(harness.credentials.get(fresh).await.unwrap().is_none());
}
