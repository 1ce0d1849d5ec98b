//! The JOSE header of a compact JWS, read before any key is chosen.
//!
//! Berth parses it itself rather than with `jsonwebtoken::decode_header` to tell an algorithm it
//! refuses (`none`, `HS512`, ...) from a token that is simply garbage, and to refuse `crit`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::TokenError;

/// Longest token looked at. Real access tokens stay well below; the bound keeps the work an
/// anonymous caller can cause small.
const MAX_TOKEN_BYTES: usize = 32 * 1024;

/// What key selection needs from the header.
#[derive(Debug)]
pub(super) struct JoseHeader {
    /// One of the four algorithms Berth accepts.
    pub alg: Algorithm,
    pub kid: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// RFC 7515 §4.1.11: a recipient must refuse a token whose critical extensions it does not
    /// understand, and Berth understands none.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

impl JoseHeader {
    /// Reads the header of a compact JWS (`header.payload.signature`).
    ///
    /// # Errors
    /// [`TokenError::Malformed`] for anything but three dot-separated parts with a base64url JSON
    /// object header; [`TokenError::UnsupportedAlgorithm`] for any `alg` but HS256, RS256, ES256
    /// and EdDSA.
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if header.is_empty() || payload.is_empty() {
            return Err(TokenError::Malformed);
        }
        let json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenError::Malformed)?;
        // Derived deserialization also refuses duplicate members: two `alg`s are ambiguous.
        let raw: RawHeader = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if raw.crit.is_some() {
            return Err(TokenError::Malformed);
        }
        // Exact, case-sensitive names (RFC 7515 §4.1.1): "none", "None", "hs256" are all refused.
        let alg = match raw.alg.as_str() {
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            "EdDSA" => Algorithm::EdDSA,
            _ => return Err(TokenError::UnsupportedAlgorithm),
        };
        Ok(Self { alg, kid: raw.kid })
    }
}
