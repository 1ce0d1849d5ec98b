//! `drive`: one benchmark run, behind `cargo xtask bench [--quick]` (which builds this binary,
//! Berth and the emulator in release mode and starts it): Berth's speed and memory beside the
//! floors they are read against, all measured in one run on this machine (bench/README.md says
//! how to read it).
//!
//! The run: a fresh database seeded through Berth's stores; the Harbor emulator with 20 ms per
//! call; Berth in production mode with RS256 tokens from a JWKS file; two floor servers, one on
//! Berth's statements and one on the best statements; wrk (Debian's, installed if missing) at
//! fixed concurrency for a fixed time, same script for Berth and the floors. Then the growth
//! sets. Results: one table on stdout, `bench/results/<stamp>-<mode>.{json,md}`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Per call, on every Harbor API call the emulator answers.
const HARBOR_LATENCY_MS: u64 = 20;
/// A selector matching about a quarter of an organization's credentials.
const SELECTOR: &str = "env=prod,tier";
/// A selector matching every credential (every one has an `env` label).
const SELECTOR_ALL: &str = "env";
const PER_PAGE: u32 = 50;
const JWT_FIXTURES: &str = "crates/berth-auth/tests/fixtures/jwt";
const ISSUER: &str = "https://uaa.bench.example.com/oauth/token";
const AUDIENCE: &str = "berth";

struct DataSet {
    name: &'static str,
    credentials: usize,
    organizations: usize,
    registry_organizations: usize,
    /// Audit events seeded over the organizations (the growth sets' `audit events` run).
    audit_events: usize,
}

struct Plan {
    mode: &'static str,
    seconds: u64,
    warmup_seconds: u64,
    connections: u32,
    threads: u32,
    main: DataSet,
    /// The same lists and GET on a small and a large set with the same organizations: only the
    /// table (and each organization) grows.
    growth: Vec<DataSet>,
}

impl Plan {
    fn full() -> Self {
        Self {
            mode: "full",
            seconds: 10,
            warmup_seconds: 3,
            connections: 32,
            threads: 2,
            main: DataSet {
                name: "berth_bench_main",
                credentials: 100_000,
                organizations: 100,
                registry_organizations: 8_000,
                audit_events: 0,
            },
            growth: vec![
                DataSet {
                    name: "berth_bench_10k",
                    credentials: 10_000,
                    organizations: 1_000,
                    registry_organizations: 0,
                    audit_events: 10_000,
                },
                DataSet {
                    name: "berth_bench_1m",
                    credentials: 1_000_000,
                    organizations: 1_000,
                    registry_organizations: 0,
                    audit_events: 1_000_000,
                },
            ],
        }
    }

    fn quick() -> Self {
        Self {
            mode: "quick",
            seconds: 3,
            warmup_seconds: 1,
            connections: 32,
            threads: 2,
            main: DataSet {
                name: "berth_bench_quick",
                credentials: 10_000,
                organizations: 10,
                registry_organizations: 3_000,
                audit_events: 0,
            },
            // The small growth set only: its plans, without the million's seeding time.
            growth: vec![DataSet {
                name: "berth_bench_10k",
                credentials: 10_000,
                organizations: 1_000,
                registry_organizations: 0,
                audit_events: 10_000,
            }],
        }
    }
}

/// One load-generator run's figures.
#[derive(Clone)]
struct Figures {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    requests: u64,
    errors: u64,
}

impl Figures {
    fn json(&self) -> Value {
        json!({
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "p999_ms": round(self.p999_ms, 3),
            "requests": self.requests,
            "errors": self.errors,
        })
    }
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// A child process stopped (and reaped) when dropped, so a failed run leaves nothing behind.
struct Running {
    name: &'static str,
    child: Child,
}

impl Running {
    fn start(name: &'static str, command: &mut Command, log: &Path) -> anyhow::Result<Self> {
        let file = fs::File::create(log)?;
        let child = command
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { name, child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status}); see its log", self.name);
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A bare HTTP/1.1 exchange on loopback: status and body. Enough for readiness polls and the
/// emulator's hooks; the load itself is wrk's.
fn http(port: u16, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    http_as(port, method, path, None, body)
}

/// [`http`] with a bearer token.
fn http_as(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let authorization = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         {authorization}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no HTTP status line")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `path` until it answers 200; the time it took.
fn wait_for(process: &mut Running, port: u16, path: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if matches!(http(port, "GET", path, ""), Ok((200, _))) {
            return Ok(started.elapsed());
        }
        process.check_alive()?;
        std::thread::sleep(Duration::from_millis(2));
    }
    bail!("{} did not answer 200 on {path} within 60 s", process.name)
}

/// Resident set and its high-water mark, in MiB, from /proc.
fn memory_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("{name} missing from /proc/{pid}/status"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|value| value.parse().ok())
            .context("a number in kB")?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn ensure_wrk() -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("==> installing wrk from Debian's packages");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("wrk is needed: apt-get install wrk")
}

/// What one wrk run sends.
struct Load<'a> {
    scenario: &'a str,
    token: &'a str,
    ids: Option<&'a Path>,
    query: &'a str,
    organization: &'a str,
    body: &'a str,
}

