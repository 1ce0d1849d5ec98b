//! `POST /v3/registry_credentials/{guid}/actions/verify`: end to end against the Harbor
//! emulator's registry login and against Debian's `docker-registry`, a registry nobody here wrote.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_auth::{MintClaims, mint_hs256};
use berth_registry_probe::NetworkPolicy;
use berth_server::startup::Runtime;
use berth_testkit::TestDatabase;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{HS256_SECRET, TestApp, assert_v3_error, key_spec};

fn verify_path(guid: &str) -> String {
    format!("/v3/registry_credentials/{guid}/actions/verify")
}

/// Loopback opened, and every loopback port spoken to over http.
fn open_loopback(runtime: &mut Runtime) {
    runtime.verification_policy =
        NetworkPolicy::parse(&["127.0.0.0/8".into()], &["127.0.0.1".into()]).unwrap();
}

fn assert_verification(body: &Value, outcome: &str) {
    let object = body.as_object().unwrap_or_else(|| panic!("{body}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["checked_at", "detail", "endpoint", "outcome"],
        "{body}"
    );
    assert_eq!(body["outcome"], outcome, "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
    assert!(
        body["checked_at"].as_str().unwrap().ends_with('Z'),
        "{body}"
    );
}

async fn verify(app: &TestApp, guid: &str) -> Value {
    let (status, body) = app.call(Method::POST, &verify_path(guid), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn an_organization_registry_robot_is_valid_until_rotated() {
    let (app, harbor) = TestApp::spawn_with_harbor(open_loopback).await;
    let organization = app.organization("acme").await;
    let registry = format!("/api/v1/organizations/{organization}/registry");
    let (status, enabled) = app.call(Method::POST, &registry, None).await;
    assert_eq!(status, StatusCode::CREATED, "{enabled}");
    let project = enabled["registry"]["harbor_project"].as_str().unwrap();
    let (status, robot) = app
        .post(
            &format!("{registry}/credentials"),
            json!({"name": "ci-pull", "access": "pull"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{robot}");
    let username = robot["credentials"]["username"].as_str().unwrap();
    let password = robot["credentials"]["password"].as_str().unwrap();
    let harbor_host = harbor.url().strip_prefix("http://").unwrap();
    let credential = app
        .credential(json!({
            "location": format!("{harbor_host}/{project}"),
            "username": username,
            "password": password,
            "relationships": {"organization": {"data": {"guid": organization}}},
        }))
        .await;
    let guid = credential["guid"].as_str().unwrap();

    let valid = verify(&app, guid).await;
    assert_verification(&valid, "valid");
    assert_eq!(valid["endpoint"], format!("http://{harbor_host}"));
    let calls = harbor.state().calls;
    assert!(
        calls.iter().any(|call| call == "GET /service/token"),
        "{calls:?}"
    );

    let (status, rotated) = app
        .post(
            &format!(
                "{registry}/credentials/{}/rotate",
                robot["credential"]["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let invalid = verify(&app, guid).await;
    assert_verification(&invalid, "invalid");
    let text = invalid.to_string();
    assert!(!text.contains(password), "the password leaked: {text}");
}

#[tokio::test]
async fn without_allowed_networks_a_loopback_registry_is_blocked() {
    let (app, harbor) = TestApp::spawn_with_harbor(|_| {}).await;
    let harbor_host = harbor.url().strip_prefix("http://").unwrap();
    let credential = app
        .credential(
            json!({"location": harbor_host, "username": "admin", "password": "Harbor12345"}),
        )
        .await;
    let blocked = verify(&app, credential["guid"].as_str().unwrap()).await;
    assert_verification(&blocked, "blocked");
    assert!(
        blocked["detail"]
            .as_str()
            .unwrap()
            .contains("verification.allowed_networks"),
        "{blocked}"
    );
    assert!(
        !harbor
            .state()
            .calls
            .iter()
            .any(|call| call.contains("/v2/"))
    );
}

#[tokio::test]
async fn only_writers_may_verify() {
    let app = TestApp::spawn().await;
    let organization = app.organization("acme").await;
    let other = app.organization("other").await;
    let credential = app
        .credential(json!({
            "location": "registry.example.com",
            "username": "user",
            "password": "secret",
            "relationships": {"organization": {"data": {"guid": organization}}},
        }))
        .await;
    let path = verify_path(credential["guid"].as_str().unwrap());
    let token = |role: String| {
        mint_hs256(
            &SecretString::from(HS256_SECRET),
            &MintClaims {
                subject: "caller".into(),
                scopes: Vec::new(),
                roles: vec![role],
                ttl: Duration::from_secs(600),
                issuer: None,
                audience: None,
            },
        )
        .unwrap()
    };
    for (role, status, title) in [
        (
            format!("organization_auditor:{organization}"),
            403,
            "CF-NotAuthorized",
        ),
        (
            format!("organization_manager:{other}"),
            404,
            "CF-ResourceNotFound",
        ),
    ] {
        let response = app
            .raw(Method::POST, &path, Some(&token(role.clone())), None)
            .await;
        assert_eq!(response.status().as_u16(), status, "{role}");
        let body: Value = response.json().await.unwrap();
        assert_v3_error(&body, if status == 403 { 10003 } else { 10010 }, title);
    }
    let response = app.raw(Method::POST, &path, None, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for missing in [uuid::Uuid::new_v4().to_string(), "not-a-guid".to_owned()] {
        let (status, body) = app.call(Method::POST, &verify_path(&missing), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_v3_error(&body, 10010, "CF-ResourceNotFound");
    }
    let (status, body) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
}

/// Debian's `docker-registry` (distribution) with htpasswd auth on a free loopback port, stopped
/// on drop.
struct Distribution {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Distribution {
    fn start(user: &str, password: &str) -> Self {
        let binary = Path::new("/usr/bin/docker-registry");
        assert!(
            binary.exists(),
            "/usr/bin/docker-registry is missing: install Debian's docker-registry package \
             (apt-get install docker-registry; `cargo xtask test` does)"
        );
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .unwrap_or_else(|error| {
                panic!("htpasswd is missing ({error}): install apache2-utils (apt-get install apache2-utils)")
            });
        assert!(htpasswd.status.success(), "htpasswd failed: {htpasswd:?}");
        let dir = TempDir::new();
        std::fs::write(dir.0.join("htpasswd"), &htpasswd.stdout).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}\n\
             http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n",
            root = dir.0.join("storage").display(),
            htpasswd = dir.0.join("htpasswd").display(),
        );
        let config_path = dir.0.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Self {
            child,
            port,
            _dir: dir,
        };
        registry.wait_until_listening();
        registry
    }

    fn wait_until_listening(&self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on 127.0.0.1:{}", self.port);
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("berth-registry-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_real_distribution_registry_says_valid_invalid_then_unreachable() {
    let mut registry = Distribution::start("pusher", "right-password");
    let location = format!("127.0.0.1:{}", registry.port);
    let app = TestApp::spawn_configured(
        TestDatabase::new().await,
        key_spec(&["k1"]),
        "k1",
        |runtime| {
            runtime.verification_policy =
                NetworkPolicy::parse(&["127.0.0.0/8".into()], std::slice::from_ref(&location))
                    .unwrap();
        },
    )
    .await;
    let mut guids = Vec::new();
    for (owner, password) in [("acme", "right-password"), ("other", "wrong-password")] {
        let organization = app.organization(owner).await;
        let credential = app
            .credential(json!({
                "location": format!("{location}/team/app"),
                "username": "pusher",
                "password": password,
                "relationships": {"organization": {"data": {"guid": organization}}},
            }))
            .await;
        guids.push(credential["guid"].as_str().unwrap().to_owned());
    }
    let valid = verify(&app, &guids[0]).await;
    assert_verification(&valid, "valid");
    assert_eq!(valid["endpoint"], format!("http://{location}"));
    let invalid = verify(&app, &guids[1]).await;
    assert_verification(&invalid, "invalid");
    assert!(!invalid.to_string().contains("wrong-password"));
    registry.stop();
    let unreachable = verify(&app, &guids[0]).await;
    assert_verification(&unreachable, "unreachable");
}
