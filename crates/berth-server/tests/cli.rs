//! The `berth` binary as an operator runs it: modes, refusals, tokens, migrations and keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_persistence::sealing::KeyRing;
use berth_testkit::TestDatabase;
use secrecy::ExposeSecret;

fn berth() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    // Only what each test sets: no BERTH_* from the developer's shell.
    for (key, _) in std::env::vars() {
        if key.starts_with("BERTH_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn");
    command
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn production_refuses_to_start_without_a_key_ring_or_a_verifier() {
    let output = berth()
        .env("BERTH_DATABASE__URL", "postgres://127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("BERTH_ENCRYPTION__KEYS"),
        "{}",
        text(&output)
    );

    let key = KeyRing::generate_spec_entry("k1").unwrap();
    let output = berth()
        .env("BERTH_DATABASE__URL", "postgres://127.0.0.1:1/none")
        .env("BERTH_ENCRYPTION__KEYS", key.expose_secret())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("BERTH_AUTH__JWKS_URL") && message.contains("BERTH_AUTH__HS256_SECRET"),
        "{message}"
    );
    assert!(
        !message.contains(key.expose_secret().split(':').nth(1).unwrap()),
        "key material in a message"
    );
}

#[test]
fn token_mints_an_hs256_jwt_in_dev_mode_only() {
    let dir = temp_dir();
    let output = berth()
        .env("BERTH_DATA_DIR", &dir)
        .args([
            "token",
            "--sub",
            "alice",
            "--scope",
            "berth.admin",
            "--role",
            "space_developer:6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11",
            "--ttl",
            "2h",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let token = String::from_utf8(output.stdout).unwrap();
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let header = String::from_utf8(base64_url(parts[0])).unwrap();
    assert!(header.contains("HS256"), "{header}");
    let claims: serde_json::Value = serde_json::from_slice(&base64_url(parts[1])).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], "berth.admin");
    assert_eq!(
        claims["roles"][0],
        "space_developer:6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11"
    );
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 7200);

    // Production without an HS256 key cannot mint.
    let key = KeyRing::generate_spec_entry("k1").unwrap();
    let output = berth()
        .env("BERTH_DATABASE__URL", "postgres://127.0.0.1:1/none")
        .env("BERTH_ENCRYPTION__KEYS", key.expose_secret())
        .env("BERTH_AUTH__JWKS_URL", "http://127.0.0.1:1/jwks.json")
        .arg("token")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains("BERTH_AUTH__HS256_SECRET"));
    let _ = std::fs::remove_dir_all(dir);
}

