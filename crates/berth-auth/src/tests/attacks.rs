//! Forged, tampered, confused and malformed tokens.

use base64::engine::general_purpose::STANDARD;

use super::*;

async fn jwks_only() -> TokenVerifier {
    verifier(jwks_file_settings(JWKS_PATH)).await
}

/// JWKS and a shared secret that is not the RSA public key.
async fn jwks_and_secret() -> TokenVerifier {
    verifier(AuthSettings {
        hs256_secret: Some(SecretString::from(SECRET)),
        ..jwks_file_settings(JWKS_PATH)
    })
    .await
}

/// Replaces the payload, keeping header and signature.
fn with_payload(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let (header, _, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{signature}")
}

#[tokio::test]
async fn a_tampered_payload_fails_the_signature() {
    let verifier = jwks_and_secret().await;
    let forged = json!({"sub": "mallory", "exp": now() + 600, "scope": "berth.admin"});
    let mut tokens: Vec<String> = TestKey::IN_JWKS
        .iter()
        .map(|key| signed(*key, &valid_claims()))
        .collect();
    tokens.push(hs256(SECRET, &valid_claims()));
    for token in tokens {
        assert!(verifier.verify(&token).await.is_ok());
        let tampered = with_payload(&token, &forged);
        assert_eq!(
            refused(&verifier, &tampered).await,
            TokenError::BadSignature
        );
    }
}

#[tokio::test]
async fn a_token_signed_with_the_wrong_key_is_refused() {
    let verifier = jwks_and_secret().await;
    // rsa-2's private key, claiming to be rsa-1.
    let impostor = sign(
        Algorithm::RS256,
        &TestKey::Rsa2.encoding_key(),
        Some("rsa-1"),
        &valid_claims(),
    );
    assert_eq!(
        refused(&verifier, &impostor).await,
        TokenError::BadSignature
    );
    let other_secret = hs256(OTHER_SECRET, &valid_claims());
    assert_eq!(
        refused(&verifier, &other_secret).await,
        TokenError::BadSignature
    );
    // A signature of the right size that is not the key's.
    let zero_signature = {
        let token = signed(TestKey::Ec1, &valid_claims());
        let message = token.rsplit_once('.').unwrap().0;
        format!("{message}.{}", URL_SAFE_NO_PAD.encode([0_u8; 64]))
    };
    assert_eq!(
        refused(&verifier, &zero_signature).await,
        TokenError::BadSignature
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    let verifiers = [
        verifier(hs256_settings()).await,
        jwks_only().await,
        jwks_and_secret().await,
    ];
    let headers = [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"}),
        json!({"alg": "None"}),
        json!({"alg": "NONE"}),
        json!({"alg": "nOnE"}),
    ];
    for verifier in &verifiers {
        for header in &headers {
            for signature in ["", "c2lnbmF0dXJl"] {
                let token = hand_built(header, &valid_claims(), signature);
                assert_eq!(
                    refused(verifier, &token).await,
                    TokenError::UnsupportedAlgorithm,
                    "{header} {verifier:?}"
                );
            }
        }
    }
}

/// The RSA public key as an attacker finds it, in every form one might try as an HMAC secret.
fn rsa_public_key_forms() -> Vec<(&'static str, Vec<u8>)> {
    let base64_body: String = RSA_PUBLIC_PEM
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(base64_body).unwrap();
    let set: Value = serde_json::from_str(JWKS).unwrap();
    let jwk = &set["keys"][0];
    assert_eq!(jwk["kid"], "rsa-1");
    let modulus = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    vec![
        ("PEM", RSA_PUBLIC_PEM.as_bytes().to_vec()),
        (
            "PEM without newline",
            RSA_PUBLIC_PEM.trim_end().as_bytes().to_vec(),
        ),
        ("DER", der),
        ("modulus", modulus),
        ("JWK", jwk.to_string().into_bytes()),
    ]
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_rsa_public_key_is_refused() {
    let jwks_only = jwks_only().await;
    let jwks_and_secret = jwks_and_secret().await;
    for (form, secret) in rsa_public_key_forms() {
        let key = EncodingKey::from_secret(&secret);
        let with_kid = sign(Algorithm::HS256, &key, Some("rsa-1"), &valid_claims());
        let without_kid = sign(Algorithm::HS256, &key, None, &valid_claims());

        // The kid names an RSA key, which verifies RS256 only.
        assert_eq!(
            refused(&jwks_only, &with_kid).await,
            TokenError::AlgorithmMismatch,
            "{form}"
        );
        assert_eq!(
            refused(&jwks_and_secret, &with_kid).await,
            TokenError::AlgorithmMismatch,
            "{form}"
        );
        // Without a kid: no secret means no HS256 at all; with one, it is the only HS256 key.
        assert_eq!(
            refused(&jwks_only, &without_kid).await,
            TokenError::UnsupportedAlgorithm,
            "{form}"
        );
        assert_eq!(
            refused(&jwks_and_secret, &without_kid).await,
            TokenError::BadSignature,
            "{form}"
        );
    }
}

#[tokio::test]
async fn a_header_alg_that_does_not_fit_the_named_key_is_refused() {
    let verifier = jwks_and_secret().await;
    // Each token is validly signed by a key of its header's algorithm, but names a key of
    // another type.
    let cases = [
        (TestKey::Ec1, "rsa-1"),
        (TestKey::Ed1, "rsa-1"),
        (TestKey::Rsa1, "ec-1"),
        (TestKey::Ed1, "ec-1"),
        (TestKey::Rsa1, "ed-1"),
        (TestKey::Ec1, "ed-1"),
    ];
    for (signer, kid) in cases {
        let token = sign(
            signer.algorithm(),
            &signer.encoding_key(),
            Some(kid),
            &valid_claims(),
        );
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::AlgorithmMismatch,
            "{:?} as {kid}",
            signer.algorithm()
        );
    }
    // Even an HS256 token made with the configured secret: the kid binds it to the RSA key.
    let secret_as_rsa = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Some("rsa-1"),
        &valid_claims(),
    );
    assert_eq!(
        refused(&verifier, &secret_as_rsa).await,
        TokenError::AlgorithmMismatch
    );
}

#[tokio::test]
async fn algorithms_berth_does_not_accept_are_refused() {
    let verifier = jwks_and_secret().await;
    let rsa = TestKey::Rsa1.encoding_key();
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    let tokens = [
        sign(Algorithm::HS384, &secret, None, &valid_claims()),
        sign(Algorithm::HS512, &secret, None, &valid_claims()),
        sign(Algorithm::RS384, &rsa, Some("rsa-1"), &valid_claims()),
        sign(Algorithm::RS512, &rsa, Some("rsa-1"), &valid_claims()),
        sign(Algorithm::PS256, &rsa, Some("rsa-1"), &valid_claims()),
        hand_built(&json!({"alg": "hs256"}), &valid_claims(), "c2ln"),
        hand_built(&json!({"alg": "ES256K"}), &valid_claims(), "c2ln"),
        hand_built(&json!({"alg": ""}), &valid_claims(), "c2ln"),
    ];
    for token in tokens {
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::UnsupportedAlgorithm
        );
    }
    // Asymmetric algorithms need a JWKS; HS256 needs a secret.
    let hs_only = verifier_for(hs256_settings()).await;
    let rs256 = signed(TestKey::Rsa1, &valid_claims());
    assert_eq!(
        refused(&hs_only, &rs256).await,
        TokenError::UnsupportedAlgorithm
    );
    let jwks_only = jwks_only().await;
    let hs = hs256(SECRET, &valid_claims());
    assert_eq!(
        refused(&jwks_only, &hs).await,
        TokenError::UnsupportedAlgorithm
    );
}

