//! The database going away under a running Berth: stopped, started again, frozen (SIGSTOP, as in
//! a network partition) and thawed. Every route answers 503 with `Retry-After` in its dialect's
//! envelope within the configured bound, `/readyz` answers "not ready" within 2 s, and Berth
//! recovers without a restart.
//!
//! The test runs its own throwaway PostgreSQL cluster, since it stops and freezes it; it needs
//! PostgreSQL's server binaries (`initdb`, `pg_ctl`; `BERTH_TEST_PG_BIN` names their folder, else
//! the newest `/usr/lib/postgresql/*/bin`) and fails with a message saying so when they are
//! missing. It does not depend on `BERTH_TEST_BACKEND`, so it runs on both passes of
//! `cargo xtask test`: the outage is PostgreSQL's (production's database) either way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_persistence::sealing::KeyRing;
use secrecy::ExposeSecret;

/// What the test configures: a request waits at most this for a connection...
const ACQUIRE_TIMEOUT_SECONDS: u64 = 1;
/// ...and this for a statement, so it answers within their sum (plus scheduling slack).
const STATEMENT_TIMEOUT_SECONDS: u64 = 1;
const SLACK: Duration = Duration::from_millis(1500);
/// What the issue asks of `/readyz`.
const READYZ_BOUND: Duration = Duration::from_secs(2);
const HS256_SECRET: &str = "outage-test-secret-long-enough-for-hs256";

fn request_bound() -> Duration {
    Duration::from_secs(ACQUIRE_TIMEOUT_SECONDS + STATEMENT_TIMEOUT_SECONDS) + SLACK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_503_while_the_database_is_down_or_frozen_and_recovers() {
    let mut cluster = Cluster::create();
    let keys = KeyRing::generate_spec_entry("k1").unwrap();
    let harbor = emulator();
    let berth = Berth::start(&cluster.url(), keys.expose_secret(), harbor.url());
    berth.wait_healthy().await;
    let token = berth.admin_token();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let organization = uuid::Uuid::new_v4();
    let response = client
        .put(berth.url(&format!("/v3/organizations/{organization}")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let probes = Probes {
        client: &client,
        berth: &berth,
        token: &token,
        organization,
    };
    probes.assert_all_served().await;

    // Stopped: every connection is closed by the server, and new ones are refused.
    cluster.stop();
    let stopped = probes.assert_all_unavailable().await;
    eprintln!("database stopped: {stopped}");

    cluster.start();
    let recovered = probes.wait_recovered().await;
    eprintln!("database started again: every route served after {recovered:?}");

    // Restarted between two requests: every pooled connection is dead. The first request to
    // meet one may answer 503; from then on the pools check connections idle since before that
    // failure before handing them out, so no other request meets a dead one.
    cluster.stop();
    cluster.start();
    let unavailable = probes.unavailable_of_sequential(30).await;
    assert!(
        unavailable <= 1,
        "{unavailable} of 30 requests after a restart met a dead connection"
    );
    eprintln!("database restarted between requests: {unavailable} of 30 requests answered 503");

    // Frozen: connections stay open and nothing answers, as in a network partition.
    cluster.freeze();
    let frozen = probes.assert_all_unavailable().await;
    eprintln!("database frozen: {frozen}");
    // Still bounded with connections already stuck on the frozen server.
    let again = probes.assert_all_unavailable().await;
    eprintln!("database still frozen: {again}");

    cluster.thaw();
    let recovered = probes.wait_recovered().await;
    eprintln!("database thawed: every route served after {recovered:?}");

    berth.assert_running();
    let log = berth.log();
    assert!(
        log.contains("reconciler pass failed"),
        "the reconciler ran through the outage and reported it:\n{log}"
    );
    assert!(
        !log.contains("panicked"),
        "nothing panicked during the outage:\n{log}"
    );
}

/// The routes probed: both dialects, reads and a write, and `/readyz`.
struct Probes<'a> {
    client: &'a reqwest::Client,
    berth: &'a Berth,
    token: &'a str,
    organization: uuid::Uuid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    V3,
    V1,
    Readiness,
}

struct Answer {
    route: &'static str,
    dialect: Dialect,
    status: u16,
    retry_after: Option<String>,
    body: serde_json::Value,
    took: Duration,
}

/// The slowest answers of a round of probes, for the report.
struct Timings {
    slowest_route: Duration,
    readyz: Duration,
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "slowest 503 {:?}, /readyz not ready after {:?}",
            self.slowest_route, self.readyz
        )
    }
}

