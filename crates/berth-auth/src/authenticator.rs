//! From an `Authorization` header to a domain [`Actor`].

use std::collections::HashMap;
use std::sync::Mutex;

use berth_domain::actor::{Actor, ApiAccess, PlatformScope, Role};
use serde_json::Value;

use crate::{TokenVerifier, VerifiedClaims};

/// Which tokens Berth reads (`auth.profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthProfile {
    /// Berth's own tokens: `berth.*` scopes, the user in `sub`, nothing asked to read or write.
    /// The default, because every token minted so far (dev mode's, `berth token`'s, the
    /// deployer's) is of this kind.
    #[default]
    Berth,
    /// Cloud Foundry UAA's tokens as they are: `cloud_controller.*` scopes (admin, read-only
    /// admin, global auditor; `read` needed to read and `write` to write), the user in
    /// `user_id` (else `sub`); `berth.pull_secrets` as in the `berth` profile.
    Uaa,
}

/// Where a caller's organization and space roles come from (`auth.roles_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RolesSource {
    /// The token's roles claim only.
    Claims,
    /// The directory's roles (`/v3/roles`) only; a roles claim is ignored.
    Directory,
    /// Both, joined.
    #[default]
    Both,
}

/// How claims become an actor: the profile, the claim names and the source of roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    pub profile: AuthProfile,
    pub scope_claim: String,
    pub roles_claim: String,
    pub roles_source: RolesSource,
}

impl ClaimRules {
    /// Berth's own tokens with roles from the claim alone: what [`Authenticator::new`] reads.
    pub fn berth(scope_claim: String, roles_claim: String) -> Self {
        Self {
            profile: AuthProfile::Berth,
            scope_claim,
            roles_claim,
            roles_source: RolesSource::Claims,
        }
    }
}

/// Verifies bearer tokens and reads the claims Berth uses; claim names are configurable.
pub struct Authenticator {
    verifier: TokenVerifier,
    rules: ClaimRules,
    recent: RecentTokens,
}

impl Authenticator {
    /// Berth's own tokens, roles from the claim (see [`Authenticator::with_rules`]).
    pub fn new(verifier: TokenVerifier, scope_claim: String, roles_claim: String) -> Self {
        Self::with_rules(verifier, ClaimRules::berth(scope_claim, roles_claim))
    }

    pub fn with_rules(verifier: TokenVerifier, rules: ClaimRules) -> Self {
        Self {
            verifier,
            rules,
            recent: RecentTokens::default(),
        }
    }
}

/// Tokens verified in the last minute and the actor each stands for. The signature check (an
/// RSA verification for RS256) is the largest single cost of a request, and a client sends the
/// same token for as long as it lives. An entry lasts until the token expires or for
/// [`RecentTokens::LIFETIME_SECONDS`], whichever is sooner, so a key withdrawn from the JWKS
/// stops being honoured within that time. Keyed by the whole token: only the very same bytes
/// hit, and only tokens that passed verification are kept.
#[derive(Default)]
struct RecentTokens {
    entries: Mutex<HashMap<String, RecentToken>>,
}

struct RecentToken {
    actor: Actor,
    until: i64,
}

impl RecentTokens {
    const LIFETIME_SECONDS: i64 = 60;
    const CAPACITY: usize = 10_000;

    fn get(&self, token: &str, now: i64) -> Option<Actor> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(token)
            .filter(|entry| now < entry.until)
            .map(|entry| entry.actor.clone())
    }

    fn insert(&self, token: &str, actor: &Actor, expires_at: Option<i64>, now: i64) {
        let until = expires_at.map_or(now + Self::LIFETIME_SECONDS, |exp| {
            exp.min(now + Self::LIFETIME_SECONDS)
        });
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, entry| now < entry.until);
            if entries.len() >= Self::CAPACITY {
                // Many distinct live tokens at once: start over rather than track recency.
                entries.clear();
            }
        }
        entries.insert(
            token.to_owned(),
            RecentToken {
                actor: actor.clone(),
                until,
            },
        );
    }
}

/// Why a request is not authenticated. Deliberately coarse: clients learn nothing about why a
/// token failed; the reason goes to the debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// A header that is not a valid bearer token, or claims Berth cannot read.
    Invalid,
    /// A valid token whose scopes do not allow this kind of request (a UAA token without
    /// `cloud_controller.read` reading, or without `cloud_controller.write` writing).
    InsufficientScope,
}

