//! Bearer token verification for `Authorization: Bearer <JWT>`.
//!
//! Two kinds of keys are accepted: a shared secret for HS256, and the public keys of a JSON Web
//! Key Set (a file, or a URL fetched and cached) for RS256, ES256 and EdDSA (Ed25519).
//!
//! The algorithm is decided by the key, never by the token: an RSA key verifies only RS256, a
//! P-256 key only ES256, an Ed25519 key only EdDSA, the shared secret only HS256. A token whose
//! header names another algorithm is refused before any cryptography runs, which makes `alg: none`
//! and algorithm confusion (an HS256 token "signed" with an RSA public key as the HMAC secret)
//! impossible by construction.
//!
//! Errors never carry the token, the secret or key material, so they are safe to log.

mod authenticator;
mod header;
mod jwks;
mod mint;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use self::header::JoseHeader;
use self::jwks::JwksSource;

pub use self::authenticator::{
    AuthFailure, AuthProfile, Authenticator, ClaimRules, RolesSource, actor_from_claims,
    authenticate,
};
pub use self::jwks::JwksError;
pub use self::mint::{MintClaims, mint_hs256};

/// Shortest accepted HS256 secret: RFC 7518 §3.2 asks for a key at least as long as the hash
/// output (256 bits); a shorter one is brute-forceable from any token it signed.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Largest accepted clock-skew leeway. More would keep expired tokens alive for no good reason.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// Least time between two JWKS reloads triggered by unknown key ids, so a stream of tokens with
/// made-up `kid`s cannot turn Berth into a load generator against the identity provider.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// How tokens are verified. Plain data, built by the configuration layer.
///
/// At least one of `hs256_secret`, `jwks_file` and `jwks_url` must be set; `jwks_file` and
/// `jwks_url` exclude each other.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Shared secret for HS256 tokens (at least [`MIN_HS256_SECRET_BYTES`] bytes).
    pub hs256_secret: Option<SecretString>,
    /// A JWKS document on disk, read at start and reloaded when a token names an unknown key.
    pub jwks_file: Option<PathBuf>,
    /// An `http(s)` URL serving a JWKS document, fetched at start, cached, refetched when a token
    /// names an unknown key.
    pub jwks_url: Option<String>,
    /// When set, tokens must carry exactly this `iss`.
    pub issuer: Option<String>,
    /// When set, tokens must carry this `aud` (alone or in an array).
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (at most [`MAX_LEEWAY_SECONDS`]).
    pub leeway_seconds: u64,
}

/// Why a [`TokenVerifier`] could not be built. Messages name settings, never secrets or keys.
#[derive(Debug, thiserror::Error)]
pub enum VerifierConfigError {
    #[error(
        "no token verifier is configured: set auth.hs256_secret (BERTH_AUTH__HS256_SECRET), \
         auth.jwks_file (BERTH_AUTH__JWKS_FILE) or auth.jwks_url (BERTH_AUTH__JWKS_URL)"
    )]
    NoVerifier,
    #[error("auth.jwks_file and auth.jwks_url are both set: configure one key set")]
    ConflictingJwks,
    #[error("auth.hs256_secret must be at least {MIN_HS256_SECRET_BYTES} bytes long")]
    WeakSecret,
    #[error("auth.leeway_seconds must be at most {MAX_LEEWAY_SECONDS}")]
    LeewayTooLarge,
    #[error("auth.jwks_url must be an http:// or https:// URL")]
    InvalidJwksUrl,
    #[error("cannot load the key set from {setting}")]
    Jwks {
        /// `auth.jwks_file` or `auth.jwks_url`.
        setting: &'static str,
        #[source]
        source: JwksError,
    },
}

/// Why a token was refused. Never holds the token or any part of it (not even its `kid`, which is
/// attacker-chosen text), so it is safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, a header or payload that is not a JSON object, a `crit` header,
    /// or claims of the wrong type.
    #[error("the token is malformed")]
    Malformed,
    /// The header names an algorithm Berth never accepts (`none`, HS512, PS256, ...), or one no
    /// configured key can verify (HS256 without a secret, RS256 without a JWKS, ...).
    #[error("the token's algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The header names an algorithm other than the one its key verifies.
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// No key in the key set has the token's `kid` (or, without a `kid`, there is not exactly one
    /// key for its algorithm), even after reloading the key set.
    #[error("no key matches the token's key id")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Wrong or missing `iss` when an issuer is configured.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// Wrong or missing `aud` when an audience is configured.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// No `exp`, or one that is not a number.
    #[error("the token has no valid expiry (exp)")]
    MissingExpiry,
    /// No `sub`, or one that is not a non-blank string.
    #[error("the token has no subject (sub)")]
    MissingSubject,
    /// The token names a key Berth does not know and the key set could not be reloaded.
    #[error("the signing keys are unavailable")]
    JwksUnavailable,
}

/// A verified token: its subject, and all its claims for the caller to read scopes and roles from.
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    pub subject: String,
    pub claims: Map<String, Value>,
}

/// Verifies bearer tokens. `Send + Sync`; share it behind an `Arc`.
pub struct TokenVerifier {
    hs256: Option<DecodingKey>,
    jwks: Option<JwksSource>,
    issuer: Option<String>,
    /// Everything but the algorithm, which is set per token from its key.
    validation: Validation,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shows what is configured, never the secret.
        f.debug_struct("TokenVerifier")
            .field("hs256", &self.hs256.is_some())
            .field("jwks", &self.jwks)
            .field("issuer", &self.issuer)
            .field("audience", &self.validation.aud)
            .field("leeway", &self.validation.leeway)
            .finish()
    }
}