impl Probes<'_> {
    /// Sends every probe at once and measures each.
    async fn round(&self) -> Vec<Answer> {
        let organization = self.organization;
        let credential = serde_json::json!({
            "location": format!("registry-{}.example.com", uuid::Uuid::new_v4().simple()),
            "username": "u",
            "password": "p",
            "relationships": {"organization": {"data": {"guid": organization}}}
        });
        let requests = [
            (
                "GET /v3/registry_credentials",
                Dialect::V3,
                self.client.get(self.berth.url("/v3/registry_credentials")),
            ),
            (
                "GET /v3/organizations/{guid}",
                Dialect::V3,
                self.client
                    .get(self.berth.url(&format!("/v3/organizations/{organization}"))),
            ),
            (
                "POST /v3/registry_credentials",
                Dialect::V3,
                self.client
                    .post(self.berth.url("/v3/registry_credentials"))
                    .json(&credential),
            ),
            (
                "GET /api/v1/organizations/{orgID}/registry",
                Dialect::V1,
                self.client.get(
                    self.berth
                        .url(&format!("/api/v1/organizations/{organization}/registry")),
                ),
            ),
            (
                "GET /readyz",
                Dialect::Readiness,
                self.client.get(self.berth.url("/readyz")),
            ),
        ];
        let answers = requests.map(|(route, dialect, request)| {
            let request = request.bearer_auth(self.token).send();
            async move {
                let started = Instant::now();
                let response = request.await.unwrap();
                let took = started.elapsed();
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|value| value.to_str().unwrap().to_owned());
                let body = response.json().await.unwrap_or(serde_json::Value::Null);
                Answer {
                    route,
                    dialect,
                    status,
                    retry_after,
                    body,
                    took,
                }
            }
        });
        futures_util::future::join_all(answers).await
    }

    async fn assert_all_served(&self) {
        for answer in self.round().await {
            assert!(
                answer.served(),
                "{} answered {}: {}",
                answer.route,
                answer.status,
                answer.body
            );
        }
    }

    /// Every route answers 503 with `Retry-After` and its dialect's code, in bounded time.
    async fn assert_all_unavailable(&self) -> Timings {
        let mut timings = Timings {
            slowest_route: Duration::ZERO,
            readyz: Duration::ZERO,
        };
        for answer in self.round().await {
            let Answer {
                route,
                dialect,
                status,
                retry_after,
                body,
                took,
            } = &answer;
            assert_eq!(*status, 503, "{route}: {body}");
            assert!(
                retry_after
                    .as_deref()
                    .is_some_and(|seconds| seconds.parse::<u32>().is_ok()),
                "{route} has no Retry-After: {retry_after:?}"
            );
            match dialect {
                Dialect::V3 => {
                    assert_eq!(
                        body["errors"][0]["title"], "CF-ServiceUnavailable",
                        "{route}: {body}"
                    );
                    assert_eq!(body["errors"][0]["code"], 10015, "{route}: {body}");
                    assert!(*took < request_bound(), "{route} took {took:?}");
                    timings.slowest_route = timings.slowest_route.max(*took);
                }
                Dialect::V1 => {
                    assert_eq!(
                        body["error"]["code"], "database_unavailable",
                        "{route}: {body}"
                    );
                    assert!(*took < request_bound(), "{route} took {took:?}");
                    timings.slowest_route = timings.slowest_route.max(*took);
                }
                Dialect::Readiness => {
                    assert_eq!(body["status"], "not_ready", "{body}");
                    assert_eq!(body["checks"]["database"], "unreachable", "{body}");
                    assert!(*took < READYZ_BOUND, "/readyz took {took:?}");
                    timings.readyz = *took;
                }
            }
        }
        timings
    }

    /// Sends `count` reads one after the other: how many answered 503 (any other failure fails).
    async fn unavailable_of_sequential(&self, count: usize) -> usize {
        let mut unavailable = 0;
        for _ in 0..count {
            let response = self
                .client
                .get(self.berth.url("/v3/registry_credentials"))
                .bearer_auth(self.token)
                .send()
                .await
                .unwrap();
            match response.status().as_u16() {
                200 => {}
                503 => unavailable += 1,
                status => panic!("{status}: {}", response.text().await.unwrap()),
            }
        }
        unavailable
    }

    /// Waits until every route is served again, then checks that it stays so: no dead pooled
    /// connection is handed out after the first failure showed the server went away.
    async fn wait_recovered(&self) -> Duration {
        let started = Instant::now();
        loop {
            let answers = self.round().await;
            if answers.iter().all(Answer::served) {
                break;
            }
            for answer in answers.iter().filter(|answer| !answer.served()) {
                // Until then a route may only say the database is unavailable, never fail.
                assert_eq!(answer.status, 503, "{}: {}", answer.route, answer.body);
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "Berth did not recover within 15 s of the database's return"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let recovered = started.elapsed();
        for _ in 0..10 {
            self.assert_all_served().await;
        }
        recovered
    }
}

impl Answer {
    fn served(&self) -> bool {
        match (self.route, self.status) {
            ("POST /v3/registry_credentials", status) => status == 201,
            // No registry is enabled for the organization: the database answered that.
            ("GET /api/v1/organizations/{orgID}/registry", status) => {
                status == 404 && self.body["error"]["code"] == "registry_not_found"
            }
            (_, status) => status == 200,
        }
    }
}

fn emulator() -> harbor_emulator::RunningEmulator {
    let (emulator, server) =
        harbor_emulator::start(harbor_emulator::EmulatorConfig::default(), "127.0.0.1:0").unwrap();
    tokio::spawn(server);
    emulator
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A production-mode `berth` process; killed when dropped.
struct Berth {
    port: u16,
    child: Child,
    log: PathBuf,
    database_url: String,
    keys: String,
    harbor_url: String,
}

impl Berth {
    fn command(database_url: &str, keys: &str, harbor_url: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        for (key, _) in std::env::vars() {
            if key.starts_with("BERTH_") {
                command.env_remove(key);
            }
        }
        command
            .env("RUST_LOG", "warn")
            .env("BERTH_DATABASE__URL", database_url)
            .env("BERTH_ENCRYPTION__KEYS", keys)
            .env("BERTH_AUTH__HS256_SECRET", HS256_SECRET)
            .env("BERTH_HARBOR__URL", harbor_url)
            .env("BERTH_HARBOR__USERNAME", "admin")
            .env("BERTH_HARBOR__PASSWORD", "Harbor12345");
        command
    }

    /// Serves with the test's timeouts, migrating first (through a connection without the
    /// statement timeout).
    fn start(database_url: &str, keys: &str, harbor_url: &str) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "berth-outage-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let child = Self::command(database_url, keys, harbor_url)
            .args(["serve", "--migrate"])
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_WORKERS", "2")
            .env(
                "BERTH_DATABASE__ACQUIRE_TIMEOUT_SECONDS",
                ACQUIRE_TIMEOUT_SECONDS.to_string(),
            )
            .env(
                "BERTH_DATABASE__STATEMENT_TIMEOUT_SECONDS",
                STATEMENT_TIMEOUT_SECONDS.to_string(),
            )
            .env("BERTH_HARBOR__RECONCILE_INTERVAL_SECONDS", "1")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            port,
            child,
            log,
            database_url: database_url.to_owned(),
            keys: keys.to_owned(),
            harbor_url: harbor_url.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = reqwest::get(self.url("/readyz")).await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("berth did not become ready:\n{}", self.log());
    }

    fn admin_token(&self) -> String {
        let output = Self::command(&self.database_url, &self.keys, &self.harbor_url)
            .args(["token", "--scope", "berth.admin"])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    fn assert_running(&self) {
        let mut child = Command::new("kill");
        let alive = child
            .args(["-0", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(alive, "berth exited:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A throwaway PostgreSQL cluster in a temporary folder, on a free port, trust auth on loopback.
/// Dropping it (also on panic) thaws, stops and kills its processes and removes the folder.
struct Cluster {
    bin: PathBuf,
    root: PathBuf,
    data: PathBuf,
    port: u16,
    frozen: Vec<u32>,
}

impl Cluster {
    fn create() -> Self {
        let bin = postgres_bin();
        let root =
            std::env::temp_dir().join(format!("berth-outage-pg-{}", uuid::Uuid::new_v4().simple()));
        let data = root.join("data");
        let cluster = Self {
            bin,
            root,
            data,
            port: free_port(),
            frozen: Vec::new(),
        };
        // The server refuses to run as root: the folder and the processes are the postgres
        // user's when the test runs as root.
        cluster.run(
            as_server_user("mkdir")
                .args(["-p", "-m", "700"])
                .arg(&cluster.root),
        );
        cluster.run(
            cluster
                .tool("initdb")
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&cluster.data),
        );
        let settings = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            cluster.port,
            cluster.root.display()
        );
        let conf = cluster.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&settings);
        std::fs::write(&conf, text).unwrap();
        cluster.start();
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn tool(&self, name: &str) -> Command {
        let mut command = as_server_user(self.bin.join(name));
        command.current_dir(std::env::temp_dir());
        command
    }

    fn run(&self, command: &mut Command) {
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start(&self) {
        self.run(
            self.tool("pg_ctl")
                .args(["-w", "-t", "30", "-l"])
                .arg(self.root.join("server.log"))
                .arg("-D")
                .arg(&self.data)
                .arg("start"),
        );
    }

    /// A fast shutdown: the server terminates every session (57P01) and exits.
    fn stop(&self) {
        self.run(
            self.tool("pg_ctl")
                .args(["-w", "-t", "30", "-m", "fast", "-D"])
                .arg(&self.data)
                .arg("stop"),
        );
    }

    /// The postmaster and every process it started.
    fn processes(&self) -> Vec<u32> {
        let Some(postmaster) = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
        else {
            return Vec::new();
        };
        let mut processes = vec![postmaster];
        processes.extend(children_of(postmaster));
        processes
    }

    /// SIGSTOPs the postmaster, then its children: sockets stay open, nothing answers.
    fn freeze(&mut self) {
        let processes = self.processes();
        assert!(!processes.is_empty(), "no postmaster to freeze");
        signal("-STOP", &processes[..1]);
        // The postmaster cannot start another child now; stop the ones it has.
        let mut all = vec![processes[0]];
        all.extend(children_of(processes[0]));
        signal("-STOP", &all[1..]);
        self.frozen = all;
    }

    fn thaw(&mut self) {
        let frozen = std::mem::take(&mut self.frozen);
        if !frozen.is_empty() {
            signal("-CONT", &frozen);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.thaw();
        let processes = self.processes();
        let _ = self
            .tool("pg_ctl")
            .args(["-w", "-t", "10", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let leftovers: Vec<u32> = processes
            .into_iter()
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .collect();
        if !leftovers.is_empty() {
            signal("-KILL", &leftovers);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Where PostgreSQL's server programs are: `BERTH_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("BERTH_TEST_PG_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.join("initdb").exists() && bin.join("pg_ctl").exists(),
            "BERTH_TEST_PG_BIN={} has no initdb and pg_ctl: this test runs its own PostgreSQL \
             cluster and needs PostgreSQL's server programs",
            bin.display()
        );
        return bin;
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "this test runs its own PostgreSQL cluster and needs the server programs (initdb, \
             pg_ctl, postgres): install PostgreSQL's server package or set BERTH_TEST_PG_BIN \
             to their folder"
        )
    })
}

/// A command run as the `postgres` user when the test runs as root (the server refuses root).
fn as_server_user(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let is_root = std::fs::metadata("/proc/self")
        .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
        .unwrap_or(false);
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The processes whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces, so read after its ')'.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid.parse::<u32>().ok()? == parent).then_some(pid)
        })
        .collect()
}

fn signal(signal: &str, processes: &[u32]) {
    if processes.is_empty() {
        return;
    }
    let status = Command::new("kill")
        .arg(signal)
        .args(processes.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success() || signal == "-KILL",
        "kill {signal} {processes:?} failed"
    );
}
