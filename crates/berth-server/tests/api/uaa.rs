//! `auth.profile = "uaa"` end to end: UAA's `/token_keys` served on loopback, tokens with every
//! claim UAA signs, Cloud Controller's read and write scopes, roles from the directory.

use actix_web::{App, HttpResponse, HttpServer, web};
use berth_auth::{AuthProfile, RolesSource};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_v3_error};

const TOKEN_KEYS: &str = include_str!("../../../berth-auth/tests/fixtures/uaa/token_keys.json");
const PASSWORD_GRANT: &str =
    include_str!("../../../berth-auth/tests/fixtures/uaa/password-grant.json");
const CLIENT_CREDENTIALS: &str =
    include_str!("../../../berth-auth/tests/fixtures/uaa/client-credentials.json");
const ISSUER: &str = "https://uaa.sys.example.com/oauth/token";
const USER_ID: &str = "0e2c9c56-7b1f-4b4e-9d0e-3f1a2b3c4d5e";

/// UAA's key document at `/token_keys` on 127.0.0.1; returns the URL.
async fn serve_token_keys() -> String {
    let server = HttpServer::new(|| {
        App::new().route(
            "/token_keys",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(TOKEN_KEYS)
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    format!("http://127.0.0.1:{port}/token_keys")
}

/// A fixture's claims, in the present, with `scope` replaced; signed as UAA signs.
fn uaa_token(fixture: &str, scope: &[&str]) -> String {
    let mut claims: Value = serde_json::from_str(fixture).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 600);
    if claims.get("auth_time").is_some() {
        claims["auth_time"] = json!(now);
    }
    claims["scope"] = json!(scope);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("key-1".into());
    let key = EncodingKey::from_rsa_pem(include_bytes!(
        "../../../berth-auth/tests/fixtures/jwt/rsa.pem"
    ))
    .unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn uaa_berth(roles_source: RolesSource) -> TestApp {
    let url = serve_token_keys().await;
    let mut app = TestApp::spawn_configured(
        berth_testkit::TestDatabase::new().await,
        crate::helpers::key_spec(&["k1"]),
        "k1",
        move |runtime| {
            runtime.auth.hs256_secret = None;
            runtime.auth.jwks_url = Some(url);
            runtime.auth.issuer = Some(ISSUER.into());
            runtime.auth.audience = Some("cloud_controller".into());
            runtime.claim_rules.profile = AuthProfile::Uaa;
            runtime.claim_rules.roles_source = roles_source;
        },
    )
    .await;
    // The platform's client: client credentials with cloud_controller.admin.
    app.admin_token = uaa_token(CLIENT_CREDENTIALS, &["cloud_controller.admin"]);
    app
}

#[tokio::test]
async fn a_cf_login_reads_and_writes_with_roles_from_the_directory() {
    let app = uaa_berth(RolesSource::Directory).await;
    let organization = app.organization("o").await;
    let space = app.space(&organization, "s").await;
    let user = uaa_token(
        PASSWORD_GRANT,
        &["openid", "cloud_controller.read", "cloud_controller.write"],
    );
    let body = json!({"location": "r.io", "username": "u", "password": "p",
        "relationships": {"space": {"data": {"guid": space}}}});
    // No role yet: the space is invisible.
    let (status, answer) = app
        .raw_json(
            Method::POST,
            "/v3/registry_credentials",
            Some(&user),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    for (kind, target, guid) in [
        ("organization_user", "organization", &organization),
        ("space_developer", "space", &space),
    ] {
        let (status, answer) = app
            .put(
                &format!("/v3/roles/{}", uuid::Uuid::new_v4()),
                json!({"type": kind, "relationships": {
                    "user": {"data": {"guid": USER_ID}}, target: {"data": {"guid": guid}}}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let (status, answer) = app
        .raw_json(
            Method::POST,
            "/v3/registry_credentials",
            Some(&user),
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the user_id's directory roles: {answer}"
    );
    let (status, list) = app
        .raw_json(Method::GET, "/v3/registry_credentials", Some(&user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["pagination"]["total_results"], 1);
    let (status, mine) = app
        .raw_json(Method::GET, "/v3/roles", Some(&user), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["pagination"]["total_results"], 2, "{mine}");

    // cloud_controller.read alone reads, and may not write.
    let reader = uaa_token(PASSWORD_GRANT, &["openid", "cloud_controller.read"]);
    let (status, _) = app
        .raw_json(Method::GET, "/v3/registry_credentials", Some(&reader), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = app
        .raw_json(
            Method::POST,
            "/v3/registry_credentials",
            Some(&reader),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_v3_error(&answer, 10003, "CF-NotAuthorized");
    // Neither scope: no reads either, in both dialects.
    let neither = uaa_token(PASSWORD_GRANT, &["openid", "uaa.user"]);
    let (status, answer) = app
        .raw_json(
            Method::GET,
            "/v3/registry_credentials",
            Some(&neither),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_v3_error(&answer, 10003, "CF-NotAuthorized");
    let (status, answer) = app
        .raw_json(
            Method::GET,
            &format!("/api/v1/organizations/{organization}/registry"),
            Some(&neither),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "insufficient_scope");
}

#[tokio::test]
async fn cloud_controller_admin_scopes_are_berths_admins() {
    let app = uaa_berth(RolesSource::Both).await;
    let organization = app.organization("o").await;
    let credential = json!({"location": "r.io", "username": "u", "password": "p",
        "relationships": {"organization": {"data": {"guid": organization}}}});
    let (status, _) = app
        .raw_json(
            Method::POST,
            "/v3/registry_credentials",
            Some(&app.admin_token),
            Some(credential.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for scope in [
        "cloud_controller.admin_read_only",
        "cloud_controller.global_auditor",
    ] {
        let token = uaa_token(PASSWORD_GRANT, &[scope]);
        let (status, list) = app
            .raw_json(Method::GET, "/v3/registry_credentials", Some(&token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{scope}");
        assert_eq!(
            list["pagination"]["total_results"], 1,
            "{scope} reads everything"
        );
        let (status, _) = app
            .raw_json(
                Method::POST,
                "/v3/registry_credentials",
                Some(&token),
                Some(credential.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{scope} writes nothing");
    }
    // Berth's own scopes mean nothing in a UAA token.
    let berth_admin = uaa_token(PASSWORD_GRANT, &["berth.admin", "cloud_controller.read"]);
    let (status, list) = app
        .raw_json(
            Method::GET,
            "/v3/registry_credentials",
            Some(&berth_admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["pagination"]["total_results"], 0);
}
