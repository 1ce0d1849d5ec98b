//! From an `Authorization` header to a domain [`Actor`].

use actix_web::http::header::HeaderValue;
use berth_domain::actor::{Actor, PlatformScope, Role};
use serde_json::Value;

use crate::auth::{TokenVerifier, VerifiedClaims};

/// Verifies bearer tokens and reads the claims Berth uses; claim names are configurable.
pub struct Authenticator {
    verifier: TokenVerifier,
    scope_claim: String,
    roles_claim: String,
}

impl Authenticator {
    pub fn new(verifier: TokenVerifier, scope_claim: String, roles_claim: String) -> Self {
        Self {
            verifier,
            scope_claim,
            roles_claim,
        }
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
}

/// Authenticates the request an extractor sees; each dialect maps the failure to its envelope.
pub fn authenticate_request(
    request: &actix_web::HttpRequest,
) -> impl std::future::Future<Output = Result<Actor, AuthFailure>> + 'static {
    let header = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .cloned();
    let state = request
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .cloned();
    async move {
        let Some(state) = state else {
            tracing::error!("application state is missing from the request: a wiring bug");
            return Err(AuthFailure::Invalid);
        };
        let actor = authenticate(&state.authenticator, header.as_ref()).await?;
        tracing::Span::current().record("enduser.id", actor.subject());
        Ok(actor)
    }
}

/// Authenticates one request.
///
/// # Errors
/// [`AuthFailure::Missing`] without a header, [`AuthFailure::Invalid`] for anything wrong.
pub async fn authenticate(
    authenticator: &Authenticator,
    header: Option<&HeaderValue>,
) -> Result<Actor, AuthFailure> {
    let header = header.ok_or(AuthFailure::Missing)?;
    let text = header.to_str().map_err(|_| AuthFailure::Invalid)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(AuthFailure::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthFailure::Invalid);
    }
    let claims = authenticator
        .verifier
        .verify(token.trim())
        .await
        .map_err(|error| {
            tracing::debug!(reason = %error, "bearer token refused");
            AuthFailure::Invalid
        })?;
    actor_from_claims(
        &claims,
        &authenticator.scope_claim,
        &authenticator.roles_claim,
    )
    .map_err(|reason| {
        tracing::debug!(reason, "token claims refused");
        AuthFailure::Invalid
    })
}

/// Builds the actor: `scope` is a space-separated string or an array of strings (unknown scopes
/// are ignored); `roles` is an array of `<cf_role_name>:<guid>` strings.
///
/// # Errors
/// A short reason when a claim has the wrong shape.
pub fn actor_from_claims(
    claims: &VerifiedClaims,
    scope_claim: &str,
    roles_claim: &str,
) -> Result<Actor, &'static str> {
    let scopes: Vec<String> = match claims.claims.get(scope_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or("scope claim holds a non-string")?,
        Some(_) => return Err("scope claim is neither a string nor an array"),
    };
    let roles: Vec<Role> = match claims.claims.get(roles_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().and_then(|text| Role::parse(text).ok()))
            .collect::<Option<_>>()
            .ok_or("roles claim holds an entry that is not <role>:<guid>")?,
        Some(_) => return Err("roles claim is not an array"),
    };
    Ok(Actor::new(
        claims.subject.clone(),
        scopes
            .iter()
            .filter_map(|scope| PlatformScope::from_claim(scope)),
        roles,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "scope",
            "roles",
        )
        .unwrap();
        assert!(actor.has_scope(PlatformScope::Admin));
        assert_eq!(actor.roles().count(), 1);
        let actor = actor_from_claims(
            &claims(serde_json::json!({"scp": ["berth.global_auditor"]})),
            "scp",
            "roles",
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
                actor_from_claims(&claims(value.clone()), "scope", "roles").is_err(),
                "{value}"
            );
        }
    }
}
