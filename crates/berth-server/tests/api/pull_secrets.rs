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
}

#[tokio::test]
async fn only_the_pull_secrets_scope_may_resolve() {
    let app = TestApp::spawn().await;
    let chain = chain(&app).await;
    let body = json!({"images": ["nginx"], "relationships": relationship("space", &chain.space)});
    let space_developer = mint(&[], &[format!("space_developer:{}", chain.space)]);
    let organization_manager = mint(
        &[],
        &[format!("organization_manager:{}", chain.organization)],
    );
    // SPEC: "Only callers with the scope berth.pull_secrets": an admin without it is refused too.
    for token in [
        app.admin_token.clone(),
        mint(&["berth.admin_read_only", "berth.global_auditor"], &[]),
        space_developer,
        organization_manager,
    ] {
        let (status, cache, answer) = post_as(&app, &token, RESOLVE, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert_v3_error(&answer, 10003, "CF-NotAuthorized");
        assert_ne!(cache.as_deref(), Some("no-store"));
        // Refused before the body is read: a bad body is still a 403.
        let (status, _, _) = post_as(&app, &token, RESOLVE, json!({"images": "x"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let response = app
        .raw(Method::POST, RESOLVE, None, Some(body.to_string()))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The admin that also holds the scope (dev mode's) resolves.
    let both = mint(&["berth.admin", "berth.pull_secrets"], &[]);
    let (status, _, answer) = post_as(&app, &both, RESOLVE, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["resolutions"][0]["credential"]["guid"],
        chain.foundation_credential.as_str()
    );
}

#[tokio::test]
async fn explain_shows_the_search_without_secrets_to_whoever_reads_the_context() {
    let app = TestApp::spawn().await;
    let chain = chain(&app).await;
    let body = json!({
        "images": ["space.example.com/tools/cli:2", "unmatched.example.net/app"],
        "relationships": relationship("app", &chain.app),
    });
    let developer = mint(&[], &[format!("space_developer:{}", chain.space)]);
    let (status, cache, answer) = post_as(&app, &developer, EXPLAIN, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_ne!(cache.as_deref(), Some("no-store"));
    let candidates = json!([
        "space.example.com/tools/cli",
        "space.example.com/tools",
        "space.example.com",
        "example.com"
    ]);
    let unmatched = json!([
        "unmatched.example.net/app",
        "unmatched.example.net",
        "example.net"
    ]);
    let level = |level: &str, owner: Value, candidates: &Value| json!({"level": level, "owner_guid": owner, "candidates": candidates});
    assert_eq!(
        answer,
        json!({"resolutions": [
            {"image": "space.example.com/tools/cli:2", "normalized": "space.example.com/tools/cli",
             "levels": [
                level("app", json!(chain.app), &candidates),
                level("space", json!(chain.space), &candidates),
             ],
             "credential": {"guid": chain.space_credential, "location": "space.example.com", "scope": "space"},
             "key": "space.example.com"},
            {"image": "unmatched.example.net/app", "normalized": "unmatched.example.net/app",
             "levels": [
                level("app", json!(chain.app), &unmatched),
                level("space", json!(chain.space), &unmatched),
                level("organization", json!(chain.organization), &unmatched),
                level("foundation", Value::Null, &unmatched),
             ],
             "credential": null, "key": null},
        ]})
    );
    let text = answer.to_string();
    assert!(
        !text.contains("space-user") && !text.contains("space-pw"),
        "{text}"
    );

    // The organization's manager reads its spaces; the deployer may explain what it resolves.
    let manager = mint(
        &[],
        &[format!("organization_manager:{}", chain.organization)],
    );
    for token in [manager, deployer()] {
        let (status, _, again) = post_as(&app, &token, EXPLAIN, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again, answer);
    }

    // An outsider gets the answer of an app that does not exist.
    let other_space = app.space(&chain.organization, "other").await;
    let outsider = mint(&[], &[format!("space_developer:{other_space}")]);
    let missing = json!({"images": ["nginx"], "relationships": relationship("app", &uuid::Uuid::new_v4().to_string())});
    for (token, body) in [
        (&outsider, &body),
        (&developer, &missing),
        (&deployer(), &missing),
    ] {
        let (status, _, refused) = post_as(&app, token, EXPLAIN, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_v3_error(&refused, 10008, "CF-UnprocessableEntity");
        assert_eq!(
            detail(&refused),
            "Invalid app. Ensure that the app exists and you have access to it."
        );
    }
    // Foundation credentials are everyone's to read.
    let (status, _, answer) = post_as(
        &app,
        &outsider,
        EXPLAIN,
        json!({"registries": ["docker.io"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["resolutions"][0]["credential"]["guid"],
        chain.foundation_credential.as_str()
    );
}

#[tokio::test]
async fn bad_input_is_a_422_naming_the_entry() {
    let app = TestApp::spawn().await;
    let organization = app.organization("org").await;
    let space = app.space(&organization, "space").await;
    let hundred: Vec<String> = (0..60).map(|i| format!("r{i}.example.com/app")).collect();
    let forty_one: Vec<String> = (0..41).map(|i| format!("r{i}.example.com")).collect();
    let deep = vec!["a"; 125].join("/");
    let too_many_candidates: Vec<String> = (0..100).map(|i| format!("u{i:02}/{deep}")).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "Images and registries can't both be empty"),
        (
            json!({"images": [], "registries": null}),
            "Images and registries can't both be empty",
        ),
        (
            json!({"images": hundred, "registries": forty_one}),
            "Images and registries together must have at most 100 entries",
        ),
        (
            json!({"images": vec!["nginx"; 101]}),
            "Images and registries together must have at most 100 entries",
        ),
        (
            json!({"images": too_many_candidates}),
            "candidate locations",
        ),
        (
            json!({"images": ["nginx", "a", "b", "Team/App"]}),
            "images[3]: has a repository path with uppercase letters",
        ),
        (
            json!({"images": ["nginx", "team/App"]}),
            "images[1]: has a repository path with uppercase letters",
        ),
        (json!({"images": [""]}), "images[0]: can't be blank"),
        (
            json!({"images": ["r.io//app"]}),
            "images[0]: has an empty path component",
        ),
        (
            json!({"images": [format!("r.io/{}", "a".repeat(256))]}),
            "images[0]: has a repository path longer than 255 characters",
        ),
        (
            json!({"images": ["nginx:bad tag"]}),
            "images[0]: has an invalid tag",
        ),
        (
            json!({"images": ["nginx@sha256:abc"]}),
            "images[0]: has an invalid digest",
        ),
        (
            json!({"images": ["r.io:99999/app"]}),
            "images[0]: has an invalid port",
        ),
        (
            json!({"images": ["https://r.io/app"]}),
            "images[0]: must not include a protocol",
        ),
        (json!({"images": [7]}), "images[0]: must be a string"),
        (
            json!({"images": "nginx"}),
            "Images must be an array of strings",
        ),
        (
            json!({"registries": ["r.io", "https://r.io"]}),
            "registries[1]: must not include a protocol",
        ),
        (
            json!({"registries": ["r.io/team"]}),
            "registries[0]: must be a bare host[:port], without a path",
        ),
        (
            json!({"registries": ["bad_host"]}),
            "registries[0]: has an invalid registry host",
        ),
        (
            json!({"images": ["nginx"], "extra": 1}),
            "Unknown field(s): 'extra'",
        ),
        (
            json!({"images": ["nginx"], "relationships": {"space": {"data": {"guid": space}}, "organization": {"data": {"guid": organization}}}}),
            "Relationships can only include one of 'organization', 'space' or 'app'",
        ),
        (
            json!({"images": ["nginx"], "relationships": {"team": {}}}),
            "Relationships has unexpected field(s): 'team'",
        ),
        (
            json!({"images": ["nginx"], "relationships": relationship("space", "not-a-guid")}),
            "Invalid space. Ensure that the space exists and you have access to it.",
        ),
        (
            json!({"images": ["nginx"], "relationships": relationship("app", &uuid::Uuid::new_v4().to_string())}),
            "Invalid app. Ensure that the app exists and you have access to it.",
        ),
        (
            json!({"images": ["nginx"], "relationships": relationship("organization", &uuid::Uuid::new_v4().to_string())}),
            "Invalid organization. Ensure that the organization exists and you have access to it.",
        ),
    ];
    for (body, expected) in cases {
        for path in [RESOLVE, EXPLAIN] {
            let (status, _, answer) = post_as(&app, &deployer(), path, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path} {body} {answer}"
            );
            assert_v3_error(&answer, 10008, "CF-UnprocessableEntity");
            assert!(
                detail(&answer).contains(expected),
                "{path} {body}: {answer}"
            );
        }
    }
    // Every problem at once.
    let (_, _, answer) = post_as(
        &app,
        &deployer(),
        RESOLVE,
        json!({"images": ["b/A", "ok"], "registries": ["x/y"]}),
    )
    .await;
    assert_eq!(
        detail(&answer),
        "images[0]: has a repository path with uppercase letters (it must be lowercase), \
         registries[0]: must be a bare host[:port], without a path"
    );
    // Every entry refused: no word about the lists being empty.
    let (_, _, answer) = post_as(&app, &deployer(), RESOLVE, json!({"images": ["b/A"]})).await;
    assert_eq!(
        detail(&answer),
        "images[0]: has a repository path with uppercase letters (it must be lowercase)"
    );
    // Not a JSON object: the parse error of every V3 body.
    let response = app
        .raw(
            Method::POST,
            RESOLVE,
            Some(&deployer()),
            Some("[1]".to_owned()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn one_key_per_credential_and_hub_paths() {
    let app = TestApp::spawn().await;
    for (location, username) in [
        ("r.example.com", "shared"),
        ("docker.io/team", "team"),
        ("index.docker.io", "hub"),
    ] {
        app.credential(json!({"location": location, "username": username, "password": format!("{username}-pw")}))
            .await;
    }
    let body = json!({
        "images": ["r.example.com/a/x", "r.example.com/b/y:1", "team/app", "docker.io/library/redis"],
        "registries": ["r.example.com", "registry-1.docker.io"],
    });
    let (status, _, answer) = post_as(&app, &deployer(), RESOLVE, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let keys: Vec<&Value> = answer["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["key"])
        .collect();
    assert_eq!(
        keys,
        [
            "r.example.com",
            "r.example.com",
            "docker.io/team",
            "https://index.docker.io/v1/",
            "r.example.com",
            "https://index.docker.io/v1/",
        ]
    );
    assert_eq!(
        answer["docker_config"],
        json!({"auths": {
            "r.example.com": auth("shared", "shared-pw"),
            "docker.io/team": auth("team", "team-pw"),
            "https://index.docker.io/v1/": auth("hub", "hub-pw"),
        }})
    );
}

#[tokio::test]
async fn a_sealed_password_that_does_not_open_is_a_500_never_a_partial_config() {
    let app = TestApp::spawn().await;
    let winner = app
        .credential(
            json!({"location": "r.example.com/team", "username": "u", "password": "team-pw"}),
        )
        .await;
    let other = app
        .credential(json!({"location": "r.example.com", "username": "u", "password": "host-pw"}))
        .await;
    let guid =
        |resource: &Value| uuid::Uuid::parse_str(resource["guid"].as_str().unwrap()).unwrap();
    let db = app.connect().await;
    // The other row's ciphertext moved onto the winner: it is bound to the other row.
    let moved = ciphertext(&db, guid(&other)).await;
    set_ciphertext(&db, guid(&winner), moved).await;
    let body = json!({"images": ["r.example.com/team/app", "nginx"]});
    let (status, cache, answer) = post_as(&app, &deployer(), RESOLVE, body.clone()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_v3_error(&answer, 10001, "UnknownError");
    assert_eq!(detail(&answer), "An unknown error occurred.");
    assert!(answer.get("docker_config").is_none());
    assert_ne!(cache.as_deref(), Some("no-store"));
    // Explain opens no password, so it still answers.
    let (status, _, answer) = post_as(&app, &deployer(), EXPLAIN, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["resolutions"][0]["credential"]["guid"],
        winner["guid"]
    );
}

async fn ciphertext(db: &sea_orm::DatabaseConnection, guid: uuid::Uuid) -> Vec<u8> {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let statement = Query::select()
        .column(Alias::new("password_ciphertext"))
        .from(Alias::new("registry_credentials"))
        .and_where(Expr::col(Alias::new("guid")).eq(guid))
        .to_owned();
    let row = db.query_one(&statement).await.unwrap().unwrap();
    row.try_get("", "password_ciphertext").unwrap()
}

async fn set_ciphertext(db: &sea_orm::DatabaseConnection, guid: uuid::Uuid, bytes: Vec<u8>) {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let statement = Query::update()
        .table(Alias::new("registry_credentials"))
        .value(Alias::new("password_ciphertext"), bytes)
        .and_where(Expr::col(Alias::new("guid")).eq(guid))
        .to_owned();
    db.execute(&statement).await.unwrap();
}

/// Fifty identical resolves at once, through two replicas, all give the same answer.
#[tokio::test]
async fn fifty_identical_resolves_across_two_replicas_agree() {
    let app = TestApp::spawn().await;
    let chain = chain(&app).await;
    let replica = app.replica().await;
    let body = json!({"images": ["apps.example.com/team/web", "nginx"], "relationships": relationship("app", &chain.app)});
    let deployer = deployer();
    let requests = (0..50).map(|i| {
        let address = if i % 2 == 0 {
            app.address.clone()
        } else {
            replica.clone()
        };
        let request = app
            .client
            .post(format!("{address}{RESOLVE}"))
            .bearer_auth(&deployer)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let (_, first) = &answers[0];
    assert_eq!(
        first["docker_config"]["auths"]["apps.example.com/team"],
        auth("app-user", "app-pw")
    );
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(answer, first);
    }
}