fn base64_url(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn migrate_keys_status_and_keys_rotate_in_production() {
    let db = TestDatabase::new().await;
    let old = KeyRing::generate_spec_entry("old").unwrap();
    let new = KeyRing::generate_spec_entry("new").unwrap();
    let production = |keys: &str, current: &str| {
        let mut command = berth();
        command
            .env("BERTH_DATABASE__URL", db.url())
            .env("BERTH_ENCRYPTION__KEYS", keys)
            .env("BERTH_ENCRYPTION__CURRENT_LABEL", current)
            .env(
                "BERTH_AUTH__HS256_SECRET",
                "cli-test-secret-long-enough-for-hs256",
            );
        command
    };
    // Serving before migrating is refused.
    let output = production(old.expose_secret(), "old")
        .args(["serve"])
        .env("BERTH_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains("berth migrate"), "{}", text(&output));

    let output = production(old.expose_secret(), "old")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let migrations = <berth_migration::Migrator as sea_orm_migration::MigratorTrait>::migrations();
    let applied = format!("applied {} migration(s)", migrations.len());
    assert!(text(&output).contains(&applied), "{}", text(&output));

    // Seal some rows under "old" through the running service.
    let port = free_port();
    let mut server = production(old.expose_secret(), "old")
        .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
        .spawn()
        .unwrap();
    wait_healthy(port, &mut server).await;
    let token = mint(production(old.expose_secret(), "old"));
    let client = reqwest::Client::new();
    for index in 0..3 {
        let response = client
            .post(format!("http://127.0.0.1:{port}/v3/registry_credentials"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"location": format!("r{index}.io"), "username": "u", "password": "p"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    server.kill().unwrap();
    let _ = server.wait();

    let both = format!("{},{}", old.expose_secret(), new.expose_secret());
    let output = production(&both, "new")
        .args(["keys", "status"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let status = text(&output);
    assert!(status.contains("current label: new"), "{status}");
    assert!(
        status
            .lines()
            .any(|line| line.contains("old") && line.contains(" 3 ")),
        "{status}"
    );

    let output = production(&both, "new")
        .args(["keys", "rotate", "--batch-size", "2"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("re-sealed 3 row(s) under new"),
        "{}",
        text(&output)
    );

    // Without the old key Berth now starts; the rows are all under "new".
    let output = production(new.expose_secret(), "new")
        .args(["keys", "status"])
        .output()
        .unwrap();
    assert!(
        text(&output)
            .lines()
            .any(|line| line.contains("new") && line.contains(" 3 ")),
        "{}",
        text(&output)
    );
    // A ring missing a label in use is refused at start.
    let other = KeyRing::generate_spec_entry("other").unwrap();
    let output = production(other.expose_secret(), "other")
        .env("BERTH_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains("new"), "{}", text(&output));
}

fn mint(mut command: Command) -> String {
    let output = command
        .args(["token", "--scope", "berth.admin"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the emulator has answered `call` (a request is in flight at that step), at most
/// 20 s, else fails with `what`.
async fn until_harbor_is_called(harbor: &harbor_emulator::RunningEmulator, call: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !harbor.state().calls.iter().any(|seen| seen == call) {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_healthy(port: u16, server: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = server.try_wait().unwrap() {
            panic!("berth exited early: {status}");
        }
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("berth did not become healthy on port {port}");
}

/// Each network and insecure registry opened for verification is logged at start.
#[tokio::test]
async fn relaxed_verification_settings_are_logged_at_start() {
    let dir = temp_dir();
    let port = free_port();
    let mut server = berth()
        .env("BERTH_DATA_DIR", &dir)
        .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "BERTH_VERIFICATION__ALLOWED_NETWORKS",
            "[\"10.20.0.0/16\", \"fd00:1::/32\"]",
        )
        .env(
            "BERTH_VERIFICATION__INSECURE_REGISTRIES",
            "[\"registry.corp:5000\"]",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_healthy(port, &mut server).await;
    server.kill().unwrap();
    let printed = text(&server.wait_with_output().unwrap());
    for entry in ["10.20.0.0/16", "fd00:1::/32"] {
        assert!(
            printed
                .lines()
                .any(|line| line.contains("verification.allowed_networks") && line.contains(entry)),
            "{entry} is not logged: {printed}"
        );
    }
    assert!(
        printed.lines().any(|line| {
            line.contains("verification.insecure_registries") && line.contains("registry.corp")
        }),
        "the insecure registry is not logged: {printed}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn dev_mode_serves_with_sqlite_and_writes_the_admin_token() {
    let dir = temp_dir();
    let port = free_port();
    let mut server = berth()
        .env("BERTH_DATA_DIR", &dir)
        .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_healthy(port, &mut server).await;
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    assert!(dir.join("berth.db").exists());
    let client = reqwest::Client::new();
    let organization = uuid::Uuid::new_v4();
    let response = client
        .put(format!(
            "http://127.0.0.1:{port}/v3/organizations/{organization}"
        ))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .post(format!("http://127.0.0.1:{port}/v3/registry_credentials"))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({"location": "registry.example.com", "username": "u", "password": "p",
            "relationships": {"organization": {"data": {"guid": organization}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["links"]["self"]["href"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://127.0.0.1:{port}/v3/"))
    );
    // The admin token resolves pull secrets too, and so does one minted with that scope alone.
    let output = berth()
        .env("BERTH_DATA_DIR", &dir)
        .args(["token", "--scope", "berth.pull_secrets"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let deployer = String::from_utf8(output.stdout).unwrap();
    for token in [token.trim(), deployer.trim()] {
        let response = client
            .post(format!(
                "http://127.0.0.1:{port}/v3/registry_credentials/actions/resolve"
            ))
            .bearer_auth(token)
            .json(
                &serde_json::json!({"images": ["registry.example.com/team/app:1"],
                "relationships": {"organization": {"data": {"guid": organization}}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body["docker_config"]["auths"]["registry.example.com"]["username"], "u",
            "{body}"
        );
    }
    server.kill().unwrap();
    let output = server.wait_with_output().unwrap();
    let banner = String::from_utf8_lossy(&output.stdout);
    assert!(banner.contains("DEV MODE"), "{banner}");
    assert!(
        banner.contains(token.trim()),
        "the banner prints the admin token"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("admin.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the admin token is readable by its owner only"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A production Berth on the test database, talking to an emulator over HTTP.
struct Replica {
    port: u16,
    child: Child,
}

fn production_env(command: &mut Command, db: &TestDatabase, keys: &str, harbor_url: &str) {
    command
        .env("BERTH_DATABASE__URL", db.url())
        .env("BERTH_ENCRYPTION__KEYS", keys)
        .env(
            "BERTH_AUTH__HS256_SECRET",
            "cli-test-secret-long-enough-for-hs256",
        )
        .env("BERTH_HARBOR__URL", harbor_url)
        .env("BERTH_HARBOR__USERNAME", "admin")
        .env("BERTH_HARBOR__PASSWORD", "Harbor12345");
}

impl Drop for Replica {
    /// A failing test must not leave its servers running (a no-op after an explicit kill).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn replica(
    db: &TestDatabase,
    keys: &str,
    harbor_url: &str,
    extra: &[(&str, &str)],
) -> Replica {
    replica_logging_to(db, keys, harbor_url, extra, Stdio::null()).await
}

/// A replica whose log (its standard output) goes to `log`.
async fn replica_logging_to(
    db: &TestDatabase,
    keys: &str,
    harbor_url: &str,
    extra: &[(&str, &str)],
    log: impl Into<Stdio>,
) -> Replica {
    let port = free_port();
    let mut command = berth();
    production_env(&mut command, db, keys, harbor_url);
    command.env("BERTH_LISTEN", format!("127.0.0.1:{port}"));
    for (key, value) in extra {
        command.env(key, value);
    }
    let mut child = command.stdout(log).spawn().unwrap();
    wait_healthy(port, &mut child).await;
    Replica { port, child }
}

async fn migrated(db: &TestDatabase, keys: &str) {
    let mut command = berth();
    production_env(&mut command, db, keys, "http://127.0.0.1:1");
    let output = command.arg("migrate").output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
}

fn admin_token(db: &TestDatabase, keys: &str) -> String {
    let mut command = berth();
    production_env(&mut command, db, keys, "http://127.0.0.1:1");
    mint(command)
}

async fn put_organization(port: u16, token: &str) -> uuid::Uuid {
    let organization = uuid::Uuid::new_v4();
    let response = reqwest::Client::new()
        .put(format!(
            "http://127.0.0.1:{port}/v3/organizations/{organization}"
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    organization
}

fn emulator() -> harbor_emulator::RunningEmulator {
    let (emulator, server) =
        harbor_emulator::start(harbor_emulator::EmulatorConfig::default(), "127.0.0.1:0").unwrap();
    tokio::spawn(server);
    emulator
}

#[tokio::test]
async fn fifty_concurrent_enables_over_two_processes_give_one_registry() {
    let db = TestDatabase::new().await;
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let keys = keys.expose_secret();
    let harbor = emulator();
    harbor.set_faults(harbor_emulator::Faults {
        latency_ms: 20,
        ..Default::default()
    });
    migrated(&db, keys).await;
    let mut first = replica(&db, keys, harbor.url(), &[]).await;
    let mut second = replica(&db, keys, harbor.url(), &[]).await;
    let token = admin_token(&db, keys);
    let organization = put_organization(first.port, &token).await;
    let client = reqwest::Client::new();
    let attempts = (0..50).map(|index| {
        let port = if index % 2 == 0 {
            first.port
        } else {
            second.port
        };
        let request = client
            .post(format!(
                "http://127.0.0.1:{port}/api/v1/organizations/{organization}/registry"
            ))
            .bearer_auth(&token)
            .send();
        async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|(status, _)| *status == 201).count();
    let conflicts = results.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!((created, conflicts), (1, 49), "{results:?}");
    for (status, body) in &results {
        if *status == 409 {
            let code = body["error"]["code"].as_str().unwrap();
            assert!(
                code == "registry_provisioning" || code == "registry_already_enabled",
                "{body}"
            );
        }
    }
    let state = harbor.state();
    assert_eq!(
        (state.projects.len(), state.robots.len()),
        (1, 2),
        "one project, its default and pull robots: {:?}",
        state.calls
    );
    assert_eq!(
        state
            .calls
            .iter()
            .filter(|c| *c == "POST /projects")
            .count(),
        1
    );
    first.child.kill().unwrap();
    second.child.kill().unwrap();
    let _ = (first.child.wait(), second.child.wait());
}

/// Starts an enablement whose robot call hangs in Harbor, and SIGKILLs Berth meanwhile.
async fn kill_during_robot_creation(
    db: &TestDatabase,
    keys: &str,
    harbor: &harbor_emulator::RunningEmulator,
) -> uuid::Uuid {
    let mut faults = harbor_emulator::Faults::default();
    faults.route_latency_ms.insert("POST /robots".into(), 1500);
    harbor.set_faults(faults);
    migrated(db, keys).await;
    let mut doomed = replica(
        db,
        keys,
        harbor.url(),
        &[("BERTH_HARBOR__LEASE_SECONDS", "2")],
    )
    .await;
    let token = admin_token(db, keys);
    let organization = put_organization(doomed.port, &token).await;
    let url = format!(
        "http://127.0.0.1:{}/api/v1/organizations/{organization}/registry",
        doomed.port
    );
    let pending = tokio::spawn(reqwest::Client::new().post(url).bearer_auth(token).send());
    until_harbor_is_called(
        harbor,
        "GET /quotas",
        "the saga never reached the quota step",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.child.kill().unwrap(); // SIGKILL
    let _ = doomed.child.wait();
    assert!(
        pending.await.unwrap().is_err(),
        "the client saw the process die"
    );
    harbor.set_faults(harbor_emulator::Faults::default());
    assert_eq!(harbor.state().projects.len(), 1);
    organization
}

#[tokio::test]
async fn after_a_sigkill_a_retry_resumes_to_one_project_and_one_robot() {
    let db = TestDatabase::new().await;
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let keys = keys.expose_secret();
    let harbor = emulator();
    let organization = kill_during_robot_creation(&db, keys, &harbor).await;
    let mut survivor = replica(&db, keys, harbor.url(), &[]).await;
    let token = admin_token(&db, keys);
    let url = format!(
        "http://127.0.0.1:{}/api/v1/organizations/{organization}/registry",
        survivor.port
    );
    // The dead process's lease (2 s) must run out first: until then the answer is 409.
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        if status == 201 {
            break body;
        }
        assert_eq!(status, 409, "{body}");
        assert!(Instant::now() < deadline, "never resumed: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let state = harbor.state();
    assert_eq!(
        (state.projects.len(), state.robots.len()),
        (1, 2),
        "{:?}",
        state.calls
    );
    assert!(
        body["credentials"]["password"]
            .as_str()
            .is_some_and(|p| p.len() >= 8)
    );
    survivor.child.kill().unwrap();
    let _ = survivor.child.wait();
}

#[tokio::test]
async fn after_a_sigkill_the_reconciler_leaves_nothing_behind() {
    let db = TestDatabase::new().await;
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let keys = keys.expose_secret();
    let harbor = emulator();
    kill_during_robot_creation(&db, keys, &harbor).await;
    // The first attempt to delete the project fails; the pass after it succeeds.
    harbor.set_faults(harbor_emulator::Faults {
        fail: vec![harbor_emulator::FailRule {
            route: "DELETE /projects/{project}".into(),
            nth: 1,
            status: 502,
        }],
        ..harbor_emulator::Faults::default()
    });
    let log = temp_dir().join("survivor.log");
    let mut survivor = replica_logging_to(
        &db,
        keys,
        harbor.url(),
        &[
            ("BERTH_HARBOR__STALE_AFTER_SECONDS", "1"),
            ("BERTH_HARBOR__RECONCILE_INTERVAL_SECONDS", "1"),
        ],
        std::fs::File::create(&log).unwrap(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = harbor.state();
        if state.projects.is_empty() && state.robots.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "orphans remain: {state:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    survivor.child.kill().unwrap();
    let _ = survivor.child.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    let failure = log
        .lines()
        .find(|line| line.contains("reconciler could not settle a registry"))
        .unwrap_or_else(|| panic!("the failed pass is logged:\n{log}"));
    assert!(
        failure.contains("Harbor answered 502"),
        "the log line keeps Harbor's answer as the cause: {failure}"
    );
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let db = TestDatabase::new().await;
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let keys = keys.expose_secret();
    let harbor = emulator();
    migrated(&db, keys).await;
    let mut server = replica(
        &db,
        keys,
        harbor.url(),
        &[("BERTH_SHUTDOWN_TIMEOUT_SECONDS", "20")],
    )
    .await;
    let token = admin_token(&db, keys);
    let organization = put_organization(server.port, &token).await;
    // Harbor answers slowly, so the enablement is in flight when SIGTERM arrives.
    let mut faults = harbor_emulator::Faults::default();
    faults.route_latency_ms.insert("POST /robots".into(), 1500);
    harbor.set_faults(faults);
    let url = format!(
        "http://127.0.0.1:{}/api/v1/organizations/{organization}/registry",
        server.port
    );
    let in_flight = tokio::spawn(reqwest::Client::new().post(url).bearer_auth(token).send());
    until_harbor_is_called(&harbor, "GET /quotas", "the request never reached Harbor").await;
    let terminated = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = reqwest::get(format!("http://127.0.0.1:{}/healthz", server.port)).await;
    assert!(
        refused.is_err(),
        "a new connection after SIGTERM must be refused"
    );
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was cut");
    assert_eq!(response.status(), 201, "the in-flight request finished");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "berth did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

#[test]
fn guid_prints_fresh_v4_guids_one_a_line() {
    let output = berth().args(["guid", "--count", "3"]).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let guid = uuid::Uuid::parse_str(line).unwrap();
        assert_eq!(guid.get_version_num(), 4);
        assert_eq!(line, &guid.to_string(), "lowercase, hyphenated");
    }
    assert_ne!(lines[0], lines[1]);
}

/// What an OTLP/HTTP receiver got: each export request's `Content-Encoding` and body.
type Exports = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, Vec<u8>)>>>;

fn otlp_receiver() -> (String, Exports) {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let exports = Exports::default();
    let sink = exports.clone();
    let server = HttpServer::new(move || {
        let sink = sink.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |request: HttpRequest, body: web::Bytes| {
                let encoding = request
                    .headers()
                    .get("content-encoding")
                    .map(|value| value.to_str().unwrap().to_owned());
                sink.lock().unwrap().push((encoding, body.to_vec()));
                async {
                    HttpResponse::Ok()
                        .content_type("application/x-protobuf")
                        .finish()
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://127.0.0.1:{}", server.addrs()[0].port());
    tokio::spawn(server.run());
    (url, exports)
}

/// `OTEL_EXPORTER_OTLP_COMPRESSION` takes the specification's values: `none` exports
/// uncompressed (it used to turn export off), `gzip` exports gzip (it used to as well).
#[tokio::test]
async fn otlp_compression_none_and_gzip_both_export() {
    for (compression, encoding) in [("none", None), ("gzip", Some("gzip"))] {
        let (url, exports) = otlp_receiver();
        let dir = temp_dir();
        let port = free_port();
        let mut server = berth()
            .env("BERTH_DATA_DIR", &dir)
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &url)
            .env("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_healthy(port, &mut server).await;
        let has_request_span = |exports: &Exports| {
            // actix-web's body extractor undoes a Content-Encoding, as a collector does.
            exports
                .lock()
                .unwrap()
                .iter()
                .any(|(_, body)| berth_testkit::bytes_contain(body, b"/healthz"))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !has_request_span(&exports) && Instant::now() < deadline {
            let _ = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server.kill().unwrap();
        let output = server.wait_with_output().unwrap();
        assert!(
            has_request_span(&exports),
            "{compression}: no span of the requests exported\n{}",
            text(&output)
        );
        for (sent_encoding, _) in exports.lock().unwrap().iter() {
            assert_eq!(sent_encoding.as_deref(), encoding, "{compression}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The README's "Try it with curl" block, run as written against a dev-mode Berth, by a shell
/// that has curl and cat but no uuidgen (or anything else not every machine has).
#[cfg(unix)]
#[tokio::test]
async fn the_readme_walkthrough_runs_without_uuidgen() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split("## Try it with curl").nth(1).unwrap();
    let script = section
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    let dir = temp_dir();
    let port = free_port();
    let mut server = berth()
        .env("BERTH_DATA_DIR", dir.join(".berth"))
        .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(port, &mut server).await;
    // The walkthrough's `cargo run` is this binary; its port is this server's.
    let script = script
        .replace("cargo run -q --", env!("CARGO_BIN_EXE_berth"))
        .replace("http://127.0.0.1:8080", &format!("http://127.0.0.1:{port}"));
    let tools = dir.join("bin");
    std::fs::create_dir_all(&tools).unwrap();
    for tool in ["curl", "cat"] {
        let found = ["/usr/bin", "/bin", "/usr/local/bin"]
            .iter()
            .map(|folder| PathBuf::from(folder).join(tool))
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("the walkthrough needs {tool}"));
        std::os::unix::fs::symlink(found, tools.join(tool)).unwrap();
    }
    let output = Command::new("/bin/bash")
        .args(["-c", &format!("set -euo pipefail\n{script}")])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", &tools)
        .output()
        .unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    for answer in [
        "\"scope\":\"space\"",
        "\"harbor_project\"",
        "\"quota_gb\":20",
        "\"access\":\"pull\"",
    ] {
        assert!(printed.contains(answer), "no {answer} in\n{printed}");
    }
    assert!(!printed.contains("\"errors\""), "{printed}");
    assert!(!printed.contains("\"error\""), "{printed}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Every rule that refuses a start: the variable that breaks it, the setting the refusal names,
/// and the rule, which the refusal states and the README's configuration table lists.
type Refusal = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

const REFUSALS: &[Refusal] = &[
    (&[("BERTH_LISTEN", "nowhere")], "listen", "cannot listen on"),
    (
        &[("BERTH_METRICS__LISTEN", "nowhere")],
        "metrics.listen",
        "cannot listen on",
    ),
    (
        &[("BERTH_AUTH__HS256_SECRET", "too-short")],
        "auth.hs256_secret",
        "at least 32 bytes",
    ),
    (
        &[("BERTH_AUTH__LEEWAY_SECONDS", "301")],
        "auth.leeway_seconds",
        "at most 300",
    ),
    (
        &[
            ("BERTH_AUTH__JWKS_URL", "ftp://keys.example"),
            ("BERTH_AUTH__JWKS_FILE", ""),
        ],
        "auth.jwks_url",
        "configure one key set",
    ),
    (
        &[("BERTH_AUTH__JWKS_URL", "ftp://keys.example")],
        "auth.jwks_url",
        "https://",
    ),
    (
        &[("BERTH_ENCRYPTION__KEYS", "k1:c2hvcnQ=")],
        "encryption.keys",
        "32 bytes",
    ),
    (
        &[(
            "BERTH_ENCRYPTION__KEYS",
            "a:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,b:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )],
        "encryption.current_label",
        "several keys",
    ),
    (
        &[
            (
                "BERTH_ENCRYPTION__KEYS",
                "a:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
            ("BERTH_ENCRYPTION__CURRENT_LABEL", "b"),
        ],
        "encryption.current_label",
        "not in the key ring",
    ),
    (
        &[("BERTH_HARBOR__URL", "http://harbor.example")],
        "harbor.url",
        "harbor.url is set but",
    ),
    (
        &[
            ("BERTH_HARBOR__URL", "ftp://harbor.example"),
            ("BERTH_HARBOR__USERNAME", "admin"),
            ("BERTH_HARBOR__PASSWORD", "Harbor12345"),
        ],
        "harbor.url",
        "http(s) URL",
    ),
    (
        &[("BERTH_HARBOR__DEFAULT_QUOTA_GB", "0")],
        "harbor.default_quota_gb",
        "1 to 1048576",
    ),
    (
        &[("BERTH_VERIFICATION__ALLOWED_NETWORKS", "[\"10.0.0.0/33\"]")],
        "verification.allowed_networks",
        "is not a CIDR",
    ),
    (
        &[(
            "BERTH_VERIFICATION__INSECURE_REGISTRIES",
            "[\"https://r.local\"]",
        )],
        "verification.insecure_registries",
        "is not a registry host[:port]",
    ),
    (
        &[("BERTH_VERIFICATION__TIMEOUT_MS", "0")],
        "verification.timeout_ms",
        "must be at least 1",
    ),
    (
        &[("BERTH_LOG__FORMAT", "xml")],
        "log.format",
        "json or pretty",
    ),
];

#[test]
fn every_refused_start_names_the_setting_and_the_rule_the_readme_lists() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let table = readme
        .split("## Configuration")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .find(|block| block.starts_with("| setting"))
        .unwrap();
    for (variables, setting, rule) in REFUSALS {
        let row = table
            .lines()
            .find(|line| {
                line.starts_with(&format!("| `{setting}`"))
                    || line.contains(&format!(" `{setting}` "))
            })
            .unwrap_or_else(|| panic!("no README row for {setting}"));
        assert!(
            row.contains(rule),
            "the README's {setting} row does not say {rule:?}: {row}"
        );

        let dir = temp_dir();
        let mut command = berth();
        command
            .env("BERTH_DATA_DIR", &dir)
            .env("BERTH_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in *variables {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{variables:?} did not refuse the start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().unwrap();
        let printed = text(&output);
        assert!(!output.status.success(), "{variables:?} started: {printed}");
        assert!(
            printed.contains(setting),
            "{variables:?}: the refusal does not name {setting}: {printed}"
        );
        assert!(
            printed.contains(rule),
            "{variables:?}: the refusal does not say {rule:?}: {printed}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Two replicas on one database and one emulator, with an organization whose registry is
/// enabled through the first.
struct RegistryPair {
    db: TestDatabase,
    keys: String,
    harbor: harbor_emulator::RunningEmulator,
    replicas: [Replica; 2],
    token: String,
    organization: uuid::Uuid,
    client: reqwest::Client,
}

impl RegistryPair {
    async fn start() -> Self {
        let db = TestDatabase::new().await;
        let keys = KeyRing::generate_spec_entry("k1").unwrap();
        let keys = keys.expose_secret();
        let harbor = emulator();
        migrated(&db, keys).await;
        let first = replica(&db, keys, harbor.url(), &[]).await;
        let second = replica(&db, keys, harbor.url(), &[]).await;
        let token = admin_token(&db, keys);
        let organization = put_organization(first.port, &token).await;
        let pair = Self {
            db,
            keys: keys.to_owned(),
            harbor,
            replicas: [first, second],
            token,
            organization,
            client: reqwest::Client::new(),
        };
        let (status, body) = pair.send(0, reqwest::Method::POST, "", None).await;
        assert_eq!(status, 201, "{body}");
        pair
    }

    /// A request to replica `index % 2`, under the registry's path; the status and JSON body.
    async fn send(
        &self,
        index: usize,
        method: reqwest::Method,
        tail: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let port = self.replicas[index % 2].port;
        let mut request = self
            .client
            .request(
                method,
                format!(
                    "http://127.0.0.1:{port}/api/v1/organizations/{}/registry{tail}",
                    self.organization
                ),
            )
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_default())
    }

    /// Whether a secret Berth answered logs in to Harbor now (Harbor answers 412 to a robot on
    /// `/users/current`, 401 to a wrong secret).
    async fn login_works(&self, issued: &serde_json::Value) -> bool {
        let response = self
            .client
            .get(format!("{}/api/v2.0/users/current", self.harbor.url()))
            .basic_auth(
                issued["username"].as_str().unwrap(),
                issued["password"].as_str(),
            )
            .send()
            .await
            .unwrap();
        response.status() == 412
    }
}

/// A 409 from a race on one registry: the name was taken, or another change held the registry.
fn assert_race_conflict(status: u16, body: &serde_json::Value) {
    assert_eq!(status, 409, "{body}");
    let code = body["error"]["code"].as_str().unwrap_or_default();
    assert!(
        code == "robot_name_taken" || code == "registry_busy",
        "{body}"
    );
}

#[tokio::test]
async fn same_name_robots_and_rotations_over_two_processes_answer_only_working_secrets() {
    let pair = RegistryPair::start().await;
    pair.harbor.set_faults(harbor_emulator::Faults {
        latency_ms: 10,
        ..Default::default()
    });
    let creates = (0..20).map(|index| {
        pair.send(
            index,
            reqwest::Method::POST,
            "/credentials",
            Some(serde_json::json!({"name": "ci", "access": "push_pull"})),
        )
    });
    let results = futures_util::future::join_all(creates).await;
    let created: Vec<&serde_json::Value> = results
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for (status, body) in results.iter().filter(|(status, _)| *status != 201) {
        assert_race_conflict(*status, body);
    }
    assert!(pair.login_works(&created[0]["credentials"]).await);
    let state = pair.harbor.state();
    assert_eq!(
        state
            .robots
            .iter()
            .filter(|robot| robot.stored_name.ends_with("+ci"))
            .count(),
        1,
        "{:?}",
        state.robots
    );

    // Harbor waits before it changes a secret: were rotations to overlap, an answered secret
    // would already be stale when the client tries it.
    let rotate = format!(
        "/credentials/{}/rotate",
        created[0]["credential"]["id"].as_str().unwrap()
    );
    let mut faults = harbor_emulator::Faults::default();
    faults
        .route_latency_ms
        .insert("PATCH /robots/{id}".into(), 250);
    pair.harbor.set_faults(faults);
    let rotations = (0..6).map(|index| {
        let pair = &pair;
        let rotate = &rotate;
        async move {
            let (status, body) = pair.send(index, reqwest::Method::POST, rotate, None).await;
            let works = if status == 200 {
                Some(pair.login_works(&body["credentials"]).await)
            } else {
                None
            };
            (status, body, works)
        }
    });
    let results = futures_util::future::join_all(rotations).await;
    let mut rotated = 0;
    for (status, body, works) in &results {
        if *status == 200 {
            rotated += 1;
            assert_eq!(*works, Some(true), "a stale secret was answered: {body}");
        } else {
            assert_race_conflict(*status, body);
        }
    }
    assert!(rotated >= 1, "{results:?}");
}

#[tokio::test]
async fn quota_changes_over_two_processes_leave_berth_and_harbor_agreeing() {
    let pair = RegistryPair::start().await;
    pair.harbor.set_faults(harbor_emulator::Faults {
        latency_ms: 5,
        ..Default::default()
    });
    for round in 0..5_u64 {
        let changes = (1..=30_u64).map(|gb| {
            pair.send(
                usize::try_from(gb).unwrap(),
                reqwest::Method::PATCH,
                "",
                Some(serde_json::json!({"quota_gb": gb + round * 30})),
            )
        });
        let results = futures_util::future::join_all(changes).await;
        for (status, body) in &results {
            if *status != 200 {
                assert_eq!(*status, 409, "{body}");
                assert_eq!(body["error"]["code"], "registry_busy", "{body}");
            }
        }
        assert!(results.iter().any(|(status, _)| *status == 200));
        for index in 0..2 {
            let (status, shown) = pair.send(index, reqwest::Method::GET, "", None).await;
            assert_eq!(status, 200, "{shown}");
            let hard_bytes = pair.harbor.state().quotas[0].hard_bytes;
            assert_eq!(
                shown["quota_gb"].as_i64().unwrap() * 1024 * 1024 * 1024,
                hard_bytes,
                "round {round}: Berth says {} GB, Harbor holds {hard_bytes} bytes",
                shown["quota_gb"]
            );
        }
    }
}

#[tokio::test]
async fn robot_creation_racing_a_disable_over_two_processes_leaves_no_robot() {
    let pair = RegistryPair::start().await;
    let project = pair.harbor.state().projects[0].id;
    for round in 0..5 {
        if round > 0 {
            let (status, body) = pair.send(round, reqwest::Method::POST, "", None).await;
            assert_eq!(status, 201, "round {round}: {body}");
        }
        // Harbor is slow to make robots, so the disable arrives while they are being made.
        let mut faults = harbor_emulator::Faults::default();
        faults.route_latency_ms.insert("POST /robots".into(), 150);
        pair.harbor.set_faults(faults);
        let creates = futures_util::future::join_all((0..4).map(|index| {
            pair.send(
                index,
                reqwest::Method::POST,
                "/credentials",
                Some(serde_json::json!({"name": format!("r{round}-{index}"), "access": "pull"})),
            )
        }));
        let disable = async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            pair.send(round + 1, reqwest::Method::DELETE, "", None)
                .await
        };
        let (created, disabled) = tokio::join!(creates, disable);
        pair.harbor.set_faults(harbor_emulator::Faults::default());
        for (status, body) in &created {
            assert!(
                [201, 404, 409].contains(status),
                "round {round}: {status} {body}"
            );
        }
        let mut disabled = disabled;
        let deadline = Instant::now() + Duration::from_secs(20);
        while disabled.0 != 204 {
            assert_race_conflict(disabled.0, &disabled.1);
            assert!(Instant::now() < deadline, "never disabled: {disabled:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            disabled = pair.send(round, reqwest::Method::DELETE, "", None).await;
        }
        let left: Vec<String> = pair
            .harbor
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
    }
}

#[tokio::test]
async fn a_robot_creation_killed_midway_is_resumed_by_a_retry_never_duplicated() {
    let db = TestDatabase::new().await;
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let keys = keys.expose_secret();
    let harbor = emulator();
    migrated(&db, keys).await;
    let survivor = replica(&db, keys, harbor.url(), &[]).await;
    let mut doomed = replica(
        &db,
        keys,
        harbor.url(),
        &[("BERTH_HARBOR__LEASE_SECONDS", "2")],
    )
    .await;
    let token = admin_token(&db, keys);
    let organization = put_organization(survivor.port, &token).await;
    let url = |port: u16, tail: &str| {
        format!("http://127.0.0.1:{port}/api/v1/organizations/{organization}/registry{tail}")
    };
    let client = reqwest::Client::new();
    let response = client
        .post(url(survivor.port, ""))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // The doomed replica dies while Harbor is making its robot: its row stays `Creating`, its
    // lease (2 s) runs out on its own.
    let mut faults = harbor_emulator::Faults::default();
    faults.route_latency_ms.insert("POST /robots".into(), 1500);
    harbor.set_faults(faults);
    let body = serde_json::json!({"name": "ci", "access": "pull"});
    let pending = tokio::spawn(
        client
            .post(url(doomed.port, "/credentials"))
            .bearer_auth(&token)
            .json(&body)
            .send(),
    );
    // The search before the create is the step before Harbor's slow robot creation.
    let searches = || {
        harbor
            .state()
            .calls
            .iter()
            .filter(|call| *call == "GET /robots")
            .count()
    };
    // Enabling searched twice (the default and the pull robot); the third is the new robot's.
    let deadline = Instant::now() + Duration::from_secs(20);
    while searches() < 3 {
        assert!(
            Instant::now() < deadline,
            "the robot was never searched for"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.child.kill().unwrap(); // SIGKILL
    let _ = doomed.child.wait();
    assert!(
        pending.await.unwrap().is_err(),
        "the client saw the process die"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    harbor.set_faults(harbor_emulator::Faults::default());
    // Harbor finished the robot after its caller died: it exists, unrecorded by Berth.
    let robots = harbor.state().robots;
    assert!(
        robots
            .iter()
            .any(|robot| robot.stored_name.ends_with("+ci")),
        "{robots:?}"
    );

    // The retry waits out the dead lease (409 registry_busy until then), then searches Harbor
    // before creating: one robot, whose answered secret works.
    let deadline = Instant::now() + Duration::from_secs(20);
    let issued = loop {
        let response = client
            .post(url(survivor.port, "/credentials"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().await.unwrap();
        if status == 201 {
            break answer;
        }
        assert_race_conflict(status, &answer);
        assert_eq!(answer["error"]["code"], "registry_busy", "{answer}");
        assert!(Instant::now() < deadline, "never resumed: {answer}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let works = client
        .get(format!("{}/api/v2.0/users/current", harbor.url()))
        .basic_auth(
            issued["credentials"]["username"].as_str().unwrap(),
            issued["credentials"]["password"].as_str(),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(works, 412, "the answered secret logs in as a robot");
    let robots = harbor.state().robots;
    assert_eq!(
        robots
            .iter()
            .filter(|robot| robot.stored_name.ends_with("+ci"))
            .count(),
        1,
        "{robots:?}"
    );
}

/// How many times the emulator has seen `call`.
fn calls_of(harbor: &harbor_emulator::RunningEmulator, call: &str) -> usize {
    harbor
        .state()
        .calls
        .iter()
        .filter(|seen| *seen == call)
        .count()
}

/// Waits until the emulator has answered `call` `nth` times (the emulator logs a call once its
/// injected latency is over), lets the next step start, and SIGKILLs `doomed`.
async fn kill_at(
    harbor: &harbor_emulator::RunningEmulator,
    doomed: &mut Replica,
    call: &str,
    nth: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while calls_of(harbor, call) < nth {
        assert!(
            Instant::now() < deadline,
            "{call} was never made {nth} times"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.child.kill().unwrap(); // SIGKILL
    let _ = doomed.child.wait();
}

/// The organization's managed credentials (guid, username) and each stored password, read
/// through the credential store as Berth sealed them.
async fn managed_credentials(db: &TestDatabase, keys: &str) -> Vec<(String, String)> {
    use berth_domain::ports::CredentialStore;
    let connection = sea_orm::Database::connect(db.url()).await.unwrap();
    let ring =
        std::sync::Arc::new(KeyRing::from_spec(&secrecy::SecretString::from(keys), "k1").unwrap());
    let store = berth_persistence::SeaOrmCredentialStore::new(connection, ring);
    let page = store
        .list(&berth_domain::listing::CredentialQuery {
            visibility: berth_domain::permissions::CredentialVisibility::Everything,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut found = Vec::new();
    for credential in page.items.into_iter().filter(|c| c.is_managed()) {
        let password = store
            .reveal_password(credential.guid)
            .await
            .unwrap()
            .unwrap();
        found.push((
            credential.username.as_str().to_owned(),
            password.expose().to_owned(),
        ));
    }
    found
}

/// Starts an enablement whose pull robot call hangs in Harbor (the default robot is made, and
/// recorded, first), and SIGKILLs Berth while Harbor makes the pull robot.
async fn kill_during_pull_robot_creation(
    db: &TestDatabase,
    keys: &str,
    harbor: &harbor_emulator::RunningEmulator,
) -> uuid::Uuid {
    migrated(db, keys).await;
    let mut doomed = replica(
        db,
        keys,
        harbor.url(),
        &[("BERTH_HARBOR__LEASE_SECONDS", "2")],
    )
    .await;
    let token = admin_token(db, keys);
    let organization = put_organization(doomed.port, &token).await;
    let mut faults = harbor_emulator::Faults::default();
    faults.route_latency_ms.insert("POST /robots".into(), 1500);
    harbor.set_faults(faults);
    let url = format!(
        "http://127.0.0.1:{}/api/v1/organizations/{organization}/registry",
        doomed.port
    );
    let pending = tokio::spawn(reqwest::Client::new().post(url).bearer_auth(token).send());
    // The second search is the pull robot's, just before Harbor's slow robot creation.
    kill_at(harbor, &mut doomed, "GET /robots", 2).await;
    assert!(
        pending.await.unwrap().is_err(),
        "the client saw the process die"
    );
    // Harbor finishes the pull robot after its caller died: made, never recorded.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    harbor.set_faults(harbor_emulator::Faults::default());
    assert_eq!(harbor.state().robots.len(), 2);
    assert!(
        managed_credentials(db, keys).await.is_empty(),
        "nothing recorded yet"
    );
    organization
}

#[tokio::test]
async fn after_a_sigkill_at_the_pull_robot_a_retry_gives_one_pull_robot_and_its_credential() {
    let db = TestDatabase::new().await;
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let keys = keys.expose_secret();
    let harbor = emulator();
    let organization = kill_during_pull_robot_creation(&db, keys, &harbor).await;
    let survivor = replica(&db, keys, harbor.url(), &[]).await;
    let token = admin_token(&db, keys);
    let url = format!(
        "http://127.0.0.1:{}/api/v1/organizations/{organization}/registry",
        survivor.port
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        if status == 201 {
            break;
        }
        assert_eq!(status, 409, "{body}");
        assert!(Instant::now() < deadline, "never resumed: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let state = harbor.state();
    let pulls: Vec<_> = state
        .robots
        .iter()
        .filter(|robot| robot.stored_name.ends_with("+berth-pull"))
        .collect();
    assert_eq!(
        (state.robots.len(), pulls.len()),
        (2, 1),
        "{:?}",
        state.calls
    );
    let managed = managed_credentials(&db, keys).await;
    assert_eq!(managed.len(), 1, "one managed credential");
    let (username, password) = &managed[0];
    let pulled = reqwest::Client::new()
        .get(format!(
            "{}/api/v2.0/projects/org-{organization}/repositories",
            harbor.url()
        ))
        .basic_auth(username, Some(password))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        pulled, 200,
        "the stored password is the pull robot's current secret"
    );
}

#[tokio::test]
async fn after_a_sigkill_at_the_pull_robot_the_reconciler_leaves_nothing_behind() {
    let db = TestDatabase::new().await;
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let keys = keys.expose_secret();
    let harbor = emulator();
    kill_during_pull_robot_creation(&db, keys, &harbor).await;
    let survivor = replica(
        &db,
        keys,
        harbor.url(),
        &[
            ("BERTH_HARBOR__STALE_AFTER_SECONDS", "1"),
            ("BERTH_HARBOR__RECONCILE_INTERVAL_SECONDS", "1"),
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = harbor.state();
        if state.projects.is_empty() && state.robots.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "orphans remain: {state:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(managed_credentials(&db, keys).await.is_empty());
    drop(survivor);
}

#[tokio::test]
async fn a_purge_killed_midway_is_finished_by_the_reconciler_then_the_organization_goes() {
    let db = TestDatabase::new().await;
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let keys = keys.expose_secret();
    let harbor = emulator();
    migrated(&db, keys).await;
    let mut doomed = replica(
        &db,
        keys,
        harbor.url(),
        &[("BERTH_HARBOR__LEASE_SECONDS", "2")],
    )
    .await;
    let token = admin_token(&db, keys);
    let organization = put_organization(doomed.port, &token).await;
    let client = reqwest::Client::new();
    let registry =
        |port: u16| format!("http://127.0.0.1:{port}/api/v1/organizations/{organization}/registry");
    let response = client
        .post(registry(doomed.port))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(harbor.add_repositories(&format!("org-{organization}"), 6));
    let mut faults = harbor_emulator::Faults::default();
    faults.route_latency_ms.insert(
        "DELETE /projects/{project}/repositories/{repository}".into(),
        400,
    );
    harbor.set_faults(faults);
    let pending = tokio::spawn(
        client
            .delete(format!("{}?purge=true", registry(doomed.port)))
            .bearer_auth(&token)
            .send(),
    );
    kill_at(
        &harbor,
        &mut doomed,
        "DELETE /projects/{project}/repositories/{repository}",
        2,
    )
    .await;
    assert!(
        pending.await.unwrap().is_err(),
        "the client saw the process die"
    );
    harbor.set_faults(harbor_emulator::Faults::default());
    assert_eq!(harbor.state().projects.len(), 1, "cut short");

    let survivor = replica(
        &db,
        keys,
        harbor.url(),
        &[
            ("BERTH_HARBOR__STALE_AFTER_SECONDS", "1"),
            ("BERTH_HARBOR__RECONCILE_INTERVAL_SECONDS", "1"),
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !harbor.state().projects.is_empty() {
        assert!(
            Instant::now() < deadline,
            "never purged: {:?}",
            harbor.state()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let organization_url = format!(
        "http://127.0.0.1:{}/v3/organizations/{organization}",
        survivor.port
    );
    // The reconciler deletes the row last; the organization goes once it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = client
            .delete(&organization_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 204 {
            break;
        }
        assert_eq!(status, 422);
        assert!(
            Instant::now() < deadline,
            "the organization was never deletable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(harbor.state().robots.is_empty());
    assert!(managed_credentials(&db, keys).await.is_empty());
}

#[tokio::test]
async fn pull_rotations_renewals_and_purges_over_two_processes_never_fail_nor_disagree() {
    let pair = RegistryPair::start().await;
    let busy = |status: u16, body: &serde_json::Value| {
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "registry_busy", "{body}");
    };

    // Fifty rotations of the pull credential: each 204 or 409, and the stored password is the
    // robot's secret in Harbor afterwards.
    let rotations = (0..50).map(|index| {
        pair.send(
            index,
            reqwest::Method::POST,
            "/pull_credential/rotate",
            None,
        )
    });
    let results = futures_util::future::join_all(rotations).await;
    for (status, body) in &results {
        if *status != 204 {
            busy(*status, body);
        }
    }
    assert!(
        results.iter().any(|(status, _)| *status == 204),
        "{results:?}"
    );
    let managed = managed_credentials(&pair.db, &pair.keys).await;
    assert_eq!(managed.len(), 1);
    let pulled = pair
        .client
        .get(format!(
            "{}/api/v2.0/projects/org-{}/repositories",
            pair.harbor.url(),
            pair.organization
        ))
        .basic_auth(&managed[0].0, Some(&managed[0].1))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        pulled, 200,
        "Berth's stored password is Harbor's current secret"
    );

    // Fifty renewals of one robot: Berth's expiry is Harbor's afterwards.
    let (status, created) = pair
        .send(
            0,
            reqwest::Method::POST,
            "/credentials",
            Some(serde_json::json!({"name": "ci", "access": "pull", "expires_in_days": 2})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let robot = format!(
        "/credentials/{}",
        created["credential"]["id"].as_str().unwrap()
    );
    let renewals = (0..50).map(|index| {
        let days = 10 + u64::try_from(index).unwrap();
        pair.send(
            index,
            reqwest::Method::PATCH,
            &robot,
            Some(serde_json::json!({"expires_in_days": days})),
        )
    });
    let results = futures_util::future::join_all(renewals).await;
    for (status, body) in &results {
        if *status != 200 {
            busy(*status, body);
        }
    }
    assert!(results.iter().any(|(status, _)| *status == 200));
    let (_, listed) = pair
        .send(1, reqwest::Method::GET, "/credentials", None)
        .await;
    let ci = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ci")
        .unwrap()
        .clone();
    let recorded = time::OffsetDateTime::parse(
        ci["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    let in_harbor = pair
        .harbor
        .state()
        .robots
        .into_iter()
        .find(|r| r.stored_name.ends_with("+ci"))
        .unwrap()
        .expires_at;
    assert_eq!(recorded, in_harbor, "Berth's record is Harbor's");

    // Fifty purges: one purges, the others wait and find it busy or gone; never a 5xx.
    assert!(
        pair.harbor
            .add_repositories(&format!("org-{}", pair.organization), 4)
    );
    let purges =
        (0..50).map(|index| pair.send(index, reqwest::Method::DELETE, "?purge=true", None));
    let results = futures_util::future::join_all(purges).await;
    for (status, body) in &results {
        match *status {
            204 => {}
            404 => assert_eq!(body["error"]["code"], "registry_not_found", "{body}"),
            _ => busy(*status, body),
        }
    }
    assert!(results.iter().any(|(status, _)| *status == 204));
    let state = pair.harbor.state();
    assert!(
        state.projects.is_empty() && state.robots.is_empty(),
        "{state:?}"
    );
    assert!(managed_credentials(&pair.db, &pair.keys).await.is_empty());
    for index in 0..2 {
        let (status, _) = pair.send(index, reqwest::Method::GET, "", None).await;
        assert_eq!(status, 404);
    }
}

/// `berth healthcheck` with `listen` set to `listen`: whether it exited 0, and its output.
fn healthcheck(listen: &str) -> (bool, String) {
    let output = berth()
        .env("BERTH_LISTEN", listen)
        .arg("healthcheck")
        .output()
        .unwrap();
    (output.status.success(), text(&output))
}

#[tokio::test]
async fn healthcheck_exits_zero_only_while_readyz_answers_200() {
    let db = TestDatabase::new().await;
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let keys = keys.expose_secret();
    let harbor = emulator();
    migrated(&db, keys).await;
    let server = replica(&db, keys, harbor.url(), &[]).await;
    let port = server.port;

    let (ready, output) = healthcheck(&format!("127.0.0.1:{port}"));
    assert!(ready, "{output}");
    // A container listens on 0.0.0.0: the probe reaches it on loopback.
    let (ready, output) = healthcheck(&format!("0.0.0.0:{port}"));
    assert!(ready, "{output}");

    // Harbor gone: /readyz answers 503 and the probe fails, naming the status.
    harbor.stop().await;
    let (ready, output) = healthcheck(&format!("127.0.0.1:{port}"));
    assert!(!ready, "{output}");
    assert!(output.contains("503"), "{output}");

    drop(server);
    let (ready, output) = healthcheck(&format!("127.0.0.1:{port}"));
    assert!(!ready, "{output}");
    assert!(output.contains("cannot connect"), "{output}");
    let (ready, output) = healthcheck("not-an-address");
    assert!(!ready, "{output}");
    assert!(output.contains("host:port"), "{output}");
}