/// Authenticates one request from the raw bytes of its `Authorization` header.
///
/// # Errors
/// [`AuthFailure::Missing`] without a header, [`AuthFailure::Invalid`] for anything wrong.
pub async fn authenticate(
    authenticator: &Authenticator,
    header: Option<&[u8]>,
) -> Result<Actor, AuthFailure> {
    let header = header.ok_or(AuthFailure::Missing)?;
    let text = visible_ascii(header).ok_or(AuthFailure::Invalid)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(AuthFailure::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthFailure::Invalid);
    }
    let token = token.trim();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Some(actor) = authenticator.recent.get(token, now) {
        return Ok(actor);
    }
    let claims = authenticator
        .verifier
        .verify(token)
        .await
        .map_err(|error| {
            tracing::debug!(reason = %error, "bearer token refused");
            AuthFailure::Invalid
        })?;
    let actor = actor_from_claims(&claims, &authenticator.rules).map_err(|reason| {
        tracing::debug!(reason, "token claims refused");
        AuthFailure::Invalid
    })?;
    let expires_at = claims.claims.get("exp").and_then(Value::as_i64);
    authenticator.recent.insert(token, &actor, expires_at, now);
    Ok(actor)
}

/// The header as text when it holds only visible ASCII, spaces and tabs (what HTTP's
/// `HeaderValue::to_str` accepts); a bearer token never holds anything else.
fn visible_ascii(header: &[u8]) -> Option<&str> {
    header
        .iter()
        .all(|byte| *byte == b'\t' || (b' '..=b'~').contains(byte))
        .then(|| std::str::from_utf8(header).ok())
        .flatten()
}

/// Builds the actor: `scope` is a space-separated string or an array of strings (unknown scopes
/// are ignored); `roles` is an array of `<cf_role_name>:<guid>` strings, read unless the rules
/// take roles from the directory alone.
///
/// # Errors
/// A short reason when a claim has the wrong shape.
pub fn actor_from_claims(
    claims: &VerifiedClaims,
    rules: &ClaimRules,
) -> Result<Actor, &'static str> {
    let scopes: Vec<String> = match claims.claims.get(&rules.scope_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or("scope claim holds a non-string")?,
        Some(_) => return Err("scope claim is neither a string nor an array"),
    };
    let roles: Vec<Role> = match (rules.roles_source, claims.claims.get(&rules.roles_claim)) {
        (RolesSource::Directory, _) | (_, None | Some(Value::Null)) => Vec::new(),
        (_, Some(Value::Array(items))) => items
            .iter()
            .map(|item| item.as_str().and_then(|text| Role::parse(text).ok()))
            .collect::<Option<_>>()
            .ok_or("roles claim holds an entry that is not <role>:<guid>")?,
        (_, Some(_)) => return Err("roles claim is not an array"),
    };
    let actor = match rules.profile {
        AuthProfile::Berth => Actor::new(
            claims.subject.clone(),
            scopes
                .iter()
                .filter_map(|scope| PlatformScope::from_claim(scope)),
            roles,
        ),
        AuthProfile::Uaa => uaa_actor(claims, &scopes, roles)?,
    };
    Ok(match rules.roles_source {
        RolesSource::Claims => actor,
        RolesSource::Directory | RolesSource::Both => actor.with_directory_roles(),
    })
}

