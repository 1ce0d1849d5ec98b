//! `/api/v1/organizations/{orgID}/registry`: the second seed, against the Harbor emulator.

use std::time::Duration;

use harbor_emulator::{DropRule, FailRule, Faults, RunningEmulator};
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, robot_login_works};

fn path(organization: &str) -> String {
    format!("/api/v1/organizations/{organization}/registry")
}

fn assert_v1_error(body: &Value, code: &str) {
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("not a v1 error: {body}"));
    assert_eq!(error["code"], code, "{body}");
    assert!(error["message"].is_string());
}

async fn registry_rows(app: &TestApp) -> (u64, u64) {
    let db = app.connect().await;
    let count = |table: &str| {
        let statement = sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        );
        let db = &db;
        async move {
            db.query_one_raw(statement)
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap() as u64
        }
    };
    (count("registries").await, count("registry_robots").await)
}

#[tokio::test]
async fn enabling_matches_the_seed_and_provisions_harbor() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let (status, body) = app
        .call(Method::POST, &path(&organization.to_uppercase()), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let registry = &body["registry"];
    let keys: Vec<&String> = registry.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 9, "{keys:?}");
    assert_eq!(registry["org_id"], organization.as_str());
    assert_eq!(registry["harbor_project"], format!("org-{organization}"));
    assert_eq!(registry["endpoint"], "registry.example.test");
    assert_eq!(registry["enabled"], true);
    assert_eq!(registry["quota_gb"], 10);
    assert_eq!(registry["used_gb"], 0.0);
    assert!(registry["created_at"].as_str().unwrap().ends_with('Z'));
    let username = body["credentials"]["username"].as_str().unwrap();
    let password = body["credentials"]["password"].as_str().unwrap();
    assert_eq!(username, format!("robot$org-{organization}+berth-default"));
    assert!(robot_login_works(&harbor, username, password).await);

    let state = harbor.state();
    assert_eq!(state.projects.len(), 1);
    assert_eq!(state.quotas[0].hard_bytes, 10 * 1024 * 1024 * 1024);
    assert_eq!(
        state.robots.len(),
        2,
        "the default robot and the pull robot"
    );
    let access = state.robots[0].permissions[0]["access"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(access, 2, "push and pull");
    assert_eq!(state.robots[0].expires_at, -1);
    let pull = &state.robots[1];
    assert!(pull.stored_name.ends_with("+berth-pull"), "{pull:?}");
    assert_eq!(
        pull.permissions,
        json!([{"kind": "project", "namespace": format!("org-{organization}"),
            "access": [{"resource": "repository", "action": "pull"}]}]),
        "pull only, on that project only"
    );
    assert_eq!(pull.expires_at, -1);

    let (status, again) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_v1_error(&again, "registry_already_enabled");

    harbor.set_usage(&format!("org-{organization}"), 1_610_612_736);
    let (status, shown) = app.get(&path(&organization)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["used_gb"], 1.5);
    assert!(shown.get("credentials").is_none() && !shown.to_string().contains(password));
}

