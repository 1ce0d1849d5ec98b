//! JSON Web Key Sets: which of their keys Berth uses (each bound to its one algorithm), and a
//! cached source that reloads the set when a token names an unknown key, throttled and without
//! stampedes.

use std::fmt;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
    RSAKeyParameters,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use super::TokenError;

/// Largest key set read or fetched; real ones are a few kilobytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds the whole fetch, so a stalled identity provider delays a request by at most this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// RS256 keys shorter than this are refused (RFC 7518 §3.3); longer than the maximum, the
/// crypto backend cannot verify with them.
const RSA_MODULUS_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// Why a key set could not be loaded. Never quotes the document: it names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not an http:// or https:// URL")]
    InvalidUrl,
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("cannot fetch the key set")]
    Fetch(#[source] reqwest::Error),
    #[error("the key set URL answered HTTP {0}")]
    Status(u16),
    #[error("the key set is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the key set is not a JWKS JSON document (line {line}, column {column})")]
    Parse { line: usize, column: usize },
    #[error(
        "the key set holds no usable signing key (RSA of 2048 to 8192 bits, EC P-256 or Ed25519)"
    )]
    NoUsableKey,
}

/// One public key and the one algorithm it verifies.
pub(super) struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
}

impl Key {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// The usable keys of one JWKS document.
pub(super) struct KeySet {
    keys: Vec<Arc<Key>>,
}

/// The outcome of looking a token's key up in a [`KeySet`].
enum Lookup {
    Found(Arc<Key>),
    /// The `kid` names keys, none of which verifies the token's algorithm.
    Mismatch,
    /// No `kid`, and several keys verify the token's algorithm.
    Ambiguous,
    /// No key has the `kid` (or, without one, none verifies the algorithm): maybe a newer set has.
    Missing,
}

impl Lookup {
    fn into_result(self, reload_failed: bool) -> Result<Arc<Key>, TokenError> {
        match self {
            Self::Found(key) => Ok(key),
            Self::Mismatch => Err(TokenError::AlgorithmMismatch),
            Self::Ambiguous => Err(TokenError::UnknownKey),
            Self::Missing if reload_failed => Err(TokenError::JwksUnavailable),
            Self::Missing => Err(TokenError::UnknownKey),
        }
    }
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<Value>,
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys Berth can use and skipping the others (identity
    /// providers publish encryption keys and other algorithms alongside signing keys).
    ///
    /// # Errors
    /// [`JwksError::Parse`] for a document that is not `{"keys": [...]}`,
    /// [`JwksError::NoUsableKey`] when no key is usable.
    pub fn parse(body: &[u8]) -> Result<Self, JwksError> {
        let raw: RawKeySet = serde_json::from_slice(body).map_err(|error| JwksError::Parse {
            line: error.line(),
            column: error.column(),
        })?;
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (index, value) in raw.keys.into_iter().enumerate() {
            match usable_key(value) {
                Ok(key) => keys.push(Arc::new(key)),
                Err(reason) => tracing::debug!(index, reason, "JWKS entry skipped"),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Self { keys })
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// The key a token names with `kid` if it verifies `algorithm`; without a `kid`, the only key
    /// that verifies `algorithm`.
    fn lookup(&self, kid: Option<&str>, algorithm: Algorithm) -> Lookup {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Lookup::Missing;
                }
                named
                    .find(|key| key.algorithm == algorithm)
                    .map_or(Lookup::Mismatch, |key| Lookup::Found(key.clone()))
            }
            None => {
                let mut fitting = self.keys.iter().filter(|key| key.algorithm == algorithm);
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Lookup::Found(only.clone()),
                    (Some(_), Some(_)) => Lookup::Ambiguous,
                    (None, _) => Lookup::Missing,
                }
            }
        }
    }
}

