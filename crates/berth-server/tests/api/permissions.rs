//! The permission matrix: every route of the V3 surface against every kind of caller, each cell
//! asserting the exact status and, for lists, exactly which resources come back.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

use berth_auth::{MintClaims, RolesSource, mint_hs256};

use crate::helpers::{HS256_SECRET, TestApp, assert_v3_error};

const ISSUER: &str = "https://uaa.example.test";
const AUDIENCE: &str = "berth";

/// The credentials of the world, one per scope target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cred {
    Foundation,
    OrgA,
    OrgB,
    SpaceA1,
    SpaceA2,
    AppA1,
    SpaceB1,
    AppB1,
}

/// The label of the platform pull robots' credentials, one per enabled registry.
const MANAGED_BY: &str = "berth.dev/managed-by";

const ALL: [Cred; 8] = [
    Cred::Foundation,
    Cred::OrgA,
    Cred::OrgB,
    Cred::SpaceA1,
    Cred::SpaceA2,
    Cred::AppA1,
    Cred::SpaceB1,
    Cred::AppB1,
];

/// Organizations A and B; spaces A1, A2 (in A) and B1 (in B); apps a1 (in A1) and b1 (in B1).
struct World {
    app: TestApp,
    harbor: harbor_emulator::RunningEmulator,
    /// The default robot credential id of each organization's registry: (org name, id).
    default_robots: Vec<(&'static str, String)>,
    org_a: String,
    org_b: String,
    space_a1: String,
    space_a2: String,
    space_b1: String,
    app_a1: String,
    app_b1: String,
    credentials: Vec<(Cred, String)>,
    /// Where callers' roles come from: the token's claim, or the directory (`/v3/roles`).
    roles_source: RolesSource,
}

impl World {
    async fn new(roles_source: RolesSource) -> Self {
        let (app, harbor) = TestApp::spawn_with_harbor(move |runtime| {
            runtime.auth.issuer = Some(ISSUER.into());
            runtime.auth.audience = Some(AUDIENCE.into());
            runtime.claim_rules.roles_source = roles_source;
        })
        .await;
        let mut world = Self {
            roles_source,
            org_a: String::new(),
            org_b: String::new(),
            space_a1: String::new(),
            space_a2: String::new(),
            space_b1: String::new(),
            app_a1: String::new(),
            app_b1: String::new(),
            credentials: Vec::new(),
            default_robots: Vec::new(),
            app,
            harbor,
        };
        world.app.admin_token = caller_token(&["berth.admin"], &[]);
        world.org_a = world.app.organization("a").await;
        world.org_b = world.app.organization("b").await;
        world.space_a1 = world.app.space(&world.org_a, "a1").await;
        world.space_a2 = world.app.space(&world.org_a, "a2").await;
        world.space_b1 = world.app.space(&world.org_b, "b1").await;
        world.app_a1 = world.app.app(&world.space_a1, "a1").await;
        world.app_b1 = world.app.app(&world.space_b1, "b1").await;
        for cred in ALL {
            let mut body =
                json!({"location": "registry.example.com", "username": "u", "password": "p"});
            if let Some(relationships) = world.relationships(cred) {
                body["relationships"] = relationships;
            }
            let created = world.app.credential(body).await;
            world
                .credentials
                .push((cred, created["guid"].as_str().unwrap().to_owned()));
        }
        for (name, organization) in [("a", world.org_a.clone()), ("b", world.org_b.clone())] {
            let (status, body) = world
                .app
                .call(Method::POST, &registry_path(&organization), None)
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let (_, robots) = world
                .app
                .get(&format!("{}/credentials", registry_path(&organization)))
                .await;
            world.default_robots.push((
                name,
                robots["resources"][0]["id"].as_str().unwrap().to_owned(),
            ));
        }
        world
    }

    fn organization(&self, name: &str) -> &str {
        if name == "a" {
            &self.org_a
        } else {
            &self.org_b
        }
    }

    fn default_robot(&self, name: &str) -> &str {
        &self
            .default_robots
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
    }

    fn relationships(&self, cred: Cred) -> Option<Value> {
        let to = |kind: &str, guid: &str| json!({kind: {"data": {"guid": guid}}});
        Some(match cred {
            Cred::Foundation => return None,
            Cred::OrgA => to("organization", &self.org_a),
            Cred::OrgB => to("organization", &self.org_b),
            Cred::SpaceA1 => to("space", &self.space_a1),
            Cred::SpaceA2 => to("space", &self.space_a2),
            Cred::AppA1 => to("app", &self.app_a1),
            Cred::SpaceB1 => to("space", &self.space_b1),
            Cred::AppB1 => to("app", &self.app_b1),
        })
    }