#[tokio::test]
async fn quota_changes_go_through_harbor_quotas_and_bad_bodies_are_refused() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let (status, body) = app
        .call(
            Method::POST,
            &path(&organization),
            Some(json!({"quota_gb": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(harbor.state().quotas[0].hard_bytes, 5 * 1024 * 1024 * 1024);
    let (status, body) = app
        .patch(&path(&organization), json!({"quota_gb": 20}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["quota_gb"], 20);
    assert_eq!(harbor.state().quotas[0].hard_bytes, 20 * 1024 * 1024 * 1024);
    assert!(
        harbor
            .state()
            .calls
            .iter()
            .any(|call| call == "PUT /quotas/{id}")
    );

    for (body, field, code) in [
        (json!({"quota_gb": 0}), "quota_gb", "out_of_range"),
        (json!({"quota_gb": "ten"}), "quota_gb", "invalid_type"),
        (json!({"quota_gb": 2_000_000}), "quota_gb", "out_of_range"),
        (json!({}), "quota_gb", "required"),
        (json!({"quota_gb": 3, "name": "x"}), "name", "unknown_field"),
    ] {
        let (status, error) = app.patch(&path(&organization), body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_v1_error(&error, "validation_failed");
        assert!(
            error["error"]["details"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["field"] == field && d["code"] == code),
            "{error}"
        );
    }
    let response = app
        .raw(
            Method::PATCH,
            &path(&organization),
            Some(&app.admin_token),
            Some("{".into()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_v1_error(&response.json().await.unwrap(), "invalid_json");
    assert_eq!(
        harbor.state().quotas[0].hard_bytes,
        20 * 1024 * 1024 * 1024,
        "nothing changed"
    );
}

#[tokio::test]
async fn disabling_keeps_the_project_and_re_enabling_issues_a_new_robot() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let (_, first) = app.call(Method::POST, &path(&organization), None).await;
    harbor.add_repositories(&format!("org-{organization}"), 3);
    let (status, _) = app.delete(&path(&organization)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let state = harbor.state();
    assert_eq!(
        (state.projects.len(), state.robots.len()),
        (1, 0),
        "robots deleted, project and images kept"
    );
    let old = &first["credentials"];
    assert!(
        !robot_login_works(
            &harbor,
            old["username"].as_str().unwrap(),
            old["password"].as_str().unwrap()
        )
        .await
    );
    let (status, shown) = app.get(&path(&organization)).await;
    assert_eq!((status, &shown["enabled"]), (StatusCode::OK, &json!(false)));
    let (status, error) = app.delete(&path(&organization)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v1_error(&error, "registry_not_found");

    let (status, second) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["registry"]["id"], first["registry"]["id"]);
    let state = harbor.state();
    assert_eq!((state.projects.len(), state.robots.len()), (1, 2));
    assert_eq!(state.projects[0].repo_count, 3);
    let new = &second["credentials"];
    assert_ne!(new["password"], old["password"]);
    assert!(
        robot_login_works(
            &harbor,
            new["username"].as_str().unwrap(),
            new["password"].as_str().unwrap()
        )
        .await
    );

    // The organization cannot be deleted while it has a registry.
    let (status, body) = app
        .delete(&format!("/v3/organizations/{organization}"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("1 registry"),
        "{body}"
    );
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("?purge=true"),
        "names purge: {body}"
    );
}

#[tokio::test]
async fn robot_credentials_are_listed_created_rotated_and_deleted() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    app.call(Method::POST, &path(&organization), None).await;
    let credentials = format!("{}/credentials", path(&organization));
    let (status, created) = app
        .post(
            &credentials,
            json!({"name": "ci-pull", "access": "pull", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["credential"]["access"], "pull");
    assert!(created["credential"]["expires_at"].is_string());
    let username = created["credentials"]["username"]
        .as_str()
        .unwrap()
        .to_owned();
    let password = created["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(robot_login_works(&harbor, &username, &password).await);
    let robot = harbor
        .state()
        .robots
        .into_iter()
        .find(|r| r.stored_name.ends_with("+ci-pull"))
        .unwrap();
    assert_eq!(
        robot.permissions[0]["access"].as_array().unwrap().len(),
        1,
        "pull only"
    );

    let (status, error) = app
        .post(&credentials, json!({"name": "ci-pull", "access": "pull"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_v1_error(&error, "robot_name_taken");
    for body in [
        json!({"name": "CI", "access": "pull"}),
        json!({"name": "x", "access": "admin"}),
        json!({"access": "pull"}),
        json!({"name": "x", "access": "pull", "expires_in_days": 0}),
    ] {
        let (status, error) = app.post(&credentials, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_v1_error(&error, "validation_failed");
    }

    let (_, list) = app.get(&credentials).await;
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["berth-default", "berth-pull", "ci-pull"]);
    assert!(
        !list.to_string().contains(&password),
        "lists never carry secrets"
    );

    let id = created["credential"]["id"].as_str().unwrap();
    let (status, rotated) = app
        .post(&format!("{credentials}/{id}/rotate"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_password = rotated["credentials"]["password"].as_str().unwrap();
    assert!(
        !robot_login_works(&harbor, &username, &password).await,
        "the old secret stops working"
    );
    assert!(robot_login_works(&harbor, &username, new_password).await);

    let (status, _) = app.delete(&format!("{credentials}/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        harbor
            .state()
            .robots
            .iter()
            .all(|r| !r.stored_name.ends_with("+ci-pull"))
    );
    let (status, error) = app.delete(&format!("{credentials}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v1_error(&error, "robot_credential_not_found");
}

#[tokio::test]
async fn v1_errors_use_the_v1_envelope() {
    let (app, _harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let response = app
        .raw(Method::POST, &path(&organization), None, None)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_v1_error(&response.json().await.unwrap(), "unauthorized");
    let response = app
        .raw(Method::GET, &path(&organization), Some("garbage"), None)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for org in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let (status, body) = app.call(Method::POST, &path(&org), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_v1_error(&body, "organization_not_found");
    }
    let (status, body) = app.get(&path(&organization)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v1_error(&body, "registry_not_found");
    let (status, body) = app.get(&format!("{}/nowhere", path(&organization))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v1_error(&body, "not_found");
    let response = app
        .raw(
            Method::POST,
            &path(&organization),
            Some(&app.admin_token),
            Some("[1]".into()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn harbor_down_answers_503_fast_and_get_shows_the_last_known_usage() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let other = app.organization("other").await;
    app.call(Method::POST, &path(&organization), None).await;
    harbor.set_usage(&format!("org-{organization}"), 536_871);
    let (_, shown) = app.get(&path(&organization)).await;
    assert_eq!(shown["used_gb"], 0.001);

    harbor.stop().await;
    let started = std::time::Instant::now();
    let (status, body) = app.call(Method::POST, &path(&other), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_v1_error(&body, "harbor_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered within the deadline: {:?}",
        started.elapsed()
    );
    let (status, shown) = app.get(&path(&organization)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["used_gb"], 0.001, "the last known value");
}

#[tokio::test]
async fn a_project_someone_else_made_is_a_conflict_and_stays_untouched() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    harbor.create_foreign_project(&format!("org-{organization}"));
    for _ in 0..2 {
        let (status, body) = app.call(Method::POST, &path(&organization), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_v1_error(&body, "harbor_project_conflict");
    }
    let state = harbor.state();
    assert_eq!(state.projects.len(), 1);
    assert_eq!(state.projects[0].owner_name, "someone-else");
    assert!(state.robots.is_empty());
    assert!(
        state
            .calls
            .iter()
            .all(|call| !call.starts_with("DELETE") && !call.starts_with("PUT")),
        "{:?}",
        state.calls
    );
    assert_eq!(registry_rows(&app).await, (0, 0), "the claim was given up");
}

/// Harbor fails at one step; the POST answers 503, keeps its progress, and a retry finishes
/// with exactly one project and one robot.
async fn fail_then_retry(faults: Faults) -> (TestApp, RunningEmulator, String) {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    harbor.set_faults(faults);
    let (status, body) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_v1_error(&body, "harbor_unavailable");
    let (status, body) = app.get(&path(&organization)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a first provisioning is not shown: {body}"
    );
    harbor.set_faults(Faults::default());
    let (status, body) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let state = harbor.state();
    assert_eq!(
        (state.projects.len(), state.robots.len()),
        (1, 2),
        "{:?}",
        state.calls
    );
    let credentials = &body["credentials"];
    assert!(
        robot_login_works(
            &harbor,
            credentials["username"].as_str().unwrap(),
            credentials["password"].as_str().unwrap()
        )
        .await
    );
    (app, harbor, organization)
}

fn fail(route: &str, nth: &[u64], status: u16) -> Faults {
    Faults {
        fail: nth
            .iter()
            .map(|nth| FailRule {
                route: route.into(),
                nth: *nth,
                status,
            })
            .collect(),
        ..Faults::default()
    }
}

#[tokio::test]
async fn harbor_failing_at_project_creation_then_a_retry() {
    let (_, harbor, _) = fail_then_retry(fail("POST /projects", &[1], 503)).await;
    assert_eq!(
        harbor
            .state()
            .calls
            .iter()
            .filter(|c| c.starts_with("POST /projects"))
            .count(),
        2
    );
}

#[tokio::test]
async fn harbor_failing_at_the_quota_then_a_retry() {
    // Reads are retried once, so the quota read fails twice.
    fail_then_retry(fail("GET /quotas", &[1, 2], 500)).await;
}

#[tokio::test]
async fn harbor_failing_at_robot_creation_then_a_retry() {
    fail_then_retry(fail("POST /robots", &[1], 502)).await;
}

#[tokio::test]
async fn a_dropped_answer_after_the_robot_was_made_is_recovered_by_rotation() {
    let faults = Faults {
        drop: vec![DropRule {
            route: "POST /robots".into(),
            nth: 1,
        }],
        ..Faults::default()
    };
    let (_, harbor, _) = fail_then_retry(faults).await;
    let calls = harbor.state().calls;
    assert_eq!(
        calls.iter().filter(|c| *c == "POST /robots").count(),
        2,
        "the default robot once, then the pull robot; never a second default robot: {calls:?}"
    );
    assert!(
        calls.iter().any(|c| c == "PATCH /robots/{id}"),
        "the lost secret was replaced by rotation: {calls:?}"
    );
}

#[tokio::test]
async fn the_reconciler_rolls_back_a_stalled_provisioning() {
    let (app, harbor) = TestApp::spawn_with_harbor(|runtime| {
        runtime.registry.stale_after = time::Duration::seconds(1);
        runtime.reconcile_interval = Duration::from_millis(500);
    })
    .await;
    let organization = app.organization("acme").await;
    harbor.set_faults(Faults {
        drop: vec![DropRule {
            route: "POST /robots".into(),
            nth: 1,
        }],
        ..Faults::default()
    });
    let (status, _) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Harbor made a robot nobody knows the secret of (the reconciler may already be removing it:
    // timestamps are whole seconds, so a 1 s threshold can pass at once).
    assert!(
        harbor
            .state()
            .calls
            .iter()
            .any(|call| call == "POST /robots")
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = harbor.state();
        if state.projects.is_empty() && state.robots.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not rolled back: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(registry_rows(&app).await, (0, 0));
    // The organization can start again from scratch.
    let (status, _) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// A reconciler pass reports each row it could not settle with its cause (which the binary logs),
/// and the next pass settles it.
#[tokio::test]
async fn the_reconciler_reports_each_failure_with_its_cause() {
    use std::sync::Arc;

    use berth_domain::ports::ProvisionError;
    use berth_domain::registry_service::{RegistryError, RegistryService, RegistrySettings};

    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    harbor.set_faults(Faults {
        drop: vec![DropRule {
            route: "POST /robots".into(),
            nth: 1,
        }],
        ..Faults::default()
    });
    let (status, _) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // A reconciler of this test's own, for which anything untouched is stalled.
    let db = app.connect().await;
    let reconciler = RegistryService::new(
        Arc::new(berth_persistence::SeaOrmRegistryStore::new(
            db.clone(),
            Arc::new(berth_persistence::sealing::KeyRing::from_spec(&app.key_spec, "k1").unwrap()),
        )),
        Arc::new(berth_persistence::SeaOrmDirectoryStore::new(db)),
        Arc::new(
            berth_harbor::HarborClient::new(crate::helpers::harbor_settings(harbor.url())).unwrap(),
        ),
        RegistrySettings {
            stale_after: time::Duration::ZERO,
            ..crate::common::registry_settings()
        },
    );
    // The robot Harbor made cannot be deleted this time.
    harbor.set_faults(Faults {
        fail: vec![FailRule {
            route: "DELETE /robots/{id}".into(),
            nth: 1,
            status: 502,
        }],
        ..Faults::default()
    });
    let report = reconciler.reconcile().await.unwrap();
    assert_eq!(report.rolled_back, 0, "{report:?}");
    let [failure] = report.failures.as_slice() else {
        panic!("one failure expected: {report:?}");
    };
    assert_eq!(failure.robot, None, "{failure:?}");
    assert!(
        matches!(
            failure.cause,
            RegistryError::Provisioner(ProvisionError::Unavailable(_))
        ),
        "the cause is kept: {failure:?}"
    );

    let report = reconciler.reconcile().await.unwrap();
    assert_eq!(
        (report.rolled_back, report.failures.len()),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(registry_rows(&app).await, (0, 0));
    let state = harbor.state();
    assert!(
        state.projects.is_empty() && state.robots.is_empty(),
        "{state:?}"
    );
}

#[tokio::test]
async fn readyz_names_what_failed() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let response = app.raw(Method::GET, "/readyz", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "key_ring": "ok", "harbor": "ok"}})
    );
    harbor.stop().await;
    let response = app.raw(Method::GET, "/readyz", None, None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["harbor"], "unreachable");
    assert_eq!(body["checks"]["database"], "ok");

    let without_harbor = TestApp::spawn().await;
    let body: Value = without_harbor
        .raw(Method::GET, "/readyz", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["harbor"], "not configured");
    let (status, error) = without_harbor
        .call(Method::POST, &path(&uuid::Uuid::new_v4().to_string()), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_v1_error(&error, "harbor_unavailable");
}

#[tokio::test]
async fn a_caller_request_id_is_echoed_and_sent_on_to_harbor() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let response = app
        .client
        .post(format!("{}{}", app.address, path(&organization)))
        .bearer_auth(&app.admin_token)
        .header("x-request-id", "trace-me-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-request-id"], "trace-me-7");
    let ids = harbor.state().request_ids;
    assert!(
        ids.len() >= 4 && ids.iter().all(|id| id == "trace-me-7"),
        "{ids:?}"
    );
}

#[tokio::test]
async fn metrics_count_requests_harbor_calls_pool_and_sealed_rows() {
    let (app, _harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    app.credential(json!({"location": "r.io", "username": "u", "password": "p"}))
        .await;
    app.call(Method::POST, &path(&organization), None).await;
    let response = app.raw(Method::GET, "/metrics", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for needle in [
        "berth_http_requests_total{route=\"/v3/registry_credentials\",method=\"POST\",status=\"201\"}",
        "berth_http_request_duration_seconds_bucket{route=\"/api/v1/organizations/{org_id}/registry\",method=\"POST\",status=\"201\"",
        "berth_harbor_calls_total{operation=\"POST /projects\",outcome=\"201\"}",
        "berth_harbor_call_duration_seconds_bucket{operation=\"POST /robots\"",
        "berth_db_pool_connections{state=\"open\"}",
        // The credential above and the platform pull robot's.
        "berth_sealed_rows{table=\"registry_credentials\",label=\"k1\"} 2",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains(&organization), "no series per resource");
}

/// Enables a fresh organization's registry; its path.
async fn enabled_registry(app: &TestApp) -> String {
    let organization = app.organization("acme").await;
    let (status, body) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    path(&organization)
}

/// A 409 from a race on one registry: the name was taken, or another change held the registry.
fn assert_race_conflict(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let code = body["error"]["code"].as_str().unwrap_or_default();
    assert!(
        code == "robot_name_taken" || code == "registry_busy",
        "{body}"
    );
}

#[tokio::test]
async fn twenty_parallel_creates_of_one_name_give_one_robot_whose_secret_works() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let registry = enabled_registry(&app).await;
    harbor.set_faults(Faults {
        latency_ms: 10,
        ..Faults::default()
    });
    let credentials = format!("{registry}/credentials");
    let results = futures_util::future::join_all(
        (0..20).map(|_| app.post(&credentials, json!({"name": "ci", "access": "pull"}))),
    )
    .await;
    let created: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_race_conflict(*status, body);
    }
    let issued = &created[0]["credentials"];
    assert!(
        robot_login_works(
            &harbor,
            issued["username"].as_str().unwrap(),
            issued["password"].as_str().unwrap()
        )
        .await,
        "the one answered secret works in Harbor"
    );
    let in_harbor = harbor
        .state()
        .robots
        .iter()
        .filter(|robot| robot.stored_name.ends_with("+ci"))
        .count();
    assert_eq!(in_harbor, 1);
}

/// Rotates `robot` once; the status, and whether the answered secret worked in Harbor the moment
/// the answer arrived.
async fn rotate_and_try(
    app: &TestApp,
    harbor: &RunningEmulator,
    rotate: &str,
) -> (StatusCode, Value, Option<bool>) {
    let (status, body) = app.post(rotate, json!({})).await;
    let works = if status == StatusCode::OK {
        let issued = &body["credentials"];
        Some(
            robot_login_works(
                harbor,
                issued["username"].as_str().unwrap(),
                issued["password"].as_str().unwrap(),
            )
            .await,
        )
    } else {
        None
    };
    (status, body, works)
}

#[tokio::test]
async fn parallel_rotations_are_serialized_so_every_answered_secret_is_current() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let registry = enabled_registry(&app).await;
    let credentials = format!("{registry}/credentials");
    let (status, created) = app
        .post(&credentials, json!({"name": "ci", "access": "pull"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let rotate = format!(
        "{credentials}/{}/rotate",
        created["credential"]["id"].as_str().unwrap()
    );
    // Harbor takes its time before it changes the secret: the window in which an answered
    // secret would already be stale if rotations overlapped.
    let mut faults = Faults::default();
    faults
        .route_latency_ms
        .insert("PATCH /robots/{id}".into(), 250);
    harbor.set_faults(faults);
    let results =
        futures_util::future::join_all((0..5).map(|_| rotate_and_try(&app, &harbor, &rotate)))
            .await;
    let mut rotated = 0;
    for (status, body, works) in &results {
        if *status == StatusCode::OK {
            rotated += 1;
            assert_eq!(*works, Some(true), "a stale secret was answered: {body}");
        } else {
            assert_race_conflict(*status, body);
        }
    }
    assert!(rotated >= 1, "{results:?}");
}

#[tokio::test]
async fn thirty_parallel_quota_changes_leave_berth_and_harbor_agreeing() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let registry = enabled_registry(&app).await;
    harbor.set_faults(Faults {
        latency_ms: 5,
        ..Faults::default()
    });
    for round in 0..5_u64 {
        let results = futures_util::future::join_all(
            (1..=30_u64).map(|gb| app.patch(&registry, json!({"quota_gb": gb + round * 30}))),
        )
        .await;
        let mut changed = 0;
        for (status, body) in &results {
            if *status == StatusCode::OK {
                changed += 1;
            } else {
                assert_eq!(*status, StatusCode::CONFLICT, "{body}");
                assert_v1_error(body, "registry_busy");
            }
        }
        assert!(changed >= 1, "{results:?}");
        let (status, shown) = app.get(&registry).await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        let hard_bytes = harbor.state().quotas[0].hard_bytes;
        assert_eq!(
            shown["quota_gb"].as_i64().unwrap() * 1024 * 1024 * 1024,
            hard_bytes,
            "Berth says {} GB, Harbor holds {hard_bytes} bytes (round {round})",
            shown["quota_gb"]
        );
    }
}

/// Disables the registry, retrying while another change holds it; never a 5xx.
async fn disable_until_done(app: &TestApp, registry: &str) {
    for _ in 0..100 {
        let (status, body) = app.delete(registry).await;
        match status {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => return,
            _ => assert_race_conflict(status, &body),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the registry never became free to disable");
}

#[tokio::test]
async fn robots_created_while_the_registry_is_disabled_never_survive() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let registry = enabled_registry(&app).await;
    let project = harbor.state().projects[0].id;
    let credentials = format!("{registry}/credentials");
    for round in 0..4 {
        if round > 0 {
            let (status, body) = app.call(Method::POST, &registry, None).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        // Harbor is slow to create robots, so the disable arrives while they are being made.
        let mut faults = Faults::default();
        faults.route_latency_ms.insert("POST /robots".into(), 150);
        harbor.set_faults(faults);
        let creates = futures_util::future::join_all((0..3).map(|index| {
            app.post(
                &credentials,
                json!({"name": format!("r{round}-{index}"), "access": "pull"}),
            )
        }));
        let disable = async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            app.delete(&registry).await
        };
        let (created, disabled) = tokio::join!(creates, disable);
        harbor.set_faults(Faults::default());
        for (status, body) in &created {
            assert!(
                [
                    StatusCode::CREATED,
                    StatusCode::NOT_FOUND,
                    StatusCode::CONFLICT
                ]
                .contains(status),
                "round {round}: {status} {body}"
            );
        }
        if disabled.0 != StatusCode::NO_CONTENT {
            assert_race_conflict(disabled.0, &disabled.1);
            disable_until_done(&app, &registry).await;
        }
        let left: Vec<String> = harbor
            .state()
            .robots
            .into_iter()
            .filter(|robot| robot.project_id == project)
            .map(|robot| robot.stored_name)
            .collect();
        assert!(
            left.is_empty(),
            "round {round}: robots survived the disable: {left:?}"
        );
        let (status, shown) = app.get(&registry).await;
        assert_eq!((status, &shown["enabled"]), (StatusCode::OK, &json!(false)));
    }
}

#[tokio::test]
async fn a_robot_made_after_its_lease_ran_out_and_a_disable_took_over_is_taken_back() {
    let (app, harbor) = TestApp::spawn_with_harbor(|runtime| {
        runtime.registry.lease = time::Duration::seconds(1);
        if let berth_server::startup::HarborChoice::Remote(settings) = &mut runtime.harbor {
            settings.request_timeout = Duration::from_secs(10);
        }
    })
    .await;
    let registry = enabled_registry(&app).await;
    let project = harbor.state().projects[0].id;
    // Harbor makes the robot only after the creator's lease has run out and the disable (which
    // searched Harbor and found nothing) has finished.
    let mut faults = Faults::default();
    faults.route_latency_ms.insert("POST /robots".into(), 4000);
    harbor.set_faults(faults);
    let credentials = format!("{registry}/credentials");
    let create = app.post(&credentials, json!({"name": "late", "access": "pull"}));
    let disable = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.delete(&registry).await
    };
    let ((created, body), (disabled, _)) = tokio::join!(create, disable);
    assert_eq!(disabled, StatusCode::NO_CONTENT);
    assert_eq!(created, StatusCode::CONFLICT, "{body}");
    assert_v1_error(&body, "registry_busy");
    let left: Vec<String> = harbor
        .state()
        .robots
        .into_iter()
        .filter(|robot| robot.project_id == project)
        .map(|robot| robot.stored_name)
        .collect();
    assert!(left.is_empty(), "robots survived the disable: {left:?}");
}