/// A UAA token's actor: Cloud Controller's scopes mapped, its read and write rule kept.
fn uaa_actor(
    claims: &VerifiedClaims,
    scopes: &[String],
    roles: Vec<Role>,
) -> Result<Actor, &'static str> {
    let has = |name: &str| scopes.iter().any(|scope| scope == name);
    let platform = [
        ("cloud_controller.admin", PlatformScope::Admin),
        (
            "cloud_controller.admin_read_only",
            PlatformScope::AdminReadOnly,
        ),
        (
            "cloud_controller.global_auditor",
            PlatformScope::GlobalAuditor,
        ),
        ("berth.pull_secrets", PlatformScope::PullSecrets),
    ]
    .into_iter()
    .filter(|(name, _)| has(name))
    .map(|(_, scope)| scope);
    // Cloud Controller: reads need `read` or one of the admin scopes; writes `write` or admin.
    let admin = has("cloud_controller.admin");
    let access = ApiAccess::Scoped {
        read: admin
            || has("cloud_controller.read")
            || has("cloud_controller.admin_read_only")
            || has("cloud_controller.global_auditor"),
        write: admin || has("cloud_controller.write"),
    };
    // UAA names the user in `user_id`; a client-credentials token has none, and is its `sub`.
    let subject = match claims.claims.get("user_id") {
        None | Some(Value::Null) => claims.subject.clone(),
        Some(Value::String(user)) if !user.trim().is_empty() => user.clone(),
        Some(_) => return Err("user_id claim is not a non-blank string"),
    };
    Ok(Actor::new(subject, platform, roles).with_access(access))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(subject: &str) -> Actor {
        actor_from_claims(
            &VerifiedClaims {
                subject: subject.into(),
                claims: Default::default(),
            },
            &berth_rules("scope"),
        )
        .unwrap()
    }

    fn berth_rules(scope_claim: &str) -> ClaimRules {
        ClaimRules::berth(scope_claim.into(), "roles".into())
    }

    #[test]
    fn a_recent_token_lasts_until_it_expires() {
        let recent = RecentTokens::default();
        recent.insert("token-a", &actor("alice"), Some(1_030), 1_000);
        assert_eq!(
            recent.get("token-a", 1_029).map(|a| a.subject().to_owned()),
            Some("alice".into())
        );
        assert!(
            recent.get("token-a", 1_030).is_none(),
            "expired tokens are not honoured"
        );
        assert!(recent.get("token-b", 1_000).is_none());
        assert!(
            recent.get("token-", 1_000).is_none(),
            "only the very same token hits"
        );
    }

    #[test]
    fn a_recent_token_is_verified_again_after_a_minute() {
        let recent = RecentTokens::default();
        recent.insert("long-lived", &actor("bob"), Some(1_000_000), 1_000);
        assert!(recent.get("long-lived", 1_059).is_some());
        assert!(recent.get("long-lived", 1_060).is_none());
        recent.insert("no-exp", &actor("bob"), None, 1_000);
        assert!(recent.get("no-exp", 1_060).is_none());
    }

    #[test]
    fn recent_tokens_stay_bounded() {
        let recent = RecentTokens::default();
        for index in 0..RecentTokens::CAPACITY + 10 {
            recent.insert(&format!("token-{index}"), &actor("carol"), None, 1_000);
        }
        let kept = recent.entries.lock().unwrap().len();
        assert!(kept <= RecentTokens::CAPACITY, "{kept} entries kept");
        assert!(
            recent
                .get(&format!("token-{}", RecentTokens::CAPACITY + 9), 1_000)
                .is_some()
        );
    }

    #[tokio::test]
    async fn only_verified_tokens_are_remembered() {
        let secret =
            secrecy::SecretString::from("an-hs256-secret-for-the-cache-tests-000".to_owned());
        let verifier = TokenVerifier::new(crate::AuthSettings {
            hs256_secret: Some(secret.clone()),
            jwks_file: None,
            jwks_url: None,
            issuer: None,
            audience: None,
            leeway_seconds: 0,
        })
        .await
        .unwrap();
        let authenticator = Authenticator::new(verifier, "scope".into(), "roles".into());
        let token = crate::mint_hs256(
            &secret,
            &crate::MintClaims {
                subject: "dave".into(),
                scopes: vec!["berth.admin".into()],
                roles: Vec::new(),
                ttl: std::time::Duration::from_secs(600),
                issuer: None,
                audience: None,
            },
        )
        .unwrap();
        let header = format!("Bearer {token}");
        let first = authenticate(&authenticator, Some(header.as_bytes()))
            .await
            .unwrap();
        let second = authenticate(&authenticator, Some(header.as_bytes()))
            .await
            .unwrap();
        assert_eq!(first, second);
        assert!(second.has_scope(PlatformScope::Admin));
        let tampered = format!("Bearer {token}x");
        for _ in 0..2 {
            assert_eq!(
                authenticate(&authenticator, Some(tampered.as_bytes())).await,
                Err(AuthFailure::Invalid)
            );
        }
        assert_eq!(authenticator.recent.entries.lock().unwrap().len(), 1);
    }

    fn claims(value: Value) -> VerifiedClaims {
        VerifiedClaims {
            subject: "alice".into(),
            claims: value.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn scopes_and_roles_are_read_in_both_shapes() {
        let guid = "6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11";
        let actor = actor_from_claims(
            &claims(serde_json::json!({"scope": "openid berth.admin", "roles": [format!("space_developer:{guid}")]})),
            &berth_rules("scope"),
        )
        .unwrap();
        assert!(actor.has_scope(PlatformScope::Admin));
        assert_eq!(actor.roles().count(), 1);
        let actor = actor_from_claims(
            &claims(serde_json::json!({"scp": ["berth.global_auditor"]})),
            &berth_rules("scp"),
        )
        .unwrap();
        assert!(actor.has_scope(PlatformScope::GlobalAuditor));
    }

    #[test]
    fn malformed_claims_are_refused() {
        for value in [
            serde_json::json!({"scope": 7}),
            serde_json::json!({"scope": [1]}),
            serde_json::json!({"roles": "space_developer:x"}),
            serde_json::json!({"roles": ["space_developer:not-a-guid"]}),
            serde_json::json!({"roles": ["wizard:6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"]}),
        ] {
            assert!(
                actor_from_claims(&claims(value.clone()), &berth_rules("scope")).is_err(),
                "{value}"
            );
        }
    }
}
