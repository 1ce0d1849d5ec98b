//! HS256: minted tokens verify and carry exactly the claims they should.

use super::*;
use crate::{MintClaims, mint_hs256};

fn mint_claims() -> MintClaims {
    MintClaims {
        subject: "alice".into(),
        scopes: vec!["berth.admin".into(), "openid".into()],
        roles: vec!["space_developer:6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11".into()],
        ttl: Duration::from_secs(120),
        issuer: Some("https://uaa.example.test".into()),
        audience: Some("berth".into()),
    }
}

#[tokio::test]
async fn a_minted_hs256_token_verifies_with_all_its_claims() {
    let verifier = verifier(AuthSettings {
        issuer: Some("https://uaa.example.test".into()),
        audience: Some("berth".into()),
        ..hs256_settings()
    })
    .await;
    let token = mint_hs256(&SecretString::from(SECRET), &mint_claims()).unwrap();

    let verified = verifier.verify(&token).await.unwrap();

    assert_eq!(verified.subject, "alice");
    let claims = &verified.claims;
    let mut names: Vec<&str> = claims.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["aud", "exp", "iat", "iss", "roles", "scope", "sub"]);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], "berth.admin openid");
    assert_eq!(
        claims["roles"],
        json!(["space_developer:6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"])
    );
    assert_eq!(claims["iss"], "https://uaa.example.test");
    assert_eq!(claims["aud"], "berth");
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - now()).abs() <= 5);
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 120);
}

#[tokio::test]
async fn empty_scopes_and_roles_and_no_issuer_or_audience_are_left_out() {
    let verifier = verifier(hs256_settings()).await;
    let token = mint_hs256(
        &SecretString::from(SECRET),
        &MintClaims {
            scopes: Vec::new(),
            roles: Vec::new(),
            issuer: None,
            audience: None,
            ..mint_claims()
        },
    )
    .unwrap();

    let verified = verifier.verify(&token).await.unwrap();

    let mut names: Vec<&str> = verified.claims.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["exp", "iat", "sub"]);
}

#[tokio::test]
async fn an_hs256_token_signed_by_hand_verifies() {
    let verifier = verifier(hs256_settings()).await;
    let verified = verifier
        .verify(&hs256(SECRET, &valid_claims()))
        .await
        .unwrap();
    assert_eq!(verified.subject, "alice");
    assert_eq!(verified.claims["scope"], "berth.admin");
}

#[test]
fn minting_refuses_a_secret_no_verifier_accepts() {
    let error = mint_hs256(&SecretString::from("short"), &mint_claims()).unwrap_err();
    assert!(matches!(
        error.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidKeyFormat
    ));
}