impl TokenVerifier {
    /// Checks the settings and loads the key set (reads the JWKS file, or fetches the JWKS URL
    /// once), so a bad setting fails at start rather than on the first request.
    ///
    /// # Errors
    /// A [`VerifierConfigError`] naming the setting at fault.
    pub async fn new(settings: AuthSettings) -> Result<Self, VerifierConfigError> {
        Self::with_refresh_interval(settings, MIN_REFRESH_INTERVAL).await
    }

    /// As [`TokenVerifier::new`], with the least time between two reloads of the key set (tests
    /// use zero).
    pub(crate) async fn with_refresh_interval(
        settings: AuthSettings,
        refresh_interval: Duration,
    ) -> Result<Self, VerifierConfigError> {
        if settings.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(VerifierConfigError::LeewayTooLarge);
        }
        let hs256 = match &settings.hs256_secret {
            Some(secret) if secret.expose_secret().len() < MIN_HS256_SECRET_BYTES => {
                return Err(VerifierConfigError::WeakSecret);
            }
            Some(secret) => Some(DecodingKey::from_secret(secret.expose_secret().as_bytes())),
            None => None,
        };
        let jwks = match (settings.jwks_file, settings.jwks_url) {
            (Some(_), Some(_)) => return Err(VerifierConfigError::ConflictingJwks),
            (Some(path), None) => Some(JwksSource::file(path, refresh_interval).await.map_err(
                |source| VerifierConfigError::Jwks {
                    setting: "auth.jwks_file",
                    source,
                },
            )?),
            (None, Some(url)) => Some(JwksSource::url(&url, refresh_interval).await.map_err(
                |source| match source {
                    JwksError::InvalidUrl => VerifierConfigError::InvalidJwksUrl,
                    source => VerifierConfigError::Jwks {
                        setting: "auth.jwks_url",
                        source,
                    },
                },
            )?),
            (None, None) => None,
        };
        if hs256.is_none() && jwks.is_none() {
            return Err(VerifierConfigError::NoVerifier);
        }

        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = settings.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // A configured issuer or audience must be present, not merely right when present. `sub`
        // is checked below, where a non-string or blank one is caught as well.
        let mut required = vec!["exp"];
        match &settings.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Otherwise jsonwebtoken refuses every token that has an `aud`; without a configured
            // audience Berth does not care whom else a token is meant for.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        Ok(Self {
            hs256,
            jwks,
            issuer: settings.issuer,
            validation,
        })
    }

    /// Verifies the token's signature with the key it names, then `exp` (required), `nbf` (when
    /// present), `iss` and `aud` (when configured) and `sub` (required), and returns the claims.
    ///
    /// # Errors
    /// A [`TokenError`] saying why the token is refused.
    pub async fn verify(&self, token: &str) -> Result<VerifiedClaims, TokenError> {
        let header = JoseHeader::parse(token)?;
        let data = match header.alg {
            Algorithm::HS256 => {
                let key = self.hs256_key(&header).await?;
                self.decode(token, key, Algorithm::HS256)?
            }
            algorithm => {
                let jwks = self.jwks.as_ref().ok_or(TokenError::UnsupportedAlgorithm)?;
                let key = jwks.key_for(header.kid.as_deref(), algorithm).await?;
                // `key_for` returns only a key whose one algorithm is the header's; checked
                // again here because it is the property everything rests on.
                if key.algorithm() != algorithm {
                    return Err(TokenError::AlgorithmMismatch);
                }
                self.decode(token, key.decoding_key(), algorithm)?
            }
        };
        if let Some(issuer) = &self.issuer {
            // jsonwebtoken also accepts an array holding the issuer; `iss` is a single string.
            if data.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(TokenError::WrongIssuer);
            }
        }
        let subject = match data.get("sub") {
            Some(Value::String(subject)) if !subject.trim().is_empty() => subject.clone(),
            _ => return Err(TokenError::MissingSubject),
        };
        Ok(VerifiedClaims {
            subject,
            claims: data,
        })
    }

    /// The shared secret, for an HS256 token.
    async fn hs256_key(&self, header: &JoseHeader) -> Result<&DecodingKey, TokenError> {
        // A `kid` naming a key of the key set binds the token to that (asymmetric) key: HS256
        // does not fit it, whatever secret the token was made with.
        if let (Some(jwks), Some(kid)) = (&self.jwks, header.kid.as_deref())
            && jwks.knows_kid(kid).await
        {
            return Err(TokenError::AlgorithmMismatch);
        }
        self.hs256.as_ref().ok_or(TokenError::UnsupportedAlgorithm)
    }

    /// Checks signature and time, issuer and audience claims with `key`, for `algorithm` only.
    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
    ) -> Result<Map<String, Value>, TokenError> {
        let mut validation = self.validation.clone();
        validation.algorithms = vec![algorithm];
        jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|error| token_error(error.kind()))
    }
}

/// Maps jsonwebtoken's reasons onto Berth's (dropping any detail, which may quote the token).
fn token_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            match claim.as_str() {
                "exp" => TokenError::MissingExpiry,
                "iss" => TokenError::WrongIssuer,
                "aud" => TokenError::WrongAudience,
                _ => TokenError::Malformed,
            }
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => TokenError::AlgorithmMismatch,
        // A key the crypto backend cannot use verifies nothing.
        ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat => TokenError::BadSignature,
        _ => TokenError::Malformed,
    }
}

/// The verifier is shared across actix workers.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<TokenVerifier>();
};