impl<'a> Load<'a> {
    /// A scenario with nothing else set; the rest by struct update.
    fn new(scenario: &'a str, token: &'a str) -> Self {
        Self {
            scenario,
            token,
            ids: None,
            query: "",
            organization: "",
            body: "",
        }
    }
}

struct Driver {
    plan: Plan,
    script: PathBuf,
    work: PathBuf,
    runs: u32,
}

impl Driver {
    fn wrk(&mut self, port: u16, load: &Load, seconds: u64) -> anyhow::Result<Figures> {
        self.runs += 1;
        let output = Command::new("wrk")
            .args([
                "-t",
                &self.plan.threads.to_string(),
                "-c",
                &self.plan.connections.to_string(),
                "-d",
                &format!("{seconds}s"),
                "--timeout",
                "10s",
                "-s",
            ])
            .arg(&self.script)
            .arg(format!("http://127.0.0.1:{port}"))
            .env("BENCH_SCENARIO", load.scenario)
            .env("BENCH_TOKEN", load.token)
            .env(
                "BENCH_IDS",
                load.ids.map(Path::as_os_str).unwrap_or_default(),
            )
            .env("BENCH_QUERY", load.query)
            .env("BENCH_ORGANIZATION", load.organization)
            .env("BENCH_BODY", load.body)
            .env("BENCH_RUN", format!("{}-{}", std::process::id(), self.runs))
            .env("BENCH_THREADS", self.plan.threads.to_string())
            .output()
            .context("running wrk")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout
            .lines()
            .find_map(|line| line.strip_prefix("BENCH_RESULT "))
        else {
            bail!(
                "wrk gave no result for {}: {}{}",
                load.scenario,
                stdout,
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let result: Value = serde_json::from_str(line)?;
        let number = |key: &str| result[key].as_f64().unwrap_or(0.0);
        let requests = number("requests");
        Ok(Figures {
            requests_per_second: requests / (number("duration_us") / 1e6),
            p50_ms: number("p50_us") / 1e3,
            p99_ms: number("p99_us") / 1e3,
            p999_ms: number("p999_us") / 1e3,
            requests: requests as u64,
            errors: number("errors") as u64,
        })
    }

    /// A warm-up (not recorded), then the measured run.
    fn measure(&mut self, port: u16, load: &Load, warm_up: bool) -> anyhow::Result<Figures> {
        if warm_up && self.plan.warmup_seconds > 0 {
            self.wrk(port, load, self.plan.warmup_seconds)?;
        }
        let seconds = self.plan.seconds;
        let figures = self.wrk(port, load, seconds)?;
        eprintln!(
            "    {:<16} {:>9.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  errors {}",
            load.scenario,
            figures.requests_per_second,
            figures.p50_ms,
            figures.p99_ms,
            figures.p999_ms,
            figures.errors
        );
        Ok(figures)
    }
}

/// A binary built beside this one (`cargo xtask bench` builds them all in release mode).
fn bench_binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join(name)
}

/// The workspace's root: this crate lives in `bench/berth-bench`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

fn capture(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

fn database_url(server_url: &str, name: &str) -> String {
    match server_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => format!("{server_url}/{name}"),
    }
}

fn seed(server_url: &str, keys: &str, set: &DataSet, out: &Path) -> anyhow::Result<Value> {
    eprintln!(
        "==> seeding {} ({} credentials, {} organizations)",
        set.name, set.credentials, set.organizations
    );
    let started = Instant::now();
    run(Command::new(bench_binary("berth-bench")).args([
        "create-database",
        "--server-url",
        server_url,
        "--name",
        set.name,
    ]))?;
    let summary = capture(
        Command::new(bench_binary("berth-bench"))
            .args(["seed", "--out"])
            .arg(out)
            .args([
                "--credentials",
                &set.credentials.to_string(),
                "--organizations",
                &set.organizations.to_string(),
                "--registry-organizations",
                &set.registry_organizations.to_string(),
                "--audit-events",
                &set.audit_events.to_string(),
            ])
            .env("BERTH_DATABASE__URL", database_url(server_url, set.name))
            .env("BERTH_ENCRYPTION__KEYS", keys),
    )?;
    eprintln!("    seeded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(serde_json::from_str(&summary)?)
}

fn token(scope: &str, roles: &[String]) -> anyhow::Result<String> {
    token_of("bench-user", scope, roles)
}

fn token_of(subject: &str, scope: &str, roles: &[String]) -> anyhow::Result<String> {
    let mut command = Command::new(bench_binary("berth-bench"));
    command
        .args(["token", "--subject", subject, "--private-key"])
        .arg(workspace_root().join(JWT_FIXTURES).join("rsa.pem"))
        .args([
            "--kid",
            "rsa-1",
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--scope",
            scope,
        ]);
    for role in roles {
        command.args(["--role", role]);
    }
    capture(&mut command)
}

/// Berth in production mode on `database`, with the emulator at `harbor_port`.
fn berth_command(database: &str, keys: &str, port: u16, harbor_port: u16) -> Command {
    let mut command = Command::new(bench_binary("berth"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BERTH_DATABASE__URL", database)
        .env("BERTH_ENCRYPTION__KEYS", keys)
        .env(
            "BERTH_AUTH__JWKS_FILE",
            workspace_root().join(JWT_FIXTURES).join("jwks.json"),
        )
        .env("BERTH_AUTH__ISSUER", ISSUER)
        .env("BERTH_AUTH__AUDIENCE", AUDIENCE)
        .env(
            "BERTH_HARBOR__URL",
            format!("http://127.0.0.1:{harbor_port}"),
        )
        .env("BERTH_HARBOR__USERNAME", "admin")
        .env("BERTH_HARBOR__PASSWORD", "Harbor12345")
        .env("BERTH_LISTEN", format!("127.0.0.1:{port}"));
    command
}

/// The Harbor emulator as its own process, with `latency_ms` on every call when set.
fn start_emulator(dir: &Path, latency_ms: Option<u64>) -> anyhow::Result<(Running, u16)> {
    let port = free_port()?;
    let mut harbor = Running::start(
        "harbor-emulator",
        Command::new(bench_binary("harbor-emulator"))
            .args(["--listen", &format!("127.0.0.1:{port}")]),
        &dir.join("harbor-emulator.log"),
    )?;
    wait_for(&mut harbor, port, "/api/v2.0/ping")?;
    if let Some(latency_ms) = latency_ms {
        let faults = json!({ "latency_ms": latency_ms }).to_string();
        let (status, body) = http(port, "PUT", "/_emulator/faults", &faults)?;
        if status >= 300 {
            bail!("the emulator refused its latency ({status}): {body}");
        }
    }
    Ok((harbor, port))
}

/// A floor server on `database` running `statements` (`berth` or `best`), answering.
fn start_floor(database: &str, statements: &str, dir: &Path) -> anyhow::Result<(Running, u16)> {
    let port = free_port()?;
    let mut floor = Running::start(
        "floor",
        Command::new(bench_binary("berth-bench"))
            .args(["floor", "--statements", statements])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("BERTH_DATABASE__URL", database),
        &dir.join(format!("floor-{statements}.log")),
    )?;
    wait_for(&mut floor, port, "/static")?;
    Ok((floor, port))
}

/// Berth on `database`, ready: the process, its port, and how long it took to answer `/readyz`.
fn start_berth(
    database: &str,
    keys: &str,
    harbor_port: u16,
    dir: &Path,
) -> anyhow::Result<(Running, u16, Duration)> {
    let port = free_port()?;
    let mut berth = Running::start(
        "berth",
        &mut berth_command(database, keys, port, harbor_port),
        &dir.join("berth.log"),
    )?;
    let ready = wait_for(&mut berth, port, "/readyz")?;
    Ok((berth, port, ready))
}

fn list_query(organization: &str, selector: &str) -> String {
    let mut query = format!("/v3/registry_credentials?organization_guids={organization}");
    if !selector.is_empty() {
        query.push_str("&label_selector=");
        query.push_str(&selector.replace('=', "%3D").replace(',', "%2C"));
    }
    query.push_str(&format!("&per_page={PER_PAGE}"));
    query
}

/// Who a measured request runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum As {
    Admin,
    /// The organization's manager, the role in the token's claim.
    ManagerByClaims,
    /// The organization's manager, the role in the directory (`/v3/roles`), none in the token.
    ManagerByDirectory,
}

/// The lists measured: name, selector, and who runs them.
const LISTS: &[(&str, &str, As)] = &[
    ("list", "", As::Admin),
    ("list, selector matching all", SELECTOR_ALL, As::Admin),
    ("list, selector", SELECTOR, As::Admin),
    ("list as manager, selector", SELECTOR, As::ManagerByClaims),
    (
        "list as manager, selector, directory roles",
        SELECTOR,
        As::ManagerByDirectory,
    ),
];

/// The subject whose manager roles are seeded in the directory.
const DIRECTORY_MANAGER: &str = "bench-directory-manager";

/// Seeds `DIRECTORY_MANAGER`'s manager role in each of `organizations` through Berth's API, and
/// writes the ids of the list organization's credentials (the GET runs as its manager read them).
fn seed_directory_roles(
    port: u16,
    admin: &str,
    organizations: &[&str],
    list_organization: &str,
    ids: &Path,
) -> anyhow::Result<()> {
    for organization in organizations {
        let body = json!({"type": "organization_manager", "relationships": {
            "user": {"data": {"guid": DIRECTORY_MANAGER}},
            "organization": {"data": {"guid": organization}}}})
        .to_string();
        let path = format!("/v3/roles/{}", uuid::Uuid::new_v4());
        let (status, answer) = http_as(port, "PUT", &path, Some(admin), &body)?;
        if status >= 300 {
            bail!("seeding a directory role answered {status}: {answer}");
        }
    }
    let (status, answer) = http_as(
        port,
        "GET",
        &format!("/v3/registry_credentials?organization_guids={list_organization}&per_page=5000"),
        Some(admin),
        "",
    )?;
    if status != 200 {
        bail!("listing the list organization's credentials answered {status}");
    }
    let list: Value = serde_json::from_str(&answer)?;
    let guids: Vec<&str> = list["resources"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["guid"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if guids.is_empty() {
        bail!("the list organization has no credentials to GET");
    }
    fs::write(ids, guids.join("\n") + "\n")?;
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct DriveArgs {
    /// The PostgreSQL server the data sets are created on (any database of it).
    #[arg(long, env = "BERTH_TEST_DATABASE_URL")]
    server_url: String,
    /// 10,000 credentials, 3-second runs, the small growth set only.
    #[arg(long)]
    quick: bool,
}

pub fn drive(args: DriveArgs) -> anyhow::Result<()> {
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let server_url = args.server_url;
    let started = Instant::now();
    ensure_wrk()?;
    let stamp = capture(Command::new("date").args(["-u", "+%Y%m%dT%H%M%SZ"]))?;
    let work = workspace_root().join("target/bench").join(&stamp);
    fs::create_dir_all(&work)?;
    let keys = capture(Command::new(bench_binary("berth-bench")).arg("key-ring"))?;
    let admin = token("berth.admin", &[])?;

    let main_dir = work.join(plan.main.name);
    let dataset = seed(&server_url, &keys, &plan.main, &main_dir)?;
    let main_url = database_url(&server_url, plan.main.name);
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let list_organization = text(&dataset["list_organization"]);
    let post_organization = text(&dataset["post_organization"]);
    let manager = token(
        "",
        &[
            format!("organization_manager:{list_organization}"),
            format!("organization_manager:{post_organization}"),
        ],
    )?;
    let directory_manager = token_of(DIRECTORY_MANAGER, "", &[])?;
    let deployer = token("berth.pull_secrets", &[])?;
    let resolve_body = serde_json::json!({
        "images": dataset["resolve"]["images"],
        "relationships": {"app": {"data": {"guid": dataset["resolve"]["app"]}}},
    })
    .to_string();
    let credential_ids = main_dir.join("credentials.txt");
    // Registry enablement warms up on organizations of its own: each can be enabled once.
    let registry_all = fs::read_to_string(main_dir.join("registry-organizations.txt"))?;
    let registry_all: Vec<&str> = registry_all.lines().filter(|l| !l.is_empty()).collect();
    let (registry_warm, registry_measured) = registry_all.split_at(registry_all.len() / 4);
    let registry_warmup_ids = main_dir.join("registry-warmup.txt");
    let registry_ids = main_dir.join("registry-measured.txt");
    fs::write(&registry_warmup_ids, registry_warm.join("\n") + "\n")?;
    fs::write(&registry_ids, registry_measured.join("\n") + "\n")?;

    let mut driver = Driver {
        script: workspace_root().join("bench/wrk/scenario.lua"),
        work: work.clone(),
        runs: 0,
        plan,
    };
    let (harbor, harbor_port) = start_emulator(&work, Some(HARBOR_LATENCY_MS))?;
    let (floor, floor_port) = start_floor(&main_url, "berth", &work)?;
    let (best, best_port) = start_floor(&main_url, "best", &work)?;

    eprintln!("==> starting Berth");
    let (mut berth, berth_port, start_to_ready) =
        start_berth(&main_url, &keys, harbor_port, &work)?;
    let manager_ids = main_dir.join("list-organization-credentials.txt");
    seed_directory_roles(
        berth_port,
        &admin,
        &[&list_organization, &post_organization],
        &list_organization,
        &manager_ids,
    )?;
    std::thread::sleep(Duration::from_secs(2));
    let (idle_rss, _) = memory_mib(berth.pid())?;
    eprintln!(
        "    ready in {:.0} ms, idle RSS {idle_rss:.1} MiB",
        start_to_ready.as_secs_f64() * 1e3
    );

    let get = |token| Load {
        ids: Some(&credential_ids),
        ..Load::new("get", token)
    };
    let post = |token| Load {
        organization: &post_organization,
        ..Load::new("post", token)
    };
    let patch = Load {
        ids: Some(&credential_ids),
        ..Load::new("patch", &admin)
    };
    let registry = Load {
        ids: Some(&registry_ids),
        ..Load::new("registry", &admin)
    };
    let registry_warmup = Load {
        ids: Some(&registry_warmup_ids),
        ..registry
    };
    let static_body = Load::new("static", "");

    // Registry enablement first (warmed up on organizations of its own), then the
    // reads on the seeded set, then the writes, the floors before Berth for each route.
    eprintln!("==> load: the floors, then Berth, per route");
    let mut results: BTreeMap<String, Figures> = BTreeMap::new();
    let warmup_seconds = driver.plan.warmup_seconds;
    driver.wrk(berth_port, &registry_warmup, warmup_seconds)?;
    let (_, before) = http(harbor_port, "GET", "/_emulator/state", "")?;
    let calls_before = serde_json::from_str::<Value>(&before)?["calls"]
        .as_array()
        .map_or(0, Vec::len);
    let enabled = driver.measure(berth_port, &registry, false)?;
    let (_, after) = http(harbor_port, "GET", "/_emulator/state", "")?;
    let state: Value = serde_json::from_str(&after)?;
    let calls = state["calls"].as_array().cloned().unwrap_or_default();
    let mut calls_by_route: BTreeMap<String, u64> = BTreeMap::new();
    for call in &calls[calls_before.min(calls.len())..] {
        *calls_by_route.entry(text(call)).or_default() += 1;
    }
    let harbor_calls: u64 = calls_by_route.values().sum();
    let calls_per_enablement =
        harbor_calls as f64 / (enabled.requests.saturating_sub(enabled.errors)).max(1) as f64;
    let latency_allowed = f64::from(driver.plan.connections)
        / (calls_per_enablement * HARBOR_LATENCY_MS as f64 / 1e3);
    results.insert("berth registry".into(), enabled);
    results.insert(
        "floor static".into(),
        driver.measure(floor_port, &static_body, true)?,
    );
    results.insert(
        "floor select".into(),
        driver.measure(floor_port, &get(""), true)?,
    );
    results.insert(
        "best select".into(),
        driver.measure(best_port, &get(""), true)?,
    );
    results.insert(
        "berth get".into(),
        driver.measure(berth_port, &get(&admin), true)?,
    );
    // The same reads as the organization's manager, the role in the token, then in the
    // directory: the permission lookup is then one indexed statement.
    for (name, token) in [
        ("berth get as manager", &manager),
        ("berth get as manager, directory roles", &directory_manager),
    ] {
        let load = Load {
            ids: Some(&manager_ids),
            ..Load::new("get", token)
        };
        results.insert(name.into(), driver.measure(berth_port, &load, true)?);
    }
    let resolve = Load {
        body: &resolve_body,
        ..Load::new("resolve", &deployer)
    };
    // The same lookup statement with nothing around it, right before Berth's run.
    results.insert(
        "floor resolve".into(),
        driver.measure(
            floor_port,
            &Load {
                body: &resolve_body,
                ..Load::new("resolve", "")
            },
            true,
        )?,
    );
    results.insert(
        "berth resolve".into(),
        driver.measure(berth_port, &resolve, true)?,
    );
    for (name, selector, caller) in LISTS {
        let query = list_query(&list_organization, selector);
        let list = |token| Load {
            query: &query,
            ..Load::new("list", token)
        };
        if *caller == As::Admin {
            results.insert(
                format!("floor {name}"),
                driver.measure(floor_port, &list(""), true)?,
            );
            results.insert(
                format!("best {name}"),
                driver.measure(best_port, &list(""), true)?,
            );
        }
        let token = match caller {
            As::Admin => &admin,
            As::ManagerByClaims => &manager,
            As::ManagerByDirectory => &directory_manager,
        };
        results.insert(
            format!("berth {name}"),
            driver.measure(berth_port, &list(token), true)?,
        );
    }
    results.insert(
        "floor insert".into(),
        driver.measure(floor_port, &post(""), true)?,
    );
    results.insert(
        "berth post".into(),
        driver.measure(berth_port, &post(&admin), true)?,
    );
    results.insert(
        "berth post as manager".into(),
        driver.measure(berth_port, &post(&manager), true)?,
    );
    results.insert(
        "berth post as manager, directory roles".into(),
        driver.measure(berth_port, &post(&directory_manager), true)?,
    );
    results.insert(
        "berth patch".into(),
        driver.measure(berth_port, &patch, true)?,
    );
    let (_, peak_rss) = memory_mib(berth.pid())?;
    berth.check_alive()?;
    drop(berth);
    drop(floor);
    drop(best);
    drop(harbor);

    let mut growth = Vec::new();
    let growth_sets = std::mem::take(&mut driver.plan.growth);
    for set in &growth_sets {
        let dir = work.join(set.name);
        let dataset = seed(&server_url, &keys, set, &dir)?;
        let url = database_url(&server_url, set.name);
        let organization = text(&dataset["list_organization"]);
        let ids = dir.join("credentials.txt");
        // Kept alive (and stopped on drop) for the growth runs.
        let (_harbor, harbor_port) = start_emulator(&dir, None)?;
        let (_berth, port, _) = start_berth(&url, &keys, harbor_port, &dir)?;
        eprintln!("==> growth: {} credentials", set.credentials);
        let mut lists = serde_json::Map::new();
        for (name, selector, caller) in LISTS {
            if *caller != As::Admin {
                continue;
            }
            let query = list_query(&organization, selector);
            let figures = driver.measure(
                port,
                &Load {
                    query: &query,
                    ..Load::new("list", &admin)
                },
                true,
            )?;
            lists.insert((*name).to_owned(), figures.json());
        }
        // One organization's audit events, first page: as flat as the lists when the table grows.
        let audit_query =
            format!("/v3/audit_events?organization_guids={organization}&per_page={PER_PAGE}");
        let audit_figures = driver.measure(
            port,
            &Load {
                query: &audit_query,
                ..Load::new("list", &admin)
            },
            true,
        )?;
        lists.insert(
            "audit events, one organization".to_owned(),
            audit_figures.json(),
        );
        let get_figures = driver.measure(
            port,
            &Load {
                ids: Some(&ids),
                ..Load::new("get", &admin)
            },
            true,
        )?;
        let plans = capture(
            Command::new(bench_binary("berth-bench"))
                .args([
                    "explain",
                    "--organization",
                    &organization,
                    "--selector",
                    SELECTOR_ALL,
                    "--selector",
                    SELECTOR,
                    "--guid",
                    &text(&dataset["sample_guid"]),
                ])
                .env("BERTH_DATABASE__URL", &url),
        )?;
        growth.push(json!({
            "credentials": set.credentials,
            "organizations": set.organizations,
            "lists": lists,
            "get": get_figures.json(),
            "plans": plans,
        }));
    }

    let report = Report {
        plan: &driver.plan,
        dataset: &dataset,
        results: &results,
        start_to_ready,
        idle_rss,
        peak_rss,
        calls_by_route: &calls_by_route,
        calls_per_enablement,
        latency_allowed,
        growth: &growth,
        seconds: started.elapsed().as_secs_f64(),
        stamp: &stamp,
    };
    let (json_report, markdown, failures) = report.render()?;
    let results_dir = workspace_root().join("bench/results");
    fs::create_dir_all(&results_dir)?;
    let base = results_dir.join(format!("{stamp}-{}", driver.plan.mode));
    fs::write(
        base.with_extension("json"),
        serde_json::to_string_pretty(&json_report)?,
    )?;
    fs::write(base.with_extension("md"), &markdown)?;
    println!("{markdown}");
    eprintln!(
        "==> wrote {} and .md ({} s; logs in {})",
        base.with_extension("json").display(),
        started.elapsed().as_secs(),
        driver.work.display()
    );
    if !failures.is_empty() {
        bail!("requirements not met:\n  - {}", failures.join("\n  - "));
    }
    Ok(())
}

struct Report<'a> {
    plan: &'a Plan,
    dataset: &'a Value,
    results: &'a BTreeMap<String, Figures>,
    start_to_ready: Duration,
    idle_rss: f64,
    peak_rss: f64,
    calls_by_route: &'a BTreeMap<String, u64>,
    calls_per_enablement: f64,
    latency_allowed: f64,
    growth: &'a [Value],
    seconds: f64,
    stamp: &'a str,
}

/// What one of Berth's runs is read against: the floor on Berth's statements and the floor on
/// the best statements (or another yardstick), each with the ratio it must reach, if any.
struct Comparison {
    run: String,
    against: Vec<(String, f64, Option<f64>)>,
}

/// The largest "Rows Removed by Filter" in a plan: rows a scan read only to throw away.
fn most_rows_removed(plans: &str) -> u64 {
    plans
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Rows Removed by Filter: "))
        .filter_map(|count| count.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

impl Report<'_> {
    fn comparisons(&self) -> anyhow::Result<Vec<Comparison>> {
        let rate = |name: &str| -> anyhow::Result<f64> {
            Ok(self
                .results
                .get(name)
                .with_context(|| format!("no {name}"))?
                .requests_per_second)
        };
        let pair = |berth_floor: &str,
                    berth_needed: Option<f64>,
                    best_floor: &str,
                    best_needed: Option<f64>|
         -> anyhow::Result<Vec<(String, f64, Option<f64>)>> {
            Ok(vec![
                (berth_floor.to_owned(), rate(berth_floor)?, berth_needed),
                (best_floor.to_owned(), rate(best_floor)?, best_needed),
            ])
        };
        let mut comparisons = vec![
            Comparison {
                run: "berth get".into(),
                against: pair("floor select", Some(0.7), "best select", None)?,
            },
            // Three images of an app, their credentials at three levels: the one-statement
            // lookup, three seals opened and the .dockerconfigjson, against one primary-key read
            // (required), and against the same lookup statement alone (reported).
            Comparison {
                run: "berth resolve".into(),
                against: pair("floor select", Some(0.6), "floor resolve", None)?,
            },
        ];
        for (name, _, caller) in LISTS {
            // The manager's list is read against the admin's floors of the same selector.
            let floor_name = name
                .replace(", directory roles", "")
                .replace("list as manager", "list");
            let (berth_needed, best_needed) = match (*name, caller) {
                ("list" | "list, selector matching all", As::Admin) => (None, Some(0.6)),
                ("list, selector", As::Admin) => (Some(0.6), None),
                // Directory roles must keep the admin's list ratio (issue 16).
                (_, As::ManagerByDirectory) => (Some(0.6), None),
                _ => (None, None),
            };
            comparisons.push(Comparison {
                run: format!("berth {name}"),
                against: pair(
                    &format!("floor {floor_name}"),
                    berth_needed,
                    &format!("best {floor_name}"),
                    best_needed,
                )?,
            });
        }
        for run in [
            "berth get as manager",
            "berth get as manager, directory roles",
        ] {
            comparisons.push(Comparison {
                run: run.into(),
                against: pair(
                    "floor select",
                    run.ends_with("directory roles").then_some(0.7),
                    "best select",
                    None,
                )?,
            });
        }
        for run in [
            "berth post",
            "berth post as manager",
            "berth post as manager, directory roles",
        ] {
            comparisons.push(Comparison {
                run: run.into(),
                against: vec![(
                    "floor insert".into(),
                    rate("floor insert")?,
                    (run != "berth post as manager").then_some(0.5),
                )],
            });
        }
        comparisons.push(Comparison {
            run: "berth patch".into(),
            against: vec![("floor insert".into(), rate("floor insert")?, None)],
        });
        comparisons.push(Comparison {
            run: "berth registry".into(),
            against: vec![(
                "harbor latency allows".into(),
                self.latency_allowed,
                Some(0.8),
            )],
        });
        Ok(comparisons)
    }

    /// The JSON, the Markdown, and each requirement that failed.
    fn render(&self) -> anyhow::Result<(Value, String, Vec<String>)> {
        let comparisons = self.comparisons()?;
        let mut failures = Vec::new();
        for (name, result) in self.results {
            if result.errors > 0 {
                failures.push(format!("{name}: {} errors", result.errors));
            }
        }
        let machine = machine();
        let mut md = String::new();
        md.push_str(&format!(
            "# Berth benchmark, {} ({} mode)\n\n{}\n\nClient (wrk, {} threads, {} connections, {} s per run after a {} s warm-up) and \
             servers share this machine's cores. Data set: {} credentials over {} organizations, {} spaces, {} apps; lists of one organization, \
             {PER_PAGE} per page, with no selector, `{SELECTOR_ALL}` (matches every credential) and `{SELECTOR}` (about a quarter). \
             Harbor emulator latency: {HARBOR_LATENCY_MS} ms per call. `floor` runs Berth's statements, `best` the best statements for the same answer \
             (bench/README.md).\n\n",
            self.stamp,
            self.plan.mode,
            machine,
            self.plan.threads,
            self.plan.connections,
            self.plan.seconds,
            self.plan.warmup_seconds,
            self.dataset["credentials"],
            self.dataset["organizations"],
            self.dataset["spaces"],
            self.dataset["apps"],
        ));
        md.push_str("| run | req/s | p50 ms | p99 ms | p99.9 ms | errors | Berth's statements (or other) | its req/s | ratio | needed | best statements | its req/s | ratio | needed |\n");
        md.push_str("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|\n");
        let mut json_rows = Vec::new();
        for (name, result) in self.results {
            let comparison = comparisons.iter().find(|c| &c.run == name);
            let mut cells = Vec::new();
            let mut row = result.json();
            row["run"] = json!(name);
            let mut compared = Vec::new();
            for slot in 0..2 {
                match comparison.and_then(|c| c.against.get(slot)) {
                    Some((against, base, needed)) => {
                        let ratio = result.requests_per_second / base;
                        if let Some(needed) = needed
                            && ratio < *needed
                        {
                            failures
                                .push(format!("{name}: {ratio:.2} of {against}, needs {needed}"));
                        }
                        cells.push(format!(
                            "{against} | {base:.1} | {ratio:.2} | {}",
                            needed.map_or("-".to_owned(), |n| format!("≥ {n}"))
                        ));
                        compared.push(json!({
                            "against": against,
                            "requests_per_second": round(*base, 1),
                            "ratio": round(ratio, 3),
                            "ratio_needed": needed,
                        }));
                    }
                    None => cells.push("- | - | - | -".to_owned()),
                }
            }
            md.push_str(&format!(
                "| {name} | {:.1} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
                result.requests_per_second,
                result.p50_ms,
                result.p99_ms,
                result.p999_ms,
                result.errors,
                cells.join(" | ")
            ));
            if !compared.is_empty() {
                row["compared_with"] = json!(compared);
            }
            json_rows.push(row);
        }
        md.push_str(&format!(
            "\nRegistry enablement: {:.2} Harbor calls each ({}), so {} connections at {HARBOR_LATENCY_MS} ms per call allow {:.1} enablements/s.\n\n",
            self.calls_per_enablement,
            self.calls_by_route
                .iter()
                .map(|(route, count)| format!("{route}: {count}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.plan.connections,
            self.latency_allowed
        ));
        md.push_str(&format!(
            "| memory and start | value |\n|---|---:|\n| start to /readyz 200 | {:.0} ms |\n| RSS idle | {:.1} MiB |\n| RSS peak under load | {:.1} MiB |\n",
            self.start_to_ready.as_secs_f64() * 1e3,
            self.idle_rss,
            self.peak_rss
        ));
        if !self.growth.is_empty() {
            md.push_str(
                "\n## Growth\n\nThe same organizations, more credentials each: only the table grows. \
                 Each list is one organization's first page (and its count when the page is full).\n\n\
                 | credentials | organizations | run | req/s | p99 ms |\n|---:|---:|---|---:|---:|\n",
            );
            for set in self.growth {
                let mut runs: Vec<(String, &Value)> = set["lists"]
                    .as_object()
                    .map(|lists| {
                        lists
                            .iter()
                            .map(|(k, v)| (format!("berth {k}"), v))
                            .collect()
                    })
                    .unwrap_or_default();
                runs.push(("berth get".into(), &set["get"]));
                for (run, figures) in runs {
                    md.push_str(&format!(
                        "| {} | {} | {run} | {} | {} |\n",
                        set["credentials"],
                        set["organizations"],
                        figures["requests_per_second"],
                        figures["p99_ms"],
                    ));
                }
            }
            if let [small, large] = self.growth {
                let small_p99 = small["get"]["p99_ms"].as_f64().unwrap_or(0.0);
                let large_p99 = large["get"]["p99_ms"].as_f64().unwrap_or(f64::MAX);
                let growth = large_p99 / small_p99;
                md.push_str(&format!(
                    "\nGET: p99 at {} is {growth:.2}× the p99 at {} (needed ≤ 2). The lists' pages are not alike \
                     (an organization holds {} credentials in one set, {} in the other): their plans are the measure.\n",
                    large["credentials"],
                    small["credentials"],
                    small["credentials"].as_u64().unwrap_or(0) / small["organizations"].as_u64().unwrap_or(1),
                    large["credentials"].as_u64().unwrap_or(0) / large["organizations"].as_u64().unwrap_or(1),
                ));
                if growth > 2.0 {
                    failures.push(format!("GET p99 grew {growth:.2}× (needs ≤ 2)"));
                }
            }
            for set in self.growth {
                let plans = set["plans"].as_str().unwrap_or_default();
                let per_organization = set["credentials"].as_u64().unwrap_or(0)
                    / set["organizations"].as_u64().unwrap_or(1).max(1);
                let removed = most_rows_removed(plans);
                let seq_scan = plans.contains("Seq Scan");
                md.push_str(&format!(
                    "\n### Query plans at {} credentials\n\nMost rows any scan removed by filter: {removed}; a sequential scan: {}.\n\n```\n{plans}\n```\n",
                    set["credentials"],
                    if seq_scan { "yes" } else { "none" },
                ));
                if seq_scan || removed > per_organization {
                    failures.push(format!(
                        "a plan at {} credentials scans beyond one organization ({removed} rows removed by filter, sequential scan: {seq_scan})",
                        set["credentials"]
                    ));
                }
            }
        }
        md.push_str(&format!(
            "\n{}\n\nRun time: {:.0} s.\n",
            if failures.is_empty() {
                "Every requirement met.".to_owned()
            } else {
                format!("Not met:\n\n- {}", failures.join("\n- "))
            },
            self.seconds
        ));
        let report = json!({
            "stamp": self.stamp,
            "mode": self.plan.mode,
            "machine": machine,
            "load": {
                "tool": "wrk",
                "threads": self.plan.threads,
                "connections": self.plan.connections,
                "seconds": self.plan.seconds,
                "warmup_seconds": self.plan.warmup_seconds,
                "client_and_server_share_the_machine": true,
            },
            "dataset": self.dataset,
            "selectors": { "matching_all": SELECTOR_ALL, "matching_some": SELECTOR },
            "per_page": PER_PAGE,
            "runs": json_rows,
            "registry": {
                "harbor_latency_ms": HARBOR_LATENCY_MS,
                "harbor_calls_per_enablement": round(self.calls_per_enablement, 3),
                "harbor_calls_by_route": self.calls_by_route,
                "latency_allows_per_second": round(self.latency_allowed, 1),
            },
            "start_to_ready_ms": round(self.start_to_ready.as_secs_f64() * 1e3, 1),
            "rss_idle_mib": round(self.idle_rss, 1),
            "rss_peak_mib": round(self.peak_rss, 1),
            "growth": self.growth,
            "failures": failures,
            "seconds": round(self.seconds, 0),
        });
        Ok((report, md, failures))
    }
}

/// Cores, CPU model, PostgreSQL and the commit, for the report's header.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let postgres = capture(Command::new("psql").arg("--version")).unwrap_or_default();
    let commit = capture(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(workspace_root()),
    )
    .unwrap_or_default();
    format!("{cores} cores ({model}); {postgres}; commit {commit}")
}
