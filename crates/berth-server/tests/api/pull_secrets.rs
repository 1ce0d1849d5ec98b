//! Pull-secret resolution: `POST /v3/registry_credentials/actions/resolve` and `.../explain`.

use std::time::Duration;

use base64::Engine;
use berth_auth::{MintClaims, mint_hs256};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{HS256_SECRET, TestApp, assert_v3_error, detail, token};

const RESOLVE: &str = "/v3/registry_credentials/actions/resolve";
const EXPLAIN: &str = "/v3/registry_credentials/actions/explain";

fn mint(scopes: &[&str], roles: &[String]) -> String {
    mint_hs256(
        &SecretString::from(HS256_SECRET),
        &MintClaims {
            subject: "caller".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            roles: roles.to_vec(),
            ttl: Duration::from_secs(600),
            issuer: None,
            audience: None,
        },
    )
    .unwrap()
}

fn deployer() -> String {
    token(
        "deployer",
        &["berth.pull_secrets"],
        Duration::from_secs(600),
    )
}

/// A POST with `token`; the status, the `Cache-Control` header and the JSON body.
async fn post_as(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let response = app
        .raw(Method::POST, path, Some(token), Some(body.to_string()))
        .await;
    let status = response.status();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, cache, value)
}

fn relationship(kind: &str, guid: &str) -> Value {
    json!({kind: {"data": {"guid": guid}}})
}

fn auth(username: &str, password: &str) -> Value {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    json!({"username": username, "password": password, "auth": encoded})
}

/// An organization, a space and an app, with credentials at each level and the foundation.
struct Chain {
    organization: String,
    space: String,
    app: String,
    app_credential: String,
    space_credential: String,
    organization_credential: String,
    foundation_credential: String,
}

async fn chain(app: &TestApp) -> Chain {
    let organization = app.organization("org").await;
    let space = app.space(&organization, "space").await;
    let application = app.app(&space, "app").await;
    let create = |location: &str, username: &str, password: &str, owner: Option<(&str, &str)>| {
        let mut body = json!({"location": location, "username": username, "password": password});
        if let Some((kind, guid)) = owner {
            body["relationships"] = relationship(kind, guid);
        }
        body
    };
    let guid = |resource: Value| resource["guid"].as_str().unwrap().to_owned();
    let app_credential = guid(
        app.credential(create(
            "apps.example.com/team",
            "app-user",
            "app-pw",
            Some(("app", &application)),
        ))
        .await,
    );
    let space_credential = guid(
        app.credential(create(
            "space.example.com",
            "space-user",
            "space-pw",
            Some(("space", &space)),
        ))
        .await,
    );
    let organization_credential = guid(
        app.credential(create(
            "example.org",
            "org-user",
            "org-pw",
            Some(("organization", &organization)),
        ))
        .await,
    );
    let foundation_credential = guid(
        app.credential(create("docker.io", "hub-user", "hub-pw", None))
            .await,
    );
    // Shadowed at a narrower level: never chosen for the app's context.
    app.credential(create("apps.example.com", "wide-user", "wide-pw", None))
        .await;
    Chain {
        organization,
        space,
        app: application,
        app_credential,
        space_credential,
        organization_credential,
        foundation_credential,
    }
}

#[tokio::test]
async fn resolve_chooses_by_level_and_answers_a_docker_config() {
    let app = TestApp::spawn().await;
    let chain = chain(&app).await;
    let body = json!({
        "images": [
            "apps.example.com/team/web:1.0",
            "space.example.com/tools/cli@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "registry.eu.example.org/base/image",
            "nginx",
            "unmatched.example.net/app",
        ],
        "registries": ["index.docker.io"],
        "relationships": relationship("app", &chain.app),
    });
    let (status, cache, answer) = post_as(&app, &deployer(), RESOLVE, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    let winner = |guid: &str, location: &str, scope: &str| json!({"guid": guid, "location": location, "scope": scope});
    assert_eq!(
        answer,
        json!({
            "resolutions": [
                {"image": "apps.example.com/team/web:1.0", "normalized": "apps.example.com/team/web",
                 "credential": winner(&chain.app_credential, "apps.example.com/team", "app"),
                 "key": "apps.example.com/team"},
                {"image": "space.example.com/tools/cli@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                 "normalized": "space.example.com/tools/cli",
                 "credential": winner(&chain.space_credential, "space.example.com", "space"),
                 "key": "space.example.com"},
                {"image": "registry.eu.example.org/base/image", "normalized": "registry.eu.example.org/base/image",
                 "credential": winner(&chain.organization_credential, "example.org", "organization"),
                 "key": "registry.eu.example.org"},
                {"image": "nginx", "normalized": "docker.io/library/nginx",
                 "credential": winner(&chain.foundation_credential, "docker.io", "foundation"),
                 "key": "https://index.docker.io/v1/"},
                {"image": "unmatched.example.net/app", "normalized": "unmatched.example.net/app",
                 "credential": null, "key": null},
                {"registry": "index.docker.io", "normalized": "docker.io",
                 "credential": winner(&chain.foundation_credential, "docker.io", "foundation"),
                 "key": "https://index.docker.io/v1/"},
            ],
            "docker_config": {"auths": {
                "apps.example.com/team": auth("app-user", "app-pw"),
                "space.example.com": auth("space-user", "space-pw"),
                "registry.eu.example.org": auth("org-user", "org-pw"),
                "https://index.docker.io/v1/": auth("hub-user", "hub-pw"),
            }},
        })
    );
    let _ = chain.organization;
    let _ = chain.space;
}
