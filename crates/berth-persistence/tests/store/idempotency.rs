//! The idempotency store: one winner per key, sealed answers bound to their caller and key,
//! re-sealed by key rotation, pruned in batches by every replica at once.

use std::sync::Arc;

use berth_domain::idempotency::{
    Claim, ClaimOutcome, IdempotencyKey, KeyOwner, RequestFingerprint, StoredAnswer,
};
use berth_domain::ports::IdempotencyStore;
use berth_persistence::SeaOrmIdempotencyStore;
use berth_persistence::sealing::KeyRing;
use sea_orm::{ConnectionTrait, Statement};
use time::{Duration, OffsetDateTime};

use crate::{Harness, ring};

fn owner(principal: &str, key: &str) -> KeyOwner {
    KeyOwner {
        principal: principal.into(),
        key: IdempotencyKey::parse(key).unwrap(),
    }
}

fn claim(owner: &KeyOwner, now: OffsetDateTime, lease: Duration) -> Claim {
    Claim {
        owner: owner.clone(),
        fingerprint: RequestFingerprint::new([7; 32]),
        now,
        claimed_until: now + lease,
    }
}

fn answer(secret: &str) -> StoredAnswer {
    StoredAnswer {
        status: 201,
        content_type: Some("application/json".into()),
        location: None,
        body: format!("{{\"password\":\"{secret}\"}}").into_bytes(),
    }
}

fn now() -> OffsetDateTime {
    berth_domain::now()
}

async fn count(harness: &Harness) -> i64 {
    let backend = harness.connection.get_database_backend();
    let row = harness
        .connection
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM idempotency_keys",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

fn store(harness: &Harness, keys: Arc<KeyRing>) -> Arc<SeaOrmIdempotencyStore> {
    Arc::new(SeaOrmIdempotencyStore::new(
        harness.connection.clone(),
        keys,
    ))
}

#[tokio::test]
async fn of_many_concurrent_claims_of_one_key_exactly_one_wins() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys.clone()).await;
    let store = store(&harness, keys);
    let owner = owner("alice", "k");
    let outcomes = futures_util::future::join_all((0..30).map(|_| {
        let store = store.clone();
        let claim = claim(&owner, now(), Duration::minutes(2));
        async move { store.claim(&claim).await.unwrap() }
    }))
    .await;
    let won = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, ClaimOutcome::Claimed))
        .count();
    assert_eq!(won, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|outcome| match outcome {
        ClaimOutcome::Claimed => true,
        ClaimOutcome::Held(record) => record.answer.is_none(),
    }));
}

#[tokio::test]
async fn an_answer_is_sealed_and_opens_only_for_its_caller_and_key() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys.clone()).await;
    let store = store(&harness, keys);
    let alice = owner("alice", "k");
    let bob = owner("bob", "k");
    for owner in [&alice, &bob] {
        let claimed = store
            .claim(&claim(owner, now(), Duration::minutes(2)))
            .await
            .unwrap();
        assert!(
            matches!(claimed, ClaimOutcome::Claimed),
            "keys are per caller"
        );
    }
    let expires = now() + Duration::hours(24);
    store
        .complete(&alice, &answer("alice-secret"), expires)
        .await
        .unwrap();
    store
        .complete(&bob, &answer("bob-secret"), expires)
        .await
        .unwrap();
    // Nothing readable at rest.
    if let Some(file) = harness.db.sqlite_file() {
        harness
            .connection
            .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .unwrap();
        let bytes = std::fs::read(file).unwrap();
        assert!(!berth_testkit::bytes_contain(&bytes, b"alice-secret"));
    }
    // Swap the two sealed answers: neither opens in the other's row.
    let backend = harness.connection.get_database_backend();
    harness
        .connection
        .execute_raw(Statement::from_string(
            backend,
            "UPDATE idempotency_keys SET answer_ciphertext = \
             (SELECT answer_ciphertext FROM idempotency_keys i2 \
              WHERE i2.principal_digest <> idempotency_keys.principal_digest)",
        ))
        .await
        .unwrap();
    let held = store
        .claim(&claim(&alice, now(), Duration::minutes(2)))
        .await;
    assert!(held.is_err(), "a moved answer must not open: {held:?}");
}

#[tokio::test]
async fn expired_records_are_pruned_in_batches_by_replicas_at_once() {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys.clone()).await;
    let store = store(&harness, keys);
    let past = now() - Duration::days(2);
    for i in 0..25 {
        let owner = owner("alice", &format!("old-{i}"));
        store
            .claim(&claim(&owner, past, Duration::minutes(2)))
            .await
            .unwrap();
        if i % 2 == 0 {
            store
                .complete(&owner, &answer("s"), past + Duration::hours(24))
                .await
                .unwrap();
        }
    }
    let live = owner("alice", "live");
    store
        .claim(&claim(&live, now(), Duration::minutes(2)))
        .await
        .unwrap();
    store
        .complete(&live, &answer("s"), now() + Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(count(&harness).await, 26);
    let services: Vec<_> = (0..3)
        .map(|_| berth_domain::idempotency::IdempotencyService::new(store.clone()))
        .collect();
    let pruned =
        futures_util::future::join_all(services.iter().map(|service| service.prune_expired(4)))
            .await;
    let total: u64 = pruned.into_iter().map(Result::unwrap).sum();
    assert_eq!(total, 25, "each expired row deleted once");
    assert_eq!(count(&harness).await, 1, "the live record stays");
}

#[tokio::test]
async fn key_rotation_reseals_idempotency_records_and_status_counts_them() {
    let (old_ring, spec) = ring(&["old"], "old");
    let harness = Harness::new(old_ring.clone()).await;
    let store_old = store(&harness, old_ring);
    let owner = owner("alice", "k");
    store_old
        .claim(&claim(&owner, now(), Duration::minutes(2)))
        .await
        .unwrap();
    store_old
        .complete(&owner, &answer("s"), now() + Duration::hours(24))
        .await
        .unwrap();
    let counts = berth_persistence::keys::label_counts(&harness.connection)
        .await
        .unwrap();
    assert!(
        counts
            .iter()
            .any(|count| count.table == "idempotency_keys" && count.label == "old"),
        "{counts:?}"
    );
    let new_entry = KeyRing::generate_spec_entry("new").unwrap();
    let both = secrecy::SecretString::from(format!(
        "{},{}",
        secrecy::ExposeSecret::expose_secret(&spec),
        secrecy::ExposeSecret::expose_secret(&new_entry)
    ));
    let both = Arc::new(KeyRing::from_spec(&both, "new").unwrap());
    let report = berth_persistence::keys::rotate(&harness.connection, both, 10)
        .await
        .unwrap();
    assert_eq!(report.rotated, 1);
    let only_new = Arc::new(KeyRing::from_spec(&new_entry, "new").unwrap());
    let held = store(&harness, only_new)
        .claim(&claim(&owner, now(), Duration::minutes(2)))
        .await
        .unwrap();
    match held {
        ClaimOutcome::Held(record) => assert_eq!(record.answer, Some(answer("s"))),
        ClaimOutcome::Claimed => panic!("the record must survive rotation"),
    }
}
