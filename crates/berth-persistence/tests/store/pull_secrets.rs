//! The pull-secret lookup: one statement, and only the winners' passwords opened.

use crate::audit_event;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_domain::credential::{RequestedOwner, ScopeTarget};
use berth_domain::directory::{App, ResourceName, Space};
use berth_domain::ids::{AppGuid, SpaceGuid};
use berth_domain::image_reference::ImageReference;
use berth_domain::ports::{CredentialStore, DirectoryStore, StoreError};
use berth_domain::pull_secrets::{PullQuery, PullRequest, PullSubject, Reveal};
use berth_persistence::SeaOrmCredentialStore;
use berth_persistence::sealing::KeyRing;

use crate::sealing::{ciphertext, set_ciphertext};
use crate::stores::{credential, organization, password};
use crate::{Harness, ring};

fn query(owner: RequestedOwner, images: &[&str]) -> PullQuery {
    let subjects: Vec<PullSubject> = images
        .iter()
        .map(|text| PullSubject::Image(ImageReference::parse(text).unwrap()))
        .collect();
    // Checked as the service checks it: within the bounds.
    PullRequest::new(owner, subjects).unwrap().into_query()
}

/// A store whose statements are counted.
fn counted_store(
    harness: &Harness,
    keys: Arc<KeyRing>,
) -> (SeaOrmCredentialStore, Arc<AtomicUsize>) {
    let mut counted = harness.connection.clone();
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    counted.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (SeaOrmCredentialStore::new(counted, keys), statements)
}

#[tokio::test]
async fn every_level_and_candidate_is_read_in_one_statement() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys.clone()).await;
    let organization = organization(&harness).await;
    let context = ScopeTarget::Organization(organization);
    let stored = [
        credential(context, "r.example.com/team", &[]),
        credential(context, "example.com", &[]),
        credential(ScopeTarget::Foundation, "r.example.com", &[]),
        credential(ScopeTarget::Foundation, "docker.io", &[]),
        credential(ScopeTarget::Foundation, "unrelated.example.net", &[]),
    ];
    for (index, row) in stored.iter().enumerate() {
        let text = format!("pw-{index}");
        harness
            .credentials
            .insert(row, &password(&text), &audit_event())
            .await
            .unwrap();
    }
    let (store, statements) = counted_store(&harness, keys);

    let query = query(
        RequestedOwner::Organization(organization),
        &[
            "r.example.com/team/app",
            "other.example.com/x",
            "nginx",
            "none.example.org/y",
        ],
    );
    let lookup = store
        .pull_matches(&query, Reveal::Winners)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        statements.load(Ordering::SeqCst),
        1,
        "one statement for the context, every level and every candidate"
    );
    assert_eq!(lookup.context, context);
    // What it finds, and which passwords it opens, is the store contract's
    // (`contract::credentials::pull_matches_read_every_level_and_open_only_the_winners`, run on
    // this store too): here, only that it is one statement.
    assert_eq!(lookup.matches.len(), 4);
}

