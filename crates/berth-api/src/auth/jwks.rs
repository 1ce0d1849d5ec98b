//! A JSON Web Key Set from a file or a URL, cached, refreshed on an unknown key id at most once
//! per interval (concurrent requests wait for one refresh instead of stampeding).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::TokenError;

/// Why a key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read auth.jwks_file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fetch auth.jwks_url: {0}")]
    Fetch(String),
    #[error("the key set is not a JWKS document")]
    Parse,
    #[error("the key set holds no RS256, ES256 (P-256) or EdDSA (Ed25519) key")]
    NoUsableKey,
}

#[derive(Clone)]
struct Key {
    id: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
}

enum Origin {
    File(PathBuf),
    Url {
        url: String,
        client: reqwest::Client,
    },
}

/// Where keys come from and the keys last read.
pub struct JwksSource {
    origin: Origin,
    keys: RwLock<Arc<Vec<Key>>>,
    last_refresh: Mutex<Instant>,
    refresh_interval: Duration,
}

impl JwksSource {
    /// # Errors
    /// [`JwksError`] when the file cannot be read or holds no usable key.
    pub async fn file(path: PathBuf, refresh_interval: Duration) -> Result<Self, JwksError> {
        Self::load(Origin::File(path), refresh_interval).await
    }

    /// # Errors
    /// [`JwksError`] when the URL cannot be fetched or holds no usable key.
    pub async fn url(url: String, refresh_interval: Duration) -> Result<Self, JwksError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| JwksError::Fetch(error.to_string()))?;
        Self::load(Origin::Url { url, client }, refresh_interval).await
    }

    async fn load(origin: Origin, refresh_interval: Duration) -> Result<Self, JwksError> {
        let keys = fetch(&origin).await?;
        Ok(Self {
            origin,
            keys: RwLock::new(Arc::new(keys)),
            last_refresh: Mutex::new(Instant::now()),
            refresh_interval,
        })
    }

    /// The key for a token's `kid` (or the only key of its algorithm when it has none), and the
    /// algorithm that key verifies.
    ///
    /// # Errors
    /// [`TokenError::UnknownKey`] when no key matches even after a refresh;
    /// [`TokenError::Algorithm`] when the key does not verify `algorithm`.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<(DecodingKey, Algorithm), TokenError> {
        if let Some(found) = find(&self.keys.read().await, kid, algorithm) {
            return found;
        }
        self.refresh().await;
        find(&self.keys.read().await, kid, algorithm).unwrap_or(Err(TokenError::UnknownKey))
    }

    async fn refresh(&self) {
        let mut last = self.last_refresh.lock().await;
        if last.elapsed() < self.refresh_interval {
            return;
        }
        *last = Instant::now();
        match fetch(&self.origin).await {
            Ok(keys) => *self.keys.write().await = Arc::new(keys),
            Err(error) => {
                tracing::warn!(%error, "refreshing the JWKS failed; keeping the keys last read")
            }
        }
    }
}

fn find(
    keys: &[Key],
    kid: Option<&str>,
    algorithm: Algorithm,
) -> Option<Result<(DecodingKey, Algorithm), TokenError>> {
    let key = match kid {
        Some(kid) => keys.iter().find(|key| key.id.as_deref() == Some(kid))?,
        None => {
            let mut candidates = keys.iter().filter(|key| key.algorithm == algorithm);
            let only = candidates.next()?;
            if candidates.next().is_some() {
                return Some(Err(TokenError::UnknownKey));
            }
            only
        }
    };
    if key.algorithm != algorithm {
        return Some(Err(TokenError::Algorithm));
    }
    Some(Ok((key.decoding.clone(), key.algorithm)))
}

async fn fetch(origin: &Origin) -> Result<Vec<Key>, JwksError> {
    let body = match origin {
        Origin::File(path) => tokio::fs::read(path)
            .await
            .map_err(|source| JwksError::File {
                path: path.display().to_string(),
                source,
            })?,
        Origin::Url { url, client } => {
            let response = client
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|error| JwksError::Fetch(error.without_url().to_string()))?;
            response
                .bytes()
                .await
                .map_err(|error| JwksError::Fetch(error.to_string()))?
                .to_vec()
        }
    };
    let set: JwkSet = serde_json::from_slice(&body).map_err(|_| JwksError::Parse)?;
    let keys: Vec<Key> = set
        .keys
        .iter()
        .filter_map(|jwk| {
            // The algorithm follows from the key type alone.
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(params)
                    if params.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                AlgorithmParameters::OctetKeyPair(params)
                    if params.curve == EllipticCurve::Ed25519 =>
                {
                    Algorithm::EdDSA
                }
                _ => return None,
            };
            let decoding = DecodingKey::from_jwk(jwk).ok()?;
            Some(Key {
                id: jwk.common.key_id.clone(),
                algorithm,
                decoding,
            })
        })
        .collect();
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok(keys)
}
