//! The contract of [`IdempotencyStore`](crate::ports::IdempotencyStore).

use time::{Duration, OffsetDateTime};

use super::Stores;
use crate::idempotency::{
    Claim, ClaimOutcome, IdempotencyKey, KeyOwner, RequestFingerprint, StoredAnswer,
};
use crate::ports::StoreError;

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
    crate::now()
}

/// A lapsed claim is taken over; a live answer is replayed.
pub async fn a_lapsed_claim_is_taken_over_and_a_live_answer_is_kept(stores: &Stores) {
    let store = &stores.idempotency;
    let owner = owner("alice", "k");
    let past = now() - Duration::minutes(10);
    let first = store
        .claim(&claim(&owner, past, Duration::minutes(2)))
        .await
        .unwrap();
    assert!(matches!(first, ClaimOutcome::Claimed));
    // Its claim ran out without an answer (the process died): the key is free again.
    let retry = store
        .claim(&claim(&owner, now(), Duration::minutes(2)))
        .await
        .unwrap();
    assert!(matches!(retry, ClaimOutcome::Claimed));
    store
        .complete(&owner, &answer("s"), now() + Duration::hours(24))
        .await
        .unwrap();
    let replay = store
        .claim(&claim(&owner, now(), Duration::minutes(2)))
        .await
        .unwrap();
    match replay {
        ClaimOutcome::Held(record) => assert_eq!(record.answer, Some(answer("s"))),
        ClaimOutcome::Claimed => panic!("a live answer must be replayed"),
    }
}

/// An answer completes a live claim once; a released claim frees the key, a released answer
/// stays; expired records are pruned in batches, live ones kept.
pub async fn answers_complete_once_release_and_prune(stores: &Stores) {
    let store = &stores.idempotency;
    let alice = owner("alice", "k");
    assert!(matches!(
        store
            .claim(&claim(&alice, now(), Duration::minutes(2)))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    ));
    // The same key from another caller is another record.
    assert!(matches!(
        store
            .claim(&claim(&owner("bob", "k"), now(), Duration::minutes(2)))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    ));
    match store
        .claim(&claim(&alice, now(), Duration::minutes(2)))
        .await
        .unwrap()
    {
        ClaimOutcome::Held(record) => {
            assert_eq!(record.fingerprint, RequestFingerprint::new([7; 32]));
            assert_eq!(record.answer, None, "still running");
        }
        ClaimOutcome::Claimed => panic!("a live claim must hold the key"),
    }
    store.release(&alice).await.unwrap();
    assert!(matches!(
        store
            .claim(&claim(&alice, now(), Duration::minutes(2)))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    ));
    store
        .complete(&alice, &answer("s"), now() + Duration::hours(24))
        .await
        .unwrap();
    assert!(matches!(
        store
            .complete(&alice, &answer("t"), now() + Duration::hours(24))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .complete(&owner("carol", "k"), &answer("t"), now())
            .await,
        Err(StoreError::NotFound)
    ));
    store.release(&alice).await.unwrap();
    match store
        .claim(&claim(&alice, now(), Duration::minutes(2)))
        .await
        .unwrap()
    {
        ClaimOutcome::Held(record) => assert_eq!(record.answer, Some(answer("s"))),
        ClaimOutcome::Claimed => panic!("an answer is not released"),
    }

    let past = now() - Duration::days(2);
    for index in 0..5 {
        let old = owner("dave", &format!("old-{index}"));
        store
            .claim(&claim(&old, past, Duration::minutes(2)))
            .await
            .unwrap();
    }
    assert_eq!(store.prune(now(), 3).await.unwrap(), 3);
    assert_eq!(store.prune(now(), 3).await.unwrap(), 2);
    assert_eq!(store.prune(now(), 3).await.unwrap(), 0, "live records stay");
}
