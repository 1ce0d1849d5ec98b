//! RS256, ES256 and EdDSA with keys from a JWKS file: key choice, reload, skipped keys.

use super::*;

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_verify_with_keys_from_a_jwks_file() {
    let verifier = verifier(jwks_file_settings(JWKS_PATH)).await;
    for key in TestKey::IN_JWKS {
        let verified = verifier.verify(&signed(key, &valid_claims())).await;
        assert_eq!(verified.unwrap().subject, "alice", "{key:?}");
    }
}

#[tokio::test]
async fn without_a_kid_the_only_key_for_the_algorithm_is_used() {
    let verifier = verifier(jwks_file_settings(JWKS_PATH)).await;
    for key in TestKey::IN_JWKS {
        let token = sign(key.algorithm(), &key.encoding_key(), None, &valid_claims());
        assert!(verifier.verify(&token).await.is_ok(), "{key:?}");
    }
}

#[tokio::test]
async fn without_a_kid_two_keys_for_the_algorithm_are_ambiguous() {
    let file = TempFile::with(&jwks_union(&[JWKS, JWKS_ROTATED]));
    let verifier = verifier(jwks_file_settings(&file.0)).await;
    let no_kid = sign(
        Algorithm::RS256,
        &TestKey::Rsa1.encoding_key(),
        None,
        &valid_claims(),
    );
    assert_eq!(refused(&verifier, &no_kid).await, TokenError::UnknownKey);
    // Naming the key settles it; ES256 has one key, so needs no kid.
    assert!(
        verifier
            .verify(&signed(TestKey::Rsa1, &valid_claims()))
            .await
            .is_ok()
    );
    assert!(
        verifier
            .verify(&signed(TestKey::Rsa2, &valid_claims()))
            .await
            .is_ok()
    );
    let ec_no_kid = sign(
        Algorithm::ES256,
        &TestKey::Ec1.encoding_key(),
        None,
        &valid_claims(),
    );
    assert!(verifier.verify(&ec_no_kid).await.is_ok());
}

#[tokio::test]
async fn the_jwks_file_is_reloaded_when_a_token_names_an_unknown_kid() {
    let file = TempFile::with(JWKS);
    let verifier = verifier(jwks_file_settings(&file.0)).await;
    let new_key = signed(TestKey::Rsa2, &valid_claims());
    let old_key = signed(TestKey::Rsa1, &valid_claims());
    assert_eq!(refused(&verifier, &new_key).await, TokenError::UnknownKey);
    assert!(verifier.verify(&old_key).await.is_ok());

    file.write(JWKS_ROTATED);

    assert!(verifier.verify(&new_key).await.is_ok());
    // The retired key is gone with the old document.
    assert_eq!(refused(&verifier, &old_key).await, TokenError::UnknownKey);
}

#[tokio::test]
async fn reloading_the_jwks_file_is_throttled() {
    let file = TempFile::with(JWKS);
    let verifier = TokenVerifier::with_refresh_interval(
        jwks_file_settings(&file.0),
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    file.write(JWKS_ROTATED);
    // Within the interval the file is not read again, so the new kid stays unknown.
    let new_key = signed(TestKey::Rsa2, &valid_claims());
    assert_eq!(refused(&verifier, &new_key).await, TokenError::UnknownKey);
}

#[tokio::test]
async fn a_jwks_file_that_turns_unreadable_keeps_its_keys_and_reports_unknown_kids_unavailable() {
    let file = TempFile::with(JWKS);
    let verifier = verifier(jwks_file_settings(&file.0)).await;
    file.write("{ not json");
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
}

/// A JWK for the `rsa-1` fixture key with `changes` merged in.
fn rsa_1_jwk(changes: Value) -> Value {
    let set: Value = serde_json::from_str(JWKS).unwrap();
    let mut jwk = set["keys"][0].clone();
    assert_eq!(jwk["kid"], "rsa-1");
    for (name, value) in changes.as_object().unwrap() {
        jwk[name] = value.clone();
    }
    jwk
}

#[tokio::test]
async fn keys_berth_cannot_use_are_skipped() {
    let ec_1 = serde_json::from_str::<Value>(JWKS).unwrap()["keys"][1].clone();
    assert_eq!(ec_1["kid"], "ec-1");
    let set = json!({"keys": [
        // The rsa-1 key, but published for encryption, for other algorithms or operations.
        rsa_1_jwk(json!({"kid": "rsa-enc", "use": "enc"})),
        rsa_1_jwk(json!({"kid": "rsa-rs512", "alg": "RS512"})),
        rsa_1_jwk(json!({"kid": "rsa-ps256", "alg": "PS256"})),
        rsa_1_jwk(json!({"kid": "rsa-sign-only", "key_ops": ["sign"]})),
        // A symmetric key: the JWKS never supplies HMAC secrets.
        {"kty": "oct", "kid": "oct-1", "k": URL_SAFE_NO_PAD.encode(SECRET)},
        // A 1024-bit RSA key, a P-384 key, an unknown key type, and junk.
        {"kty": "RSA", "kid": "rsa-weak", "e": "AQAB",
         "n": URL_SAFE_NO_PAD.encode([0xc5_u8; 128])},
        {"kty": "EC", "kid": "ec-384", "crv": "P-384",
         "x": URL_SAFE_NO_PAD.encode([1_u8; 48]), "y": URL_SAFE_NO_PAD.encode([2_u8; 48])},
        {"kty": "XYZ", "kid": "xyz"},
        42,
        ec_1,
    ]});
    let file = TempFile::with(&set.to_string());
    let verifier = verifier(jwks_file_settings(&file.0)).await;

    for kid in ["rsa-enc", "rsa-rs512", "rsa-ps256", "rsa-sign-only"] {
        let token = sign(
            Algorithm::RS256,
            &TestKey::Rsa1.encoding_key(),
            Some(kid),
            &valid_claims(),
        );
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::UnknownKey,
            "{kid}"
        );
    }
    let oct = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Some("oct-1"),
        &valid_claims(),
    );
    assert_eq!(
        refused(&verifier, &oct).await,
        TokenError::UnsupportedAlgorithm
    );
    assert!(
        verifier
            .verify(&signed(TestKey::Ec1, &valid_claims()))
            .await
            .is_ok()
    );
}
