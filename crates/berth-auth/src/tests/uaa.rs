//! `auth.profile = "uaa"`: UAA's `/token_keys` served on loopback, and tokens carrying every
//! claim UAA puts in a password-grant and a client-credentials token.

use berth_domain::actor::{Access, PlatformScope};

use super::*;
use crate::{AuthProfile, ClaimRules, RolesSource, actor_from_claims};

const TOKEN_KEYS: &str = include_str!("../../tests/fixtures/uaa/token_keys.json");
const PASSWORD_GRANT: &str = include_str!("../../tests/fixtures/uaa/password-grant.json");
const CLIENT_CREDENTIALS: &str = include_str!("../../tests/fixtures/uaa/client-credentials.json");
const ISSUER: &str = "https://uaa.sys.example.com/oauth/token";
const USER_ID: &str = "0e2c9c56-7b1f-4b4e-9d0e-3f1a2b3c4d5e";

/// A fixture's claims, moved to the present, with `changes` applied.
fn uaa_claims(fixture: &str, changes: Value) -> Value {
    let mut claims: Value = serde_json::from_str(fixture).unwrap();
    let now = now();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 600);
    if claims.get("auth_time").is_some() {
        claims["auth_time"] = json!(now);
    }
    for (key, value) in changes.as_object().unwrap() {
        claims[key] = value.clone();
    }
    claims
}

/// Signed as UAA signs: RS256, naming its key `key-1`.
fn uaa_token(claims: &Value) -> String {
    sign(
        Algorithm::RS256,
        &TestKey::Rsa1.encoding_key(),
        Some("key-1"),
        claims,
    )
}

fn uaa_rules(roles_source: RolesSource) -> ClaimRules {
    ClaimRules {
        profile: AuthProfile::Uaa,
        scope_claim: "scope".into(),
        roles_claim: "roles".into(),
        roles_source,
    }
}

struct Uaa {
    server: JwksServer,
    verifier: TokenVerifier,
}

/// UAA's key document at `/token_keys`, and a verifier holding Berth to UAA's issuer and to the
/// `cloud_controller` audience, as a foundation configures it.
async fn uaa() -> Uaa {
    let server = JwksServer::start(TOKEN_KEYS).await;
    let verifier = verifier(AuthSettings {
        jwks_url: Some(server.url.replace("/jwks.json", "/token_keys")),
        issuer: Some(ISSUER.into()),
        audience: Some("cloud_controller".into()),
        leeway_seconds: 5,
        ..AuthSettings::default()
    })
    .await;
    Uaa { server, verifier }
}

#[tokio::test]
async fn a_password_grant_token_is_its_user_with_read_and_write() {
    let uaa = uaa().await;
    let claims = uaa
        .verifier
        .verify(&uaa_token(&uaa_claims(PASSWORD_GRANT, json!({}))))
        .await
        .unwrap();
    let actor = actor_from_claims(&claims, &uaa_rules(RolesSource::Both)).unwrap();
    assert_eq!(actor.subject(), USER_ID, "the user is user_id");
    assert!(actor.may(Access::Read) && actor.may(Access::Write));
    assert!(!actor.reads_everything(), "no admin scope");
    assert!(actor.reads_directory_roles());
    assert_eq!(uaa.server.fetches(), 1, "token_keys fetched once, at start");
    uaa.server.stop().await;
}

#[tokio::test]
async fn a_client_credentials_token_is_its_client_and_may_be_admin() {
    let uaa = uaa().await;
    let claims = uaa
        .verifier
        .verify(&uaa_token(&uaa_claims(CLIENT_CREDENTIALS, json!({}))))
        .await
        .unwrap();
    let actor = actor_from_claims(&claims, &uaa_rules(RolesSource::Claims)).unwrap();
    assert_eq!(actor.subject(), "berth-deployer", "no user_id: the sub");
    assert!(actor.has_scope(PlatformScope::Admin));
    assert!(actor.has_scope(PlatformScope::PullSecrets), "unchanged");
    assert!(
        actor.may(Access::Read) && actor.may(Access::Write),
        "admin reads and writes"
    );
    assert!(!actor.reads_directory_roles());
    uaa.server.stop().await;
}

