//! `/v3/audit_events`: every change records its event, no secret reaches one, resolution's
//! reveals are recorded by the batched writer, and the list speaks V3.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_v3_error, token};

const EVENTS: &str = "/v3/audit_events";
const HIDDEN: &str = "[PRIVATE DATA HIDDEN]";

async fn as_caller(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let response = app
        .raw(method, path, Some(token), body.map(|b| b.to_string()))
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, value)
}

fn types_of(list: &Value) -> BTreeSet<String> {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap().to_owned())
        .collect()
}

/// The events of `types` (comma-separated), polled until `count` are there: access events are
/// written by a background writer every 250 ms.
async fn wait_for_events(app: &TestApp, types: &str, count: usize) -> Value {
    for _ in 0..40 {
        let (status, list) = app
            .get(&format!("{EVENTS}?types={types}&per_page=5000"))
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        if list["resources"].as_array().unwrap().len() >= count {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} events of {types} were written");
}

/// Every row of the audit table, as the database holds it.
async fn raw_events(app: &TestApp) -> String {
    use sea_orm::ConnectionTrait;
    let db = app.connect().await;
    let statement = sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT * FROM audit_events".to_owned(),
    );
    let rows = db.query_all_raw(statement).await.unwrap();
    assert!(!rows.is_empty());
    rows.iter()
        .map(|row| format!("{row:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The flows of the suite (directory, credentials with passwords, a registry with robots and
/// their secrets, resolution) each record their events, and no secret they used or were given
/// appears anywhere in a stored event.
#[tokio::test]
async fn every_change_is_recorded_and_no_secret_reaches_an_event() {
    let (app, _harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let mut secrets: Vec<String> = vec![app.admin_token.clone()];
    let organization = app.organization("audited").await;
    let space = app.space(&organization, "dev").await;
    let application = app.app(&space, "web").await;

    let create_password = "create-pw-5f1a9c";
    let created = app
        .credential(json!({
            "location": "registry.example.com/team",
            "username": "ci-bot",
            "password": create_password,
            "relationships": {"app": {"data": {"guid": application}}},
        }))
        .await;
    secrets.push(create_password.into());
    let credential = created["guid"].as_str().unwrap().to_owned();
    let update_password = "update-pw-77d0e2";
    let (status, _) = app
        .patch(
            &format!("/v3/registry_credentials/{credential}"),
            json!({"password": update_password, "username": "ci-bot-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    secrets.push(update_password.into());

    let registry = format!("/api/v1/organizations/{organization}/registry");
    let (status, enabled) = app.call(Method::POST, &registry, None).await;
    assert_eq!(status, StatusCode::CREATED, "{enabled}");
    secrets.push(enabled["credentials"]["password"].as_str().unwrap().into());
    let (status, robot) = app
        .post(
            &format!("{registry}/credentials"),
            json!({"name": "ci", "access": "pull"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{robot}");
    secrets.push(robot["credentials"]["password"].as_str().unwrap().into());
    let robot_id = robot["credential"]["id"].as_str().unwrap().to_owned();
    let (status, rotated) = app
        .post(
            &format!("{registry}/credentials/{robot_id}/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    secrets.push(rotated["credentials"]["password"].as_str().unwrap().into());
    let (status, _) = app.patch(&registry, json!({"quota_gb": 20})).await;
    assert_eq!(status, StatusCode::OK);

    let deployer = token(
        "deployer",
        &["berth.pull_secrets"],
        Duration::from_secs(600),
    );
    secrets.push(deployer.clone());
    let (status, resolved) = as_caller(
        &app,
        &deployer,
        Method::POST,
        "/v3/registry_credentials/actions/resolve",
        Some(json!({
            "images": ["registry.example.com/team/web:1"],
            "relationships": {"app": {"data": {"guid": application}}},
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    for auth in resolved["docker_config"]["auths"]
        .as_object()
        .unwrap()
        .values()
    {
        secrets.push(auth["auth"].as_str().unwrap().into());
    }

    let (status, _) = app
        .delete(&format!("/v3/registry_credentials/{credential}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .delete(&format!("{registry}/credentials/{robot_id}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&registry).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&format!("{registry}?purge=true")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A credential still held by the app goes with it, with its own event.
    let owned = app
        .credential(json!({
            "location": "owned.example.com",
            "username": "owned-bot",
            "password": "owned-pw-3c9e41",
            "relationships": {"app": {"data": {"guid": application}}},
        }))
        .await;
    secrets.push("owned-pw-3c9e41".into());
    let owned = owned["guid"].as_str().unwrap().to_owned();
    let (status, _) = app.delete(&format!("/v3/apps/{application}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let member = uuid::Uuid::new_v4();
    let developer = uuid::Uuid::new_v4();
    for (role, body) in [
        (
            member,
            json!({"type": "organization_user", "relationships": {
                "user": {"data": {"guid": "dev-user"}},
                "organization": {"data": {"guid": organization}}}}),
        ),
        (
            developer,
            json!({"type": "space_developer", "relationships": {
                "user": {"data": {"guid": "dev-user"}},
                "space": {"data": {"guid": space}}}}),
        ),
    ] {
        let (status, body) = app.put(&format!("/v3/roles/{role}"), body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = app.delete(&format!("/v3/roles/{developer}")).await;
    assert!(status.is_success(), "{status}");

    let access = wait_for_events(&app, "audit.registry_credential.access", 1).await;
    let event = &access["resources"][0];
    assert_eq!(event["target"]["guid"], credential.as_str());
    assert_eq!(
        event["actor"],
        json!({"guid": "deployer", "type": "user", "name": "deployer"})
    );
    assert_eq!(event["space"]["guid"], space.as_str());
    assert_eq!(event["data"]["request"]["password"], HIDDEN);

    let (status, all) = app.get(&format!("{EVENTS}?per_page=5000")).await;
    assert_eq!(status, StatusCode::OK);
    let recorded = types_of(&all);
    for expected in [
        "audit.organization.upsert",
        "audit.space.upsert",
        "audit.app.upsert",
        "audit.registry_credential.create",
        "audit.registry_credential.update",
        "audit.registry_credential.delete",
        "audit.registry_credential.access",
        "audit.organization_registry.enable",
        "audit.organization_registry.update",
        "audit.organization_registry.disable",
        "audit.organization_registry.purge",
        "audit.registry_robot.create",
        "audit.registry_robot.rotate",
        "audit.registry_robot.delete",
        "audit.app.delete",
        "audit.role.upsert",
        "audit.role.delete",
    ] {
        assert!(
            recorded.contains(expected),
            "{expected} missing: {recorded:?}"
        );
    }
    let (_, enables) = app
        .get(&format!(
            "{EVENTS}?types=audit.organization_registry.enable&organization_guids={organization}"
        ))
        .await;
    assert_eq!(enables["pagination"]["total_results"], 1, "{enables}");
    assert_eq!(
        enables["resources"][0]["data"],
        json!({"request": {"quota_gb": 10}})
    );
    assert_eq!(
        enables["resources"][0]["target"]["type"],
        "organization_registry"
    );
    assert_eq!(enables["resources"][0]["actor"]["type"], "user");
    let (_, creates) = app
        .get(&format!(
            "{EVENTS}?types=audit.registry_credential.create&target_guids={credential}"
        ))
        .await;
    let create = &creates["resources"][0];
    assert_eq!(create["data"]["request"]["password"], HIDDEN);
    assert_eq!(create["data"]["request"]["username"], "ci-bot");
    assert_eq!(create["organization"]["guid"], organization.as_str());
    assert_eq!(create["space"]["guid"], space.as_str());
    assert_eq!(create["created_at"], create["updated_at"]);
    let guid = create["guid"].as_str().unwrap();
    assert_eq!(
        create["links"]["self"]["href"],
        format!("https://berth.example.test/v3/audit_events/{guid}")
    );
    let (status, shown) = app.get(&format!("{EVENTS}/{guid}")).await;
    assert_eq!((status, &shown), (StatusCode::OK, create));

    // The app's delete: its event and the one of the credential that went with it, by the same
    // actor, in the app's space.
    let (_, app_deletes) = app
        .get(&format!(
            "{EVENTS}?types=audit.app.delete&target_guids={application}"
        ))
        .await;
    assert_eq!(
        app_deletes["pagination"]["total_results"], 1,
        "{app_deletes}"
    );
    let (_, owned_deletes) = app
        .get(&format!(
            "{EVENTS}?types=audit.registry_credential.delete&target_guids={owned}"
        ))
        .await;
    assert_eq!(
        owned_deletes["pagination"]["total_results"], 1,
        "{owned_deletes}"
    );
    let owned_delete = &owned_deletes["resources"][0];
    assert_eq!(owned_delete["actor"], app_deletes["resources"][0]["actor"]);
    assert_eq!(owned_delete["target"]["name"], "owned.example.com");
    assert_eq!(owned_delete["organization"]["guid"], organization.as_str());
    assert_eq!(owned_delete["space"]["guid"], space.as_str());

    // Role events sit where the role is held: an organization role in its organization, a
    // space role in its space too.
    let (_, member_events) = app.get(&format!("{EVENTS}?target_guids={member}")).await;
    assert_eq!(
        types_of(&member_events),
        BTreeSet::from(["audit.role.upsert".to_owned()])
    );
    let upsert = &member_events["resources"][0];
    assert_eq!(
        upsert["target"],
        json!({"guid": member.to_string(), "type": "role", "name": "organization_user"})
    );
    assert_eq!(upsert["organization"]["guid"], organization.as_str());
    assert_eq!(upsert["space"], Value::Null);
    assert_eq!(upsert["data"]["request"]["user_guid"], "dev-user");
    let (_, developer_events) = app
        .get(&format!(
            "{EVENTS}?target_guids={developer}&order_by=created_at"
        ))
        .await;
    let kinds: Vec<&str> = developer_events["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["audit.role.upsert", "audit.role.delete"]);
    for event in developer_events["resources"].as_array().unwrap() {
        assert_eq!(event["organization"]["guid"], organization.as_str());
        assert_eq!(event["space"]["guid"], space.as_str());
        assert_eq!(event["target"]["name"], "space_developer");
    }

    let stored = raw_events(&app).await;
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !stored.contains(secret.as_str()),
            "a secret reached the audit table"
        );
    }
    assert!(!stored.contains("Bearer"));
}

#[tokio::test]
async fn the_list_filters_orders_pages_and_refuses_bad_queries() {
    let app = TestApp::spawn().await;
    let first = app.organization("first").await;
    let second = app.organization("second").await;
    let (status, list) = app
        .get(&format!("{EVENTS}?organization_guids={first}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["pagination"]["total_results"], 1);
    assert_eq!(list["resources"][0]["target"]["guid"], first.as_str());
    assert_eq!(list["resources"][0]["target"]["type"], "organization");
    assert_eq!(list["resources"][0]["target"]["name"], "first");

    let (_, ordered) = app
        .get(&format!("{EVENTS}?order_by=-created_at&per_page=1"))
        .await;
    assert_eq!(ordered["pagination"]["total_results"], 2);
    assert_eq!(ordered["pagination"]["total_pages"], 2);
    assert_eq!(ordered["resources"][0]["target"]["guid"], second.as_str());
    assert!(
        ordered["pagination"]["next"]["href"]
            .as_str()
            .unwrap()
            .contains("order_by=-created_at")
    );

    let (_, future) = app
        .get(&format!("{EVENTS}?created_ats[gt]=2999-01-01T00:00:00Z"))
        .await;
    assert_eq!(future["pagination"]["total_results"], 0);
    let (_, past) = app
        .get(&format!("{EVENTS}?updated_ats[lte]=2999-01-01T00:00:00Z"))
        .await;
    assert_eq!(past["pagination"]["total_results"], 2);
    let (_, none) = app.get(&format!("{EVENTS}?types=")).await;
    assert_eq!(none["pagination"]["total_results"], 0);

    for query in [
        "types=audit.app.create",
        "organization_guids=not-a-guid",
        "per_page=0",
        "order_by=type",
        "created_ats[gt]=yesterday",
        "target_guids[not]=x",
        "unknown=1",
    ] {
        let (status, body) = app.get(&format!("{EVENTS}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_v3_error(&body, 10005, "CF-BadQueryParameter");
    }
    let too_many = vec![first.as_str(); 201].join(",");
    let (status, _) = app
        .get(&format!("{EVENTS}?organization_guids={too_many}"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    for guid in ["not-a-guid", "0195e4b4-0000-7000-8000-000000000000"] {
        let (status, body) = app.get(&format!("{EVENTS}/{guid}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{guid}");
        assert_v3_error(&body, 10010, "CF-ResourceNotFound");
    }
    let (status, _) = app.call(Method::POST, EVENTS, Some(json!({}))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// With the audit table refusing inserts, a change fails (a 5xx without internals) and does not
/// commit.
#[tokio::test]
async fn a_change_whose_event_cannot_be_written_does_not_commit() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    // Another organization holds what the later checks change, so "o" stays deletable.
    let holder = app.organization("holder").await;
    let space = app.space(&holder, "s").await;
    let application = app.app(&space, "web").await;
    let credential = app
        .credential(
            json!({"location": "app.example.com", "username": "u", "password": "p",
               "relationships": {"app": {"data": {"guid": application}}}}),
        )
        .await;
    let credential = credential["guid"].as_str().unwrap().to_owned();
    let kept = uuid::Uuid::new_v4();
    let (status, _) = app
        .put(&format!("/v3/roles/{kept}"), role(&holder, "kept-user"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let refused = uuid::Uuid::new_v4();
    // The event's table gone: every event insert fails, as on a full disk, on both databases.
    app.connect()
        .await
        .execute_unprepared("ALTER TABLE audit_events RENAME TO audit_events_refused")
        .await
        .unwrap();
    let (status, body) = app
        .post(
            "/v3/registry_credentials",
            json!({"location": "r.example.com", "username": "u", "password": "p",
                   "metadata": {"labels": {"env": "prod"}},
                   "relationships": {"organization": {"data": {"guid": organization}}}}),
        )
        .await;
    assert!(status.is_server_error(), "{status} {body}");
    assert!(
        !body.to_string().contains("audit_events"),
        "no internals: {body}"
    );
    let (_, list) = app.get("/v3/registry_credentials").await;
    assert_eq!(
        list["pagination"]["total_results"], 1,
        "the app's credential alone"
    );
    let (status, _) = app
        .delete(&format!("/v3/organizations/{organization}"))
        .await;
    assert!(status.is_server_error());
    let (status, _) = app.get(&format!("/v3/organizations/{organization}")).await;
    assert_eq!(status, StatusCode::OK, "the organization stays");

    // Roles: neither a new role nor a role's delete commits without its event.
    let (status, _) = app
        .put(
            &format!("/v3/roles/{refused}"),
            role(&holder, "refused-user"),
        )
        .await;
    assert!(status.is_server_error());
    let (status, _) = app.get(&format!("/v3/roles/{refused}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the role was not stored");
    let (status, _) = app.delete(&format!("/v3/roles/{kept}")).await;
    assert!(status.is_server_error());
    let (status, _) = app.get(&format!("/v3/roles/{kept}")).await;
    assert_eq!(status, StatusCode::OK, "the role stays");

    // An app's delete takes its credentials only with every event written.
    let (status, _) = app.delete(&format!("/v3/apps/{application}")).await;
    assert!(status.is_server_error());
    let (status, _) = app.get(&format!("/v3/apps/{application}")).await;
    assert_eq!(status, StatusCode::OK, "the app stays");
    let (status, _) = app
        .get(&format!("/v3/registry_credentials/{credential}"))
        .await;
    assert_eq!(status, StatusCode::OK, "its credential stays");
}

fn role(organization: &str, user: &str) -> Value {
    json!({"type": "organization_user", "relationships": {
        "user": {"data": {"guid": user}},
        "organization": {"data": {"guid": organization}}}})
}