#[tokio::test]
async fn a_winner_whose_seal_does_not_open_is_an_error_naming_it() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys).await;
    let winner = credential(ScopeTarget::Foundation, "r.example.com/team", &[]);
    let shadowed = credential(ScopeTarget::Foundation, "r.example.com", &[]);
    for row in [&winner, &shadowed] {
        harness
            .credentials
            .insert(row, &password("pw"), &audit_event())
            .await
            .unwrap();
    }
    let query = query(RequestedOwner::Foundation, &["r.example.com/team/app"]);

    // A broken seal on a credential that does not win is never opened.
    let (original, _) = ciphertext(&harness.connection, shadowed.guid.as_uuid()).await;
    let mut flipped = original.clone();
    flipped[0] ^= 0x01;
    set_ciphertext(&harness.connection, shadowed.guid.as_uuid(), flipped).await;
    let lookup = harness
        .credentials
        .pull_matches(&query, Reveal::Winners)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lookup.passwords.len(), 1);

    // The shadowed row's ciphertext moved onto the winner: an error that names the winner.
    set_ciphertext(&harness.connection, winner.guid.as_uuid(), original).await;
    let error = harness
        .credentials
        .pull_matches(&query, Reveal::Winners)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unexpected(_)), "{error:?}");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.contains(&winner.guid.to_string()), "{cause}");
    // Explain needs no password, so it still answers.
    assert!(
        harness
            .credentials
            .pull_matches(&query, Reveal::Nothing)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_app_context_is_located_in_the_same_statement_as_its_chain() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys.clone()).await;
    let organization = organization(&harness).await;
    let now = berth_domain::now();
    let space = Space {
        guid: SpaceGuid::from_uuid(uuid::Uuid::new_v4()),
        name: ResourceName::parse("s").unwrap(),
        organization,
        created_at: now,
        updated_at: now,
    };
    harness
        .directory
        .spaces()
        .insert(&space, &audit_event())
        .await
        .unwrap();
    let app = App {
        guid: AppGuid::from_uuid(uuid::Uuid::new_v4()),
        name: ResourceName::parse("a").unwrap(),
        space: space.guid,
        organization,
        created_at: now,
        updated_at: now,
    };
    harness
        .directory
        .apps()
        .insert(&app, &audit_event())
        .await
        .unwrap();
    // A sibling app and space of the same organization: never part of this app's chain.
    let sibling_space = Space {
        guid: SpaceGuid::from_uuid(uuid::Uuid::new_v4()),
        ..space.clone()
    };
    harness
        .directory
        .spaces()
        .insert(&sibling_space, &audit_event())
        .await
        .unwrap();
    let sibling_app = App {
        guid: AppGuid::from_uuid(uuid::Uuid::new_v4()),
        ..app.clone()
    };
    harness
        .directory
        .apps()
        .insert(&sibling_app, &audit_event())
        .await
        .unwrap();
    let in_app = ScopeTarget::App {
        organization,
        space: space.guid,
        app: app.guid,
    };
    let in_space = ScopeTarget::Space {
        organization,
        space: space.guid,
    };
    let stored = [
        credential(in_app, "app.example.com", &[]),
        credential(in_space, "space.example.com", &[]),
        credential(
            ScopeTarget::Organization(organization),
            "org.example.com",
            &[],
        ),
        credential(ScopeTarget::Foundation, "foundation.example.com", &[]),
        credential(
            ScopeTarget::App {
                organization,
                space: space.guid,
                app: sibling_app.guid,
            },
            "app.example.com/team",
            &[],
        ),
        credential(
            ScopeTarget::Space {
                organization,
                space: sibling_space.guid,
            },
            "space.example.com/team",
            &[],
        ),
    ];
    for row in &stored {
        harness
            .credentials
            .insert(row, &password("pw"), &audit_event())
            .await
            .unwrap();
    }
    let (store, statements) = counted_store(&harness, keys);
    let images = [
        "app.example.com/team/web",
        "space.example.com/team/worker",
        "org.example.com/x",
        "foundation.example.com/y",
    ];

    let lookup = store
        .pull_matches(
            &query(RequestedOwner::App(app.guid), &images),
            Reveal::Winners,
        )
        .await
        .unwrap()
        .expect("the app exists");
    assert_eq!(statements.load(Ordering::SeqCst), 1, "one statement in all");
    assert_eq!(
        lookup.context, in_app,
        "located with its space and organization"
    );
    let mut found: Vec<_> = lookup.matches.iter().map(|m| m.guid).collect();
    found.sort();
    let mut expected: Vec<_> = stored[..4].iter().map(|c| c.guid).collect();
    expected.sort();
    assert_eq!(found, expected, "the chain's four, never a sibling's");
    assert_eq!(lookup.passwords.len(), 4);

    // A space context sees its own, its organization's and the foundation's.
    let lookup = store
        .pull_matches(
            &query(RequestedOwner::Space(space.guid), &images),
            Reveal::Nothing,
        )
        .await
        .unwrap()
        .expect("the space exists");
    assert_eq!(lookup.context, in_space);
    let mut found: Vec<_> = lookup.matches.iter().map(|m| m.guid).collect();
    found.sort();
    let mut expected: Vec<_> = stored[1..4].iter().map(|c| c.guid).collect();
    expected.sort();
    assert_eq!(found, expected);

    // An owner with no match is still located; one that does not exist is `None`.
    let lookup = store
        .pull_matches(
            &query(RequestedOwner::App(app.guid), &["none.example.net/z"]),
            Reveal::Winners,
        )
        .await
        .unwrap()
        .expect("the app exists");
    assert_eq!(lookup.context, in_app);
    assert!(lookup.matches.is_empty() && lookup.passwords.is_empty());
    for missing in [
        RequestedOwner::App(AppGuid::from_uuid(uuid::Uuid::new_v4())),
        RequestedOwner::Space(SpaceGuid::from_uuid(uuid::Uuid::new_v4())),
        RequestedOwner::Organization(berth_domain::ids::OrganizationGuid::from_uuid(
            uuid::Uuid::new_v4(),
        )),
    ] {
        let lookup = store
            .pull_matches(&query(missing, &images), Reveal::Winners)
            .await
            .unwrap();
        assert!(lookup.is_none(), "{missing:?} does not exist");
    }
}
