//! Bearer tokens on every route but the open ones (see `http_semantics.rs`).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, assert_v3_error, token};

async fn status_and_body(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let response = app.raw(method, path, token, Some("{}".into())).await;
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v3/registry_credentials"),
    ("POST", "/v3/registry_credentials"),
    (
        "GET",
        "/v3/registry_credentials/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    (
        "PATCH",
        "/v3/registry_credentials/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    (
        "DELETE",
        "/v3/registry_credentials/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    ("GET", "/v3/organizations"),
    (
        "GET",
        "/v3/organizations/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    (
        "PUT",
        "/v3/organizations/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    (
        "DELETE",
        "/v3/organizations/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
    ),
    ("GET", "/v3/spaces"),
    ("PUT", "/v3/spaces/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"),
    ("GET", "/v3/apps"),
    ("DELETE", "/v3/apps/6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"),
];

#[tokio::test]
async fn healthz_needs_no_token() {
    let app = TestApp::spawn().await;
    let response = app.raw(Method::GET, "/healthz", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_route_without_a_token_is_401_not_authenticated() {
    let app = TestApp::spawn().await;
    for (method, path) in ROUTES {
        let (status, challenge, body) =
            status_and_body(&app, method.parse().unwrap(), path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{method} {path}");
        assert_v3_error(&body, 10002, "CF-NotAuthenticated");
    }
}

fn forge(header: &str, payload: &str, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        signature
    )
}

#[tokio::test]
async fn bad_tokens_are_401_invalid_auth_token_everywhere() {
    let app = TestApp::spawn().await;
    let valid = token("alice", &["berth.admin"], Duration::from_secs(600));
    let mut tampered = valid.clone();
    tampered.pop();
    tampered.push(if valid.ends_with('A') { 'B' } else { 'A' });
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    let payload = format!(r#"{{"sub":"mallory","exp":{exp},"scope":"berth.admin"}}"#);
    let wrong_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "mallory", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret"),
    )
    .unwrap();
    let no_exp = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "mallory"}),
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::HS256_SECRET.as_bytes()),
    )
    .unwrap();
    let bad_tokens = [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        tampered,
        wrong_key,
        no_exp,
        forge(r#"{"alg":"none","typ":"JWT"}"#, &payload, ""),
        forge(r#"{"alg":"None","typ":"JWT"}"#, &payload, ""),
    ];
    for (index, bad) in bad_tokens.iter().enumerate() {
        for (method, path) in &ROUTES[..3] {
            let (status, challenge, body) =
                status_and_body(&app, method.parse().unwrap(), path, Some(bad)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "token #{index} on {method} {path}"
            );
            assert!(challenge.unwrap().starts_with("Bearer"));
            assert_v3_error(&body, 1000, "CF-InvalidAuthToken");
        }
    }
    // Other schemes are not bearer tokens.
    let response = app
        .client
        .get(format!("{}/v3/registry_credentials", app.address))
        .header(
            "authorization",
            format!("Basic {}", URL_SAFE_NO_PAD.encode("admin:admin")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "alice", "exp": now - 120, "iat": now - 3600}),
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::HS256_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, _, body) = status_and_body(
        &app,
        Method::GET,
        "/v3/registry_credentials",
        Some(&expired),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_v3_error(&body, 1000, "CF-InvalidAuthToken");
}

#[tokio::test]
async fn a_token_without_roles_reads_the_foundation_only() {
    let app = TestApp::spawn().await;
    let plain = token("bob", &[], Duration::from_secs(600));
    let (status, _, _) =
        status_and_body(&app, Method::GET, "/v3/registry_credentials", Some(&plain)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn rs256_tokens_from_a_jwks_file_and_the_configured_issuer_and_audience() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk, jwk::JwkSet};
    let key = EncodingKey::from_rsa_pem(include_bytes!(
        "../../../berth-auth/tests/fixtures/jwt/rsa.pem"
    ))
    .unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("rsa-1".into());
    let path = std::env::temp_dir().join(format!(
        "berth-server-jwks-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &path,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    let jwks_path = path.clone();
    let app = TestApp::spawn_configured(
        berth_testkit::TestDatabase::new().await,
        crate::helpers::key_spec(&["k1"]),
        "k1",
        move |runtime| {
            runtime.auth.hs256_secret = None;
            runtime.auth.jwks_file = Some(jwks_path);
            runtime.auth.issuer = Some("https://uaa.example.test".into());
            runtime.auth.audience = Some("berth".into());
        },
    )
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let sign = |claims: serde_json::Value| jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let good = sign(
        serde_json::json!({"sub": "a", "exp": now + 600, "iss": "https://uaa.example.test", "aud": "berth"}),
    );
    let (status, _, _) =
        status_and_body(&app, Method::GET, "/v3/registry_credentials", Some(&good)).await;
    assert_eq!(status, StatusCode::OK);
    for claims in [
        serde_json::json!({"sub": "a", "exp": now + 600, "iss": "https://evil.example.test", "aud": "berth"}),
        serde_json::json!({"sub": "a", "exp": now + 600, "iss": "https://uaa.example.test", "aud": "other"}),
        serde_json::json!({"sub": "a", "exp": now + 600, "aud": "berth"}),
    ] {
        let (status, _, body) = status_and_body(
            &app,
            Method::GET,
            "/v3/registry_credentials",
            Some(&sign(claims.clone())),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{claims}");
        assert_v3_error(&body, 1000, "CF-InvalidAuthToken");
    }
    // The HS256 admin token of the other tests is refused: no shared secret is configured.
    let (status, _, _) = status_and_body(
        &app,
        Method::GET,
        "/v3/registry_credentials",
        Some(&app.admin_token),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn malformed_claims_are_401_never_5xx() {
    let app = TestApp::spawn().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for claims in [
        serde_json::json!({"sub": "a", "exp": now + 600, "scope": 42}),
        serde_json::json!({"sub": "a", "exp": now + 600, "roles": "organization_manager:x"}),
        serde_json::json!({"sub": "a", "exp": now + 600, "roles": ["organization_manager:not-a-guid"]}),
        serde_json::json!({"sub": "a", "exp": now + 600, "roles": ["wizard:6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"]}),
        serde_json::json!({"sub": 7, "exp": now + 600}),
        serde_json::json!({"sub": "a", "exp": "tomorrow"}),
    ] {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(crate::helpers::HS256_SECRET.as_bytes()),
        )
        .unwrap();
        let (status, _, body) =
            status_and_body(&app, Method::GET, "/v3/registry_credentials", Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{claims}");
        assert_v3_error(&body, 1000, "CF-InvalidAuthToken");
    }
}