    fn guid(&self, cred: Cred) -> &str {
        &self.credentials.iter().find(|(c, _)| *c == cred).unwrap().1
    }

    /// A token of `subject` holding `roles` (`<role>:<guid>`): in its claim when roles come
    /// from claims; otherwise put in the directory by the admin (a space role after an
    /// `organization_user` role in the space's organization, as Cloud Foundry requires), the
    /// token carrying none.
    async fn token_with(&self, subject: &str, scopes: &[&str], roles: &[String]) -> String {
        if self.roles_source == RolesSource::Claims {
            return mint_as(
                subject,
                HS256_SECRET,
                scopes,
                roles,
                Some(ISSUER),
                Some(AUDIENCE),
                600,
            );
        }
        for role in roles {
            let (kind, guid) = role.split_once(':').unwrap();
            let mut grants = Vec::new();
            if kind.starts_with("space_") {
                let organization = if guid == self.space_b1 {
                    &self.org_b
                } else {
                    &self.org_a
                };
                grants.push(("organization_user", "organization", organization.as_str()));
                grants.push((kind, "space", guid));
            } else {
                grants.push((kind, "organization", guid));
            }
            for (kind, target, guid) in grants {
                let body = json!({
                    "type": kind,
                    "relationships": {
                        "user": {"data": {"guid": subject}},
                        target: {"data": {"guid": guid}},
                    },
                });
                let (status, answer) = self
                    .app
                    .put(&format!("/v3/roles/{}", uuid::Uuid::new_v4()), body)
                    .await;
                assert!(
                    status == StatusCode::CREATED
                        || answer["errors"][0]["title"] == "CF-UniquenessError",
                    "{status} {answer}"
                );
            }
        }
        mint_as(
            subject,
            HS256_SECRET,
            scopes,
            &[],
            Some(ISSUER),
            Some(AUDIENCE),
            600,
        )
    }
}

fn registry_path(organization: &str) -> String {
    format!("/api/v1/organizations/{organization}/registry")
}

fn caller_token(scopes: &[&str], roles: &[String]) -> String {
    mint(
        HS256_SECRET,
        scopes,
        roles,
        Some(ISSUER),
        Some(AUDIENCE),
        600,
    )
}

fn mint(
    secret: &str,
    scopes: &[&str],
    roles: &[String],
    issuer: Option<&str>,
    audience: Option<&str>,
    ttl: u64,
) -> String {
    mint_as("caller", secret, scopes, roles, issuer, audience, ttl)
}

fn mint_as(
    subject: &str,
    secret: &str,
    scopes: &[&str],
    roles: &[String],
    issuer: Option<&str>,
    audience: Option<&str>,
    ttl: u64,
) -> String {
    mint_hs256(
        &SecretString::from(secret),
        &MintClaims {
            subject: subject.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            roles: roles.to_vec(),
            ttl: Duration::from_secs(ttl),
            issuer: issuer.map(str::to_owned),
            audience: audience.map(str::to_owned),
        },
    )
    .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    NoToken,
    Expired,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Admin,
    ReadOnlyAdmin,
    GlobalAuditor,
    OrgManager,
    OrgAuditor,
    OrgUser,
    SpaceDeveloper,
    SpaceManager,
    SpaceAuditor,
    OtherOrgManager,
    NoRoles,
}

/// What a caller should see and change; `None` for callers who are not authenticated.
struct Expect {
    read: Vec<Cred>,
    write: Vec<Cred>,
    organizations: Vec<&'static str>,
    spaces: Vec<&'static str>,
    apps: Vec<&'static str>,
    /// Organizations whose registry the caller may change (reading follows `organizations`).
    registry_writes: Vec<&'static str>,
    admin: bool,
}

impl Caller {
    async fn token(self, world: &World) -> Option<String> {
        let role = |name: &str, guid: &str| vec![format!("{name}:{guid}")];
        let with_roles = async |roles: Vec<String>| world.token_with("caller", &[], &roles).await;
        Some(match self {
            Self::NoToken => return None,
            Self::Expired => expired_token(),
            Self::BadSignature => mint(
                "another-secret-long-enough-for-hs256",
                &["berth.admin"],
                &[],
                Some(ISSUER),
                Some(AUDIENCE),
                600,
            ),
            Self::WrongIssuer => mint(
                HS256_SECRET,
                &["berth.admin"],
                &[],
                Some("https://evil.example.test"),
                Some(AUDIENCE),
                600,
            ),
            Self::WrongAudience => mint(
                HS256_SECRET,
                &["berth.admin"],
                &[],
                Some(ISSUER),
                Some("other"),
                600,
            ),
            Self::Admin => caller_token(&["berth.admin"], &[]),
            Self::ReadOnlyAdmin => caller_token(&["berth.admin_read_only"], &[]),
            Self::GlobalAuditor => caller_token(&["berth.global_auditor"], &[]),
            Self::OrgManager => with_roles(role("organization_manager", &world.org_a)).await,
            Self::OrgAuditor => with_roles(role("organization_auditor", &world.org_a)).await,
            Self::OrgUser => with_roles(role("organization_user", &world.org_a)).await,
            Self::SpaceDeveloper => with_roles(role("space_developer", &world.space_a1)).await,
            Self::SpaceManager => with_roles(role("space_manager", &world.space_a1)).await,
            Self::SpaceAuditor => with_roles(role("space_auditor", &world.space_a1)).await,
            Self::OtherOrgManager => with_roles(role("organization_manager", &world.org_b)).await,
            Self::NoRoles => caller_token(&["openid"], &[]),
        })
    }

