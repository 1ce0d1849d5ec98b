//! Minting HS256 tokens, for `berth token`, dev mode and tests.

use std::time::Duration;

use jsonwebtoken::errors::{ErrorKind, new_error};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::MIN_HS256_SECRET_BYTES;

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct MintClaims {
    /// `sub`.
    pub subject: String,
    /// `scope`, joined with spaces; omitted when empty.
    pub scopes: Vec<String>,
    /// `roles`, an array of strings; omitted when empty.
    pub roles: Vec<String>,
    /// `exp` is `iat` plus this (whole seconds).
    pub ttl: Duration,
    /// `iss`, when set.
    pub issuer: Option<String>,
    /// `aud`, when set.
    pub audience: Option<String>,
}

/// Mints an HS256 token carrying `sub`, `iat`, `exp`, `scope` and `roles` (when not empty), and
/// `iss` and `aud` (when given).
///
/// # Errors
/// jsonwebtoken's error if signing fails; [`ErrorKind::InvalidKeyFormat`] for a secret shorter
/// than [`MIN_HS256_SECRET_BYTES`], which no [`TokenVerifier`](super::TokenVerifier) accepts.
pub fn mint_hs256(
    secret: &SecretString,
    claims: &MintClaims,
) -> Result<String, jsonwebtoken::errors::Error> {
    let secret = secret.expose_secret().as_bytes();
    if secret.len() < MIN_HS256_SECRET_BYTES {
        return Err(new_error(ErrorKind::InvalidKeyFormat));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ttl = i64::try_from(claims.ttl.as_secs()).unwrap_or(i64::MAX);
    let mut body = Map::new();
    body.insert("sub".into(), Value::from(claims.subject.as_str()));
    body.insert("iat".into(), Value::from(now));
    body.insert("exp".into(), Value::from(now.saturating_add(ttl)));
    if !claims.scopes.is_empty() {
        body.insert("scope".into(), Value::from(claims.scopes.join(" ")));
    }
    if !claims.roles.is_empty() {
        body.insert("roles".into(), Value::from(claims.roles.clone()));
    }
    if let Some(issuer) = &claims.issuer {
        body.insert("iss".into(), Value::from(issuer.as_str()));
    }
    if let Some(audience) = &claims.audience {
        body.insert("aud".into(), Value::from(audience.as_str()));
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &body,
        &EncodingKey::from_secret(secret),
    )
}
