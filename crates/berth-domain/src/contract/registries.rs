//! The contract of [`RegistryStore`].

use uuid::Uuid;

use super::{Stores, event, organization, password};
use crate::credential::{RegistryCredential, ScopeTarget, Username};
use crate::ids::{CredentialGuid, OrganizationGuid};
use crate::location::RegistryLocation;
use crate::metadata::{LabelKey, LabelValue, Metadata};
use crate::ports::{Lease, LeaseHolder, RegistryStore, StoreError};
use crate::registry::{
    ExpiresInDays, MANAGED_BY_LABEL, MANAGED_BY_REGISTRY, ProvisionedProjectId, ProvisionedQuotaId,
    ProvisionedRobotId, QuotaGb, Registry, RegistryId, RobotAccess, RobotCredential, RobotId,
    RobotName, RobotSpec,
};

pub(super) fn lease(holder: LeaseHolder) -> Lease {
    Lease {
        holder,
        until: crate::now() + time::Duration::seconds(60),
    }
}

/// The platform pull robot of `registry`, stored as being created, then activated in memory as
/// Harbor's answer `provisioned` would activate it (not saved yet).
pub(super) async fn pull_robot_activated(
    store: &dyn RegistryStore,
    registry: &Registry,
    provisioned: i64,
) -> RobotCredential {
    let mut robot = RobotCredential::creating(
        RobotId::from_uuid(Uuid::now_v7()),
        registry.id(),
        RobotSpec::pull_robot(),
        crate::now(),
    );
    store.insert_robot(&robot).await.unwrap();
    robot.activate(
        ProvisionedRobotId::new(provisioned),
        "robot$p+berth-pull".into(),
        None,
        crate::now(),
    );
    robot
}

/// The platform pull robot's credential: organization-scoped at the project's location,
/// labelled managed.
pub(super) fn managed_credential(registry: &Registry, username: &str) -> RegistryCredential {
    let label = LabelKey::parse(MANAGED_BY_LABEL).unwrap();
    let value = LabelValue::parse(MANAGED_BY_REGISTRY).unwrap();
    let now = crate::now();
    RegistryCredential {
        guid: CredentialGuid::from_uuid(Uuid::now_v7()),
        target: ScopeTarget::Organization(registry.organization()),
        location: RegistryLocation::parse(&registry.pull_location()).unwrap(),
        username: Username::parse(username).unwrap(),
        metadata: Metadata::default().with_label(label, value),
        created_at: now,
        updated_at: now,
        revision: 0,
    }
}

async fn revealed(stores: &Stores, guid: CredentialGuid) -> Option<String> {
    stores
        .credentials
        .reveal_password(guid)
        .await
        .unwrap()
        .map(|password| password.expose().to_owned())
}

/// A claimed registry reads back as written, one per organization, only in an existing one.
pub async fn a_claimed_registry_reads_back_as_written_and_is_one_per_organization(stores: &Stores) {
    let store = &stores.registries;
    let organization = organization(stores).await;
    let quota = QuotaGb::new(10).unwrap();
    let registry = Registry::claim(
        RegistryId::from_uuid(Uuid::now_v7()),
        organization,
        "r.example".into(),
        quota,
        crate::now(),
    );
    let holder = LeaseHolder::from_uuid(Uuid::new_v4());
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
        RegistryId::from_uuid(Uuid::now_v7()),
        organization,
        "r.example".into(),
        quota,
        crate::now(),
    );
    assert!(matches!(
        store
            .claim(&again, lease(LeaseHolder::from_uuid(Uuid::new_v4())))
            .await,
        Err(StoreError::Conflict)
    ));
    let unknown = OrganizationGuid::from_uuid(Uuid::new_v4());
    let orphan = Registry::claim(
        RegistryId::from_uuid(Uuid::now_v7()),
        unknown,
        "r.example".into(),
        quota,
        crate::now(),
    );
    assert!(matches!(
        store
            .claim(&orphan, lease(LeaseHolder::from_uuid(Uuid::new_v4())))
            .await,
        Err(StoreError::MissingParent)
    ));

    // Every step the saga records is read back.
    let mut progressed = registry.clone();
    progressed.record_project(ProvisionedProjectId::new(7));
    progressed.record_quota(ProvisionedQuotaId::new(9), 1234, crate::now());
    progressed.mark_ready();
    store.save(&progressed, holder, &[]).await.unwrap();
    assert_eq!(store.get(registry.id()).await.unwrap(), Some(progressed));
}

