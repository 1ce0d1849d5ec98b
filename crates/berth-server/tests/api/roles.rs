//! `/v3/roles`: Cloud Foundry's role resource and create body, its rules, its filters, and 50
//! identical `PUT`s over two replicas.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use berth_auth::RolesSource;
use berth_server::startup::Runtime;
use berth_testkit::TestDatabase;

use crate::helpers::{TestApp, assert_v3_error, detail, key_spec, token};

const USER: &str = "0e2c9c56-7b1f-4b4e-9d0e-3f1a2b3c4d5e";

fn role_body(kind: &str, user: &str, target: &str, guid: &str) -> Value {
    json!({"type": kind, "relationships": {
        "user": {"data": {"guid": user}},
        target: {"data": {"guid": guid}},
    }})
}

fn new_path() -> String {
    format!("/v3/roles/{}", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn a_role_is_put_once_and_shown_as_cloud_foundry_shows_it() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let space = app.space(&organization, "s").await;
    let org_path = new_path();
    let (status, org_role) = app
        .put(
            &org_path,
            role_body("organization_user", USER, "organization", &organization),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{org_role}");
    assert_eq!(org_role["type"], "organization_user");
    assert_eq!(org_role["relationships"]["user"]["data"]["guid"], USER);
    assert_eq!(
        org_role["relationships"]["organization"]["data"]["guid"],
        organization.as_str()
    );
    assert_eq!(org_role["relationships"]["space"]["data"], Value::Null);
    assert!(
        org_role["links"]["self"]["href"]
            .as_str()
            .unwrap()
            .ends_with(&org_path)
    );
    assert_eq!(org_role["created_at"], org_role["updated_at"]);

    // The same PUT again: 200, the same resource.
    let (status, again) = app
        .put(
            &org_path,
            role_body("organization_user", USER, "organization", &organization),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, org_role);
    let (status, shown) = app.get(&org_path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, org_role);

    let space_path = new_path();
    let (status, space_role) = app
        .put(
            &space_path,
            role_body("space_developer", USER, "space", &space),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{space_role}");
    assert_eq!(
        space_role["relationships"]["space"]["data"]["guid"],
        space.as_str()
    );
    assert_eq!(
        space_role["relationships"]["organization"]["data"],
        Value::Null
    );

    // The same guid for another grant, and the same grant under another guid.
    let (status, body) = app
        .put(
            &org_path,
            role_body("organization_manager", USER, "organization", &organization),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_v3_error(&body, 10008, "CF-UnprocessableEntity");
    let (status, body) = app
        .put(
            &new_path(),
            role_body("space_developer", USER, "space", &space),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_v3_error(&body, 10016, "CF-UniquenessError");
    assert_eq!(
        detail(&body),
        format!("User '{USER}' already has 'space_developer' role in space '{space}'.")
    );
}

#[tokio::test]
async fn roles_that_do_not_fit_are_refused_with_422() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let space = app.space(&organization, "s").await;
    let missing = uuid::Uuid::new_v4().to_string();
    let invalid = |what: &str| {
        format!("Invalid {what}. Ensure that the {what} exists and you have access to it.")
    };
    for (body, expected) in [
        (
            role_body("organization_user", USER, "organization", &missing),
            invalid("organization"),
        ),
        (
            role_body("space_developer", USER, "space", &missing),
            invalid("space"),
        ),
        (
            role_body("organization_user", USER, "organization", "not-a-guid"),
            invalid("organization"),
        ),
        // A space role on an organization, and an organization role on a space.
        (
            role_body("space_developer", USER, "organization", &organization),
            "Relationships space_developer is a space role: it needs a space relationship and \
             no organization"
                .to_owned(),
        ),
        (
            role_body("organization_manager", USER, "space", &space),
            "Relationships organization_manager is an organization role: it needs an \
             organization relationship and no space"
                .to_owned(),
        ),
        // As Cloud Foundry: a space role needs a role in the space's organization.
        (
            role_body("space_developer", USER, "space", &space),
            "Users cannot be assigned roles in a space if they do not have a role in that \
             space's organization."
                .to_owned(),
        ),
        (
            role_body("wizard", USER, "space", &space),
            "Type must be one of the allowed types: organization_manager, organization_auditor, \
             organization_user, organization_billing_manager, space_manager, space_developer, \
             space_auditor, space_supporter"
                .to_owned(),
        ),
        (
            json!({"type": "organization_user", "relationships": {
                "organization": {"data": {"guid": organization}}}}),
            "Relationships user can't be blank".to_owned(),
        ),
        (
            role_body(
                "organization_user",
                "has space",
                "organization",
                &organization,
            ),
            "User guid must be 1 to 255 visible characters".to_owned(),
        ),
        (
            json!({"type": "organization_user", "extra": 1, "relationships": {
                "user": {"data": {"guid": USER}},
                "organization": {"data": {"guid": organization}}}}),
            "Unknown field(s): 'extra'".to_owned(),
        ),
    ] {
        let (status, answer) = app.put(&new_path(), body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} {answer}");
        assert_v3_error(&answer, 10008, "CF-UnprocessableEntity");
        assert_eq!(detail(&answer), expected, "{body}");
    }
    let (_, list) = app.get("/v3/roles").await;
    assert_eq!(list["pagination"]["total_results"], 0, "nothing was stored");
}

#[tokio::test]
async fn only_admins_write_roles_and_members_see_their_organizations_roles() {
    let app = TestApp::spawn_configured(
        berth_testkit::TestDatabase::new().await,
        crate::helpers::key_spec(&["k1"]),
        "k1",
        |runtime| runtime.claim_rules.roles_source = berth_auth::RolesSource::Both,
    )
    .await;
    let a = app.organization("a").await;
    let b = app.organization("b").await;
    let mut guids = Vec::new();
    for (user, organization) in [("alice", &a), ("bob", &a), ("carol", &b)] {
        let path = new_path();
        let (status, _) = app
            .put(
                &path,
                role_body("organization_user", user, "organization", organization),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        guids.push(path);
    }
    // alice's roles come from the directory.
    let alice = token("alice", &[], Duration::from_secs(600));
    let (status, list) = app
        .raw_json(Method::GET, "/v3/roles", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut users: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|role| {
            role["relationships"]["user"]["data"]["guid"]
                .as_str()
                .unwrap()
        })
        .collect();
    // Put within one second: their order is the guids'.
    users.sort_unstable();
    assert_eq!(users, ["alice", "bob"], "organization a's roles only");
    let (status, _) = app
        .raw_json(Method::GET, &guids[2], Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "carol's role is in b");
    let (status, body) = app
        .raw_json(
            Method::PUT,
            &new_path(),
            Some(&alice),
            Some(role_body(
                "organization_manager",
                "alice",
                "organization",
                &a,
            )),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_v3_error(&body, 10003, "CF-NotAuthorized");
    let (status, _) = app
        .raw_json(Method::DELETE, &guids[1], Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "visible, not writable");
    let (status, _) = app
        .raw_json(Method::DELETE, &guids[2], Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "invisible");
}

#[tokio::test]
async fn roles_are_filtered_and_the_filters_are_bounded() {
    let app = TestApp::spawn().await;
    let a = app.organization("a").await;
    let b = app.organization("b").await;
    let a1 = app.space(&a, "a1").await;
    for (kind, user, target, guid) in [
        ("organization_user", "alice", "organization", &a),
        ("organization_manager", "bob", "organization", &a),
        ("organization_user", "bob", "organization", &b),
        ("space_developer", "alice", "space", &a1),
    ] {
        let (status, body) = app
            .put(&new_path(), role_body(kind, user, target, guid))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let count = |query: String| {
        let app = &app;
        async move {
            let (status, list) = app.get(&format!("/v3/roles?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query} {list}");
            list["pagination"]["total_results"].as_u64().unwrap()
        }
    };
    assert_eq!(count(String::new()).await, 4);
    assert_eq!(count("types=organization_user".into()).await, 2);
    assert_eq!(
        count("types=space_developer,organization_manager".into()).await,
        2
    );
    assert_eq!(count("user_guids=bob".into()).await, 2);
    assert_eq!(count(format!("organization_guids={a}")).await, 2);
    assert_eq!(count(format!("space_guids={a1}")).await, 1);
    assert_eq!(
        count(format!("user_guids=alice&organization_guids={b}")).await,
        0
    );
    assert_eq!(count("per_page=1&order_by=-created_at".into()).await, 4);

    let too_many: Vec<String> = (0..201).map(|i| format!("user-{i}")).collect();
    for query in [
        format!("user_guids={}", too_many.join(",")),
        "types=wizard".to_owned(),
        "space_guids=not-a-guid".to_owned(),
        "order_by=name".to_owned(),
        "colour=red".to_owned(),
    ] {
        let (status, body) = app.get(&format!("/v3/roles?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query} {body}");
        assert_v3_error(&body, 10005, "CF-BadQueryParameter");
    }
}

#[tokio::test]
async fn the_last_organization_role_stays_while_space_roles_depend_on_it() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let space = app.space(&organization, "s").await;
    let user_role = new_path();
    let auditor_role = new_path();
    let space_role = new_path();
    for (path, body) in [
        (
            &user_role,
            role_body("organization_user", USER, "organization", &organization),
        ),
        (
            &auditor_role,
            role_body("organization_auditor", USER, "organization", &organization),
        ),
        (
            &space_role,
            role_body("space_auditor", USER, "space", &space),
        ),
    ] {
        assert_eq!(app.put(path, body).await.0, StatusCode::CREATED);
    }
    // Another organization role remains: this one may go.
    assert_eq!(app.delete(&user_role).await.0, StatusCode::NO_CONTENT);
    let (status, body) = app.delete(&auditor_role).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "Cannot delete the user's last role in the organization while the user has 1 role(s) \
         in its spaces: delete those first."
    );
    let (status, body) = app.delete(&format!("/v3/spaces/{space}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), "Space still has 1 role: delete them first");
    assert_eq!(app.delete(&space_role).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&auditor_role).await.0, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&auditor_role).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Role not found");
    assert_eq!(app.delete(&auditor_role).await.0, StatusCode::NOT_FOUND);
}

/// Fifty identical `PUT`s at once, half through a second replica: one role, each answer a 201
/// or a 200 with that role, never a 5xx.
#[tokio::test]
async fn fifty_identical_puts_over_two_replicas_give_exactly_one_role() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let organization = app.organization("o").await;
    let space = app.space(&organization, "s").await;
    let (status, _) = app
        .put(
            &new_path(),
            role_body("organization_user", USER, "organization", &organization),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let path = new_path();
    let body = role_body("space_developer", USER, "space", &space);
    let puts = (0..50).map(|i| {
        let address = if i % 2 == 0 { &app.address } else { &replica };
        app.call_at(address, Method::PUT, &path, Some(body.clone()))
    });
    let results = futures_util::future::join_all(puts).await;
    let created = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "exactly one PUT creates the role");
    for (status, answer) in &results {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::OK,
            "{status} {answer}"
        );
        assert_eq!(answer["guid"], results[0].1["guid"]);
    }
    let (_, list) = app.get(&format!("/v3/roles?space_guids={space}")).await;
    assert_eq!(list["pagination"]["total_results"], 1);
}

/// The status of `GET path` at the Berth at `address` with `token`.
async fn status_at(app: &TestApp, address: &str, path: &str, token: &str) -> StatusCode {
    app.client
        .get(format!("{address}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// The permission lookup is cached per process (`auth.permission_cache_ms`): a role removed
/// through one replica stops counting there at once, and on another replica that had cached it
/// within the stated bound, never later.
#[tokio::test]
async fn a_removed_role_stops_counting_at_once_here_and_within_the_cache_bound_elsewhere() {
    let directory_roles = |runtime: &mut Runtime| {
        runtime.claim_rules.roles_source = RolesSource::Directory;
    };
    let app = TestApp::spawn_configured(
        TestDatabase::new().await,
        key_spec(&["k1"]),
        "k1",
        directory_roles,
    )
    .await;
    let replica = app.replica_configured(directory_roles).await;
    let organization = app.organization("o").await;
    let credential = app
        .credential(json!({
            "location": "r.example.com/team",
            "username": "u",
            "password": "p",
            "relationships": {"organization": {"data": {"guid": organization}}},
        }))
        .await;
    let path = format!(
        "/v3/registry_credentials/{}",
        credential["guid"].as_str().unwrap()
    );
    let reader = token(USER, &[], Duration::from_secs(600));
    assert_eq!(
        status_at(&app, &replica, &path, &reader).await,
        StatusCode::NOT_FOUND
    );

    // Granted through this replica: it counts here at once, on the other within the bound (the
    // other cached "no role" a moment ago).
    let role = new_path();
    let (status, _) = app
        .put(
            &role,
            role_body("organization_manager", USER, "organization", &organization),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        status_at(&app, &app.address, &path, &reader).await,
        StatusCode::OK
    );
    let bound = Duration::from_millis(berth_server::config::DEFAULT_PERMISSION_CACHE_MS);
    until_status(&app, &replica, &path, &reader, StatusCode::OK, bound).await;

    // Removed through this replica: refused here at once, elsewhere within the bound.
    assert_eq!(
        status_at(&app, &replica, &path, &reader).await,
        StatusCode::OK
    );
    assert_eq!(app.delete(&role).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        status_at(&app, &app.address, &path, &reader).await,
        StatusCode::NOT_FOUND
    );
    until_status(&app, &replica, &path, &reader, StatusCode::NOT_FOUND, bound).await;
}

/// Polls `GET path` at `address` every 20 ms until it answers `wanted`; fails after twice the
/// `bound` (the slack is for a loaded test machine, the bound is the cache's).
async fn until_status(
    app: &TestApp,
    address: &str,
    path: &str,
    token: &str,
    wanted: StatusCode,
    bound: Duration,
) {
    let started = std::time::Instant::now();
    loop {
        let status = status_at(app, address, path, token).await;
        if status == wanted {
            return;
        }
        assert!(
            started.elapsed() < bound * 2,
            "still {status} after {:?}, wanted {wanted}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
