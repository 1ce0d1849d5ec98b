//! HTTP semantics every route keeps: `HEAD` wherever `GET` is served (RFC 9110), the routes
//! that need no token (exactly those the README names), and `/metrics` on its own address.

use std::collections::BTreeMap;

use berth_server::startup::Application;
use berth_testkit::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::runtime;
use crate::helpers::{TestApp, key_spec};

/// The routes that answer without a token, as the README and docs/AUTHORIZATION.md list them.
const OPEN_ROUTES: &[&str] = &["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs/"];

/// One exchange on a fresh connection, read to the end, so a body sent after a `HEAD` answer
/// would show up (a client library would hide it).
struct Exchange {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

async fn exchange(port: u16, method: &str, path: &str, token: Option<&str>) -> Exchange {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{authorization}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete header section");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Exchange {
        status: status.parse().unwrap(),
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// Every `GET` path of the OpenAPI document, with its path parameters filled with `ids`.
fn documented_get_paths(document: &Value, ids: &BTreeMap<&str, String>) -> Vec<String> {
    let mut paths = Vec::new();
    for (template, operations) in document["paths"].as_object().unwrap() {
        if operations.get("get").is_none() {
            continue;
        }
        let mut path = template.clone();
        for (name, id) in ids {
            path = path.replace(&format!("{{{name}}}"), id);
        }
        assert!(!path.contains('{'), "no id for {template}");
        paths.push(path);
    }
    paths
}

#[tokio::test]
async fn head_answers_like_get_without_a_body_on_every_get_route() {
    let (app, _harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let organization = app.organization("acme").await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/organizations/{organization}/registry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let document: Value = app
        .raw(Method::GET, "/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let space = app.space(&organization, "dev").await;
    let ids = BTreeMap::from([("org_id", organization.clone()), ("guid", space.clone())]);
    let mut paths = documented_get_paths(&document, &ids);
    // `{guid}` stands for each kind of resource in turn: fill the other kinds' paths too.
    let credential = app
        .credential(json!({"location": "r.io", "username": "u", "password": "p",
            "relationships": {"space": {"data": {"guid": space}}}}))
        .await;
    let credential = credential["guid"].as_str().unwrap();
    let app_guid = app.app(&space, "web").await;
    let role = uuid::Uuid::new_v4();
    let (status, _) = app
        .put(
            &format!("/v3/roles/{role}"),
            json!({"type": "organization_user", "relationships": {
                "user": {"data": {"guid": "someone"}},
                "organization": {"data": {"guid": organization}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, events) = app.get("/v3/audit_events?per_page=1").await;
    let event = events["resources"][0]["guid"].as_str().unwrap().to_owned();
    for path in paths.clone() {
        if path == format!("/v3/registry_credentials/{space}") {
            paths.push(format!("/v3/registry_credentials/{credential}"));
        }
        if path == format!("/v3/apps/{space}") {
            paths.push(format!("/v3/apps/{app_guid}"));
        }
        if path == format!("/v3/organizations/{space}") {
            paths.push(format!("/v3/organizations/{organization}"));
        }
        if path == format!("/v3/audit_events/{space}") {
            paths.push(format!("/v3/audit_events/{event}"));
        }
        if path == format!("/v3/roles/{space}") {
            paths.push(format!("/v3/roles/{role}"));
        }
    }
    paths.extend(
        [
            "/metrics",
            "/openapi.json",
            "/docs/",
            "/docs/index.html",
            "/no/such/route",
        ]
        .map(str::to_owned),
    );
    let port = port(&app);
    let mut successes = 0;
    for path in &paths {
        let get = exchange(port, "GET", path, Some(&app.admin_token)).await;
        let head = exchange(port, "HEAD", path, Some(&app.admin_token)).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} sent a body");
        assert_eq!(
            head.headers.get("content-type"),
            get.headers.get("content-type"),
            "HEAD {path}"
        );
        assert_eq!(
            head.headers.contains_key("content-length"),
            get.headers.contains_key("content-length"),
            "HEAD {path}: {:?}",
            head.headers
        );
        // The scrape renders live counters, which the GET just moved; every other body is the
        // same for both, so its length is too.
        if path != "/metrics" {
            assert_eq!(
                head.headers.get("content-length"),
                get.headers.get("content-length"),
                "HEAD {path}"
            );
        }
        if get.status == 200 {
            successes += 1;
            assert!(!get.body.is_empty(), "GET {path}");
        }
    }
    // The routes were reached, not merely answered 404: all but the unknown route and the
    // `{guid}` paths filled with another kind's id.
    assert!(
        successes >= paths.len() - 6,
        "{successes} of {}",
        paths.len()
    );
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(
            exchange(port, "HEAD", path, None).await.status,
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_405_on_a_get_route_allows_head() {
    let app = TestApp::spawn().await;
    let port = port(&app);
    for (path, allow) in [
        ("/healthz", "GET, HEAD"),
        ("/metrics", "GET, HEAD"),
        ("/v3/registry_credentials", "GET, HEAD, POST"),
    ] {
        let answer = exchange(port, "DELETE", path, Some(&app.admin_token)).await;
        assert_eq!(answer.status, 405, "{path}");
        assert_eq!(answer.headers.get("allow").map(String::as_str), Some(allow));
    }
}

#[tokio::test]
async fn exactly_the_open_routes_answer_without_a_token() {
    let app = TestApp::spawn().await;
    let document: Value = app
        .raw(Method::GET, "/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let guid = "6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11";
    for (template, operations) in document["paths"].as_object().unwrap() {
        let path = template.replace("{org_id}", guid).replace("{guid}", guid);
        let path = path.replace("{credential_id}", guid);
        for (method, operation) in operations.as_object().unwrap() {
            let open = operation["security"] == json!([{}]);
            assert_eq!(
                open,
                OPEN_ROUTES.contains(&template.as_str()),
                "{method} {template}: the document and the README disagree"
            );
            let status = app
                .raw(method.to_uppercase().parse().unwrap(), &path, None, None)
                .await
                .status();
            if open {
                assert!(status.is_success(), "{method} {path}: {status}");
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            }
        }
    }
    for path in OPEN_ROUTES {
        let status = app.raw(Method::GET, path, None, None).await.status();
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_public_port() {
    let db = TestDatabase::new().await;
    let mut runtime = runtime(db.url(), &key_spec(&["k1"]), "k1");
    runtime.metrics_listen = Some("127.0.0.1:0".into());
    let application = Application::build(runtime).await.unwrap();
    let public = application.port();
    let metrics = application.metrics_port().expect("a metrics server");
    assert_ne!(public, metrics);
    tokio::spawn(application.run_until_stopped());

    let scrape = exchange(metrics, "GET", "/metrics", None).await;
    assert_eq!(scrape.status, 200);
    let text = String::from_utf8(scrape.body).unwrap();
    assert!(text.contains("berth_db_pool_connections"), "{text}");
    let head = exchange(metrics, "HEAD", "/metrics", None).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    // Only the metrics there, and no metrics on the public port.
    assert_eq!(exchange(metrics, "GET", "/healthz", None).await.status, 404);
    assert_eq!(
        exchange(metrics, "GET", "/v3/organizations", None)
            .await
            .status,
        404
    );
    assert_eq!(exchange(public, "GET", "/metrics", None).await.status, 404);
    assert_eq!(exchange(public, "GET", "/healthz", None).await.status, 200);
}