/// The key a JWK describes, if Berth can use it, or why not.
fn usable_key(value: Value) -> Result<Key, &'static str> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| "not a JSON Web Key")?;
    let common = &jwk.common;
    if common
        .public_key_use
        .as_ref()
        .is_some_and(|usage| *usage != PublicKeyUse::Signature)
    {
        return Err("not a signature key (use)");
    }
    if common
        .key_operations
        .as_ref()
        .is_some_and(|operations| !operations.contains(&KeyOperations::Verify))
    {
        return Err("not a verification key (key_ops)");
    }
    // The key type alone decides the algorithm; nothing a token says can widen it.
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            check_rsa(rsa)?;
            Algorithm::RS256
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            check_length(&ec.x, 32)?;
            check_length(&ec.y, 32)?;
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            check_length(&okp.x, 32)?;
            Algorithm::EdDSA
        }
        _ => return Err("not an RSA, EC P-256 or Ed25519 public key"),
    };
    // A published `alg` restricts the key further (RFC 7517 §4.4): an RSA key published for
    // RS512 or PS256 is not an RS256 key.
    if common
        .key_algorithm
        .is_some_and(|declared| declared != KeyAlgorithm::from(algorithm))
    {
        return Err("published for another algorithm (alg)");
    }
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| "unreadable key parameters")?;
    Ok(Key {
        kid: jwk.common.key_id,
        algorithm,
        decoding,
    })
}

fn check_rsa(rsa: &RSAKeyParameters) -> Result<(), &'static str> {
    let modulus = URL_SAFE_NO_PAD
        .decode(&rsa.n)
        .map_err(|_| "RSA modulus is not base64url")?;
    let exponent = URL_SAFE_NO_PAD
        .decode(&rsa.e)
        .map_err(|_| "RSA exponent is not base64url")?;
    let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
    let bits = match modulus.get(modulus.len() - significant) {
        Some(first) => significant * 8 - first.leading_zeros() as usize,
        None => 0,
    };
    if !RSA_MODULUS_BITS.contains(&bits) {
        return Err("RSA modulus size out of range");
    }
    if exponent.is_empty() {
        return Err("RSA exponent is empty");
    }
    Ok(())
}

fn check_length(coordinate: &str, length: usize) -> Result<(), &'static str> {
    match URL_SAFE_NO_PAD.decode(coordinate) {
        Ok(bytes) if bytes.len() == length => Ok(()),
        _ => Err("key coordinate of the wrong size"),
    }
}

/// Where a key set comes from.
enum Origin {
    File(PathBuf),
    Url {
        url: reqwest::Url,
        client: reqwest::Client,
    },
}

impl Origin {
    async fn load(&self) -> Result<KeySet, JwksError> {
        let body = match self {
            Self::File(path) => read_file(path.clone()).await?,
            Self::Url { url, client } => fetch(client, url).await?,
        };
        KeySet::parse(&body)
    }
}

async fn read_file(path: PathBuf) -> Result<Vec<u8>, JwksError> {
    // std::fs on the blocking pool: the tokio "fs" feature is not a dependency of this crate.
    let reading = path.clone();
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        std::fs::File::open(reading)?
            .take(MAX_JWKS_BYTES as u64 + 1)
            .read_to_end(&mut body)?;
        Ok(body)
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join)));
    match read {
        Ok(body) if body.len() > MAX_JWKS_BYTES => Err(JwksError::TooLarge),
        Ok(body) => Ok(body),
        Err(source) => Err(JwksError::Read { path, source }),
    }
}

