//! The contract of [`AuditEventStore`](crate::audit::AuditEventStore) and
//! [`AccessLog`](crate::audit::AccessLog), and of the other stores' writes keeping their events
//! in the same transaction: a write that succeeds keeps its events, a refused one none.

use std::sync::Arc;

use uuid::Uuid;

use super::registries::{lease, managed_credential, pull_robot_activated};
use super::{Stores, credential, organization, password, update};
use crate::ambient::{Ambient, FixedClock, SystemIds};
use crate::audit::AuditOrderField;
use crate::audit::{
    AuditActor, AuditData, AuditEvent, AuditEventGuid, AuditEventType, AuditQuery, AuditTarget,
};
use crate::credential::ScopeTarget;
use crate::directory::{Organization, ResourceName, Space};
use crate::ids::{OrganizationGuid, SpaceGuid};
use crate::listing::{Direction, Ordering, PageRequest, TimestampFilter};
use crate::permissions::AuditVisibility;
use crate::ports::{LeaseHolder, StoreError};
use crate::registry::{QuotaGb, Registry, RegistryId};

/// An event of `kind` at `at`, with every kind of data value (a secret hidden), placed as given.
fn event_at(
    at: time::OffsetDateTime,
    kind: AuditEventType,
    organization: Option<OrganizationGuid>,
    space: Option<SpaceGuid>,
) -> AuditEvent {
    let ambient = Ambient::new(Arc::new(FixedClock::new(at)), Arc::new(SystemIds));
    AuditEvent::new(
        &ambient,
        kind,
        AuditActor::system(),
        AuditTarget::new("some-target", "registry_credential", "r.example"),
        AuditData::request(
            AuditData::new()
                .text("username", "ci")
                .hidden("password")
                .integer("quota_gb", 5)
                .flag("enabled", true),
        ),
    )
    .placed(organization, space)
}

fn fresh(kind: AuditEventType) -> AuditEvent {
    event_at(crate::now(), kind, None, None)
}

async fn kept(stores: &Stores, event: &AuditEvent) -> bool {
    match stores.audit_events.get(event.guid).await.unwrap() {
        Some(stored) => {
            assert_eq!(&stored, event, "an event reads back as written");
            true
        }
        None => false,
    }
}

fn everything() -> AuditQuery {
    AuditQuery {
        visibility: AuditVisibility::Everything,
        page: PageRequest::new(1, 5000).unwrap(),
        ..AuditQuery::default()
    }
}

