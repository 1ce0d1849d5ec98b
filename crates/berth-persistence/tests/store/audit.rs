//! Audit events: written in the change's transaction, read with filters and visibility, pruned.

use berth_domain::ambient::Ambient;
use berth_domain::audit::{
    AuditActor, AuditData, AuditEvent, AuditEventStore, AuditEventType, AuditQuery, AuditTarget,
};
use berth_domain::credential::{RegistryCredential, ScopeTarget};
use berth_domain::directory::{App, Organization, ResourceName, Space};
use berth_domain::ids::{AppGuid, OrganizationGuid, SpaceGuid};
use berth_domain::listing::{CredentialQuery, PageRequest};
use berth_domain::metadata::Metadata;
use berth_domain::permissions::{AuditVisibility, CredentialVisibility};
use berth_domain::ports::{CredentialStore, DirectoryStore};
use berth_persistence::SeaOrmAuditStore;
use sea_orm::ConnectionTrait;

use crate::stores::{credential, organization, password};
use crate::{Harness, ring};

fn event(
    kind: AuditEventType,
    organization: Option<OrganizationGuid>,
    space: Option<SpaceGuid>,
) -> AuditEvent {
    let mut event = AuditEvent::new(
        &Ambient::system(),
        kind,
        AuditActor::system(),
        AuditTarget::new("some-target", "registry_credential", "r.io"),
        AuditData::request(AuditData::new().text("username", "ci").hidden("password")),
    );
    event.organization = organization;
    event.space = space;
    event
}

fn everything() -> AuditQuery {
    AuditQuery {
        visibility: AuditVisibility::Everything,
        page: PageRequest::new(1, 5000).unwrap(),
        ..AuditQuery::default()
    }
}

async fn all_events(store: &SeaOrmAuditStore) -> Vec<AuditEvent> {
    store.list(&everything()).await.unwrap().items
}

