//! Verification of every accepted algorithm, and refusal of every way a token can be wrong.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::json;

use super::*;

const RSA: &str = include_str!("../../tests/fixtures/jwt/rsa.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/jwt/rsa.pub.pem");
const EC: &str = include_str!("../../tests/fixtures/jwt/ec.pem");
const ED25519: &str = include_str!("../../tests/fixtures/jwt/ed25519.pem");
const SECRET: &str = "unit-test-secret-long-enough-for-hs256";

fn encoding_key(algorithm: Algorithm) -> EncodingKey {
    match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA.as_bytes()).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC.as_bytes()).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(ED25519.as_bytes()).unwrap(),
        _ => EncodingKey::from_secret(SECRET.as_bytes()),
    }
}

fn jwk(algorithm: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(algorithm), algorithm).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk
}

fn jwks_json(keys: &[(Algorithm, &str)]) -> String {
    let set = JwkSet {
        keys: keys
            .iter()
            .map(|(algorithm, kid)| jwk(*algorithm, kid))
            .collect(),
    };
    serde_json::to_string(&set).unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn sign(algorithm: Algorithm, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, &encoding_key(algorithm)).unwrap()
}

fn valid_claims() -> Value {
    json!({"sub": "alice", "exp": now() + 600, "scope": "berth.admin"})
}

fn jwks_file(keys: &[(Algorithm, &str)]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("berth-jwks-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, jwks_json(keys)).unwrap();
    path
}

async fn verifier(settings: AuthSettings) -> TokenVerifier {
    TokenVerifier::with_refresh_interval(settings, Duration::ZERO)
        .await
        .unwrap()
}

fn hs256_settings() -> AuthSettings {
    AuthSettings {
        hs256_secret: Some(SecretString::from(SECRET)),
        leeway_seconds: 5,
        ..AuthSettings::default()
    }
}

fn all_keys() -> Vec<(Algorithm, &'static str)> {
    vec![
        (Algorithm::RS256, "rsa-1"),
        (Algorithm::ES256, "ec-1"),
        (Algorithm::EdDSA, "ed-1"),
    ]
}

#[tokio::test]
async fn hs256_tokens_verify_and_minted_tokens_carry_their_claims() {
    let verifier = verifier(hs256_settings()).await;
    let token = mint_hs256(
        &SecretString::from(SECRET),
        &MintClaims {
            subject: "alice".into(),
            scopes: vec!["berth.admin".into(), "openid".into()],
            roles: vec!["space_developer:6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11".into()],
            ttl: Duration::from_secs(60),
            issuer: None,
            audience: None,
        },
    )
    .unwrap();
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.claims["scope"], "berth.admin openid");
    assert_eq!(
        claims.claims["roles"][0],
        "space_developer:6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"
    );
}

