//! The pull-secret lookup: one statement, and only the winners' passwords opened.

use crate::audit_event;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_domain::credential::{RequestedOwner, Scope, ScopeTarget};
use berth_domain::image_reference::ImageReference;
use berth_domain::ports::{CredentialStore, StoreError};
use berth_domain::pull_secrets::{PullQuery, PullRequest, PullSubject, Reveal};
use berth_persistence::SeaOrmCredentialStore;

use crate::sealing::{ciphertext, set_ciphertext};
use crate::stores::{credential, organization, password};
use crate::{Harness, ring};

fn query(context: &ScopeTarget, images: &[&str]) -> PullQuery {
    let subjects: Vec<PullSubject> = images
        .iter()
        .map(|text| PullSubject::Image(ImageReference::parse(text).unwrap()))
        .collect();
    // Checked as the service checks it: within the bounds.
    PullRequest::new(RequestedOwner::Foundation, subjects.clone()).unwrap();
    PullQuery::new(context, subjects)
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
    let mut counted = harness.connection.clone();
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    counted.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let store = SeaOrmCredentialStore::new(counted, keys);

    let query = query(
        &context,
        &[
            "r.example.com/team/app",
            "other.example.com/x",
            "nginx",
            "none.example.org/y",
        ],
    );
    let lookup = store.pull_matches(&query, Reveal::Winners).await.unwrap();
    assert_eq!(
        statements.load(Ordering::SeqCst),
        1,
        "one statement for every level and candidate"
    );

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
        .resolve(&lookup.matches)
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
    // Only the winners' passwords were opened: the shadowed foundation `r.example.com` was not.
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

    // Explain opens nothing.
    let lookup = store.pull_matches(&query, Reveal::Nothing).await.unwrap();
    assert_eq!(lookup.matches.len(), 4);
    assert!(lookup.passwords.is_empty());
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
    let query = query(&ScopeTarget::Foundation, &["r.example.com/team/app"]);

    // A broken seal on a credential that does not win is never opened.
    let (original, _) = ciphertext(&harness.connection, shadowed.guid.as_uuid()).await;
    let mut flipped = original.clone();
    flipped[0] ^= 0x01;
    set_ciphertext(&harness.connection, shadowed.guid.as_uuid(), flipped).await;
    let lookup = harness
        .credentials
        .pull_matches(&query, Reveal::Winners)
        .await
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
