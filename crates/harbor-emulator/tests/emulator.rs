//! The emulator is strict the way Harbor is: these are Harbor's own answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use harbor_emulator::{DropRule, EmulatorConfig, FailRule, Faults, RunningEmulator, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Harbor {
    emulator: RunningEmulator,
    client: reqwest::Client,
}

impl Harbor {
    fn start(config: EmulatorConfig) -> Self {
        let (emulator, server) = start(config, "127.0.0.1:0").unwrap();
        tokio::spawn(server);
        Self {
            emulator,
            client: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/api/v2.0{path}", self.emulator.url()));
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.call(method, path, Some(("admin", "Harbor12345")), body)
            .await
    }
}

fn error_code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn projects_quotas_and_their_rules() {
    let harbor = Harbor::start(EmulatorConfig::default());
    let (status, headers, body) = harbor
        .admin(Method::POST, "/projects", Some(json!({"project_name": "acme", "metadata": {"public": "false"}, "storage_limit": 10_737_418_240_i64})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let location = headers["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/api/v2.0/projects/"));
    assert!(headers.contains_key("x-request-id"));
    let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();

    let (status, _, body) = harbor
        .admin(
            Method::POST,
            "/projects",
            Some(json!({"project_name": "acme"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "CONFLICT")
    );
    assert_eq!(
        body["errors"][0]["message"],
        "The project named acme already exists"
    );
    for (body, status, code) in [
        (
            json!({"project_name": "Acme"}),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (
            json!({"project_name": "a--b"}),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (
            json!({"project_name": "ok", "metadata": {"public": true}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
        ),
        (
            json!({"project_name": "ok", "storage_limit": -5}),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (
            json!({"project_name": "ok", "storage_limit": 1_125_899_906_842_625_i64}),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
    ] {
        let (got, _, answer) = harbor
            .admin(Method::POST, "/projects", Some(body.clone()))
            .await;
        assert_eq!((got, error_code(&answer)), (status, code), "{body}");
    }
    let (status, _, _) = harbor
        .call(
            Method::POST,
            "/projects",
            None,
            Some(json!({"project_name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = harbor
        .call(
            Method::POST,
            "/projects",
            Some(("admin", "wrong")),
            Some(json!({"project_name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(
        harbor
            .admin(Method::HEAD, "/projects?project_name=acme", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        harbor
            .admin(Method::HEAD, "/projects?project_name=nope", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, _, project) = harbor
        .admin(Method::GET, &format!("/projects/{id}"), None)
        .await;
    assert_eq!(project["name"], "acme");
    assert_eq!(project["metadata"]["public"], "false");

    let (_, headers, quotas) = harbor
        .admin(
            Method::GET,
            &format!("/quotas?reference=project&reference_id={id}"),
            None,
        )
        .await;
    assert_eq!(headers["x-total-count"], "1");
    assert_eq!(quotas[0]["hard"]["storage"], 10_737_418_240_i64);
    assert_ne!(quotas[0]["id"], id, "the quota id is not the project id");
    let quota_id = quotas[0]["id"].as_i64().unwrap();
    let (status, _, _) = harbor
        .admin(
            Method::PUT,
            &format!("/quotas/{quota_id}"),
            Some(json!({"hard": {"storage": 5}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = harbor
        .admin(
            Method::PUT,
            &format!("/quotas/{quota_id}"),
            Some(json!({"hard": {}})),
        )
        .await;
    assert_eq!(
        (status, body["errors"][0]["message"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "hard required in body")
    );
    harbor.emulator.set_usage("acme", 52_428_800);
    let (_, _, summary) = harbor
        .admin(Method::GET, "/projects/acme/summary", None)
        .await;
    assert_eq!(
        summary["quota"],
        json!({"hard": {"storage": 5}, "used": {"storage": 52_428_800}})
    );

    harbor.emulator.add_repositories("acme", 2);
    let (status, _, body) = harbor
        .admin(Method::DELETE, &format!("/projects/{id}"), None)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PRECONDITION_FAILED, "PRECONDITION")
    );
    assert_eq!(
        body["errors"][0]["message"],
        "precondition failed: the project contains repositories, can not be deleted"
    );
    let (status, _, body) = harbor.admin(Method::GET, "/nothing", None).await;
    assert_eq!(
        (status, body["errors"][0]["message"].as_str().unwrap()),
        (
            StatusCode::NOT_FOUND,
            "path /api/v2.0/nothing was not found"
        )
    );
}

#[tokio::test]
async fn robots_follow_harbor_rules_and_authenticate_with_hashed_secrets() {
    let harbor = Harbor::start(EmulatorConfig {
        robot_prefix: "bot@".into(),
        ..EmulatorConfig::default()
    });
    let (_, headers, _) = harbor
        .admin(
            Method::POST,
            "/projects",
            Some(json!({"project_name": "acme"})),
        )
        .await;
    let project_id = headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let robot = |name: &str, duration: Value| {
        json!({"name": name, "level": "project", "duration": duration, "permissions": [{"kind": "project", "namespace": "acme",
            "access": [{"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}]})
    };
    let (status, headers, created) = harbor
        .admin(Method::POST, "/robots", Some(robot("ci", json!(-1))))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/api/v2.0/robots/")
    );
    assert_eq!(created["name"], "bot@acme+ci");
    assert_eq!(created["expires_at"], -1);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    let id = created["id"].as_i64().unwrap();

    let (status, _, body) = harbor
        .admin(Method::POST, "/robots", Some(robot("ci", json!(-1))))
        .await;
    assert_eq!(
        (status, body["errors"][0]["message"].as_str().unwrap()),
        (
            StatusCode::CONFLICT,
            &*format!("robot account {project_id}:acme+ci already exists")
        )
    );
    for (body, status) in [
        (robot("CI", json!(-1)), StatusCode::BAD_REQUEST),
        (robot("ok", json!(0)), StatusCode::BAD_REQUEST),
        (
            json!({"name": "ok", "level": "project", "duration": -1, "permissions": []}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "ok", "level": "project", "duration": -1, "permissions": [{"kind": "project", "namespace": "nope", "access": [{"resource": "repository", "action": "pull"}]}]}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"name": "ok", "level": "project", "duration": -1, "permissions": [{"kind": "project", "namespace": "acme", "access": [{"resource": "robot", "action": "update"}]}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "ok", "level": "galaxy", "duration": -1}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            harbor
                .admin(Method::POST, "/robots", Some(body.clone()))
                .await
                .0,
            status,
            "{body}"
        );
    }
    // The robot logs in with its full name; never with the stored name alone.
    assert_eq!(
        harbor
            .call(
                Method::GET,
                "/users/current",
                Some(("bot@acme+ci", &secret)),
                None
            )
            .await
            .0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        harbor
            .call(
                Method::GET,
                "/users/current",
                Some(("acme+ci", &secret)),
                None
            )
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        harbor
            .call(Method::GET, "/robots", Some(("bot@acme+ci", &secret)), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let (_, headers, list) = harbor
        .admin(
            Method::GET,
            &format!("/robots?q=Level%3Dproject%2CProjectID%3D{project_id}"),
            None,
        )
        .await;
    assert_eq!(headers["x-total-count"], "1");
    assert!(list[0].get("secret").is_none());
    assert_eq!(
        harbor
            .admin(Method::GET, "/robots?q=Level%3Dproject", None)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        harbor
            .admin(Method::GET, "/robots?page_size=101", None)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let (status, _, refreshed) = harbor
        .admin(Method::PATCH, &format!("/robots/{id}"), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = refreshed["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(
        harbor
            .call(
                Method::GET,
                "/users/current",
                Some(("bot@acme+ci", &secret)),
                None
            )
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "the old secret stops working"
    );
    assert_eq!(
        harbor
            .call(
                Method::GET,
                "/users/current",
                Some(("bot@acme+ci", new_secret)),
                None
            )
            .await
            .0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        harbor
            .admin(
                Method::PATCH,
                &format!("/robots/{id}"),
                Some(json!({"secret": "weak"}))
            )
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let (_, _, current) = harbor
        .admin(Method::GET, &format!("/robots/{id}"), None)
        .await;
    let mut update = current.clone();
    update["description"] = json!("changed");
    assert_eq!(
        harbor
            .admin(Method::PUT, &format!("/robots/{id}"), Some(update.clone()))
            .await
            .0,
        StatusCode::OK
    );
    update["name"] = json!("acme+ci");
    assert_eq!(
        harbor
            .admin(Method::PUT, &format!("/robots/{id}"), Some(update))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    assert_eq!(
        harbor
            .admin(Method::DELETE, &format!("/robots/{id}"), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        harbor
            .admin(Method::GET, &format!("/robots/{id}"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Deleting a project deletes its robots.
    harbor
        .admin(Method::POST, "/robots", Some(robot("again", json!(30))))
        .await;
    assert_eq!(
        harbor.admin(Method::DELETE, "/projects/acme", None).await.0,
        StatusCode::OK
    );
    assert!(harbor.emulator.state().robots.is_empty());
}

#[tokio::test]
async fn faults_fail_the_nth_call_and_drop_after_the_work() {
    let harbor = Harbor::start(EmulatorConfig::default());
    harbor.emulator.set_faults(Faults {
        fail: vec![FailRule {
            route: "POST /projects".into(),
            nth: 2,
            status: 503,
        }],
        drop: vec![DropRule {
            route: "POST /projects".into(),
            nth: 3,
        }],
        ..Faults::default()
    });
    assert_eq!(
        harbor
            .admin(
                Method::POST,
                "/projects",
                Some(json!({"project_name": "one"}))
            )
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, _, _) = harbor
        .admin(
            Method::POST,
            "/projects",
            Some(json!({"project_name": "two"})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        harbor
            .emulator
            .state()
            .projects
            .iter()
            .all(|p| p.name != "two"),
        "a failed call does nothing"
    );
    let dropped = harbor
        .client
        .post(format!("{}/api/v2.0/projects", harbor.emulator.url()))
        .basic_auth("admin", Some("Harbor12345"))
        .json(&json!({"project_name": "three"}))
        .send()
        .await
        .and_then(|response| response.error_for_status())
        .map(|_| ());
    let body_error = match dropped {
        Err(_) => true,
        Ok(()) => false,
    };
    assert!(
        body_error
            || harbor
                .emulator
                .state()
                .projects
                .iter()
                .any(|p| p.name == "three")
    );
    assert!(
        harbor
            .emulator
            .state()
            .projects
            .iter()
            .any(|p| p.name == "three"),
        "the work was done before the drop"
    );
    // Over HTTP, the hooks steer a separate process the same way.
    let response = harbor
        .client
        .put(format!("{}/_emulator/faults", harbor.emulator.url()))
        .json(&json!({"latency_ms": 0, "error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        harbor.admin(Method::GET, "/ping", None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    harbor
        .client
        .delete(format!("{}/_emulator/faults", harbor.emulator.url()))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = harbor.call(Method::GET, "/ping", None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Value::String("Pong".into()))
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}

/// Harbor's registry login: the Bearer challenge, the token service, `/v2/` with a token or Basic.
#[tokio::test]
async fn registry_login_challenges_issues_tokens_and_accepts_them() {
    let harbor = Harbor::start(EmulatorConfig::default());
    harbor
        .admin(
            Method::POST,
            "/projects",
            Some(json!({"project_name": "acme"})),
        )
        .await;
    let robot = json!({"name": "ci", "level": "project", "duration": -1, "permissions": [{"kind": "project",
        "namespace": "acme", "access": [{"resource": "repository", "action": "pull"}]}]});
    let (_, _, created) = harbor.admin(Method::POST, "/robots", Some(robot)).await;
    let name = created["name"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let url = harbor.emulator.url().to_owned();
    let client = reqwest::Client::new();

    let ping = client.get(format!("{url}/v2/")).send().await.unwrap();
    assert_eq!(ping.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        ping.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let host = url.strip_prefix("http://").unwrap();
    assert_eq!(
        ping.headers()["www-authenticate"],
        format!("Bearer realm=\"http://{host}/service/token\",service=\"harbor-registry\"")
            .as_str()
    );

    for (user, password, status) in [
        (name.as_str(), secret.as_str(), StatusCode::OK),
        ("admin", "Harbor12345", StatusCode::OK),
        (name.as_str(), "wrong", StatusCode::UNAUTHORIZED),
        (
            "robot$acme+nobody",
            secret.as_str(),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let answer = client
            .get(format!(
                "{url}/service/token?service=harbor-registry&account={user}"
            ))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{user}");
        let basic = client
            .get(format!("{url}/v2/"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), status, "{user} with Basic on /v2/");
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(
                basic.headers()["www-authenticate"],
                "Basic realm=\"harbor\""
            );
            continue;
        }
        let body: Value = answer.json().await.unwrap();
        let token = body["token"].as_str().unwrap();
        assert_eq!(body["access_token"], token);
        assert_eq!(body["expires_in"], 1800);
        assert!(body["issued_at"].is_string());
        let bearer = client
            .get(format!("{url}/v2/"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(bearer.status(), StatusCode::OK);
    }
    let unknown = client
        .get(format!("{url}/v2/"))
        .bearer_auth("not-issued")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let anonymous = client
        .get(format!("{url}/service/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repositories_are_listed_paged_deleted_by_double_encoded_name_and_pushed_by_permission() {
    let harbor = Harbor::start(EmulatorConfig::default());
    let (status, headers, _) = harbor
        .admin(
            Method::POST,
            "/projects",
            Some(json!({"project_name": "acme", "metadata": {"public": "false"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert!(harbor.emulator.add_repositories("acme", 3));
    let (status, headers, page) = harbor
        .admin(
            Method::GET,
            "/projects/acme/repositories?page=1&page_size=2",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-total-count"], "3");
    assert!(headers["link"].to_str().unwrap().contains("rel=\"next\""));
    assert_eq!(page[0]["name"], "acme/team/app-1", "{page}");
    let (status, _, body) = harbor
        .admin(
            Method::GET,
            "/projects/acme/repositories?page_size=101",
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_ENTITY")
    );

    // A `/` in the name travels encoded twice; encoded once it splits Harbor's route.
    let (status, _, _) = harbor
        .admin(
            Method::DELETE,
            "/projects/acme/repositories/team%2Fapp-1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = harbor
        .admin(
            Method::DELETE,
            "/projects/acme/repositories/team%252Fapp-1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = harbor
        .admin(
            Method::DELETE,
            "/projects/acme/repositories/team%252Fapp-1",
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    let (status, _, _) = harbor
        .call(
            Method::DELETE,
            "/projects/acme/repositories/team%252Fapp-2",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A project holding repositories is kept (412) until the last goes.
    let (status, _, _) = harbor
        .admin(Method::DELETE, &format!("/projects/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);

    // Pushing as a robot needs `repository:push` on the project.
    let mut secrets = Vec::new();
    for (name, actions) in [("puller", vec!["pull"]), ("pusher", vec!["pull", "push"])] {
        let access: Vec<Value> = actions
            .iter()
            .map(|action| json!({"resource": "repository", "action": action}))
            .collect();
        let (status, _, created) = harbor
            .admin(
                Method::POST,
                "/robots",
                Some(json!({"name": name, "level": "project", "duration": -1,
                    "permissions": [{"kind": "project", "namespace": "acme", "access": access}]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        secrets.push((
            created["name"].as_str().unwrap().to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        ));
    }
    let push = |login: (String, String)| {
        let request = harbor
            .client
            .post(format!(
                "{}/_emulator/projects/acme/repositories",
                harbor.emulator.url()
            ))
            .basic_auth(login.0, Some(login.1))
            .json(&json!({"name": "team/pushed"}));
        async move { request.send().await.unwrap().status() }
    };
    let (puller, pusher) = (secrets[0].clone(), secrets[1].clone());
    assert_eq!(push(puller.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(
        push((puller.0.clone(), "wrong".into())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(push(pusher).await, StatusCode::NO_CONTENT);
    let (status, _, listed) = harbor
        .call(
            Method::GET,
            "/projects/acme/repositories",
            Some((&puller.0, &puller.1)),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a pull robot lists its project's repositories"
    );
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["acme/team/app-2", "acme/team/app-3", "acme/team/pushed"]
    );

    for name in ["team%252Fapp-2", "team%252Fapp-3", "team%252Fpushed"] {
        let (status, _, _) = harbor
            .admin(
                Method::DELETE,
                &format!("/projects/acme/repositories/{name}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _, _) = harbor
        .admin(Method::DELETE, &format!("/projects/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}