/// Only the lease holder writes a registry or records its robots; a released lease is anyone's.
pub async fn only_the_lease_holder_writes_a_registry_or_records_its_robots(stores: &Stores) {
    let store = &stores.registries;
    let organization = organization(stores).await;
    let registry = Registry::claim(
        RegistryId::from_uuid(Uuid::now_v7()),
        organization,
        "r.example".into(),
        QuotaGb::new(10).unwrap(),
        crate::now(),
    );
    let holder = LeaseHolder::from_uuid(Uuid::new_v4());
    store.claim(&registry, lease(holder)).await.unwrap();
    let other = LeaseHolder::from_uuid(Uuid::new_v4());
    assert!(
        !store
            .acquire(registry.id(), lease(other), crate::now())
            .await
            .unwrap()
    );
    assert!(matches!(
        store.save(&registry, other, &[]).await,
        Err(StoreError::Conflict)
    ));

    let mut robot = RobotCredential::creating(
        RobotId::from_uuid(Uuid::now_v7()),
        registry.id(),
        RobotSpec {
            name: RobotName::parse("ci").unwrap(),
            access: RobotAccess::Pull,
            expires_in_days: Some(ExpiresInDays::new(30).unwrap()),
            is_default: false,
            managed: false,
        },
        crate::now(),
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
        crate::now(),
    );
    assert!(matches!(
        store.update_robot(&robot, other, &[]).await,
        Err(StoreError::Conflict)
    ));
    store.update_robot(&robot, holder, &[]).await.unwrap();
    assert_eq!(store.robots(registry.id()).await.unwrap(), vec![robot]);

    // Given up, the lease is anyone's; the old holder no longer writes.
    store
        .save_and_release(&registry, holder, &[])
        .await
        .unwrap();
    assert!(
        store
            .acquire(registry.id(), lease(other), crate::now())
            .await
            .unwrap()
    );
    assert!(matches!(
        store.save(&registry, holder, &[]).await,
        Err(StoreError::Conflict)
    ));
}