/// Makes every insert into the audit table fail, as a full disk or a broken constraint would.
pub async fn refuse_audit_inserts(harness: &Harness) {
    let db = &harness.connection;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared(
            "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql",
        )
        .await
        .unwrap();
        db.execute_unprepared(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        )
        .await
        .unwrap();
    } else {
        db.execute_unprepared(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn an_event_reads_back_as_written() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let store = SeaOrmAuditStore::new(harness.connection.clone());
    let org = organization(&harness).await;
    let stored = credential(ScopeTarget::Organization(org), "r.io", &[("env", "prod")]);
    let written = event(AuditEventType::CredentialCreate, Some(org), None);
    harness
        .credentials
        .insert(&stored, &password("p1"), &written)
        .await
        .unwrap();
    assert_eq!(
        store.get(written.guid).await.unwrap(),
        Some(written.clone())
    );
    let listed = store
        .list(&AuditQuery {
            types: Some(vec![AuditEventType::CredentialCreate]),
            organization_guids: Some(vec![org]),
            ..everything()
        })
        .await
        .unwrap();
    assert_eq!(listed.items, vec![written]);
    assert_eq!(listed.total_results, 1);
}

/// No change commits without its event: with the event's insert refused, each write fails and
/// leaves the data as it was, on both databases (PostgreSQL's credential insert is one
/// statement, the rest transactions).
#[tokio::test]
async fn a_refused_event_rolls_its_change_back() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let org = organization(&harness).await;
    let kept = credential(
        ScopeTarget::Organization(org),
        "kept.io",
        &[("env", "prod")],
    );
    harness
        .credentials
        .insert(&kept, &password("p1"), &crate::audit_event())
        .await
        .unwrap();
    refuse_audit_inserts(&harness).await;
    let refused = event(AuditEventType::CredentialCreate, Some(org), None);

    for labels in [&[("env", "prod")][..], &[][..]] {
        let new = credential(ScopeTarget::Organization(org), "new.io", labels);
        assert!(
            harness
                .credentials
                .insert(&new, &password("p2"), &refused)
                .await
                .is_err()
        );
    }
    let mut changed = kept.clone();
    changed.metadata = Metadata::default();
    let locked = harness.credentials.lock(kept.guid).await.unwrap().unwrap();
    assert!(
        locked
            .write(&changed, Some(&password("p3")), &refused)
            .await
            .is_err()
    );
    assert!(
        harness
            .credentials
            .delete(kept.guid, &refused)
            .await
            .is_err()
    );
    let now = berth_domain::now();
    let other = OrganizationGuid::from_uuid(uuid::Uuid::new_v4());
    let new_org = Organization {
        guid: other,
        name: ResourceName::parse("o2").unwrap(),
        created_at: now,
        updated_at: now,
    };
    assert!(
        harness
            .directory
            .organizations()
            .insert(&new_org, &refused)
            .await
            .is_err()
    );

    let page = harness
        .credentials
        .list(&CredentialQuery {
            visibility: CredentialVisibility::Everything,
            ..CredentialQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items, vec![kept.clone()]);
    assert_eq!(
        harness
            .credentials
            .reveal_password(kept.guid)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "p1"
    );
    assert!(
        harness
            .directory
            .organizations()
            .get(other)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn scoped_visibility_and_filters_select_in_the_query() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let store = SeaOrmAuditStore::new(harness.connection.clone());
    let (org_a, org_b) = (
        OrganizationGuid::from_uuid(uuid::Uuid::new_v4()),
        OrganizationGuid::from_uuid(uuid::Uuid::new_v4()),
    );
    let space_b = SpaceGuid::from_uuid(uuid::Uuid::new_v4());
    let in_a = event(AuditEventType::CredentialCreate, Some(org_a), None);
    let in_b = event(AuditEventType::CredentialUpdate, Some(org_b), None);
    let in_space_b = event(AuditEventType::SpaceUpsert, Some(org_b), Some(space_b));
    let foundation = event(AuditEventType::CredentialDelete, None, None);
    store
        .insert_batch(&[
            in_a.clone(),
            in_b.clone(),
            in_space_b.clone(),
            foundation.clone(),
        ])
        .await
        .unwrap();
    let seen = |visibility| {
        let store = store.clone();
        async move {
            let query = AuditQuery {
                visibility,
                ..everything()
            };
            let mut guids: Vec<_> = store
                .list(&query)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|event| event.guid)
                .collect();
            guids.sort();
            guids
        }
    };
    let mut expected = vec![in_a.guid, in_space_b.guid];
    expected.sort();
    assert_eq!(
        seen(AuditVisibility::Scoped {
            organizations: vec![org_a],
            spaces: vec![space_b],
        })
        .await,
        expected
    );
    assert_eq!(
        seen(AuditVisibility::Scoped {
            organizations: vec![],
            spaces: vec![],
        })
        .await,
        vec![]
    );
    assert_eq!(seen(AuditVisibility::Everything).await.len(), 4);
    let filtered = store
        .list(&AuditQuery {
            space_guids: Some(vec![space_b]),
            target_guids: Some(vec!["some-target".into()]),
            ..everything()
        })
        .await
        .unwrap();
    assert_eq!(filtered.items, vec![in_space_b]);
    let none = store
        .list(&AuditQuery {
            types: Some(vec![]),
            ..everything()
        })
        .await
        .unwrap();
    assert_eq!(none.total_results, 0);
}

/// Two replicas pruning at once delete every old event between them, exactly once, and never
/// a newer one.
#[tokio::test]
async fn pruning_deletes_old_events_in_batches_from_every_replica() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let store = SeaOrmAuditStore::new(harness.connection.clone());
    let now = berth_domain::now();
    let old: Vec<AuditEvent> = (0..45)
        .map(|age| {
            let mut old = event(AuditEventType::CredentialAccess, None, None);
            old.created_at = now - time::Duration::days(40) - time::Duration::seconds(age);
            old
        })
        .collect();
    let recent: Vec<AuditEvent> = (0..5)
        .map(|_| event(AuditEventType::CredentialAccess, None, None))
        .collect();
    store.insert_batch(&old).await.unwrap();
    store.insert_batch(&recent).await.unwrap();
    let cutoff = now - time::Duration::days(31);
    let mut pruned = 0;
    loop {
        let (first, second) = tokio::join!(store.prune(cutoff, 10), store.prune(cutoff, 10));
        let round = first.unwrap() + second.unwrap();
        if round == 0 {
            break;
        }
        pruned += round;
    }
    assert_eq!(pruned, 45);
    let mut left: Vec<_> = all_events(&store)
        .await
        .into_iter()
        .map(|e| e.guid)
        .collect();
    left.sort();
    let mut expected: Vec<_> = recent.iter().map(|e| e.guid).collect();
    expected.sort();
    assert_eq!(left, expected);
}

/// An organization, a space and an app in it, and a credential held by the app.
async fn app_with_credential(harness: &Harness) -> (App, RegistryCredential) {
    let org = organization(harness).await;
    let now = berth_domain::now();
    let space = Space {
        guid: SpaceGuid::from_uuid(uuid::Uuid::new_v4()),
        name: ResourceName::parse("s").unwrap(),
        organization: org,
        created_at: now,
        updated_at: now,
    };
    harness
        .directory
        .spaces()
        .insert(&space, &crate::audit_event())
        .await
        .unwrap();
    let app = App {
        guid: AppGuid::from_uuid(uuid::Uuid::new_v4()),
        name: ResourceName::parse("web").unwrap(),
        space: space.guid,
        organization: org,
        created_at: now,
        updated_at: now,
    };
    harness
        .directory
        .apps()
        .insert(&app, &crate::audit_event())
        .await
        .unwrap();
    let owned = credential(
        ScopeTarget::App {
            organization: org,
            space: space.guid,
            app: app.guid,
        },
        "owned.io",
        &[("env", "prod")],
    );
    harness
        .credentials
        .insert(&owned, &password("p1"), &crate::audit_event())
        .await
        .unwrap();
    (app, owned)
}

/// With the events refused, an app's delete takes neither the app nor its credentials.
#[tokio::test]
async fn a_refused_event_keeps_the_app_and_its_credentials() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let (app, owned) = app_with_credential(&harness).await;
    refuse_audit_inserts(&harness).await;
    assert!(
        harness
            .directory
            .apps()
            .delete(app.guid, &crate::audit_event())
            .await
            .is_err()
    );
    assert!(
        harness
            .directory
            .apps()
            .get(app.guid)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        harness.credentials.get(owned.guid).await.unwrap(),
        Some(owned.clone())
    );
}
