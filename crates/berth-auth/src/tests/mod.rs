//! Token verification tests, with the fixed test-only keys of `tests/fixtures/jwt/`.

mod attacks;
mod claims;
mod config;
mod jwks_file;
mod jwks_url;
mod mint;
mod uaa;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{AuthSettings, TokenError, TokenVerifier};

const RSA_PEM: &str = include_str!("../../tests/fixtures/jwt/rsa.pem");
const RSA_PUBLIC_PEM: &str = include_str!("../../tests/fixtures/jwt/rsa.pub.pem");
const RSA_2_PEM: &str = include_str!("../../tests/fixtures/jwt/rsa-2.pem");
const EC_PEM: &str = include_str!("../../tests/fixtures/jwt/ec.pem");
const ED25519_PEM: &str = include_str!("../../tests/fixtures/jwt/ed25519.pem");
/// `rsa-1`, `ec-1`, `ed-1`.
const JWKS: &str = include_str!("../../tests/fixtures/jwt/jwks.json");
/// `rsa-2`, `ec-1`, `ed-1`: `rsa-1` retired.
const JWKS_ROTATED: &str = include_str!("../../tests/fixtures/jwt/jwks-rotated.json");
const JWKS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt/jwks.json");

const SECRET: &str = "unit-test-hs256-secret-longer-than-32-bytes";
const OTHER_SECRET: &str = "another-hs256-secret-also-longer-than-32-bytes";

/// The fixture keys, by the kid the JWKS documents give them.
#[derive(Debug, Clone, Copy)]
enum TestKey {
    Rsa1,
    Rsa2,
    Ec1,
    Ed1,
}

impl TestKey {
    const IN_JWKS: [Self; 3] = [Self::Rsa1, Self::Ec1, Self::Ed1];

    fn kid(self) -> &'static str {
        match self {
            Self::Rsa1 => "rsa-1",
            Self::Rsa2 => "rsa-2",
            Self::Ec1 => "ec-1",
            Self::Ed1 => "ed-1",
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            Self::Rsa1 | Self::Rsa2 => Algorithm::RS256,
            Self::Ec1 => Algorithm::ES256,
            Self::Ed1 => Algorithm::EdDSA,
        }
    }

    fn encoding_key(self) -> EncodingKey {
        match self {
            Self::Rsa1 => EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
            Self::Rsa2 => EncodingKey::from_rsa_pem(RSA_2_PEM.as_bytes()).unwrap(),
            Self::Ec1 => EncodingKey::from_ec_pem(EC_PEM.as_bytes()).unwrap(),
            Self::Ed1 => EncodingKey::from_ed_pem(ED25519_PEM.as_bytes()).unwrap(),
        }
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims every check accepts when no issuer or audience is configured.
fn valid_claims() -> Value {
    json!({"sub": "alice", "exp": now() + 600, "scope": "berth.admin"})
}

fn sign(algorithm: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// Signed with a fixture key, naming it by its kid.
fn signed(key: TestKey, claims: &Value) -> String {
    sign(
        key.algorithm(),
        &key.encoding_key(),
        Some(key.kid()),
        claims,
    )
}

fn hs256(secret: &str, claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(secret.as_bytes()),
        None,
        claims,
    )
}

/// A token assembled by hand, for headers no library would produce.
fn hand_built(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A verifier that reloads its key set on every unknown kid.
async fn verifier(settings: AuthSettings) -> TokenVerifier {
    TokenVerifier::with_refresh_interval(settings, Duration::ZERO)
        .await
        .unwrap()
}

fn hs256_settings() -> AuthSettings {
    AuthSettings {
        hs256_secret: Some(SecretString::from(SECRET)),
        leeway_seconds: 5,
        ..AuthSettings::default()
    }
}

fn jwks_file_settings(path: impl Into<PathBuf>) -> AuthSettings {
    AuthSettings {
        jwks_file: Some(path.into()),
        leeway_seconds: 5,
        ..AuthSettings::default()
    }
}

/// Verifies `token` expecting a refusal, and checks the error shows no part of the token.
async fn refused(verifier: &TokenVerifier, token: &str) -> TokenError {
    let error = match verifier.verify(token).await {
        Ok(claims) => panic!("accepted a token that must be refused: {claims:?}"),
        Err(error) => error,
    };
    let shown = format!("{error} {error:?}");
    for part in token.split('.').filter(|part| part.len() >= 8) {
        assert!(!shown.contains(part), "the error shows the token: {shown}");
    }
    error
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn with(contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "berth-auth-test-{}.json",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn write(&self, contents: &str) {
        std::fs::write(&self.0, contents).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A JWKS document holding the keys of all `documents`, each kid once.
fn jwks_union(documents: &[&str]) -> String {
    let mut keys: Vec<Value> = Vec::new();
    for document in documents {
        let set: Value = serde_json::from_str(document).unwrap();
        for key in set["keys"].as_array().unwrap() {
            if !keys.iter().any(|known| known["kid"] == key["kid"]) {
                keys.push(key.clone());
            }
        }
    }
    json!({ "keys": keys }).to_string()
}

/// What the local JWKS server answers, and how often it was asked.
struct Served {
    status: Mutex<u16>,
    body: Mutex<String>,
    delay: Mutex<Duration>,
    fetches: AtomicUsize,
}

/// An HTTP server on 127.0.0.1 serving a JWKS document at `/jwks.json`.
struct JwksServer {
    url: String,
    served: Arc<Served>,
    handle: ServerHandle,
}

impl JwksServer {
    async fn start(body: &str) -> Self {
        let served = Arc::new(Served {
            status: Mutex::new(200),
            body: Mutex::new(body.to_owned()),
            delay: Mutex::new(Duration::ZERO),
            fetches: AtomicUsize::new(0),
        });
        let data = web::Data::from(served.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/jwks.json", web::get().to(serve_jwks))
                // UAA's path for the same document.
                .route("/token_keys", web::get().to(serve_jwks))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/jwks.json"),
            served,
            handle,
        }
    }

    fn serve(&self, status: u16, body: &str) {
        *self.served.status.lock().unwrap() = status;
        *self.served.body.lock().unwrap() = body.to_owned();
    }

    fn delay(&self, delay: Duration) {
        *self.served.delay.lock().unwrap() = delay;
    }

    fn fetches(&self) -> usize {
        self.served.fetches.load(Ordering::SeqCst)
    }

    fn settings(&self) -> AuthSettings {
        AuthSettings {
            jwks_url: Some(self.url.clone()),
            leeway_seconds: 5,
            ..AuthSettings::default()
        }
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

async fn serve_jwks(served: web::Data<Served>) -> HttpResponse {
    served.fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *served.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(*served.status.lock().unwrap()).unwrap();
    let body = served.body.lock().unwrap().clone();
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body)
}