#[tokio::test]
async fn cloud_controller_scopes_map_to_berths_and_gate_reads_and_writes() {
    let uaa = uaa().await;
    let cases: [(&[&str], Option<PlatformScope>, bool, bool); 7] = [
        (&["cloud_controller.read"], None, true, false),
        (&["cloud_controller.write"], None, false, true),
        (&["openid", "uaa.user"], None, false, false),
        (
            &["cloud_controller.admin_read_only"],
            Some(PlatformScope::AdminReadOnly),
            true,
            false,
        ),
        (
            &["cloud_controller.global_auditor"],
            Some(PlatformScope::GlobalAuditor),
            true,
            false,
        ),
        (
            &["cloud_controller.admin"],
            Some(PlatformScope::Admin),
            true,
            true,
        ),
        // Berth's own scopes mean nothing in a UAA token (but berth.pull_secrets).
        (&["berth.admin", "cloud_controller.read"], None, true, false),
    ];
    for (scopes, platform, read, write) in cases {
        let token = uaa_token(&uaa_claims(PASSWORD_GRANT, json!({ "scope": scopes })));
        let claims = uaa.verifier.verify(&token).await.unwrap();
        let actor = actor_from_claims(&claims, &uaa_rules(RolesSource::Both)).unwrap();
        for scope in [
            PlatformScope::Admin,
            PlatformScope::AdminReadOnly,
            PlatformScope::GlobalAuditor,
        ] {
            assert_eq!(
                actor.has_scope(scope),
                platform == Some(scope),
                "{scopes:?}"
            );
        }
        assert_eq!(actor.may(Access::Read), read, "{scopes:?} read");
        assert_eq!(actor.may(Access::Write), write, "{scopes:?} write");
    }
    uaa.server.stop().await;
}

#[tokio::test]
async fn uaa_tokens_for_another_issuer_or_audience_are_refused() {
    let uaa = uaa().await;
    for changes in [
        json!({"iss": "https://uaa.other.example.com/oauth/token"}),
        json!({"aud": ["cf", "openid"]}),
    ] {
        let token = uaa_token(&uaa_claims(PASSWORD_GRANT, changes.clone()));
        assert!(
            matches!(
                refused(&uaa.verifier, &token).await,
                TokenError::WrongIssuer | TokenError::WrongAudience
            ),
            "{changes}"
        );
    }
    uaa.server.stop().await;
}

#[test]
fn roles_come_from_the_sources_configured() {
    let guid = "6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11";
    let claims = crate::VerifiedClaims {
        subject: "alice".into(),
        claims: json!({"roles": [format!("space_developer:{guid}")], "user_id": "u-1"})
            .as_object()
            .cloned()
            .unwrap(),
    };
    let from = |source| actor_from_claims(&claims, &uaa_rules(source)).unwrap();
    assert_eq!(from(RolesSource::Claims).roles().count(), 1);
    assert!(!from(RolesSource::Claims).reads_directory_roles());
    assert_eq!(
        from(RolesSource::Directory).roles().count(),
        0,
        "claim ignored"
    );
    assert!(from(RolesSource::Directory).reads_directory_roles());
    assert_eq!(from(RolesSource::Both).roles().count(), 1);
    assert!(from(RolesSource::Both).reads_directory_roles());
    assert_eq!(from(RolesSource::Both).subject(), "u-1");
    let blank = crate::VerifiedClaims {
        subject: "alice".into(),
        claims: json!({"user_id": 7}).as_object().cloned().unwrap(),
    };
    assert!(actor_from_claims(&blank, &uaa_rules(RolesSource::Both)).is_err());
}
