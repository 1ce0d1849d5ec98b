//! The registry lifecycle (SPEC 7.2, 7.3): the platform pull robot and its managed credential,
//! robot expiry and renewal, and purge, against the Harbor emulator.

use berth_domain::ports::CredentialStore;
use harbor_emulator::{FailRule, Faults, RunningEmulator};
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::TestApp;

const MANAGED: &str = "berth.dev/managed-by=organization-registry";

fn path(organization: &str) -> String {
    format!("/api/v1/organizations/{organization}/registry")
}

fn assert_v1_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

async fn enabled(app: &TestApp) -> String {
    let organization = app.organization("acme").await;
    let (status, body) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    organization
}

/// The organization's managed credentials (the V3 list, by label and organization).
async fn managed_credentials(app: &TestApp, organization: &str) -> Vec<Value> {
    let (status, list) = app
        .get(&format!(
            "/v3/registry_credentials?organization_guids={organization}&label_selector={MANAGED}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["resources"].as_array().unwrap().clone()
}

/// The one managed credential of the organization and its stored password.
async fn pull_credential(app: &TestApp, organization: &str) -> (Value, String) {
    let managed = managed_credentials(app, organization).await;
    assert_eq!(managed.len(), 1, "{managed:?}");
    let credential = managed[0].clone();
    let guid =
        berth_domain::ids::CredentialGuid::parse(credential["guid"].as_str().unwrap()).unwrap();
    let password = app
        .credential_store()
        .await
        .reveal_password(guid)
        .await
        .unwrap()
        .unwrap();
    (credential, password.expose().to_owned())
}

/// A robot login pulling (listing the project's repositories) in Harbor: its status.
async fn pull_as(harbor: &RunningEmulator, project: &str, login: (&str, &str)) -> StatusCode {
    reqwest::Client::new()
        .get(format!(
            "{}/api/v2.0/projects/{project}/repositories",
            harbor.url()
        ))
        .basic_auth(login.0, Some(login.1))
        .send()
        .await
        .unwrap()
        .status()
}

/// A robot login pushing a repository into the project (the emulator's push hook): its status.
async fn push_as(harbor: &RunningEmulator, project: &str, login: (&str, &str)) -> StatusCode {
    reqwest::Client::new()
        .post(format!(
            "{}/_emulator/projects/{project}/repositories",
            harbor.url()
        ))
        .basic_auth(login.0, Some(login.1))
        .json(&json!({"name": "team/pushed"}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn robots(app: &TestApp, organization: &str) -> Vec<Value> {
    let (status, list) = app
        .get(&format!("{}/credentials", path(organization)))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["resources"].as_array().unwrap().clone()
}

fn unix(text: &str) -> i64 {
    OffsetDateTime::parse(text, &Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test]
async fn enabling_stores_a_pull_only_robot_as_the_organization_s_managed_credential() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = enabled(&app).await;
    let project = format!("org-{organization}");
    let (credential, password) = pull_credential(&app, &organization).await;
    assert_eq!(
        credential["location"],
        format!("registry.example.test/{project}")
    );
    assert_eq!(credential["scope"], "organization");
    let username = credential["username"].as_str().unwrap().to_owned();
    assert_eq!(username, format!("robot${project}+berth-pull"));
    assert_eq!(
        credential["metadata"]["labels"]["berth.dev/managed-by"],
        "organization-registry"
    );
    let login = (username.as_str(), password.as_str());
    assert_eq!(pull_as(&harbor, &project, login).await, StatusCode::OK);
    assert_eq!(
        push_as(&harbor, &project, login).await,
        StatusCode::FORBIDDEN,
        "the pull robot may not push"
    );

    // The robot list marks it; the robot routes refuse it.
    let listed = robots(&app, &organization).await;
    let pull = listed.iter().find(|r| r["name"] == "berth-pull").unwrap();
    assert_eq!(
        (&pull["managed"], &pull["access"]),
        (&json!(true), &json!("pull"))
    );
    assert_eq!(
        (&pull["status"], &pull["expires_at"]),
        (&json!("active"), &Value::Null)
    );
    assert!(
        listed
            .iter()
            .filter(|r| r["name"] != "berth-pull")
            .all(|r| r["managed"] == false)
    );
    let robot = format!(
        "{}/credentials/{}",
        path(&organization),
        pull["id"].as_str().unwrap()
    );
    for (method, target, body) in [
        (Method::POST, format!("{robot}/rotate"), None),
        (Method::DELETE, robot.clone(), None),
        (
            Method::PATCH,
            robot.clone(),
            Some(json!({"expires_in_days": 3})),
        ),
    ] {
        let (status, body) = app.call(method.clone(), &target, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{method} {target}");
        assert_v1_error(&body, "managed_robot");
    }
    let (status, body) = app
        .post(
            &format!("{}/credentials", path(&organization)),
            json!({"name": "berth-pull", "access": "push_pull"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_v1_error(&body, "robot_name_taken");

    // /v3 refuses to change or delete it, naming the registry route; a POST at its location
    // conflicts as for any credential.
    let guid = credential["guid"].as_str().unwrap();
    for (method, body) in [
        (Method::PATCH, Some(json!({"password": "mine"}))),
        (Method::DELETE, None),
    ] {
        let (status, body) = app
            .call(method, &format!("/v3/registry_credentials/{guid}"), body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let detail = body["errors"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("{}/pull_credential/rotate", path(&organization))),
            "{detail}"
        );
    }
    let (status, body) = app
        .post(
            "/v3/registry_credentials",
            json!({"location": format!("registry.example.test/{project}"), "username": "u",
                "password": "p", "relationships": {"organization": {"data": {"guid": organization}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["title"], "CF-UniquenessError", "{body}");
    // Nor can a caller forge the mark, or take it off.
    let own = app
        .credential(json!({"location": "other.example.test", "username": "u", "password": "p"}))
        .await;
    for body in [
        json!({"location": "x.example.test", "username": "u", "password": "p",
            "metadata": {"labels": {"berth.dev/managed-by": "organization-registry"}}}),
    ] {
        let (status, _) = app.post("/v3/registry_credentials", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, body) = app
        .patch(
            &format!("/v3/registry_credentials/{}", own["guid"].as_str().unwrap()),
            json!({"metadata": {"labels": {"berth.dev/managed-by": "organization-registry"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        pull_credential(&app, &organization).await.1,
        password,
        "unchanged"
    );

    // Rotation replaces Harbor's secret and the stored password together.
    let (status, body) = app
        .post(
            &format!("{}/pull_credential/rotate", path(&organization)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (rotated, new_password) = pull_credential(&app, &organization).await;
    assert_eq!(rotated["guid"], credential["guid"]);
    assert_ne!(new_password, password);
    assert_eq!(
        pull_as(&harbor, &project, login).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        pull_as(&harbor, &project, (&username, &new_password)).await,
        StatusCode::OK
    );
    assert_eq!(harbor.state().robots.len(), 2, "never a second pull robot");

    // Disabling removes robot and credential; re-enabling recreates both.
    let (status, _) = app.delete(&path(&organization)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(managed_credentials(&app, &organization).await.is_empty());
    assert!(harbor.state().robots.is_empty());
    let (status, body) = app
        .post(
            &format!("{}/pull_credential/rotate", path(&organization)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, again) = pull_credential(&app, &organization).await;
    assert_eq!(
        pull_as(&harbor, &project, (&username, &again)).await,
        StatusCode::OK
    );
    assert_eq!(harbor.state().robots.len(), 2);
}

/// Enabling fails at the pull robot (as `faults` say), then a retry finishes: one pull robot,
/// one managed credential whose password works.
async fn pull_robot_fails_then_retry(faults: Faults) {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    harbor.set_faults(faults);
    let (status, body) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(managed_credentials(&app, &organization).await.is_empty());
    harbor.set_faults(Faults::default());
    let (status, body) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let state = harbor.state();
    let pulls = state
        .robots
        .iter()
        .filter(|robot| robot.stored_name.ends_with("+berth-pull"))
        .count();
    assert_eq!((state.robots.len(), pulls), (2, 1), "{:?}", state.calls);
    let (credential, password) = pull_credential(&app, &organization).await;
    let project = format!("org-{organization}");
    let login = (credential["username"].as_str().unwrap(), password.as_str());
    assert_eq!(pull_as(&harbor, &project, login).await, StatusCode::OK);
}

#[tokio::test]
async fn harbor_failing_at_the_pull_robot_then_a_retry() {
    pull_robot_fails_then_retry(Faults {
        fail: vec![FailRule {
            route: "POST /robots".into(),
            nth: 2,
            status: 502,
        }],
        ..Faults::default()
    })
    .await;
}

#[tokio::test]
async fn a_dropped_answer_after_the_pull_robot_was_made_is_recovered_by_rotation() {
    pull_robot_fails_then_retry(Faults {
        drop: vec![harbor_emulator::DropRule {
            route: "POST /robots".into(),
            nth: 2,
        }],
        ..Faults::default()
    })
    .await;
}

#[tokio::test]
async fn robots_show_their_expiry_and_renew_through_harbor() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = enabled(&app).await;
    let credentials = format!("{}/credentials", path(&organization));
    let (status, created) = app
        .post(
            &credentials,
            json!({"name": "ci", "access": "pull", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let robot = &created["credential"];
    assert_eq!(robot["status"], "active");
    let id = robot["id"].as_str().unwrap();
    let harbor_expiry = || {
        harbor
            .state()
            .robots
            .into_iter()
            .find(|r| r.stored_name.ends_with("+ci"))
            .unwrap()
            .expires_at
    };
    assert_eq!(unix(robot["expires_at"].as_str().unwrap()), harbor_expiry());

    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (status, renewed) = app
        .patch(
            &format!("{credentials}/{id}"),
            json!({"expires_in_days": 90}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let expires = unix(renewed["expires_at"].as_str().unwrap());
    assert_eq!(expires, harbor_expiry(), "Berth records what Harbor has");
    assert!(
        (now + 90 * 86_400..=now + 91 * 86_400).contains(&expires),
        "90 days from now, never less: {renewed}"
    );
    assert!(harbor.state().calls.iter().any(|c| c == "PUT /robots/{id}"));
    let (status, never) = app
        .patch(
            &format!("{credentials}/{id}"),
            json!({"expires_in_days": -1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{never}");
    assert_eq!((&never["expires_at"], harbor_expiry()), (&Value::Null, -1));

    for body in [
        json!({"expires_in_days": 0}),
        json!({"expires_in_days": 3651}),
        json!({"expires_in_days": -2}),
        json!({"expires_in_days": "30"}),
        json!({}),
        json!({"expires_in_days": 30, "name": "x"}),
    ] {
        let (status, error) = app
            .patch(&format!("{credentials}/{id}"), body.clone())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_v1_error(&error, "validation_failed");
    }
    let unknown = uuid::Uuid::new_v4();
    let (status, error) = app
        .patch(
            &format!("{credentials}/{unknown}"),
            json!({"expires_in_days": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v1_error(&error, "robot_credential_not_found");

    // A robot past its expiry is shown as expired, never as active.
    let db = app.connect().await;
    let backend = db.get_database_backend();
    let placeholder = |n: u8| match backend {
        sea_orm::DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    };
    let past = OffsetDateTime::now_utc() - time::Duration::hours(1);
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE registry_robots SET expires_at = {} WHERE name = {}",
            placeholder(1),
            placeholder(2)
        ),
        [past.into(), "ci".into()],
    ))
    .await
    .unwrap();
    let listed = robots(&app, &organization).await;
    let ci = listed.iter().find(|r| r["name"] == "ci").unwrap();
    assert_eq!(ci["status"], "expired", "{ci}");
    let (status, renewed) = app
        .patch(
            &format!("{credentials}/{id}"),
            json!({"expires_in_days": 1}),
        )
        .await;
    assert_eq!(
        (status, &renewed["status"]),
        (StatusCode::OK, &json!("active"))
    );
}

async fn registry_rows(app: &TestApp) -> u64 {
    let db = app.connect().await;
    let statement = sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) AS n FROM registries",
    );
    db.query_one_raw(statement)
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap() as u64
}

#[tokio::test]
async fn purge_deletes_robots_repositories_project_credential_and_row() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = enabled(&app).await;
    let project = format!("org-{organization}");
    // More than one page of Harbor's (100), each name with a `/`.
    assert!(harbor.add_repositories(&project, 130));
    app.post(
        &format!("{}/credentials", path(&organization)),
        json!({"name": "ci", "access": "push_pull"}),
    )
    .await;
    // Harbor refuses the project once more after the repositories are gone (something was
    // pushed meanwhile): the purge goes back to the repositories, never reports success early.
    harbor.set_faults(Faults {
        fail: vec![FailRule {
            route: "DELETE /projects/{project}".into(),
            nth: 1,
            status: 412,
        }],
        ..Faults::default()
    });

    for query in [
        "purge=yes",
        "purge=1",
        "purge=",
        "purge=true&purge=true",
        "force=true",
    ] {
        let (status, body) = app
            .delete(&format!("{}?{query}", path(&organization)))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_v1_error(&body, "invalid_query");
    }
    let (status, body) = app
        .delete(&format!("/v3/organizations/{organization}"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, body) = app
        .delete(&format!("{}?purge=true", path(&organization)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let state = harbor.state();
    assert!(
        state.projects.is_empty() && state.robots.is_empty(),
        "{state:?}"
    );
    let deletes = state
        .calls
        .iter()
        .filter(|c| *c == "DELETE /projects/{project}/repositories/{repository}")
        .count();
    assert_eq!(deletes, 130);
    assert!(
        state
            .calls
            .iter()
            .any(|c| c == "DELETE /projects/{project} 412 (injected)")
    );
    assert!(managed_credentials(&app, &organization).await.is_empty());
    assert_eq!(registry_rows(&app).await, 0);
    let (status, body) = app.get(&path(&organization)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v1_error(&body, "registry_not_found");
    let (status, body) = app
        .delete(&format!("{}?purge=true", path(&organization)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .delete(&format!("/v3/organizations/{organization}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn a_purge_cut_short_is_recorded_and_a_retry_finishes_it() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = enabled(&app).await;
    let project = format!("org-{organization}");
    // Purge works on a disabled registry too.
    let (status, _) = app
        .delete(&format!("{}?purge=false", path(&organization)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(harbor.add_repositories(&project, 3));
    harbor.set_faults(Faults {
        fail: vec![FailRule {
            route: "DELETE /projects/{project}/repositories/{repository}".into(),
            nth: 2,
            status: 502,
        }],
        ..Faults::default()
    });
    let (status, body) = app
        .delete(&format!("{}?purge=true", path(&organization)))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_v1_error(&body, "harbor_unavailable");
    assert_eq!(harbor.state().projects[0].repo_count, 2, "one was deleted");
    // Recorded as purging: not re-enabled meanwhile, and the organization is still refused.
    let (status, body) = app.call(Method::POST, &path(&organization), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = app
        .delete(&format!("/v3/organizations/{organization}"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .delete(&format!("{}?purge=true", path(&organization)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(harbor.state().projects.is_empty());
    assert_eq!(registry_rows(&app).await, 0);
}

/// A second Berth on the app's database and the same Harbor, as another replica would be.
async fn replica_with_harbor(app: &TestApp, harbor: &RunningEmulator) -> String {
    let mut runtime = crate::helpers::runtime(app.db.url(), &app.key_spec, "k1");
    runtime.harbor =
        berth_server::startup::HarborChoice::Remote(crate::helpers::harbor_settings(harbor.url()));
    let application = berth_server::startup::Application::build(runtime)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    address
}

/// Sends `count` identical requests, alternately to this app and to a second Berth on the same
/// database; their statuses and bodies.
async fn concurrently(
    app: &TestApp,
    harbor: &RunningEmulator,
    count: usize,
    method: Method,
    target: &str,
    body: Option<Value>,
) -> Vec<(StatusCode, Value)> {
    let replica = replica_with_harbor(app, harbor).await;
    let requests = (0..count).map(|index| {
        let address = if index % 2 == 0 {
            app.address.clone()
        } else {
            replica.clone()
        };
        let (method, body) = (method.clone(), body.clone());
        async move { app.call_at(&address, method, target, body).await }
    });
    futures_util::future::join_all(requests).await
}

fn assert_only(results: &[(StatusCode, Value)], success: StatusCode) {
    for (status, body) in results {
        if *status != success {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
            assert_v1_error(body, "registry_busy");
        }
    }
    assert!(
        results.iter().any(|(status, _)| *status == success),
        "{results:?}"
    );
}

#[tokio::test]
async fn fifty_concurrent_pull_credential_rotations_leave_berth_and_harbor_agreeing() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = enabled(&app).await;
    let target = format!("{}/pull_credential/rotate", path(&organization));
    let results = concurrently(&app, &harbor, 50, Method::POST, &target, None).await;
    assert_only(&results, StatusCode::NO_CONTENT);
    let (credential, password) = pull_credential(&app, &organization).await;
    let project = format!("org-{organization}");
    let login = (credential["username"].as_str().unwrap(), password.as_str());
    assert_eq!(
        pull_as(&harbor, &project, login).await,
        StatusCode::OK,
        "the stored password is Harbor's"
    );
    assert_eq!(harbor.state().robots.len(), 2);
}

#[tokio::test]
async fn fifty_concurrent_renewals_leave_berth_and_harbor_agreeing() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = enabled(&app).await;
    let credentials = format!("{}/credentials", path(&organization));
    let (_, created) = app
        .post(
            &credentials,
            json!({"name": "ci", "access": "pull", "expires_in_days": 3}),
        )
        .await;
    let target = format!(
        "{credentials}/{}",
        created["credential"]["id"].as_str().unwrap()
    );
    let results = concurrently(
        &app,
        &harbor,
        50,
        Method::PATCH,
        &target,
        Some(json!({"expires_in_days": 40})),
    )
    .await;
    assert_only(&results, StatusCode::OK);
    let listed = robots(&app, &organization).await;
    let ci = listed.iter().find(|r| r["name"] == "ci").unwrap();
    let in_harbor = harbor
        .state()
        .robots
        .into_iter()
        .find(|r| r.stored_name.ends_with("+ci"))
        .unwrap();
    assert_eq!(
        unix(ci["expires_at"].as_str().unwrap()),
        in_harbor.expires_at
    );
}

#[tokio::test]
async fn fifty_concurrent_purges_purge_once_and_never_fail() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = enabled(&app).await;
    assert!(harbor.add_repositories(&format!("org-{organization}"), 5));
    let target = format!("{}?purge=true", path(&organization));
    let results = concurrently(&app, &harbor, 50, Method::DELETE, &target, None).await;
    for (status, body) in &results {
        match *status {
            StatusCode::NO_CONTENT => {}
            StatusCode::NOT_FOUND => assert_v1_error(body, "registry_not_found"),
            StatusCode::CONFLICT => assert_v1_error(body, "registry_busy"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(
        results
            .iter()
            .any(|(status, _)| *status == StatusCode::NO_CONTENT)
    );
    let state = harbor.state();
    assert!(
        state.projects.is_empty() && state.robots.is_empty(),
        "{state:?}"
    );
    assert_eq!(registry_rows(&app).await, 0);
    assert!(managed_credentials(&app, &organization).await.is_empty());
}

#[tokio::test]
async fn an_app_of_the_organization_resolves_its_registry_to_the_pull_robot_with_no_manual_step() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = enabled(&app).await;
    let space = app.space(&organization, "dev").await;
    let web = app.app(&space, "web").await;
    let project = format!("org-{organization}");
    let image = format!("registry.example.test/{project}/team/web:1.0");
    let deployer = crate::helpers::token(
        "deployer",
        &["berth.pull_secrets"],
        std::time::Duration::from_secs(600),
    );
    let response = app
        .raw(
            Method::POST,
            "/v3/registry_credentials/actions/resolve",
            Some(&deployer),
            Some(
                json!({"images": [image], "relationships": {"app": {"data": {"guid": web}}}})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let (credential, password) = pull_credential(&app, &organization).await;
    let resolution = &answer["resolutions"][0];
    assert_eq!(
        resolution["credential"]["guid"], credential["guid"],
        "{answer}"
    );
    assert_eq!(resolution["credential"]["scope"], "organization");
    let key = format!("registry.example.test/{project}");
    assert_eq!(resolution["key"], key.as_str());
    let auth = &answer["docker_config"]["auths"][key.as_str()];
    let username = auth["username"].as_str().unwrap();
    assert_eq!(auth["password"], password.as_str());
    // What resolve hands out pulls, and may not push.
    let login = (username, password.as_str());
    assert_eq!(pull_as(&harbor, &project, login).await, StatusCode::OK);
    assert_eq!(
        push_as(&harbor, &project, login).await,
        StatusCode::FORBIDDEN
    );
    let state = harbor.state();
    assert!(
        state.projects[0].repositories.is_empty(),
        "nothing was pushed"
    );
}

#[tokio::test]
async fn a_pull_rotation_cut_short_after_harbor_rotated_is_finished_by_the_reconciler() {
    use std::sync::Arc;

    use berth_domain::registry_service::{RegistryService, RegistrySettings};

    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = enabled(&app).await;
    let project = format!("org-{organization}");
    let (credential, before) = pull_credential(&app, &organization).await;
    let username = credential["username"].as_str().unwrap().to_owned();
    // Harbor makes the new secret, and the answer is lost: the stored password is now stale.
    harbor.set_faults(Faults {
        drop: vec![harbor_emulator::DropRule {
            route: "PATCH /robots/{id}".into(),
            nth: 1,
        }],
        ..Faults::default()
    });
    let (status, body) = app
        .post(
            &format!("{}/pull_credential/rotate", path(&organization)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    harbor.set_faults(Faults::default());
    let (_, stale) = pull_credential(&app, &organization).await;
    assert_eq!(stale, before);
    assert_eq!(
        pull_as(&harbor, &project, (&username, &stale)).await,
        StatusCode::UNAUTHORIZED
    );
    let pull = robots(&app, &organization)
        .await
        .into_iter()
        .find(|r| r["name"] == "berth-pull");
    assert!(pull.is_some(), "a robot being rotated is still listed");

    // The reconciler (its own, for which anything untouched is stalled) rotates it again.
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
    let report = reconciler.reconcile().await.unwrap();
    assert_eq!(
        (
            report.rotations_finished,
            report.robots_removed,
            report.failures.len()
        ),
        (1, 0, 0),
        "{report:?}"
    );
    let (_, fixed) = pull_credential(&app, &organization).await;
    assert_eq!(
        pull_as(&harbor, &project, (&username, &fixed)).await,
        StatusCode::OK,
        "the stored password is Harbor's secret again"
    );
    assert!(reconciler.reconcile().await.unwrap().is_empty(), "settled");
    assert_eq!(harbor.state().robots.len(), 2);
}