    fn expect(self) -> Option<Expect> {
        use Cred::*;
        let everything = |admin: bool| Expect {
            read: ALL.to_vec(),
            write: if admin { ALL.to_vec() } else { vec![] },
            organizations: vec!["a", "b"],
            spaces: vec!["a1", "a2", "b1"],
            apps: vec!["a1", "b1"],
            registry_writes: if admin { vec!["a", "b"] } else { vec![] },
            admin,
        };
        let member_of_a = Expect {
            read: vec![Foundation, OrgA],
            write: vec![],
            organizations: vec!["a"],
            spaces: vec![],
            apps: vec![],
            registry_writes: vec![],
            admin: false,
        };
        let in_space_a1 = |write: Vec<Cred>| Expect {
            read: vec![Foundation, OrgA, SpaceA1, AppA1],
            write,
            organizations: vec!["a"],
            spaces: vec!["a1"],
            apps: vec!["a1"],
            registry_writes: vec![],
            admin: false,
        };
        Some(match self {
            Self::NoToken
            | Self::Expired
            | Self::BadSignature
            | Self::WrongIssuer
            | Self::WrongAudience => {
                return None;
            }
            Self::Admin => everything(true),
            Self::ReadOnlyAdmin | Self::GlobalAuditor => everything(false),
            Self::OrgManager => Expect {
                read: vec![Foundation, OrgA, SpaceA1, SpaceA2, AppA1],
                write: vec![OrgA],
                organizations: vec!["a"],
                spaces: vec!["a1", "a2"],
                apps: vec!["a1"],
                registry_writes: vec!["a"],
                admin: false,
            },
            Self::OrgAuditor | Self::OrgUser => member_of_a,
            Self::SpaceDeveloper => in_space_a1(vec![SpaceA1, AppA1]),
            Self::SpaceManager | Self::SpaceAuditor => in_space_a1(vec![]),
            Self::OtherOrgManager => Expect {
                read: vec![Foundation, OrgB, SpaceB1, AppB1],
                write: vec![OrgB],
                organizations: vec!["b"],
                spaces: vec!["b1"],
                apps: vec!["b1"],
                registry_writes: vec!["b"],
                admin: false,
            },
            Self::NoRoles => Expect {
                read: vec![Foundation],
                write: vec![],
                organizations: vec![],
                spaces: vec![],
                apps: vec![],
                registry_writes: vec![],
                admin: false,
            },
        })
    }
}

/// An admin token whose `exp` lies well past the leeway.
fn expired_token() -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "caller", "exp": now - 600, "iss": ISSUER, "aud": AUDIENCE, "scope": "berth.admin"}),
        &jsonwebtoken::EncodingKey::from_secret(HS256_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn call(
    world: &World,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let response = world
        .app
        .raw(method, path, token, body.map(|b| b.to_string()))
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

fn guids_of(list: &Value) -> BTreeSet<String> {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["guid"].as_str().unwrap().to_owned())
        .collect()
}

async fn check(caller: Caller, roles_source: RolesSource) {
    let world = World::new(roles_source).await;
    let token = caller.token(&world).await;
    let token = token.as_deref();
    let credential_paths: Vec<String> = ALL
        .iter()
        .map(|cred| format!("/v3/registry_credentials/{}", world.guid(*cred)))
        .collect();

    let Some(expect) = caller.expect() else {
        let mut routes: Vec<(Method, String)> = vec![
            (Method::GET, "/v3/registry_credentials".into()),
            (Method::POST, "/v3/registry_credentials".into()),
            (Method::GET, "/v3/organizations".into()),
            (Method::GET, "/v3/spaces".into()),
            (Method::GET, "/v3/apps".into()),
            (Method::GET, "/v3/audit_events".into()),
            (
                Method::GET,
                "/v3/audit_events/0195e4b4-0000-7000-8000-000000000000".into(),
            ),
            (Method::PUT, format!("/v3/organizations/{}", world.org_a)),
            (Method::DELETE, format!("/v3/organizations/{}", world.org_a)),
            (Method::GET, format!("/v3/spaces/{}", world.space_a1)),
            (Method::PUT, format!("/v3/apps/{}", world.app_a1)),
            (Method::POST, registry_path(&world.org_a)),
            (Method::GET, registry_path(&world.org_a)),
            (Method::PATCH, registry_path(&world.org_a)),
            (Method::DELETE, registry_path(&world.org_a)),
            (
                Method::GET,
                format!("{}/credentials", registry_path(&world.org_a)),
            ),
            (
                Method::POST,
                format!("{}/credentials", registry_path(&world.org_a)),
            ),
            (
                Method::POST,
                format!(
                    "{}/credentials/{}/rotate",
                    registry_path(&world.org_a),
                    world.default_robot("a")
                ),
            ),
            (
                Method::DELETE,
                format!(
                    "{}/credentials/{}",
                    registry_path(&world.org_a),
                    world.default_robot("a")
                ),
            ),
            (
                Method::PATCH,
                format!(
                    "{}/credentials/{}",
                    registry_path(&world.org_a),
                    world.default_robot("a")
                ),
            ),
            (
                Method::POST,
                format!("{}/pull_credential/rotate", registry_path(&world.org_a)),
            ),
            (
                Method::DELETE,
                format!("{}?purge=true", registry_path(&world.org_a)),
            ),
        ];
        for path in &credential_paths {
            routes.push((Method::GET, path.clone()));
            routes.push((Method::PATCH, path.clone()));
            routes.push((Method::DELETE, path.clone()));
        }
        for (method, path) in routes {
            let (status, body) = call(&world, token, method.clone(), &path, Some(json!({}))).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{caller:?} {method} {path}"
            );
            if path.starts_with("/api/v1") {
                assert_eq!(body["error"]["code"], "unauthorized", "{body}");
            } else if caller == Caller::NoToken {
                assert_v3_error(&body, 10002, "CF-NotAuthenticated");
            } else {
                assert_v3_error(&body, 1000, "CF-InvalidAuthToken");
            }
        }
        let (_, list) = world.app.get("/v3/registry_credentials").await;
        assert_eq!(
            list["pagination"]["total_results"], 10,
            "nothing changed: the eight and the two managed credentials"
        );
        return;
    };

    // Lists: exactly the readable credentials, counted in the database.
    let (status, list) = call(
        &world,
        token,
        Method::GET,
        &format!("/v3/registry_credentials?per_page=5000&label_selector=!{MANAGED_BY}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{caller:?}");
    let expected: BTreeSet<String> = expect
        .read
        .iter()
        .map(|c| world.guid(*c).to_owned())
        .collect();
    assert_eq!(guids_of(&list), expected, "{caller:?} list");
    assert_eq!(
        list["pagination"]["total_results"],
        expect.read.len(),
        "{caller:?}"
    );
    let (_, paged) = call(
        &world,
        token,
        Method::GET,
        &format!("/v3/registry_credentials?per_page=1&page=1&label_selector=!{MANAGED_BY}"),
        None,
    )
    .await;
    assert_eq!(
        paged["pagination"]["total_pages"],
        expect.read.len().max(1),
        "{caller:?}"
    );
    let (_, filtered) = call(
        &world,
        token,
        Method::GET,
        &format!(
            "/v3/registry_credentials?organization_guids={}&label_selector=!{MANAGED_BY}",
            world.org_a
        ),
        None,
    )
    .await;
    check_audit_events(&world, caller, token).await;
    let in_a = [Cred::OrgA, Cred::SpaceA1, Cred::SpaceA2, Cred::AppA1];
    let expected_in_a: BTreeSet<String> = expect
        .read
        .iter()
        .filter(|c| in_a.contains(c))
        .map(|c| world.guid(*c).to_owned())
        .collect();
    assert_eq!(
        guids_of(&filtered),
        expected_in_a,
        "{caller:?} organization filter"
    );
    // The managed credentials (the platform pull robots') are organization credentials: read by
    // whoever reads an organization-scoped credential of that organization.
    let (_, managed) = call(
        &world,
        token,
        Method::GET,
        &format!("/v3/registry_credentials?label_selector={MANAGED_BY}"),
        None,
    )
    .await;
    let readable_organizations = [Cred::OrgA, Cred::OrgB]
        .iter()
        .filter(|c| expect.read.contains(c))
        .count();
    assert_eq!(
        managed["pagination"]["total_results"], readable_organizations,
        "{caller:?} managed credentials: {managed}"
    );

    // Show and change each credential.
    for (cred, path) in ALL.iter().zip(&credential_paths) {
        let readable = expect.read.contains(cred);
        let writable = expect.write.contains(cred);
        let (status, body) = call(&world, token, Method::GET, path, None).await;
        assert_eq!(
            status,
            if readable {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
            "{caller:?} GET {cred:?}"
        );
        if !readable {
            assert_v3_error(&body, 10010, "CF-ResourceNotFound");
        }
        let (status, body) = call(
            &world,
            token,
            Method::PATCH,
            path,
            Some(json!({"username": "changed"})),
        )
        .await;
        let expected = match (readable, writable) {
            (_, true) => StatusCode::OK,
            (true, false) => StatusCode::FORBIDDEN,
            (false, false) => StatusCode::NOT_FOUND,
        };
        assert_eq!(status, expected, "{caller:?} PATCH {cred:?}: {body}");
        if expected == StatusCode::FORBIDDEN {
            assert_v3_error(&body, 10003, "CF-NotAuthorized");
        }
        let (_, seen_by_admin) = world.app.get(path).await;
        let username = if writable { "changed" } else { "u" };
        assert_eq!(
            seen_by_admin["username"], username,
            "{caller:?} PATCH {cred:?} changed nothing it may not"
        );
    }

    // Create in each scope target: 201 where writable, 403 where only readable, 422 elsewhere.
    for cred in ALL {
        let mut body = json!({"location": "new.example.com", "username": "u", "password": "p"});
        if let Some(relationships) = world.relationships(cred) {
            body["relationships"] = relationships;
        }
        let (status, response) = call(
            &world,
            token,
            Method::POST,
            "/v3/registry_credentials",
            Some(body),
        )
        .await;
        let expected = if expect.write.contains(&cred) {
            StatusCode::CREATED
        } else if expect.read.contains(&cred) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(
            status, expected,
            "{caller:?} POST into {cred:?}: {response}"
        );
        if expected == StatusCode::UNPROCESSABLE_ENTITY {
            let detail = response["errors"][0]["detail"].as_str().unwrap();
            assert!(
                detail.starts_with("Invalid ")
                    && detail.ends_with("exists and you have access to it."),
                "{detail}"
            );
        }
    }

    // The directory: lists and shows follow the same visibility; writes are for admins.
    let directory = [
        (
            "organizations",
            vec![("a", &world.org_a), ("b", &world.org_b)],
            &expect.organizations,
        ),
        (
            "spaces",
            vec![
                ("a1", &world.space_a1),
                ("a2", &world.space_a2),
                ("b1", &world.space_b1),
            ],
            &expect.spaces,
        ),
        (
            "apps",
            vec![("a1", &world.app_a1), ("b1", &world.app_b1)],
            &expect.apps,
        ),
    ];
    for (kind, members, visible) in &directory {
        let (status, list) = call(&world, token, Method::GET, &format!("/v3/{kind}"), None).await;
        assert_eq!(status, StatusCode::OK);
        let expected: BTreeSet<String> = members
            .iter()
            .filter(|(name, _)| visible.contains(name))
            .map(|(_, guid)| (*guid).clone())
            .collect();
        assert_eq!(guids_of(&list), expected, "{caller:?} list {kind}");
        assert_eq!(list["pagination"]["total_results"], expected.len());
        for (name, guid) in members {
            let path = format!("/v3/{kind}/{guid}");
            let (status, _) = call(&world, token, Method::GET, &path, None).await;
            let readable = visible.contains(name);
            assert_eq!(
                status,
                if readable {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                },
                "{caller:?} GET {kind} {name}"
            );
            if expect.admin && *kind == "apps" {
                // An admin's delete of an app succeeds and takes its credentials with it
                // (directory.rs), which the rest of the matrix still needs.
                continue;
            }
            let (status, body) = call(&world, token, Method::DELETE, &path, None).await;
            let expected = if expect.admin {
                StatusCode::UNPROCESSABLE_ENTITY // still in use: nothing is deleted
            } else if readable {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(status, expected, "{caller:?} DELETE {kind} {name}: {body}");
        }
    }
    let renames = [
        (
            format!("/v3/organizations/{}", world.org_a),
            json!({"name": "renamed"}),
        ),
        (
            format!("/v3/spaces/{}", world.space_a1),
            json!({"name": "renamed", "relationships": {"organization": {"data": {"guid": world.org_a}}}}),
        ),
        (
            format!("/v3/apps/{}", world.app_b1),
            json!({"name": "renamed", "relationships": {"space": {"data": {"guid": world.space_b1}}}}),
        ),
        (
            format!("/v3/organizations/{}", uuid::Uuid::new_v4()),
            json!({"name": "new"}),
        ),
    ];
    for (index, (path, body)) in renames.into_iter().enumerate() {
        let (status, response) = call(&world, token, Method::PUT, &path, Some(body)).await;
        let expected = match (expect.admin, index) {
            (true, 3) => StatusCode::CREATED,
            (true, _) => StatusCode::OK,
            (false, _) => StatusCode::FORBIDDEN,
        };
        assert_eq!(status, expected, "{caller:?} PUT {path}: {response}");
    }

    // Organization registries: anyone with a role in the organization reads, its managers write.
    for name in ["a", "b"] {
        let organization = world.organization(name).to_owned();
        let readable = expect.organizations.contains(&name);
        let writable = expect.registry_writes.contains(&name);
        let denied = |status: StatusCode, body: &Value, allowed: StatusCode| {
            let expected = if writable {
                allowed
            } else if readable {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(
                status, expected,
                "{caller:?} on the registry of {name}: {body}"
            );
            if expected == StatusCode::NOT_FOUND {
                assert_eq!(body["error"]["code"], "organization_not_found");
            }
            if expected == StatusCode::FORBIDDEN {
                assert_eq!(body["error"]["code"], "forbidden");
            }
        };
        let base = registry_path(&organization);
        let (status, body) = call(&world, token, Method::GET, &base, None).await;
        assert_eq!(
            status,
            if readable {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
            "{caller:?} GET registry {name}: {body}"
        );
        let (status, body) = call(
            &world,
            token,
            Method::GET,
            &format!("{base}/credentials"),
            None,
        )
        .await;
        assert_eq!(
            status,
            if readable {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
            "{caller:?} list robots {name}: {body}"
        );
        let (status, body) = call(&world, token, Method::POST, &base, None).await;
        denied(status, &body, StatusCode::CONFLICT);
        let (status, body) = call(
            &world,
            token,
            Method::PATCH,
            &base,
            Some(json!({"quota_gb": 7})),
        )
        .await;
        denied(status, &body, StatusCode::OK);
        let (status, body) = call(
            &world,
            token,
            Method::POST,
            &format!("{base}/credentials"),
            Some(json!({"name": "matrix", "access": "pull"})),
        )
        .await;
        denied(status, &body, StatusCode::CREATED);
        let robot = world.default_robot(name).to_owned();
        let (status, body) = call(
            &world,
            token,
            Method::POST,
            &format!("{base}/credentials/{robot}/rotate"),
            None,
        )
        .await;
        denied(status, &body, StatusCode::OK);
        let (status, body) = call(
            &world,
            token,
            Method::PATCH,
            &format!("{base}/credentials/{robot}"),
            Some(json!({"expires_in_days": 30})),
        )
        .await;
        denied(status, &body, StatusCode::OK);
        let (status, body) = call(
            &world,
            token,
            Method::POST,
            &format!("{base}/pull_credential/rotate"),
            None,
        )
        .await;
        denied(status, &body, StatusCode::NO_CONTENT);
        let (status, body) = call(
            &world,
            token,
            Method::DELETE,
            &format!("{base}/credentials/{robot}"),
            None,
        )
        .await;
        denied(status, &body, StatusCode::NO_CONTENT);
        let (status, body) = call(&world, token, Method::DELETE, &base, None).await;
        denied(status, &body, StatusCode::NO_CONTENT);
        let purge = format!("{base}?purge=true");
        let (status, body) = call(&world, token, Method::DELETE, &purge, None).await;
        denied(status, &body, StatusCode::NO_CONTENT);
    }
    // Each registry has its default and pull robots.
    let robots_left = world.harbor.state().robots.len();
    let expected_robots = 2 * (2 - expect.registry_writes.len());
    assert_eq!(
        robots_left, expected_robots,
        "{caller:?}: only the registries it may change lost their robots"
    );

    // Deletes last: 204 where writable, and nothing else disappears.
    for (cred, path) in ALL.iter().zip(&credential_paths) {
        let (status, _) = call(&world, token, Method::DELETE, path, None).await;
        let expected = if expect.write.contains(cred) {
            StatusCode::NO_CONTENT
        } else if expect.read.contains(cred) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(status, expected, "{caller:?} DELETE {cred:?}");
        let (status, _) = world.app.get(path).await;
        let gone = expect.write.contains(cred);
        assert_eq!(
            status,
            if gone {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            },
            "{caller:?} {cred:?} after DELETE"
        );
    }
}

/// Which audit events a caller sees, as Cloud Foundry's `readable_event_dataset`.
enum AuditView {
    All,
    Organization(String),
    Space(String),
    Nothing,
}

impl Caller {
    fn audit_view(self, world: &World) -> AuditView {
        match self {
            Self::Admin | Self::ReadOnlyAdmin | Self::GlobalAuditor => AuditView::All,
            Self::OrgManager | Self::OrgAuditor => AuditView::Organization(world.org_a.clone()),
            Self::OtherOrgManager => AuditView::Organization(world.org_b.clone()),
            Self::SpaceDeveloper | Self::SpaceManager | Self::SpaceAuditor => {
                AuditView::Space(world.space_a1.clone())
            }
            _ => AuditView::Nothing,
        }
    }
}

/// The events of the world's changes: exactly the visible ones listed and counted, each
/// visible one shown, each other one 404.
async fn check_audit_events(world: &World, caller: Caller, token: Option<&str>) {
    let (status, every) = world.app.get("/v3/audit_events?per_page=5000").await;
    assert_eq!(status, StatusCode::OK);
    let view = caller.audit_view(world);
    let events = every["resources"].as_array().unwrap();
    assert!(events.len() > 10, "the world's changes were recorded");
    let visible: BTreeSet<String> = events
        .iter()
        .filter(|event| match &view {
            AuditView::All => true,
            AuditView::Organization(guid) => event["organization"]["guid"] == guid.as_str(),
            AuditView::Space(guid) => event["space"]["guid"] == guid.as_str(),
            AuditView::Nothing => false,
        })
        .map(|event| event["guid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        visible.is_empty(),
        matches!(view, AuditView::Nothing),
        "{caller:?}"
    );
    let (status, list) = call(
        world,
        token,
        Method::GET,
        "/v3/audit_events?per_page=5000",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{caller:?}");
    assert_eq!(guids_of(&list), visible, "{caller:?} audit events");
    assert_eq!(list["pagination"]["total_results"], visible.len());
    for event in events {
        let guid = event["guid"].as_str().unwrap();
        let (status, shown) = call(
            world,
            token,
            Method::GET,
            &format!("/v3/audit_events/{guid}"),
            None,
        )
        .await;
        if visible.contains(guid) {
            assert_eq!((status, &shown), (StatusCode::OK, event), "{caller:?}");
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{caller:?} {guid}");
            assert_v3_error(&shown, 10010, "CF-ResourceNotFound");
        }
    }
}

/// The matrix once per source of roles: the same answers whether roles come from the token or
/// from the directory.
macro_rules! matrix {
    ($($source:ident => $roles_source:expr),* $(,)?) => {
        $(
        mod $source {
            use super::*;

            #[tokio::test]
            async fn matrix_no_token() {
                check(Caller::NoToken, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_expired_token() {
                check(Caller::Expired, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_bad_signature() {
                check(Caller::BadSignature, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_wrong_issuer() {
                check(Caller::WrongIssuer, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_wrong_audience() {
                check(Caller::WrongAudience, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_admin() {
                check(Caller::Admin, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_read_only_admin() {
                check(Caller::ReadOnlyAdmin, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_global_auditor() {
                check(Caller::GlobalAuditor, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_organization_manager() {
                check(Caller::OrgManager, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_organization_auditor() {
                check(Caller::OrgAuditor, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_organization_user() {
                check(Caller::OrgUser, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_space_developer() {
                check(Caller::SpaceDeveloper, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_space_manager() {
                check(Caller::SpaceManager, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_space_auditor() {
                check(Caller::SpaceAuditor, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_other_organization_manager() {
                check(Caller::OtherOrgManager, $roles_source).await;
            }

            #[tokio::test]
            async fn matrix_no_roles() {
                check(Caller::NoRoles, $roles_source).await;
            }

            #[tokio::test]
            async fn another_organizations_ids_answer_404_or_422_and_change_nothing() {
                cross_tenant($roles_source).await;
            }
        }
        )*
    };
}

matrix! {
    roles_from_claims => RolesSource::Claims,
    roles_from_directory => RolesSource::Directory,
    roles_from_both => RolesSource::Both,
}

/// Every row of every table, as text, to prove a request changed nothing.
async fn snapshot(world: &World) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    let db = world.app.connect().await;
    let mut rows = Vec::new();
    for (table, order) in [
        ("registries", "id"),
        ("registry_robots", "id"),
        ("organizations", "guid"),
        ("spaces", "guid"),
        ("apps", "guid"),
        ("registry_credentials", "guid"),
        ("registry_credential_labels", "credential_guid, key"),
    ] {
        let statement = sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT * FROM {table} ORDER BY {order}"),
        );
        for row in db.query_all_raw(statement).await.unwrap() {
            rows.push(format!("{table}: {row:?}"));
        }
    }
    rows
}

async fn cross_tenant(roles_source: RolesSource) {
    let world = World::new(roles_source).await;
    let harbor_before = world.harbor.state();
    let before = snapshot(&world).await;
    assert!(before.len() > 10);
    for (subject, roles) in [
        (
            "manager-of-b",
            vec![format!("organization_manager:{}", world.org_b)],
        ),
        (
            "developer-in-b1",
            vec![format!("space_developer:{}", world.space_b1)],
        ),
    ] {
        let token = world.token_with(subject, &[], &roles).await;
        let token = Some(token.as_str());
        for cred in [Cred::OrgA, Cred::SpaceA1, Cred::SpaceA2, Cred::AppA1] {
            let path = format!("/v3/registry_credentials/{}", world.guid(cred));
            for (method, body) in [
                (Method::GET, None),
                (
                    Method::PATCH,
                    Some(
                        json!({"username": "x", "password": "y", "metadata": {"labels": {"k": "v"}}}),
                    ),
                ),
                (Method::DELETE, None),
            ] {
                let (status, response) = call(&world, token, method.clone(), &path, body).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{roles:?} {method} {cred:?}");
                assert_v3_error(&response, 10010, "CF-ResourceNotFound");
            }
        }
        for (kind, guid) in [
            ("organization", &world.org_a),
            ("space", &world.space_a1),
            ("app", &world.app_a1),
        ] {
            let body = json!({"location": "evil.example.com", "username": "u", "password": "p",
                "relationships": {kind: {"data": {"guid": guid}}}});
            let (status, response) = call(
                &world,
                token,
                Method::POST,
                "/v3/registry_credentials",
                Some(body),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{roles:?} POST into {kind}"
            );
            assert_eq!(
                response["errors"][0]["detail"],
                format!("Invalid {kind}. Ensure that the {kind} exists and you have access to it.")
            );
        }
        for query in [
            format!("organization_guids={}", world.org_a),
            format!("space_guids={},{}", world.space_a1, world.space_a2),
            format!("app_guids={}", world.app_a1),
            format!(
                "guids={},{}",
                world.guid(Cred::OrgA),
                world.guid(Cred::AppA1)
            ),
        ] {
            let (status, list) = call(
                &world,
                token,
                Method::GET,
                &format!("/v3/registry_credentials?{query}"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(list["pagination"]["total_results"], 0, "{roles:?} {query}");
            assert_eq!(list["resources"], json!([]));
        }
        // Organization A's events: absent from the list, 404 one by one.
        let (_, a_events) = world
            .app
            .get(&format!(
                "/v3/audit_events?organization_guids={}&per_page=5000",
                world.org_a
            ))
            .await;
        let a_events = a_events["resources"].as_array().unwrap().clone();
        assert!(!a_events.is_empty());
        let (status, seen) = call(
            &world,
            token,
            Method::GET,
            &format!("/v3/audit_events?organization_guids={}", world.org_a),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(seen["pagination"]["total_results"], 0, "{roles:?}");
        for event in &a_events {
            let path = format!("/v3/audit_events/{}", event["guid"].as_str().unwrap());
            let (status, _) = call(&world, token, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{roles:?} {path}");
        }
        for path in [
            format!("/v3/organizations/{}", world.org_a),
            format!("/v3/spaces/{}", world.space_a1),
            format!("/v3/spaces/{}", world.space_a2),
            format!("/v3/apps/{}", world.app_a1),
        ] {
            for method in [Method::GET, Method::DELETE] {
                let (status, _) = call(&world, token, method.clone(), &path, None).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{roles:?} {method} {path}");
            }
        }
        let registry = registry_path(&world.org_a);
        let robot = world.default_robot("a");
        for (method, path, body) in [
            (Method::GET, registry.clone(), None),
            (Method::GET, format!("{registry}/credentials"), None),
            (
                Method::PATCH,
                format!("{registry}/credentials/{robot}"),
                Some(json!({"expires_in_days": 5})),
            ),
            (
                Method::POST,
                format!("{registry}/pull_credential/rotate"),
                None,
            ),
            (Method::DELETE, format!("{registry}?purge=true"), None),
            (Method::DELETE, registry.clone(), None),
        ] {
            let (status, response) = call(&world, token, method.clone(), &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{roles:?} {method} {path}");
            assert_eq!(response["error"]["code"], "organization_not_found");
        }
        let (status, _) = call(
            &world,
            token,
            Method::PUT,
            &format!("/v3/spaces/{}", world.space_a1),
            Some(json!({"name": "taken", "relationships": {"organization": {"data": {"guid": world.org_b}}}})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (_, spaces) = call(
            &world,
            token,
            Method::GET,
            &format!("/v3/spaces?organization_guids={}", world.org_a),
            None,
        )
        .await;
        assert_eq!(spaces["pagination"]["total_results"], 0);
    }
    assert_eq!(
        snapshot(&world).await,
        before,
        "a cross-tenant request changed the database"
    );
    let harbor_after = world.harbor.state();
    assert_eq!(
        (
            harbor_after.projects,
            harbor_after.quotas,
            harbor_after.robots
        ),
        (
            harbor_before.projects,
            harbor_before.quotas,
            harbor_before.robots
        ),
        "a cross-tenant request changed Harbor"
    );
}
