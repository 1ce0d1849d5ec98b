//! The contract of [`CredentialStore`](crate::ports::CredentialStore).

use uuid::Uuid;

use super::{Stores, credential, event, organization, password, update};
use crate::credential::{ScopeTarget, Username};
use crate::directory::{ResourceName, Space};
use crate::ids::{CredentialGuid, OrganizationGuid, SpaceGuid};
use crate::label_selector::LabelSelector;
use crate::listing::{CredentialQuery, PageRequest};
use crate::metadata::Metadata;
use crate::permissions::CredentialVisibility;
use crate::ports::StoreError;

/// A credential reads back as written, a locked write raises its revision, a delete is final.
pub async fn insert_get_update_delete_round_trip(stores: &Stores) {
    let mut stored = credential(ScopeTarget::Foundation, "r.io", &[("env", "prod")]);
    stores
        .credentials
        .insert(&stored, &password("p1"), &event())
        .await
        .unwrap();
    assert_eq!(
        stores.credentials.get(stored.guid).await.unwrap().as_ref(),
        Some(&stored)
    );

    stored.username = Username::parse("other").unwrap();
    stored.metadata = Metadata::default();
    update(stores.credentials.as_ref(), &stored, Some(&password("p2")))
        .await
        .unwrap();
    stored.revision += 1;
    assert_eq!(
        stores.credentials.get(stored.guid).await.unwrap().as_ref(),
        Some(&stored)
    );
    assert_eq!(
        stores
            .credentials
            .reveal_password(stored.guid)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "p2"
    );

    stores
        .credentials
        .delete(stored.guid, &event())
        .await
        .unwrap();
    assert!(stores.credentials.get(stored.guid).await.unwrap().is_none());
    assert!(matches!(
        stores.credentials.delete(stored.guid, &event()).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        stores
            .credentials
            .lock(stored.guid)
            .await
            .unwrap()
            .is_none()
    );
}

/// One credential per scope target and location, parents must exist, a used organization is not deleted.
pub async fn uniqueness_and_parents_are_enforced(stores: &Stores) {
    let organization = organization(stores).await;
    let first = credential(ScopeTarget::Organization(organization), "r.io", &[]);
    stores
        .credentials
        .insert(&first, &password("p"), &event())
        .await
        .unwrap();
    let duplicate = credential(ScopeTarget::Organization(organization), "r.io", &[]);
    assert!(matches!(
        stores
            .credentials
            .insert(&duplicate, &password("p"), &event())
            .await,
        Err(StoreError::Conflict)
    ));
    let orphan = credential(
        ScopeTarget::Organization(OrganizationGuid::from_uuid(Uuid::new_v4())),
        "r.io",
        &[],
    );
    assert!(matches!(
        stores
            .credentials
            .insert(&orphan, &password("p"), &event())
            .await,
        Err(StoreError::MissingParent)
    ));
    let foundation = credential(ScopeTarget::Foundation, "r.io", &[]);
    stores
        .credentials
        .insert(&foundation, &password("p"), &event())
        .await
        .unwrap();
    let second_foundation = credential(ScopeTarget::Foundation, "r.io", &[]);
    assert!(matches!(
        stores
            .credentials
            .insert(&second_foundation, &password("p"), &event())
            .await,
        Err(StoreError::Conflict)
    ));

    // The organization is in use: its delete is refused and counted, nothing is deleted.
    let space = Space {
        guid: SpaceGuid::from_uuid(Uuid::new_v4()),
        name: ResourceName::parse("s").unwrap(),
        organization,
        created_at: crate::now(),
        updated_at: crate::now(),
    };
    stores
        .directory
        .spaces()
        .insert(&space, &event())
        .await
        .unwrap();
    match stores
        .directory
        .organizations()
        .delete(organization, &event())
        .await
    {
        Err(StoreError::InUse(dependents)) => {
            assert_eq!((dependents.spaces, dependents.credentials), (1, 1));
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(
        stores
            .directory
            .organizations()
            .get(organization)
            .await
            .unwrap()
            .is_some()
    );
}

/// The store filters by every label selector form exactly as [`LabelSelector::matches`] does.
pub async fn label_selectors_agree_with_the_in_memory_semantics(stores: &Stores) {
    let label_sets: &[&[(&str, &str)]] = &[
        &[("env", "prod"), ("tier", "web")],
        &[("env", "dev"), ("tier", "db")],
        &[("env", "prod")],
        &[("tier", "")],
        &[],
        &[("example.com/team", "a"), ("env", "qa")],
    ];
    let mut all = Vec::new();
    for (index, labels) in label_sets.iter().enumerate() {
        let stored = credential(ScopeTarget::Foundation, &format!("r{index}.io"), labels);
        stores
            .credentials
            .insert(&stored, &password("p"), &event())
            .await
            .unwrap();
        all.push(stored);
    }
    for selector in [
        "env",
        "!env",
        "env=prod",
        "env==prod",
        "env!=prod",
        "env in (prod,qa)",
        "env notin (prod,qa)",
        "tier=",
        "tier!=",
        "tier,env!=dev",
        "example.com/team in (a)",
        "!tier,!env",
        "env notin (x),tier",
    ] {
        let parsed = LabelSelector::parse(selector).unwrap();
        let mut expected: Vec<CredentialGuid> = all
            .iter()
            .filter(|c| parsed.matches(c.metadata.labels()))
            .map(|c| c.guid)
            .collect();
        expected.sort();
        let query = CredentialQuery {
            label_selector: Some(parsed),
            page: PageRequest::new(1, 100).unwrap(),
            ..CredentialQuery::default()
        };
        let page = stores.credentials.list(&query).await.unwrap();
        let mut found: Vec<CredentialGuid> = page.items.iter().map(|c| c.guid).collect();
        found.sort();
        assert_eq!(found, expected, "{selector}");
        assert_eq!(page.total_results, expected.len() as u64, "{selector}");
    }
}

/// Every page knows the total of all pages.
pub async fn totals_are_counted_at_any_page(stores: &Stores) {
    for index in 0..23 {
        let stored = credential(ScopeTarget::Foundation, &format!("r{index:02}.io"), &[]);
        stores
            .credentials
            .insert(&stored, &password("p"), &event())
            .await
            .unwrap();
    }
    for (page, expected_items) in [(1, 10), (2, 10), (3, 3), (4, 0)] {
        let query = CredentialQuery {
            page: PageRequest::new(page, 10).unwrap(),
            ..CredentialQuery::default()
        };
        let result = stores.credentials.list(&query).await.unwrap();
        assert_eq!(result.items.len(), expected_items, "page {page}");
        assert_eq!(result.total_results, 23, "page {page}");
    }
}

/// A list under a label selector: its
/// pages, in every order and direction, are the matching credentials in that order, cut where
/// the plain page would cut them, and each page knows the total.
pub async fn selector_pages_keep_order_offsets_and_totals(stores: &Stores) {
    use crate::listing::{CredentialOrderField, Direction, Ordering};
    let listed = organization(stores).await;
    let other = organization(stores).await;
    let mut matching = Vec::new();
    for index in 0..7 {
        // Locations out of creation order, so the orders differ.
        let mut stored = credential(
            ScopeTarget::Organization(listed),
            &format!("r{}.io", (index * 3) % 7),
            &[("env", "prod")],
        );
        stored.created_at -= time::Duration::seconds(i64::from(index % 3));
        stored.updated_at = stored.created_at;
        stores
            .credentials
            .insert(&stored, &password("p"), &event())
            .await
            .unwrap();
        matching.push(stored);
    }
    for (target, labels) in [
        (ScopeTarget::Organization(listed), &[("tier", "web")][..]),
        (ScopeTarget::Organization(other), &[("env", "prod")][..]),
    ] {
        let stored = credential(target, "x.io", labels);
        stores
            .credentials
            .insert(&stored, &password("p"), &event())
            .await
            .unwrap();
    }
    let selector = LabelSelector::parse("env").unwrap();
    for field in [
        CredentialOrderField::CreatedAt,
        CredentialOrderField::Location,
    ] {
        for direction in [Direction::Ascending, Direction::Descending] {
            let mut expected = matching.clone();
            expected.sort_by(|a, b| {
                let by_field = match field {
                    CredentialOrderField::Location => {
                        a.location.to_string().cmp(&b.location.to_string())
                    }
                    _ => a.created_at.cmp(&b.created_at),
                };
                by_field.then(a.guid.as_uuid().cmp(&b.guid.as_uuid()))
            });
            if direction == Direction::Descending {
                expected.reverse();
            }
            let expected: Vec<CredentialGuid> = expected.iter().map(|c| c.guid).collect();
            let mut found = Vec::new();
            for number in 1..=3 {
                let page = stores
                    .credentials
                    .list(&CredentialQuery {
                        label_selector: Some(selector.clone()),
                        organization_guids: Some(vec![listed]),
                        visibility: CredentialVisibility::Everything,
                        order: Some(Ordering { field, direction }),
                        page: PageRequest::new(number, 3).unwrap(),
                        ..CredentialQuery::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(
                    page.total_results, 7,
                    "{field:?} {direction:?} page {number}"
                );
                found.extend(page.items.iter().map(|c| c.guid));
            }
            assert_eq!(found, expected, "{field:?} {direction:?}");
        }
    }
}

/// A second writer waits for the first one's lock, then reads what it wrote; a lock dropped
/// without a write changes nothing.
pub async fn a_locked_credential_makes_other_writers_wait_and_see_its_write(stores: &Stores) {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    let stored = credential(ScopeTarget::Foundation, "r.io", &[("env", "prod")]);
    stores
        .credentials
        .insert(&stored, &password("p1"), &event())
        .await
        .unwrap();
    let first = stores.credentials.lock(stored.guid).await.unwrap().unwrap();
    assert_eq!(first.current(), &stored);
    let mut second = Box::pin(stores.credentials.lock(stored.guid));
    // Polled once while the first lock is held: it cannot have the lock yet.
    let polled = second
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
    assert!(
        matches!(polled, Poll::Pending),
        "the second lock did not wait"
    );
    let mut changed = stored.clone();
    changed.username = Username::parse("first-writer").unwrap();
    changed.metadata = credential(ScopeTarget::Foundation, "r.io", &[("env", "qa")]).metadata;
    first.write(&changed, None, &event()).await.unwrap();
    let seen = second.await.unwrap().unwrap();
    changed.revision += 1;
    assert_eq!(seen.current(), &changed);
    drop(seen);
    drop(stores.credentials.lock(stored.guid).await.unwrap().unwrap());
    assert_eq!(
        stores.credentials.get(stored.guid).await.unwrap().as_ref(),
        Some(&changed)
    );
}

/// Visibility, guid, scope, location and timestamp filters, and every order, are applied by the
/// store, totals included.
pub async fn visibility_filters_and_order_apply_in_the_store(stores: &Stores) {
    use crate::directory::App;
    use crate::ids::AppGuid;
    use crate::listing::{CredentialOrderField, Direction, Ordering, TimestampFilter};

    let visible_org = organization(stores).await;
    let hidden_org = organization(stores).await;
    let now = crate::now();
    let space = Space {
        guid: SpaceGuid::from_uuid(Uuid::new_v4()),
        name: ResourceName::parse("s").unwrap(),
        organization: hidden_org,
        created_at: now,
        updated_at: now,
    };
    stores
        .directory
        .spaces()
        .insert(&space, &event())
        .await
        .unwrap();
    let app = App {
        guid: AppGuid::from_uuid(Uuid::new_v4()),
        name: ResourceName::parse("a").unwrap(),
        space: space.guid,
        organization: hidden_org,
        created_at: now,
        updated_at: now,
    };
    stores
        .directory
        .apps()
        .insert(&app, &event())
        .await
        .unwrap();
    let targets = [
        ScopeTarget::Foundation,
        ScopeTarget::Organization(visible_org),
        ScopeTarget::Organization(hidden_org),
        ScopeTarget::Space {
            organization: hidden_org,
            space: space.guid,
        },
        ScopeTarget::App {
            organization: hidden_org,
            space: space.guid,
            app: app.guid,
        },
    ];
    let mut all = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let mut stored = credential(*target, &format!("r{}.io", 4 - index), &[]);
        stored.created_at = now - time::Duration::seconds(10 - index as i64);
        stored.updated_at = stored.created_at;
        stores
            .credentials
            .insert(&stored, &password("p"), &event())
            .await
            .unwrap();
        all.push(stored);
    }
    let guids = |page: crate::listing::Page<crate::credential::RegistryCredential>| {
        (
            page.items.iter().map(|c| c.guid).collect::<Vec<_>>(),
            page.total_results,
        )
    };
    let list = |query: CredentialQuery| {
        let store = stores.credentials.clone();
        async move { guids(store.list(&query).await.unwrap()) }
    };
    // The default visibility shows foundation credentials only.
    assert_eq!(
        list(CredentialQuery::default()).await,
        (vec![all[0].guid], 1)
    );
    // Organization credentials of the caller's organizations; space and app credentials of its
    // spaces.
    let scoped = CredentialVisibility::Scoped {
        organizations: vec![visible_org],
        managed_organizations: Vec::new(),
        spaces: vec![space.guid],
    };
    assert_eq!(
        list(CredentialQuery {
            visibility: scoped.clone(),
            ..CredentialQuery::default()
        })
        .await,
        (vec![all[0].guid, all[1].guid, all[3].guid, all[4].guid], 4)
    );
    let managing = CredentialVisibility::Scoped {
        organizations: Vec::new(),
        managed_organizations: vec![hidden_org],
        spaces: Vec::new(),
    };
    assert_eq!(
        list(CredentialQuery {
            visibility: managing,
            ..CredentialQuery::default()
        })
        .await,
        (vec![all[0].guid, all[3].guid, all[4].guid], 3)
    );
    let everything = || CredentialQuery {
        visibility: CredentialVisibility::Everything,
        ..CredentialQuery::default()
    };
    assert_eq!(
        list(CredentialQuery {
            organization_guids: Some(vec![hidden_org]),
            scopes: Some(vec![
                crate::credential::Scope::Space,
                crate::credential::Scope::App
            ]),
            ..everything()
        })
        .await,
        (vec![all[3].guid, all[4].guid], 2)
    );
    assert_eq!(
        list(CredentialQuery {
            app_guids: Some(vec![app.guid]),
            ..everything()
        })
        .await,
        (vec![all[4].guid], 1)
    );
    assert_eq!(
        list(CredentialQuery {
            guids: Some(vec![all[2].guid, all[1].guid]),
            locations: Some(vec!["r3.io".to_owned(), "r2.io".to_owned()]),
            ..everything()
        })
        .await,
        (vec![all[1].guid, all[2].guid], 2)
    );
    assert_eq!(
        list(CredentialQuery {
            guids: Some(Vec::new()),
            ..everything()
        })
        .await,
        (Vec::new(), 0),
        "an empty list matches nothing"
    );
    assert_eq!(
        list(CredentialQuery {
            created_ats: TimestampFilter {
                gte: Some(all[1].created_at),
                lt: Some(all[4].created_at),
                ..TimestampFilter::default()
            },
            ..everything()
        })
        .await,
        (vec![all[1].guid, all[2].guid, all[3].guid], 3)
    );
    assert_eq!(
        list(CredentialQuery {
            updated_ats: TimestampFilter {
                equals: vec![all[0].updated_at, all[2].updated_at],
                ..TimestampFilter::default()
            },
            ..everything()
        })
        .await,
        (vec![all[0].guid, all[2].guid], 2)
    );
    // Locations were given in reverse creation order.
    let by_location: Vec<CredentialGuid> = all.iter().rev().map(|c| c.guid).collect();
    assert_eq!(
        list(CredentialQuery {
            order: Some(Ordering {
                field: CredentialOrderField::Location,
                direction: Direction::Ascending,
            }),
            ..everything()
        })
        .await,
        (by_location, 5)
    );
    let newest_first: Vec<CredentialGuid> = all.iter().rev().map(|c| c.guid).collect();
    assert_eq!(
        list(CredentialQuery {
            order: Some(Ordering {
                field: CredentialOrderField::UpdatedAt,
                direction: Direction::Descending,
            }),
            page: PageRequest::new(1, 2).unwrap(),
            ..everything()
        })
        .await,
        (newest_first[..2].to_vec(), 5)
    );
}

/// Every credential of the query's levels at one of its candidate locations is found; only
/// the winners' passwords are opened, and none to explain.
pub async fn pull_matches_read_every_level_and_open_only_the_winners(stores: &Stores) {
    use crate::credential::{RequestedOwner, Scope};
    use crate::image_reference::ImageReference;
    use crate::pull_secrets::{PullRequest, PullSubject, Reveal};

    let organization = organization(stores).await;
    let context = ScopeTarget::Organization(organization);
    let stored = [
        credential(context, "r.example.com/team", &[]),
        credential(context, "example.com", &[]),
        credential(ScopeTarget::Foundation, "r.example.com", &[]),
        credential(ScopeTarget::Foundation, "docker.io", &[]),
        credential(ScopeTarget::Foundation, "unrelated.example.net", &[]),
    ];
    for (index, row) in stored.iter().enumerate() {
        stores
            .credentials
            .insert(row, &password(&format!("pw-{index}")), &event())
            .await
            .unwrap();
    }
    let subjects: Vec<PullSubject> = [
        "r.example.com/team/app",
        "other.example.com/x",
        "nginx",
        "none.example.org/y",
    ]
    .iter()
    .map(|text| PullSubject::Image(ImageReference::parse(text).unwrap()))
    .collect();
    let query = PullRequest::new(RequestedOwner::Organization(organization), subjects)
        .unwrap()
        .into_query();
    let lookup = stores
        .credentials
        .pull_matches(&query, Reveal::Winners)
        .await
        .unwrap()
        .expect("the organization exists");
    assert_eq!(lookup.context, context, "the owner located");
    let mut found: Vec<(Scope, String)> = lookup
        .matches
        .iter()
        .map(|m| (m.scope, m.location.to_string()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (Scope::Foundation, "docker.io".to_owned()),
            (Scope::Foundation, "r.example.com".to_owned()),
            (Scope::Organization, "example.com".to_owned()),
            (Scope::Organization, "r.example.com/team".to_owned()),
        ]
    );
    let winners: Vec<_> = query
        .clone()
        .resolve(&lookup.context, &lookup.matches)
        .into_iter()
        .map(|r| r.winner.map(|w| w.guid))
        .collect();
    assert_eq!(
        winners,
        [
            Some(stored[0].guid),
            Some(stored[1].guid),
            Some(stored[3].guid),
            None
        ]
    );
    let mut opened: Vec<_> = lookup
        .passwords
        .iter()
        .map(|(guid, p)| (*guid, p.expose().to_owned()))
        .collect();
    opened.sort();
    let mut expected = vec![
        (stored[0].guid, "pw-0".to_owned()),
        (stored[1].guid, "pw-1".to_owned()),
        (stored[3].guid, "pw-3".to_owned()),
    ];
    expected.sort();
    assert_eq!(opened, expected);
    let explained = stores
        .credentials
        .pull_matches(&query, Reveal::Nothing)
        .await
        .unwrap()
        .expect("the organization exists");
    assert_eq!(explained.matches.len(), 4);
    assert!(explained.passwords.is_empty());

    // An owner that does not exist is no lookup at all, whatever its kind.
    let subject = || {
        vec![PullSubject::Image(
            ImageReference::parse("r.example.com/team/app").unwrap(),
        )]
    };
    for missing in [
        RequestedOwner::Organization(crate::ids::OrganizationGuid::from_uuid(uuid::Uuid::new_v4())),
        RequestedOwner::Space(crate::ids::SpaceGuid::from_uuid(uuid::Uuid::new_v4())),
        RequestedOwner::App(crate::ids::AppGuid::from_uuid(uuid::Uuid::new_v4())),
    ] {
        let query = PullRequest::new(missing, subject()).unwrap().into_query();
        let lookup = stores
            .credentials
            .pull_matches(&query, Reveal::Winners)
            .await
            .unwrap();
        assert!(lookup.is_none(), "{missing:?} does not exist");
    }
}