async fn verifier_for(settings: AuthSettings) -> TokenVerifier {
    verifier(settings).await
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let verifier = jwks_and_secret().await;
    for kid in ["rsa-9", "", "RSA-1"] {
        let token = sign(
            Algorithm::RS256,
            &TestKey::Rsa1.encoding_key(),
            Some(kid),
            &valid_claims(),
        );
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::UnknownKey,
            "{kid:?}"
        );
    }
}

#[tokio::test]
async fn garbage_is_malformed() {
    let verifier = jwks_and_secret().await;
    let claims = URL_SAFE_NO_PAD.encode(valid_claims().to_string());
    let header = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let hs = json!({"alg": "HS256", "typ": "JWT"});
    let valid = hs256(SECRET, &valid_claims());
    let garbage = [
        String::new(),
        " ".into(),
        "x".into(),
        "a.b".into(),
        "a.b.c".into(),
        "..".into(),
        "...".into(),
        "a.b.c.d".into(),
        "a.b.c.d.e".into(),
        "Bearer x.y.z".into(),
        "!!!.e30.c2ln".into(),
        "eyJhbGciOiJIUzI1NiJ9.e30".into(),
        format!("{}.{claims}.c2ln", URL_SAFE_NO_PAD.encode("not json")),
        format!("{}.{claims}.c2ln", header(json!(["HS256"]))),
        format!("{}.{claims}.c2ln", header(json!({"typ": "JWT"}))),
        format!("{}.{claims}.c2ln", header(json!({"alg": 256}))),
        format!(
            "{}.{claims}.c2ln",
            header(json!({"alg": "RS256", "kid": 1}))
        ),
        format!(
            "{}.{claims}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","alg":"RS256"}"#)
        ),
        // Padded and standard-alphabet base64 are not base64url.
        format!("{}=.{claims}.c2ln", header(hs.clone())),
        format!(
            "{}.{claims}.c2ln",
            STANDARD.encode(r#"{"alg":"HS256","k":"??>"}"#)
        ),
        // A critical extension Berth does not understand.
        format!(
            "{}.{claims}.c2ln",
            header(json!({"alg": "HS256", "crit": ["b64"], "b64": false}))
        ),
        // A valid token with a trailing part, or far too long.
        format!("{valid}.x"),
        format!("{valid}{}", "A".repeat(40 * 1024)),
        // Whitespace around the token is the caller's to strip.
        format!(" {valid}"),
    ];
    for token in &garbage {
        assert_eq!(
            refused(&verifier, token).await,
            TokenError::Malformed,
            "{token:?}"
        );
    }
}

#[tokio::test]
async fn a_correctly_signed_payload_that_is_not_a_json_object_is_malformed() {
    let verifier = verifier(hs256_settings()).await;
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256"}).to_string());
    for payload in ["not json", "[1, 2]", "\"alice\"", "null"] {
        let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
        let token = format!("{message}.{signature}");
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::Malformed,
            "{payload}"
        );
    }
}