/// The managed robot and its credential are written (taking over a credential at the location) and deleted together.
pub async fn the_managed_robot_and_its_credential_are_written_and_deleted_together(
    stores: &Stores,
) {
    let store = &stores.registries;
    let organization = organization(stores).await;
    let registry = Registry::claim(
        RegistryId::from_uuid(Uuid::now_v7()),
        organization,
        "r.example".into(),
        QuotaGb::new(10).unwrap(),
        crate::now(),
    );
    let holder = LeaseHolder::from_uuid(Uuid::new_v4());
    store.claim(&registry, lease(holder)).await.unwrap();
    // A caller's credential already at the project's location is taken over, its guid kept.
    let mut own = managed_credential(&registry, "someone");
    own.metadata = Metadata::default().with_label(
        LabelKey::parse("team").unwrap(),
        LabelValue::parse("web").unwrap(),
    );
    stores
        .credentials
        .insert(&own, &password("theirs"), &event())
        .await
        .unwrap();

    let robot = pull_robot_activated(store.as_ref(), &registry, 8).await;
    let credential = managed_credential(&registry, "robot$p+berth-pull");
    // Not the lease holder: neither the robot nor the credential is written.
    assert!(matches!(
        store
            .update_managed_robot(
                &robot,
                LeaseHolder::from_uuid(Uuid::new_v4()),
                &credential,
                &password("s1"),
                &[],
            )
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(revealed(stores, own.guid).await.as_deref(), Some("theirs"));
    assert_eq!(
        store.robots(registry.id()).await.unwrap()[0].state(),
        crate::registry::RobotState::Creating
    );

    let guid = store
        .update_managed_robot(&robot, holder, &credential, &password("s1"), &[])
        .await
        .unwrap();
    assert_eq!(guid, own.guid, "taken over");
    let stored = stores.credentials.get(guid).await.unwrap().unwrap();
    assert!(stored.is_managed());
    assert_eq!(stored.username.as_str(), "robot$p+berth-pull");
    assert_eq!(stored.metadata.label("team"), Some("web"));
    assert_eq!(revealed(stores, guid).await.as_deref(), Some("s1"));
    let recorded = store.robots(registry.id()).await.unwrap();
    assert_eq!(recorded[0].credential(), Some(guid));
    assert!(recorded[0].managed());

    // A rotation: the same credential, the new password, one revision more.
    let again = store
        .update_managed_robot(&robot, holder, &credential, &password("s2"), &[])
        .await
        .unwrap();
    assert_eq!(again, guid);
    assert_eq!(revealed(stores, guid).await.as_deref(), Some("s2"));
    assert_eq!(
        stores
            .credentials
            .get(guid)
            .await
            .unwrap()
            .unwrap()
            .revision,
        stored.revision + 1
    );

    // Deleting the robot deletes its credential in the same transaction.
    store.delete_robot(robot.id(), &[]).await.unwrap();
    assert!(stores.credentials.get(guid).await.unwrap().is_none());

    // So does deleting the registry.
    let second = pull_robot_activated(store.as_ref(), &registry, 9).await;
    let fresh = store
        .update_managed_robot(&second, holder, &credential, &password("s3"), &[])
        .await
        .unwrap();
    assert_eq!(fresh, credential.guid, "inserted when none is there");
    store.delete(registry.id(), holder, &[]).await.unwrap();
    assert!(stores.credentials.get(fresh).await.unwrap().is_none());
}

/// A lease is taken when free or expired, waited for within a bound, and given up by its
/// holder only; stalled registries are those untouched and unleased; a deleted registry takes
/// its robots with it.
pub async fn leases_expire_wait_and_stall(stores: &Stores) {
    let store = &stores.registries;
    let organization = organization(stores).await;
    let at = crate::now();
    let registry = Registry::claim(
        RegistryId::from_uuid(Uuid::now_v7()),
        organization,
        "r.example".into(),
        QuotaGb::new(1).unwrap(),
        at - time::Duration::minutes(10),
    );
    let holder = LeaseHolder::from_uuid(Uuid::new_v4());
    store.claim(&registry, lease(holder)).await.unwrap();
    let other = LeaseHolder::from_uuid(Uuid::new_v4());
    assert!(
        !store
            .acquire_within(
                registry.id(),
                lease(other),
                time::Duration::milliseconds(200)
            )
            .await
            .unwrap(),
        "held by another for longer than the wait"
    );
    // Leased, it is not stalled though untouched.
    assert!(store.stalled(at).await.unwrap().is_empty());
    // Past the lease's end it is anyone's (the store is told the time).
    assert!(
        store
            .acquire(registry.id(), lease(other), at + time::Duration::minutes(5))
            .await
            .unwrap()
    );
    // The old holder's release gives nothing up.
    store.release(registry.id(), holder).await.unwrap();
    assert!(
        !store
            .acquire(registry.id(), lease(holder), at)
            .await
            .unwrap()
    );
    store.release(registry.id(), other).await.unwrap();
    let stalled = store.stalled(at).await.unwrap();
    assert_eq!(
        stalled.iter().map(Registry::id).collect::<Vec<_>>(),
        vec![registry.id()]
    );
    assert!(
        store
            .stalled(at - time::Duration::hours(1))
            .await
            .unwrap()
            .is_empty(),
        "changed after the cut-off"
    );
    store.record_usage(registry.id(), 42, at).await.unwrap();
    assert_eq!(
        store
            .get(registry.id())
            .await
            .unwrap()
            .unwrap()
            .used_bytes(),
        Some(42)
    );

    // A free lease is had at once within a bounded wait.
    assert!(
        store
            .acquire_within(registry.id(), lease(holder), time::Duration::seconds(5))
            .await
            .unwrap()
    );
    let robot = RobotCredential::creating(
        RobotId::from_uuid(Uuid::now_v7()),
        registry.id(),
        RobotSpec::default_robot(),
        at - time::Duration::minutes(5),
    );
    store.insert_robot(&robot).await.unwrap();
    assert!(matches!(
        store
            .insert_robot(&RobotCredential::creating(
                RobotId::from_uuid(Uuid::now_v7()),
                registry.id(),
                RobotSpec::default_robot(),
                at,
            ))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .stalled_robots(at)
            .await
            .unwrap()
            .iter()
            .map(RobotCredential::id)
            .collect::<Vec<_>>(),
        vec![robot.id()]
    );
    assert!(matches!(
        store.delete(registry.id(), other, &[]).await,
        Err(StoreError::Conflict)
    ));
    store.delete(registry.id(), holder, &[]).await.unwrap();
    assert!(store.get(registry.id()).await.unwrap().is_none());
    assert!(store.robots(registry.id()).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_robot(robot.id(), &[]).await,
        Err(StoreError::NotFound)
    ));
}
