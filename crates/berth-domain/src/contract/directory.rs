//! The contract of [`DirectoryStore`](crate::ports::DirectoryStore).

use uuid::Uuid;

use super::{Stores, credential, event, organization, password};
use crate::ambient::Ambient;
use crate::audit::{AuditActor, AuditData, AuditEvent, AuditEventType, AuditQuery, AuditTarget};
use crate::credential::ScopeTarget;
use crate::directory::{App, Organization, ResourceName, Space};
use crate::ids::{AppGuid, OrganizationGuid, SpaceGuid};
use crate::listing::{Direction, DirectoryOrderField, DirectoryQuery, Ordering, PageRequest};
use crate::permissions::{AuditVisibility, DirectoryVisibility};
use crate::ports::StoreError;

fn space(organization: OrganizationGuid, name: &str) -> Space {
    let now = crate::now();
    Space {
        guid: SpaceGuid::from_uuid(Uuid::new_v4()),
        name: ResourceName::parse(name).unwrap(),
        organization,
        created_at: now,
        updated_at: now,
    }
}

fn app(space: &Space, name: &str) -> App {
    let now = crate::now();
    App {
        guid: AppGuid::from_uuid(Uuid::new_v4()),
        name: ResourceName::parse(name).unwrap(),
        space: space.guid,
        organization: space.organization,
        created_at: now,
        updated_at: now,
    }
}

