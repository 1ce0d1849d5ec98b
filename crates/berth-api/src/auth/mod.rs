//! Bearer token verification: HS256 with a shared secret, and RS256, ES256 and EdDSA with keys
//! from a JWKS (a file, or a URL fetched and cached).
//!
//! The algorithm is decided by the key, never trusted from the token: an RSA key verifies only
//! RS256, a P-256 key only ES256, an Ed25519 key only EdDSA, the shared secret only HS256. So
//! `alg: none` and algorithm confusion (an HS256 token "signed" with an RSA public key) fail.

mod jwks;

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

pub use jwks::JwksSource;

/// How tokens are verified; built by the configuration layer.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub hs256_secret: Option<SecretString>,
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
}

/// Why the verifier could not be built. Messages name settings, never key material.
#[derive(Debug, thiserror::Error)]
pub enum VerifierConfigError {
    #[error(
        "no token verifier: set auth.hs256_secret (BERTH_AUTH__HS256_SECRET), auth.jwks_file \
         (BERTH_AUTH__JWKS_FILE) or auth.jwks_url (BERTH_AUTH__JWKS_URL)"
    )]
    NoVerifier,
    #[error("auth.hs256_secret must be at least 32 bytes")]
    WeakSecret,
    #[error("the JWKS could not be loaded: {0}")]
    Jwks(#[from] jwks::JwksError),
}

/// Why a token was refused. Never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted for its key")]
    Algorithm,
    #[error("no key matches the token's key id")]
    UnknownKey,
    #[error("the signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    Issuer,
    #[error("the token's audience is not accepted")]
    Audience,
    #[error("the token lacks a required claim ({0})")]
    MissingClaim(&'static str),
    #[error("the key set cannot be fetched")]
    KeysUnavailable,
}

/// A verified token's subject and all of its claims.
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    pub subject: String,
    pub claims: Map<String, Value>,
}

/// Verifies bearer tokens. Cheap to share behind an `Arc`.
pub struct TokenVerifier {
    hs256: Option<DecodingKey>,
    jwks: Option<JwksSource>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

/// Shortest HS256 secret accepted: 256 bits, the size of the MAC.
const MIN_SECRET_BYTES: usize = 32;

impl TokenVerifier {
    /// Loads the JWKS file or fetches the JWKS URL once, so a bad setting fails at start.
    ///
    /// # Errors
    /// [`VerifierConfigError`] naming the setting at fault.
    pub async fn new(settings: AuthSettings) -> Result<Self, VerifierConfigError> {
        Self::with_refresh_interval(settings, Duration::from_secs(30)).await
    }

    /// As [`TokenVerifier::new`], with the least time between two JWKS refreshes.
    ///
    /// # Errors
    /// As [`TokenVerifier::new`].
    pub async fn with_refresh_interval(
        settings: AuthSettings,
        refresh_interval: Duration,
    ) -> Result<Self, VerifierConfigError> {
        let hs256 = match &settings.hs256_secret {
            Some(secret) if secret.expose_secret().len() < MIN_SECRET_BYTES => {
                return Err(VerifierConfigError::WeakSecret);
            }
            Some(secret) => Some(DecodingKey::from_secret(secret.expose_secret().as_bytes())),
            None => None,
        };
        let jwks = match (&settings.jwks_url, &settings.jwks_file) {
            (Some(url), _) => Some(JwksSource::url(url.clone(), refresh_interval).await?),
            (None, Some(path)) => Some(JwksSource::file(path.clone(), refresh_interval).await?),
            (None, None) => None,
        };
        if hs256.is_none() && jwks.is_none() {
            return Err(VerifierConfigError::NoVerifier);
        }
        Ok(Self {
            hs256,
            jwks,
            issuer: settings.issuer,
            audience: settings.audience,
            leeway: settings.leeway_seconds,
        })
    }

    /// Verifies signature, `exp` (required), `nbf`, `iss` and `aud` (when configured) and `sub`.
    ///
    /// # Errors
    /// A [`TokenError`] saying why.
    pub async fn verify(&self, token: &str) -> Result<VerifiedClaims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        let (key, algorithm) = match header.alg {
            Algorithm::HS256 => (
                self.hs256.clone().ok_or(TokenError::Algorithm)?,
                Algorithm::HS256,
            ),
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA => {
                let jwks = self.jwks.as_ref().ok_or(TokenError::Algorithm)?;
                jwks.key_for(header.kid.as_deref(), header.alg).await?
            }
            _ => return Err(TokenError::Algorithm),
        };
        if algorithm != header.alg {
            return Err(TokenError::Algorithm);
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        // A configured issuer or audience must be present, not merely right when present.
        let mut required = vec!["exp", "sub"];
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        required.extend(self.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &self.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let data = decode::<Map<String, Value>>(token, &key, &validation).map_err(token_error)?;
        let subject = match data.claims.get("sub") {
            Some(Value::String(subject)) if !subject.is_empty() => subject.clone(),
            _ => return Err(TokenError::MissingClaim("sub")),
        };
        Ok(VerifiedClaims {
            subject,
            claims: data.claims,
        })
    }
}

fn token_error(error: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => TokenError::Signature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            _ => "sub",
        }),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
        _ => TokenError::Malformed,
    }
}

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct MintClaims {
    pub subject: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub ttl: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Mints an HS256 token (for `berth token`, dev mode and tests).
///
/// # Errors
/// jsonwebtoken's error if signing fails.
pub fn mint_hs256(
    secret: &SecretString,
    claims: &MintClaims,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ttl = i64::try_from(claims.ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let mut body = Map::new();
    body.insert("sub".into(), claims.subject.clone().into());
    body.insert("iat".into(), now.into());
    body.insert("exp".into(), now.saturating_add(ttl).into());
    body.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
    if !claims.scopes.is_empty() {
        body.insert("scope".into(), claims.scopes.join(" ").into());
    }
    if !claims.roles.is_empty() {
        body.insert("roles".into(), claims.roles.clone().into());
    }
    if let Some(issuer) = &claims.issuer {
        body.insert("iss".into(), issuer.clone().into());
    }
    if let Some(audience) = &claims.audience {
        body.insert("aud".into(), audience.clone().into());
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &body,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
}

#[cfg(test)]
mod tests;
