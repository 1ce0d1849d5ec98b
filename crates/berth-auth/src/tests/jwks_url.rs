//! Keys from a JWKS URL served on 127.0.0.1: caching, rotation, throttling, no stampede, outages.

use super::*;

#[tokio::test]
async fn keys_from_a_url_are_fetched_once_and_cached() {
    let server = JwksServer::start(JWKS).await;
    let verifier = verifier(server.settings()).await;
    assert_eq!(server.fetches(), 1, "fetched at start");

    for _ in 0..3 {
        for key in TestKey::IN_JWKS {
            let verified = verifier.verify(&signed(key, &valid_claims())).await;
            assert_eq!(verified.unwrap().subject, "alice", "{key:?}");
        }
    }

    assert_eq!(server.fetches(), 1, "known keys come from the cache");
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_key_verifies_after_one_refetch() {
    let server = JwksServer::start(JWKS).await;
    let verifier = verifier(server.settings()).await;
    let new_key = signed(TestKey::Rsa2, &valid_claims());
    let old_key = signed(TestKey::Rsa1, &valid_claims());
    assert!(verifier.verify(&old_key).await.is_ok());
    assert_eq!(server.fetches(), 1);

    // The identity provider rotates: rsa-2 replaces rsa-1.
    server.serve(200, JWKS_ROTATED);

    assert!(verifier.verify(&new_key).await.is_ok());
    assert_eq!(server.fetches(), 2, "the unknown kid caused one refetch");
    assert!(verifier.verify(&new_key).await.is_ok());
    assert!(
        verifier
            .verify(&signed(TestKey::Ec1, &valid_claims()))
            .await
            .is_ok()
    );
    assert_eq!(server.fetches(), 2, "the new set is cached");
    assert_eq!(refused(&verifier, &old_key).await, TokenError::UnknownKey);
    server.stop().await;
}

#[tokio::test]
async fn refetching_for_unknown_kids_is_throttled() {
    let server = JwksServer::start(JWKS).await;
    let verifier =
        TokenVerifier::with_refresh_interval(server.settings(), Duration::from_secs(3600))
            .await
            .unwrap();
    server.serve(200, JWKS_ROTATED);

    for kid in ["rsa-2", "made-up-1", "made-up-2"] {
        let token = sign(
            Algorithm::RS256,
            &TestKey::Rsa2.encoding_key(),
            Some(kid),
            &valid_claims(),
        );
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::UnknownKey,
            "{kid}"
        );
    }

    assert_eq!(server.fetches(), 1, "no refetch within the interval");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tokens_with_a_new_kid_cause_one_refetch() {
    let server = JwksServer::start(JWKS).await;
    // No throttle at all: only the queueing on the reload lock prevents a stampede.
    let verifier = Arc::new(verifier(server.settings()).await);
    server.serve(200, JWKS_ROTATED);
    server.delay(Duration::from_millis(300));

    let token = Arc::new(signed(TestKey::Rsa2, &valid_claims()));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }

    assert_eq!(server.fetches(), 2, "one fetch at start, one refetch");
    server.stop().await;
}

#[tokio::test]
async fn when_the_url_fails_known_keys_still_verify_and_unknown_kids_are_unavailable() {
    let server = JwksServer::start(JWKS).await;
    let verifier = verifier(server.settings()).await;
    server.serve(503, "unavailable");

    let new_key = signed(TestKey::Rsa2, &valid_claims());
    assert_eq!(
        refused(&verifier, &new_key).await,
        TokenError::JwksUnavailable
    );
    assert!(
        verifier
            .verify(&signed(TestKey::Rsa1, &valid_claims()))
            .await
            .is_ok()
    );

    // Back up, with the new key.
    server.serve(200, JWKS_ROTATED);
    assert!(verifier.verify(&new_key).await.is_ok());
    assert_eq!(server.fetches(), 3);
    server.stop().await;
}

#[tokio::test]
async fn a_stopped_jwks_server_makes_unknown_kids_unavailable() {
    let server = JwksServer::start(JWKS).await;
    let verifier = verifier(server.settings()).await;
    server.stop().await;

    let new_key = signed(TestKey::Rsa2, &valid_claims());
    assert_eq!(
        refused(&verifier, &new_key).await,
        TokenError::JwksUnavailable
    );
    assert!(
        verifier
            .verify(&signed(TestKey::Ed1, &valid_claims()))
            .await
            .is_ok()
    );
}
