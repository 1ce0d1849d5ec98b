//! `exp`, `nbf`, `iss`, `aud` and `sub`, with the configured leeway (5 s in these tests).

use super::*;

const ISSUER: &str = "https://uaa.example.test";
const AUDIENCE: &str = "berth";

async fn strict() -> TokenVerifier {
    verifier(AuthSettings {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        ..hs256_settings()
    })
    .await
}

/// Valid for [`strict`]; `changes` are merged in (a `null` removes the claim).
fn claims_with(changes: Value) -> Value {
    let mut claims = json!({"sub": "alice", "exp": now() + 600, "iss": ISSUER, "aud": AUDIENCE});
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(name),
            value => claims
                .as_object_mut()
                .unwrap()
                .insert(name.clone(), value.clone()),
        };
    }
    claims
}

#[tokio::test]
async fn a_token_with_every_claim_right_verifies() {
    let verifier = strict().await;
    let token = hs256(SECRET, &claims_with(json!({"nbf": now() - 60})));
    assert_eq!(verifier.verify(&token).await.unwrap().subject, "alice");
}

#[tokio::test]
async fn an_expired_token_is_refused_beyond_the_leeway() {
    let verifier = strict().await;
    let expired = hs256(SECRET, &claims_with(json!({"exp": now() - 60})));
    assert_eq!(refused(&verifier, &expired).await, TokenError::Expired);
    // Two seconds past `exp` is within the five seconds of leeway.
    let just_expired = hs256(SECRET, &claims_with(json!({"exp": now() - 2})));
    assert!(verifier.verify(&just_expired).await.is_ok());
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused_beyond_the_leeway() {
    let verifier = strict().await;
    let future = hs256(SECRET, &claims_with(json!({"nbf": now() + 300})));
    assert_eq!(refused(&verifier, &future).await, TokenError::NotYetValid);
    let almost = hs256(SECRET, &claims_with(json!({"nbf": now() + 2})));
    assert!(verifier.verify(&almost).await.is_ok());
}

#[tokio::test]
async fn exp_is_required_and_must_be_a_number() {
    let verifier = verifier(hs256_settings()).await;
    for exp in [json!(null), json!("tomorrow"), json!(-5), json!(1.5e300)] {
        let mut claims = json!({"sub": "alice"});
        if !exp.is_null() {
            claims["exp"] = exp.clone();
        }
        let token = hs256(SECRET, &claims);
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::MissingExpiry,
            "exp {exp}"
        );
    }
}

#[tokio::test]
async fn time_claims_of_the_wrong_shape_are_refused() {
    let verifier = strict().await;
    // jsonwebtoken reports these as unreadable claims rather than missing ones.
    for changes in [
        json!({"exp": [now() + 600]}),
        json!({"nbf": "yesterday"}),
        json!({"sub": ["alice"]}),
    ] {
        let token = hs256(SECRET, &claims_with(changes.clone()));
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::Malformed,
            "{changes}"
        );
    }
}

#[tokio::test]
async fn sub_is_required_and_must_be_a_non_blank_string() {
    let verifier = strict().await;
    for sub in [json!(null), json!(""), json!("   "), json!(7), json!(true)] {
        let token = hs256(SECRET, &claims_with(json!({ "sub": sub })));
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::MissingSubject,
            "sub {sub}"
        );
    }
}

#[tokio::test]
async fn a_configured_issuer_must_be_the_tokens_iss() {
    let verifier = strict().await;
    for iss in [
        json!("https://evil.example.test"),
        json!(null),
        json!(42),
        json!([ISSUER]),
        json!("https://uaa.example.test/"),
    ] {
        let token = hs256(SECRET, &claims_with(json!({ "iss": iss })));
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::WrongIssuer,
            "iss {iss}"
        );
    }
    // Without a configured issuer, any `iss` (or none) is fine.
    let lenient = verifier_without_issuer_or_audience().await;
    let token = hs256(
        SECRET,
        &claims_with(json!({"iss": "https://elsewhere.test"})),
    );
    assert!(lenient.verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_configured_audience_must_be_in_the_tokens_aud() {
    let verifier = strict().await;
    for aud in [
        json!("other"),
        json!(null),
        json!(["other", "more"]),
        json!(7),
    ] {
        let token = hs256(SECRET, &claims_with(json!({ "aud": aud })));
        assert_eq!(
            refused(&verifier, &token).await,
            TokenError::WrongAudience,
            "aud {aud}"
        );
    }
    let among_others = hs256(SECRET, &claims_with(json!({"aud": ["other", AUDIENCE]})));
    assert!(verifier.verify(&among_others).await.is_ok());
}

#[tokio::test]
async fn without_a_configured_audience_a_tokens_aud_is_not_held_against_it() {
    let lenient = verifier_without_issuer_or_audience().await;
    for aud in [json!("anything"), json!(["a", "b"]), json!(null)] {
        let token = hs256(SECRET, &claims_with(json!({ "aud": aud })));
        assert!(lenient.verify(&token).await.is_ok(), "aud {aud}");
    }
}

#[tokio::test]
async fn claims_are_checked_for_jwks_keys_too() {
    let verifier = verifier(AuthSettings {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        ..jwks_file_settings(JWKS_PATH)
    })
    .await;
    for key in TestKey::IN_JWKS {
        assert!(
            verifier
                .verify(&signed(key, &claims_with(json!({}))))
                .await
                .is_ok()
        );
        let cases = [
            (json!({"exp": now() - 60}), TokenError::Expired),
            (json!({"exp": null}), TokenError::MissingExpiry),
            (json!({"nbf": now() + 300}), TokenError::NotYetValid),
            (
                json!({"iss": "https://evil.example.test"}),
                TokenError::WrongIssuer,
            ),
            (json!({"aud": "other"}), TokenError::WrongAudience),
            (json!({"sub": null}), TokenError::MissingSubject),
        ];
        for (changes, expected) in cases {
            let token = signed(key, &claims_with(changes.clone()));
            assert_eq!(
                refused(&verifier, &token).await,
                expected,
                "{key:?} {changes}"
            );
        }
    }
}

async fn verifier_without_issuer_or_audience() -> TokenVerifier {
    verifier(hs256_settings()).await
}