/// Credential and directory writes keep their event; refused ones (conflict, not found, in use)
/// keep none.
pub async fn credential_and_directory_writes_keep_their_event_and_refused_ones_none(
    stores: &Stores,
) {
    let now = crate::now();
    let org = Organization {
        guid: OrganizationGuid::from_uuid(Uuid::new_v4()),
        name: ResourceName::parse("o").unwrap(),
        created_at: now,
        updated_at: now,
    };
    let organizations = stores.directory.organizations();
    let inserted = fresh(AuditEventType::OrganizationUpsert);
    organizations.insert(&org, &inserted).await.unwrap();
    assert!(kept(stores, &inserted).await);
    let duplicate = fresh(AuditEventType::OrganizationUpsert);
    assert!(matches!(
        organizations.insert(&org, &duplicate).await,
        Err(StoreError::Conflict)
    ));
    assert!(!kept(stores, &duplicate).await);
    let renamed = fresh(AuditEventType::OrganizationUpsert);
    organizations.update(&org, &renamed).await.unwrap();
    assert!(kept(stores, &renamed).await);
    let unknown = Organization {
        guid: OrganizationGuid::from_uuid(Uuid::new_v4()),
        ..org.clone()
    };
    let not_found = fresh(AuditEventType::OrganizationUpsert);
    assert!(matches!(
        organizations.update(&unknown, &not_found).await,
        Err(StoreError::NotFound)
    ));
    assert!(!kept(stores, &not_found).await);
    let orphan = fresh(AuditEventType::SpaceUpsert);
    assert!(matches!(
        stores
            .directory
            .spaces()
            .insert(
                &Space {
                    guid: SpaceGuid::from_uuid(Uuid::new_v4()),
                    organization: unknown.guid,
                    name: ResourceName::parse("s").unwrap(),
                    created_at: now,
                    updated_at: now,
                },
                &orphan,
            )
            .await,
        Err(StoreError::MissingParent)
    ));
    assert!(!kept(stores, &orphan).await);

    let mut stored = credential(ScopeTarget::Organization(org.guid), "r.example", &[]);
    let created = fresh(AuditEventType::CredentialCreate);
    stores
        .credentials
        .insert(&stored, &password("p1"), &created)
        .await
        .unwrap();
    assert!(kept(stores, &created).await);
    let again = credential(ScopeTarget::Organization(org.guid), "r.example", &[]);
    let conflicting = fresh(AuditEventType::CredentialCreate);
    assert!(matches!(
        stores
            .credentials
            .insert(&again, &password("p2"), &conflicting)
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(!kept(stores, &conflicting).await);
    stored.updated_at = crate::now();
    let updated = fresh(AuditEventType::CredentialUpdate);
    let locked = stores.credentials.lock(stored.guid).await.unwrap().unwrap();
    locked
        .write(&stored, Some(&password("p3")), &updated)
        .await
        .unwrap();
    assert!(kept(stores, &updated).await);

    let in_use = fresh(AuditEventType::OrganizationDelete);
    assert!(matches!(
        organizations.delete(org.guid, &in_use).await,
        Err(StoreError::InUse(_))
    ));
    assert!(!kept(stores, &in_use).await);
    let deleted = fresh(AuditEventType::CredentialDelete);
    stores
        .credentials
        .delete(stored.guid, &deleted)
        .await
        .unwrap();
    assert!(kept(stores, &deleted).await);
    let gone = fresh(AuditEventType::CredentialDelete);
    assert!(matches!(
        stores.credentials.delete(stored.guid, &gone).await,
        Err(StoreError::NotFound)
    ));
    assert!(!kept(stores, &gone).await);
    assert!(matches!(
        update(stores.credentials.as_ref(), &stored, None).await,
        Err(StoreError::NotFound)
    ));
    let removed = fresh(AuditEventType::OrganizationDelete);
    organizations.delete(org.guid, &removed).await.unwrap();
    assert!(kept(stores, &removed).await);
}

/// Registry and robot writes keep their events (several at once); a write by a holder that
/// lost the lease keeps none.
pub async fn registry_writes_keep_their_events_and_refused_ones_none(stores: &Stores) {
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
    let other = LeaseHolder::from_uuid(Uuid::new_v4());
    store.claim(&registry, lease(holder)).await.unwrap();
    let in_org = |kind| event_at(crate::now(), kind, Some(organization), None);

    let saved = [
        in_org(AuditEventType::RegistryEnable),
        in_org(AuditEventType::RobotCreate),
    ];
    store.save(&registry, holder, &saved).await.unwrap();
    for event in &saved {
        assert!(kept(stores, event).await);
    }
    let refused = in_org(AuditEventType::RegistryUpdate);
    assert!(matches!(
        store
            .save(&registry, other, std::slice::from_ref(&refused))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(!kept(stores, &refused).await);

    let robot = pull_robot_activated(store.as_ref(), &registry, 8).await;
    let lost = in_org(AuditEventType::RobotUpdate);
    assert!(matches!(
        store
            .update_robot(&robot, other, std::slice::from_ref(&lost))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(!kept(stores, &lost).await);
    let robot_updated = in_org(AuditEventType::RobotUpdate);
    store
        .update_robot(&robot, holder, std::slice::from_ref(&robot_updated))
        .await
        .unwrap();
    assert!(kept(stores, &robot_updated).await);

    let credential = managed_credential(&registry, "robot$p+berth-pull");
    let lost_rotation = in_org(AuditEventType::RobotRotate);
    assert!(matches!(
        store
            .update_managed_robot(
                &robot,
                other,
                &credential,
                &password("s1"),
                std::slice::from_ref(&lost_rotation),
            )
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(!kept(stores, &lost_rotation).await);
    let rotated = in_org(AuditEventType::RobotRotate);
    store
        .update_managed_robot(
            &robot,
            holder,
            &credential,
            &password("s2"),
            std::slice::from_ref(&rotated),
        )
        .await
        .unwrap();
    assert!(kept(stores, &rotated).await);

    let robot_deleted = in_org(AuditEventType::RobotDelete);
    store
        .delete_robot(robot.id(), std::slice::from_ref(&robot_deleted))
        .await
        .unwrap();
    assert!(kept(stores, &robot_deleted).await);
    let unknown_robot = in_org(AuditEventType::RobotDelete);
    assert!(matches!(
        store
            .delete_robot(robot.id(), std::slice::from_ref(&unknown_robot))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(!kept(stores, &unknown_robot).await);

    let released = in_org(AuditEventType::RegistryDisable);
    store
        .save_and_release(&registry, holder, std::slice::from_ref(&released))
        .await
        .unwrap();
    assert!(kept(stores, &released).await);
    let stale_delete = in_org(AuditEventType::RegistryPurge);
    assert!(matches!(
        store
            .delete(registry.id(), holder, std::slice::from_ref(&stale_delete))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(!kept(stores, &stale_delete).await);
    assert!(
        store
            .acquire(registry.id(), lease(other), crate::now())
            .await
            .unwrap()
    );
    let purged = in_org(AuditEventType::RegistryPurge);
    store
        .delete(registry.id(), other, std::slice::from_ref(&purged))
        .await
        .unwrap();
    assert!(kept(stores, &purged).await);
}

/// Visibility, filters, order and pages apply in the store, with the total of every match.
pub async fn visibility_filters_order_and_pages_apply_in_the_store(stores: &Stores) {
    let (org_a, org_b) = (
        OrganizationGuid::from_uuid(Uuid::new_v4()),
        OrganizationGuid::from_uuid(Uuid::new_v4()),
    );
    let space_b = SpaceGuid::from_uuid(Uuid::new_v4());
    let start = crate::now() - time::Duration::hours(1);
    let at = |minutes| start + time::Duration::minutes(minutes);
    let in_a = event_at(at(0), AuditEventType::CredentialCreate, Some(org_a), None);
    let in_b = event_at(at(1), AuditEventType::CredentialUpdate, Some(org_b), None);
    let in_space_b = event_at(
        at(2),
        AuditEventType::SpaceUpsert,
        Some(org_b),
        Some(space_b),
    );
    let foundation = event_at(at(3), AuditEventType::CredentialDelete, None, None);
    let all = vec![
        in_a.clone(),
        in_b.clone(),
        in_space_b.clone(),
        foundation.clone(),
    ];
    stores.access_log.record(all.clone()).await;

    let guids = |events: Vec<AuditEvent>| -> Vec<AuditEventGuid> {
        events.into_iter().map(|event| event.guid).collect()
    };
    let list = |query: AuditQuery| {
        let store = stores.audit_events.clone();
        async move { store.list(&query).await.unwrap() }
    };
    let everything_page = list(everything()).await;
    assert_eq!(everything_page.items, all, "oldest first by default");
    assert_eq!(everything_page.total_results, 4);
    let scoped = list(AuditQuery {
        visibility: AuditVisibility::Scoped {
            organizations: vec![org_a],
            spaces: vec![space_b],
        },
        ..everything()
    })
    .await;
    assert_eq!(guids(scoped.items), vec![in_a.guid, in_space_b.guid]);
    let nothing = list(AuditQuery {
        page: PageRequest::new(1, 10).unwrap(),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(
        nothing.total_results, 0,
        "the default visibility shows nothing"
    );

    let filtered = list(AuditQuery {
        space_guids: Some(vec![space_b]),
        target_guids: Some(vec!["some-target".into()]),
        ..everything()
    })
    .await;
    assert_eq!(filtered.items, vec![in_space_b.clone()]);
    let by_type = list(AuditQuery {
        types: Some(vec![
            AuditEventType::CredentialCreate,
            AuditEventType::CredentialDelete,
        ]),
        ..everything()
    })
    .await;
    assert_eq!(guids(by_type.items), vec![in_a.guid, foundation.guid]);
    let by_organization = list(AuditQuery {
        organization_guids: Some(vec![org_b]),
        ..everything()
    })
    .await;
    assert_eq!(
        guids(by_organization.items),
        vec![in_b.guid, in_space_b.guid]
    );
    assert_eq!(
        list(AuditQuery {
            types: Some(vec![]),
            ..everything()
        })
        .await
        .total_results,
        0,
        "an empty list matches nothing"
    );
    let in_window = list(AuditQuery {
        created_ats: TimestampFilter {
            gte: Some(at(1)),
            lt: Some(at(3)),
            ..TimestampFilter::default()
        },
        ..everything()
    })
    .await;
    assert_eq!(guids(in_window.items), vec![in_b.guid, in_space_b.guid]);
    let updated_since = list(AuditQuery {
        updated_ats: TimestampFilter {
            gt: Some(at(2)),
            ..TimestampFilter::default()
        },
        ..everything()
    })
    .await;
    assert_eq!(guids(updated_since.items), vec![foundation.guid]);

    let newest_second_page = list(AuditQuery {
        order: Some(Ordering {
            field: AuditOrderField::UpdatedAt,
            direction: Direction::Descending,
        }),
        page: PageRequest::new(2, 3).unwrap(),
        ..everything()
    })
    .await;
    assert_eq!(newest_second_page.items, vec![in_a]);
    assert_eq!(newest_second_page.total_results, 4);
}

/// Pruning deletes at most a batch of the events older than the cut-off, oldest first, and
/// never a newer one.
pub async fn pruning_deletes_the_oldest_in_batches_and_never_a_newer_one(stores: &Stores) {
    let now = crate::now();
    let old: Vec<AuditEvent> = (0..7)
        .map(|age| {
            event_at(
                now - time::Duration::days(40) - time::Duration::seconds(age),
                AuditEventType::CredentialAccess,
                None,
                None,
            )
        })
        .collect();
    let recent: Vec<AuditEvent> = (0..3)
        .map(|_| fresh(AuditEventType::CredentialAccess))
        .collect();
    stores.access_log.record(old.clone()).await;
    stores.access_log.record(recent.clone()).await;
    let cutoff = now - time::Duration::days(31);
    assert_eq!(stores.audit_events.prune(cutoff, 3).await.unwrap(), 3);
    // The three oldest went first.
    for event in &old[4..] {
        assert!(!kept(stores, event).await);
    }
    for event in &old[..4] {
        assert!(kept(stores, event).await);
    }
    assert_eq!(stores.audit_events.prune(cutoff, 10).await.unwrap(), 4);
    assert_eq!(stores.audit_events.prune(cutoff, 10).await.unwrap(), 0);
    let left = stores.audit_events.list(&everything()).await.unwrap();
    assert_eq!(left.items, recent);
}

/// Every event given to the access log is listed, once, as given.
pub async fn the_access_log_keeps_every_event_it_is_given(stores: &Stores) {
    let organization = OrganizationGuid::from_uuid(Uuid::new_v4());
    let events: Vec<AuditEvent> = (0..25)
        .map(|_| {
            event_at(
                crate::now(),
                AuditEventType::CredentialAccess,
                Some(organization),
                None,
            )
        })
        .collect();
    stores.access_log.record(events[..10].to_vec()).await;
    stores.access_log.record(Vec::new()).await;
    stores.access_log.record(events[10..].to_vec()).await;
    let listed = stores
        .audit_events
        .list(&AuditQuery {
            organization_guids: Some(vec![organization]),
            ..everything()
        })
        .await
        .unwrap();
    assert_eq!(listed.total_results, 25);
    let mut listed: Vec<_> = listed.items;
    let mut expected = events;
    listed.sort_by_key(|event| event.guid);
    expected.sort_by_key(|event| event.guid);
    assert_eq!(listed, expected);
}