#[tokio::test]
async fn rs256_es256_and_eddsa_verify_from_a_jwks_file() {
    let path = jwks_file(&all_keys());
    let verifier = verifier(AuthSettings {
        jwks_file: Some(path.clone()),
        ..AuthSettings::default()
    })
    .await;
    for (algorithm, kid) in all_keys() {
        let token = sign(algorithm, Some(kid), valid_claims());
        assert_eq!(
            verifier.verify(&token).await.unwrap().subject,
            "alice",
            "{algorithm:?}"
        );
        // Without a kid, the only key of that algorithm is used.
        let token = sign(algorithm, None, valid_claims());
        assert!(
            verifier.verify(&token).await.is_ok(),
            "{algorithm:?} without kid"
        );
    }
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn claims_are_checked() {
    let settings = AuthSettings {
        issuer: Some("https://uaa.example.test".into()),
        audience: Some("berth".into()),
        ..hs256_settings()
    };
    let verifier = verifier(settings).await;
    let good =
        json!({"sub": "a", "exp": now() + 600, "iss": "https://uaa.example.test", "aud": "berth"});
    assert!(
        verifier
            .verify(&sign(Algorithm::HS256, None, good))
            .await
            .is_ok()
    );
    let cases = [
        (
            json!({"sub": "a", "exp": now() - 60, "iss": "https://uaa.example.test", "aud": "berth"}),
            TokenError::Expired,
        ),
        (
            json!({"sub": "a", "exp": now() + 600, "nbf": now() + 300, "iss": "https://uaa.example.test", "aud": "berth"}),
            TokenError::NotYetValid,
        ),
        (
            json!({"sub": "a", "iss": "https://uaa.example.test", "aud": "berth"}),
            TokenError::MissingClaim("exp"),
        ),
        (
            json!({"exp": now() + 600, "iss": "https://uaa.example.test", "aud": "berth"}),
            TokenError::MissingClaim("sub"),
        ),
        (
            json!({"sub": "", "exp": now() + 600, "iss": "https://uaa.example.test", "aud": "berth"}),
            TokenError::MissingClaim("sub"),
        ),
        (
            json!({"sub": "a", "exp": now() + 600, "iss": "https://evil.example.test", "aud": "berth"}),
            TokenError::Issuer,
        ),
        (
            json!({"sub": "a", "exp": now() + 600, "iss": "https://uaa.example.test", "aud": "other"}),
            TokenError::Audience,
        ),
        (
            json!({"sub": "a", "exp": now() + 600, "aud": "berth"}),
            TokenError::MissingClaim("iss"),
        ),
        (
            json!({"sub": "a", "exp": now() + 600, "iss": "https://uaa.example.test"}),
            TokenError::MissingClaim("aud"),
        ),
    ];
    for (index, (claims, expected)) in cases.into_iter().enumerate() {
        let error = verifier
            .verify(&sign(Algorithm::HS256, None, claims))
            .await
            .unwrap_err();
        assert_eq!(error, expected, "case {index}");
    }
    // Within the leeway an expired token still passes; an audience is ignored when none is configured.
    let lenient = super::tests::verifier(hs256_settings()).await;
    let token = sign(
        Algorithm::HS256,
        None,
        json!({"sub": "a", "exp": now() - 2, "aud": "anything"}),
    );
    assert!(lenient.verify(&token).await.is_ok());
}

#[tokio::test]
async fn tampered_wrongly_signed_and_garbage_tokens_are_refused() {
    let path = jwks_file(&all_keys());
    let verifier = verifier(AuthSettings {
        jwks_file: Some(path.clone()),
        ..hs256_settings()
    })
    .await;
    let token = sign(Algorithm::RS256, Some("rsa-1"), valid_claims());
    let (header, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_payload =
        URL_SAFE_NO_PAD.encode(json!({"sub": "mallory", "exp": now() + 600}).to_string());
    let tampered = format!("{header}.{forged_payload}.{signature}");
    assert_eq!(
        verifier.verify(&tampered).await.unwrap_err(),
        TokenError::Signature
    );

    let other_secret = jsonwebtoken::encode(
        &Header::default(),
        &valid_claims(),
        &EncodingKey::from_secret(b"another-secret-another-secret-00"),
    )
    .unwrap();
    assert_eq!(
        verifier.verify(&other_secret).await.unwrap_err(),
        TokenError::Signature
    );

    for garbage in ["", "x", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30"] {
        assert!(verifier.verify(garbage).await.is_err(), "{garbage:?}");
    }
    let _ = std::fs::remove_file(path);
}

fn unsigned(header: Value, claims: Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test]
async fn alg_none_and_algorithm_confusion_are_refused() {
    let path = jwks_file(&all_keys());
    let jwks_only = verifier(AuthSettings {
        jwks_file: Some(path.clone()),
        ..AuthSettings::default()
    })
    .await;
    let both = verifier(AuthSettings {
        jwks_file: Some(path.clone()),
        ..hs256_settings()
    })
    .await;
    for verifier in [&jwks_only, &both] {
        for header in [
            json!({"alg": "none", "typ": "JWT"}),
            json!({"alg": "None"}),
            json!({"alg": "NONE", "kid": "rsa-1"}),
        ] {
            let token = unsigned(header.clone(), valid_claims(), "");
            assert!(verifier.verify(&token).await.is_err(), "{header}");
        }
        // HS256 "signed" with the RSA public key, naming the RSA key.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let confused = jsonwebtoken::encode(
            &header,
            &valid_claims(),
            &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        )
        .unwrap();
        assert!(verifier.verify(&confused).await.is_err());
        // The RSA key's id with another asymmetric algorithm.
        let token = sign(Algorithm::ES256, Some("rsa-1"), valid_claims());
        assert_eq!(
            verifier.verify(&token).await.unwrap_err(),
            TokenError::Algorithm
        );
        // Algorithms Berth does not accept at all.
        let token = unsigned(json!({"alg": "HS512"}), valid_claims(), "c2ln");
        assert_eq!(
            verifier.verify(&token).await.unwrap_err(),
            TokenError::Algorithm
        );
    }
    // Only JWKS configured: HS256 is never accepted, whatever the secret.
    let token = sign(Algorithm::HS256, None, valid_claims());
    assert_eq!(
        jwks_only.verify(&token).await.unwrap_err(),
        TokenError::Algorithm
    );
    let unknown = sign(Algorithm::RS256, Some("rsa-9"), valid_claims());
    assert_eq!(
        jwks_only.verify(&unknown).await.unwrap_err(),
        TokenError::UnknownKey
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn jwks_url_is_cached_and_refreshed_on_an_unknown_kid() {
    let served = Arc::new(Mutex::new(jwks_json(&[(Algorithm::RS256, "rsa-1")])));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served_by_server, fetches_by_server) = (served.clone(), fetches.clone());
    let server = HttpServer::new(move || {
        let served = served_by_server.clone();
        let fetches = fetches_by_server.clone();
        App::new().route(
            "/jwks.json",
            web::get().to(move || {
                fetches.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().unwrap().clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    let settings = AuthSettings {
        jwks_url: Some(format!("http://127.0.0.1:{port}/jwks.json")),
        ..AuthSettings::default()
    };
    let verifier = super::tests::verifier(settings).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    for _ in 0..5 {
        assert!(
            verifier
                .verify(&sign(Algorithm::RS256, Some("rsa-1"), valid_claims()))
                .await
                .is_ok()
        );
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "known keys come from the cache"
    );

    // The issuer rotates to a new key: the unknown kid triggers one refresh.
    *served.lock().unwrap() = jwks_json(&[(Algorithm::ES256, "ec-2")]);
    assert!(
        verifier
            .verify(&sign(Algorithm::ES256, Some("ec-2"), valid_claims()))
            .await
            .is_ok()
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // With a long refresh interval an unknown kid does not hammer the issuer.
    let throttled = TokenVerifier::with_refresh_interval(
        AuthSettings {
            jwks_url: Some(format!("http://127.0.0.1:{port}/jwks.json")),
            ..AuthSettings::default()
        },
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let before = fetches.load(Ordering::SeqCst);
    for _ in 0..3 {
        let unknown = sign(Algorithm::RS256, Some("nope"), valid_claims());
        assert_eq!(
            throttled.verify(&unknown).await.unwrap_err(),
            TokenError::UnknownKey
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn configuration_errors_name_the_setting() {
    let error = TokenVerifier::new(AuthSettings::default())
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("BERTH_AUTH__JWKS_URL"));
    let weak = AuthSettings {
        hs256_secret: Some(SecretString::from("short")),
        ..AuthSettings::default()
    };
    assert!(matches!(
        TokenVerifier::new(weak).await,
        Err(VerifierConfigError::WeakSecret)
    ));
    let missing = AuthSettings {
        jwks_file: Some("/nonexistent/jwks.json".into()),
        ..AuthSettings::default()
    };
    assert!(
        TokenVerifier::new(missing)
            .await
            .err()
            .unwrap()
            .to_string()
            .contains("auth.jwks_file")
    );
    let unreachable = AuthSettings {
        jwks_url: Some("http://127.0.0.1:1/jwks.json".into()),
        ..AuthSettings::default()
    };
    assert!(TokenVerifier::new(unreachable).await.is_err());
}