async fn fetch(client: &reqwest::Client, url: &reqwest::Url) -> Result<Vec<u8>, JwksError> {
    // Errors drop the URL: it is in the configuration already and may carry credentials.
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| JwksError::Fetch(error.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(JwksError::Status(status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
    {
        return Err(JwksError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| JwksError::Fetch(error.without_url()))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A key set from a file or a URL: loaded once at start, then reloaded when a token names a key
/// the cached set lacks, at most once per `refresh_interval`.
pub(super) struct JwksSource {
    origin: Origin,
    /// Read by every verification; replaced whole by a reload, so a reader never waits for a
    /// fetch, only for the pointer swap.
    keys: RwLock<Arc<KeySet>>,
    /// Held across a reload: tasks that miss a key at the same time queue here, and all but the
    /// first then find the set reloaded (by `reload_attempts`) instead of fetching it again.
    refresh: Mutex<RefreshState>,
    reload_attempts: AtomicU64,
    refresh_interval: Duration,
}

struct RefreshState {
    last_attempt: Instant,
    last_failed: bool,
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry credentials; the kind of origin is enough.
        let origin = match &self.origin {
            Origin::File(_) => "file",
            Origin::Url { .. } => "url",
        };
        f.debug_struct("JwksSource")
            .field("origin", &origin)
            .field("refresh_interval", &self.refresh_interval)
            .finish_non_exhaustive()
    }
}

impl JwksSource {
    /// Reads the key set from `path`.
    ///
    /// # Errors
    /// A [`JwksError`] when the file cannot be read or holds no usable key.
    pub async fn file(path: PathBuf, refresh_interval: Duration) -> Result<Self, JwksError> {
        Self::load(Origin::File(path), refresh_interval).await
    }

    /// Fetches the key set from `url` with a client kept for later reloads.
    ///
    /// # Errors
    /// A [`JwksError`] when the URL is not http(s), cannot be fetched, or serves no usable key.
    pub async fn url(url: &str, refresh_interval: Duration) -> Result<Self, JwksError> {
        let url = reqwest::Url::parse(url).map_err(|_| JwksError::InvalidUrl)?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(JwksError::InvalidUrl),
        };
        if !https && !is_loopback(&url) {
            tracing::warn!(
                "auth.jwks_url uses plain http: anyone on the path can replace the signing keys"
            );
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            // An https key set must not be redirected to plain http.
            .https_only(https)
            .build()
            .map_err(JwksError::Client)?;
        Self::load(Origin::Url { url, client }, refresh_interval).await
    }

    async fn load(origin: Origin, refresh_interval: Duration) -> Result<Self, JwksError> {
        let keys = origin.load().await?;
        Ok(Self {
            origin,
            keys: RwLock::new(Arc::new(keys)),
            refresh: Mutex::new(RefreshState {
                last_attempt: Instant::now(),
                last_failed: false,
            }),
            reload_attempts: AtomicU64::new(0),
            refresh_interval,
        })
    }

    /// Whether the cached set has a key with this id (no reload).
    pub async fn knows_kid(&self, kid: &str) -> bool {
        self.keys.read().await.has_kid(kid)
    }

    /// The key for a token's `kid` (without one, the only key for its algorithm), reloading the
    /// set once if it is missing.
    ///
    /// # Errors
    /// [`TokenError::AlgorithmMismatch`] when the key does not verify `algorithm`;
    /// [`TokenError::UnknownKey`] when no key matches, even after a reload;
    /// [`TokenError::JwksUnavailable`] when no key matches and the last reload failed.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Arc<Key>, TokenError> {
        let attempts_seen = self.reload_attempts.load(Ordering::Acquire);
        match self.current().await.lookup(kid, algorithm) {
            Lookup::Missing => {}
            found => return found.into_result(false),
        }
        let reload_failed = self.reload(attempts_seen).await;
        self.current()
            .await
            .lookup(kid, algorithm)
            .into_result(reload_failed)
    }

    async fn current(&self) -> Arc<KeySet> {
        self.keys.read().await.clone()
    }

    /// Reloads the set unless another task has tried since `attempts_seen` or the last attempt is
    /// more recent than the refresh interval. Returns whether the latest attempt failed.
    async fn reload(&self, attempts_seen: u64) -> bool {
        let mut state = self.refresh.lock().await;
        let tried_meanwhile = self.reload_attempts.load(Ordering::Acquire) != attempts_seen;
        if tried_meanwhile || state.last_attempt.elapsed() < self.refresh_interval {
            return state.last_failed;
        }
        state.last_attempt = Instant::now();
        state.last_failed = match self.origin.load().await {
            Ok(keys) => {
                tracing::info!(keys = keys.keys.len(), "reloaded the JWKS");
                *self.keys.write().await = Arc::new(keys);
                false
            }
            Err(error) => {
                // Keeping the old keys: known keys keep working while the source is down.
                tracing::warn!(
                    error = %ErrorChain(&error),
                    "reloading the JWKS failed; keeping the keys loaded before"
                );
                true
            }
        };
        self.reload_attempts.fetch_add(1, Ordering::Release);
        state.last_failed
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    // IPv6 hosts come bracketed.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// An error and its sources, `: `-separated, for one log field.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