/// Entries read back as written; a duplicate guid is a conflict, a missing parent refused, an
/// update of an unknown entry not found, a delete of a used entry counts what uses it, and an
/// app's delete takes its credentials.
pub async fn entries_round_trip_with_parents_and_dependents(stores: &Stores) {
    let directory = &stores.directory;
    let organization = organization(stores).await;
    let stored = directory
        .organizations()
        .get(organization)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        directory.organizations().insert(&stored, &event()).await,
        Err(StoreError::Conflict)
    ));
    let orphan = space(OrganizationGuid::from_uuid(Uuid::new_v4()), "orphan");
    assert!(matches!(
        directory.spaces().insert(&orphan, &event()).await,
        Err(StoreError::MissingParent)
    ));
    let mut dev = space(organization, "dev");
    directory.spaces().insert(&dev, &event()).await.unwrap();
    assert_eq!(
        directory.spaces().get(dev.guid).await.unwrap().as_ref(),
        Some(&dev)
    );
    let orphan_app = app(&orphan, "lost");
    assert!(matches!(
        directory.apps().insert(&orphan_app, &event()).await,
        Err(StoreError::MissingParent)
    ));
    let web = app(&dev, "web");
    directory.apps().insert(&web, &event()).await.unwrap();

    dev.name = ResourceName::parse("development").unwrap();
    dev.updated_at = dev.created_at + time::Duration::seconds(5);
    directory.spaces().update(&dev, &event()).await.unwrap();
    assert_eq!(
        directory.spaces().get(dev.guid).await.unwrap().as_ref(),
        Some(&dev)
    );
    assert!(matches!(
        directory.spaces().update(&orphan, &event()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        directory
            .space_organizations(&[dev.guid, orphan.guid])
            .await
            .unwrap(),
        vec![(dev.guid, organization)]
    );

    let app_credential = credential(
        ScopeTarget::App {
            organization,
            space: dev.guid,
            app: web.guid,
        },
        "r.io",
        &[],
    );
    stores
        .credentials
        .insert(&app_credential, &password("p"), &event())
        .await
        .unwrap();
    match directory.spaces().delete(dev.guid, &event()).await {
        Err(StoreError::InUse(dependents)) => {
            assert_eq!((dependents.apps, dependents.credentials), (1, 1));
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    match directory
        .organizations()
        .delete(organization, &event())
        .await
    {
        Err(StoreError::InUse(dependents)) => {
            assert_eq!((dependents.spaces, dependents.credentials), (1, 1));
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    // An app's credentials go with it.
    directory.apps().delete(web.guid, &event()).await.unwrap();
    assert_eq!(
        stores.credentials.get(app_credential.guid).await.unwrap(),
        None
    );
    directory.spaces().delete(dev.guid, &event()).await.unwrap();
    directory
        .organizations()
        .delete(organization, &event())
        .await
        .unwrap();
    assert!(
        directory
            .organizations()
            .get(organization)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        directory
            .organizations()
            .delete(organization, &event())
            .await,
        Err(StoreError::NotFound)
    ));
}

/// Lists apply visibility, guid, name and parent filters, order (ties by guid) and pages in the
/// store, totals included.
pub async fn lists_filter_order_and_page(stores: &Stores) {
    let directory = &stores.directory;
    let now = crate::now();
    let mut organizations = Vec::new();
    for (index, name) in ["charlie", "alpha", "bravo"].iter().enumerate() {
        let organization = Organization {
            guid: OrganizationGuid::from_uuid(Uuid::new_v4()),
            name: ResourceName::parse(name).unwrap(),
            created_at: now - time::Duration::seconds(10 - index as i64),
            updated_at: now,
        };
        directory
            .organizations()
            .insert(&organization, &event())
            .await
            .unwrap();
        organizations.push(organization);
    }
    let guids = |page: crate::listing::Page<Organization>| {
        (
            page.items.iter().map(|o| o.guid).collect::<Vec<_>>(),
            page.total_results,
        )
    };
    let everything = || DirectoryQuery {
        visibility: DirectoryVisibility::Everything,
        ..DirectoryQuery::default()
    };
    let list = |query: DirectoryQuery| {
        let store = stores.directory.clone();
        async move { guids(store.organizations().list(&query).await.unwrap()) }
    };
    let all: Vec<OrganizationGuid> = organizations.iter().map(|o| o.guid).collect();
    assert_eq!(list(everything()).await, (all.clone(), 3));
    assert_eq!(
        list(DirectoryQuery::default()).await,
        (Vec::new(), 0),
        "the default visibility shows nothing"
    );
    assert_eq!(
        list(DirectoryQuery {
            visibility: DirectoryVisibility::Scoped {
                organizations: vec![all[2]],
                managed_organizations: Vec::new(),
                spaces: Vec::new(),
            },
            ..DirectoryQuery::default()
        })
        .await,
        (vec![all[2]], 1)
    );
    assert_eq!(
        list(DirectoryQuery {
            order: Some(Ordering {
                field: DirectoryOrderField::Name,
                direction: Direction::Descending,
            }),
            page: PageRequest::new(1, 2).unwrap(),
            ..everything()
        })
        .await,
        (vec![all[0], all[2]], 3)
    );
    assert_eq!(
        list(DirectoryQuery {
            names: Some(vec!["alpha".to_owned(), "zulu".to_owned()]),
            ..everything()
        })
        .await,
        (vec![all[1]], 1)
    );
    assert_eq!(
        list(DirectoryQuery {
            guids: Some(vec![all[0].as_uuid(), all[2].as_uuid()]),
            page: PageRequest::new(2, 1).unwrap(),
            ..everything()
        })
        .await,
        (vec![all[2]], 2)
    );

    // Spaces: by parent, and visible through a managed organization or the space itself.
    let first = space(all[0], "s1");
    let second = space(all[1], "s2");
    for entry in [&first, &second] {
        directory.spaces().insert(entry, &event()).await.unwrap();
    }
    let spaces = |query: DirectoryQuery| {
        let store = stores.directory.clone();
        async move {
            let page = store.spaces().list(&query).await.unwrap();
            let mut found: Vec<SpaceGuid> = page.items.iter().map(|s| s.guid).collect();
            found.sort();
            (found, page.total_results)
        }
    };
    assert_eq!(
        spaces(DirectoryQuery {
            parent_guids: Some(vec![all[1].as_uuid()]),
            ..everything()
        })
        .await,
        (vec![second.guid], 1)
    );
    let mut both = vec![first.guid, second.guid];
    both.sort();
    assert_eq!(
        spaces(DirectoryQuery {
            visibility: DirectoryVisibility::Scoped {
                organizations: Vec::new(),
                managed_organizations: vec![all[0]],
                spaces: vec![second.guid],
            },
            ..DirectoryQuery::default()
        })
        .await,
        (both, 2)
    );
}

/// An app's delete deletes its credentials (and no other) and keeps the app's event and one
/// `audit.registry_credential.delete` per credential, at the app delete's time and by its actor.
pub async fn an_app_delete_takes_its_credentials_with_their_events(stores: &Stores) {
    let directory = &stores.directory;
    let organization = organization(stores).await;
    let dev = space(organization, "dev");
    directory.spaces().insert(&dev, &event()).await.unwrap();
    let web = app(&dev, "web");
    let worker = app(&dev, "worker");
    for entry in [&web, &worker] {
        directory.apps().insert(entry, &event()).await.unwrap();
    }
    let target = |app: &App| ScopeTarget::App {
        organization,
        space: dev.guid,
        app: app.guid,
    };
    let owned = [
        credential(target(&web), "a.io", &[]),
        credential(target(&web), "b.io", &[]),
    ];
    let kept = credential(target(&worker), "a.io", &[]);
    for credential in owned.iter().chain([&kept]) {
        stores
            .credentials
            .insert(credential, &password("p"), &event())
            .await
            .unwrap();
    }
    let app_delete = AuditEvent::new(
        &Ambient::system(),
        AuditEventType::AppDelete,
        AuditActor::system(),
        AuditTarget::new(web.guid, "app", "web"),
        AuditData::new(),
    );
    directory
        .apps()
        .delete(web.guid, &app_delete)
        .await
        .unwrap();
    assert_eq!(directory.apps().get(web.guid).await.unwrap(), None);
    for credential in &owned {
        assert_eq!(stores.credentials.get(credential.guid).await.unwrap(), None);
    }
    assert!(stores.credentials.get(kept.guid).await.unwrap().is_some());

    let events = stores
        .audit_events
        .list(&AuditQuery {
            visibility: AuditVisibility::Everything,
            types: Some(vec![
                AuditEventType::AppDelete,
                AuditEventType::CredentialDelete,
            ]),
            page: PageRequest::new(1, 100).unwrap(),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .items;
    assert_eq!(
        events
            .iter()
            .filter(|event| event.event_type == AuditEventType::AppDelete)
            .collect::<Vec<_>>(),
        vec![&app_delete]
    );
    let mut deleted: Vec<_> = events
        .iter()
        .filter(|event| event.event_type == AuditEventType::CredentialDelete)
        .map(|event| {
            assert_eq!(event.created_at, app_delete.created_at);
            assert_eq!(event.actor, app_delete.actor);
            assert_eq!(
                (event.organization, event.space),
                (Some(organization), Some(dev.guid))
            );
            assert_ne!(event.guid, app_delete.guid);
            (event.target.guid.clone(), event.target.clone())
        })
        .collect();
    deleted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected: Vec<_> = owned
        .iter()
        .map(|credential| {
            let target = AuditTarget::credential(credential);
            (target.guid.clone(), target)
        })
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(deleted, expected, "one event per credential the app took");

    // An app without credentials writes its event only.
    let worker_delete = event();
    stores
        .credentials
        .delete(kept.guid, &event())
        .await
        .unwrap();
    directory
        .apps()
        .delete(worker.guid, &worker_delete)
        .await
        .unwrap();
    assert_eq!(
        stores.audit_events.get(worker_delete.guid).await.unwrap(),
        Some(worker_delete)
    );
}
