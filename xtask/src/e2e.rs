//! `cargo xtask e2e [--compose]`: a deployment, then the black-box suite (`crates/berth-e2e`)
//! against it, always torn down.
//!
//! Without `--compose`, the compose topology as local processes: a fresh PostgreSQL database,
//! the Harbor emulator, `berth migrate`, two `berth serve` replicas in production mode on free
//! ports. With `--compose`, `docker-compose.yml` (two Berth replicas) where a container engine
//! answers `docker info`.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::{cargo, has_nextest, postgres_url, workspace_root};

/// How long a process may take to answer after it starts (a cold debug build is slow to bind).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// The Harbor admin login the emulator and the suite share.
const HARBOR_USERNAME: &str = "admin";
const HARBOR_PASSWORD: &str = "Harbor12345";
/// The compose project the suite brings up, apart from a developer's own `docker compose up`.
const COMPOSE_PROJECT: &str = "berth-e2e";
/// The ports `docker-compose.yml` publishes: the two replicas and the emulator.
const COMPOSE_URLS: &str = "http://127.0.0.1:8080,http://127.0.0.1:8082";
const COMPOSE_HARBOR_URL: &str = "http://127.0.0.1:8081";

/// `cargo xtask e2e [--compose] [FILTER...]`: the filters (test name substrings) narrow the
/// suite, as for `cargo nextest run`.
pub fn e2e(args: &[String]) -> anyhow::Result<()> {
    let compose_mode = args.iter().any(|arg| arg == "--compose");
    let filters: Vec<String> = args
        .iter()
        .filter(|arg| *arg != "--compose")
        .cloned()
        .collect();
    if let Some(flag) = filters.iter().find(|arg| arg.starts_with('-')) {
        bail!("unknown option {flag}: usage: cargo xtask e2e [--compose] [FILTER...]");
    }
    if compose_mode {
        compose(&filters)
    } else {
        local(&filters)
    }
}

/// Runs `command`, showing its program and arguments but not its environment (which holds the
/// run's keys).
fn run(command: &mut Command) -> anyhow::Result<()> {
    let shown = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("$ {shown}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// The suite's environment for a deployment.
struct Target {
    urls: String,
    signing_key: String,
    harbor_url: String,
}

/// Runs the ignored journeys of `berth-e2e` against `target`.
fn suite(target: &Target, filters: &[String]) -> anyhow::Result<()> {
    eprintln!("==> end-to-end suite against {}", target.urls);
    let mut command = cargo();
    if has_nextest() {
        command.args([
            "nextest",
            "run",
            "-p",
            "berth-e2e",
            "--run-ignored",
            "only",
            "--no-fail-fast",
        ]);
        command.args(filters);
    } else {
        command.args(["test", "-p", "berth-e2e", "--", "--ignored"]);
        command.args(filters);
    }
    command
        .env("BERTH_E2E_URLS", &target.urls)
        .env("BERTH_E2E_SIGNING_KEY", &target.signing_key)
        .env("BERTH_E2E_HARBOR_URL", &target.harbor_url)
        .env("BERTH_E2E_HARBOR_USERNAME", HARBOR_USERNAME)
        .env("BERTH_E2E_HARBOR_PASSWORD", HARBOR_PASSWORD);
    run(&mut command).context("the end-to-end suite failed")
}

/// The local topology; every part is stopped and the database dropped however the run ends.
fn local(filters: &[String]) -> anyhow::Result<()> {
    let server_url = postgres_url()?;
    eprintln!("==> building berth and the Harbor emulator");
    run(cargo().args([
        "build",
        "--quiet",
        "-p",
        "berth-server",
        "-p",
        "harbor-emulator",
        "--bin",
        "berth",
        "--bin",
        "harbor-emulator",
    ]))?;
    // The suite's test binary too, so the replicas are not waiting on a compile.
    run(cargo().args(["build", "--quiet", "-p", "berth-e2e", "--tests"]))?;

    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let name = format!("berth_e2e_{}_{stamp}", std::process::id());
    let logs = workspace_root().join("target/e2e").join(&name);
    std::fs::create_dir_all(&logs)?;
    let mut topology = Topology {
        server_url: server_url.clone(),
        database: None,
        processes: Vec::new(),
    };
    let outcome = topology
        .start(&name, &logs)
        .and_then(|target| suite(&target, filters));
    if outcome.is_err() {
        topology.print_logs();
    }
    topology.stop();
    eprintln!("==> logs kept in {}", logs.display());
    outcome
}

/// What `local` started, so it can all be stopped.
struct Topology {
    server_url: String,
    /// The database created for this run, dropped by `stop`.
    database: Option<String>,
    processes: Vec<Process>,
}

struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Topology {
    fn start(&mut self, name: &str, logs: &Path) -> anyhow::Result<Target> {
        eprintln!("==> creating database {name}");
        psql(&self.server_url, &format!("CREATE DATABASE {name}"))?;
        self.database = Some(name.to_owned());
        let database_url = database_url(&self.server_url, name);

        let harbor_port = free_port()?;
        let harbor_url = format!("http://127.0.0.1:{harbor_port}");
        let mut emulator = Command::new(binary("harbor-emulator"));
        emulator.args([
            "--listen",
            &format!("127.0.0.1:{harbor_port}"),
            "--admin-username",
            HARBOR_USERNAME,
            "--admin-password",
            HARBOR_PASSWORD,
        ]);
        self.spawn("harbor-emulator", emulator, logs)?;
        self.wait_ready(harbor_port, "/api/v2.0/ping")?;

        let signing_key = random_hex(32)?;
        let keys = format!("e2e:{}", base64(&random_bytes(32)?));
        let berth = |port: Option<u16>| {
            let mut command = Command::new(binary("berth"));
            command
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("BERTH_DATABASE__URL", &database_url)
                .env("BERTH_ENCRYPTION__KEYS", &keys)
                .env("BERTH_ENCRYPTION__CURRENT_LABEL", "e2e")
                .env("BERTH_AUTH__HS256_SECRET", &signing_key)
                .env("BERTH_HARBOR__URL", &harbor_url)
                .env("BERTH_HARBOR__USERNAME", HARBOR_USERNAME)
                .env("BERTH_HARBOR__PASSWORD", HARBOR_PASSWORD)
                .env(
                    "BERTH_HARBOR__REGISTRY_ENDPOINT",
                    format!("127.0.0.1:{harbor_port}"),
                )
                .env("BERTH_LOG__FORMAT", "json");
            if let Some(port) = port {
                command
                    .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
                    .env("BERTH_EXTERNAL_URL", format!("http://127.0.0.1:{port}"));
            }
            command
        };
        eprintln!("==> berth migrate");
        run(berth(None).arg("migrate")).context("berth migrate")?;

        let mut urls = Vec::new();
        for name in ["berth-1", "berth-2"] {
            let port = free_port()?;
            let mut command = berth(Some(port));
            command.arg("serve");
            self.spawn(name, command, logs)?;
            urls.push((port, format!("http://127.0.0.1:{port}")));
        }
        for (port, _) in &urls {
            self.wait_ready(*port, "/readyz")?;
        }
        Ok(Target {
            urls: urls
                .into_iter()
                .map(|(_, url)| url)
                .collect::<Vec<_>>()
                .join(","),
            signing_key,
            harbor_url,
        })
    }

    fn spawn(
        &mut self,
        name: &'static str,
        mut command: Command,
        logs: &Path,
    ) -> anyhow::Result<()> {
        let log = logs.join(format!("{name}.log"));
        let file = File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        eprintln!("==> started {name} (pid {})", child.id());
        self.processes.push(Process { name, child, log });
        Ok(())
    }

    /// Waits until `path` on `port` answers 200, failing early when a process exits.
    fn wait_ready(&mut self, port: u16, path: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            for process in &mut self.processes {
                if let Some(status) = process.child.try_wait()? {
                    bail!("{} exited early with {status}", process.name);
                }
            }
            if http_status(port, path) == Some(200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("nothing answered 200 on 127.0.0.1:{port}{path} within {START_TIMEOUT:?}")
    }

    fn print_logs(&self) {
        for process in &self.processes {
            let text = std::fs::read_to_string(&process.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!(
                "==> last {} lines of {} ({}):",
                tail.len(),
                process.name,
                process.log.display()
            );
            for line in tail {
                eprintln!("    {line}");
            }
        }
    }

    /// Kills every process (by its own pid) and drops the database.
    fn stop(&mut self) {
        for process in &mut self.processes {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        self.processes.clear();
        if let Some(name) = self.database.take() {
            eprintln!("==> dropping database {name}");
            if let Err(error) = psql(
                &self.server_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ) {
                eprintln!("==> warning: {error:#}");
            }
        }
    }
}

impl Drop for Topology {
    /// A panic on the way must not leave servers running or the database behind.
    fn drop(&mut self) {
        self.stop();
    }
}

fn binary(name: &str) -> PathBuf {
    workspace_root().join("target/debug").join(name)
}

/// `statement` run by `psql` on the server of `server_url`.
fn psql(server_url: &str, statement: &str) -> anyhow::Result<()> {
    let output = Command::new("psql")
        .args([server_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", statement])
        .output()
        .context("cannot run psql (the PostgreSQL client): install it")?;
    if !output.status.success() {
        bail!(
            "psql {statement:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// `server_url` with its database replaced by `name`.
fn database_url(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_end = base.find("://").map_or(0, |index| index + 3);
    let server = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The status of `GET path` on `127.0.0.1:port`, or `None` without an answer.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut answer = Vec::new();
    stream.take(4096).read_to_end(&mut answer).ok()?;
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn random_bytes(count: usize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0; count];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes)
}

fn random_hex(count: usize) -> anyhow::Result<String> {
    Ok(random_bytes(count)?
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Standard base64 with padding: the key ring's encoding of key material.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let word = chunk.iter().enumerate().fold(0u32, |word, (index, byte)| {
            word | u32::from(*byte) << (16 - 8 * index)
        });
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(ALPHABET[(word >> (18 - 6 * index) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `docker-compose.yml` with its second replica, the same suite against its published ports,
/// then `down -v` (the e2e project's own volumes only).
fn compose(filters: &[String]) -> anyhow::Result<()> {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    if !engine.as_ref().is_ok_and(|output| output.status.success()) {
        bail!(
            "no container engine: `docker info` failed here. `cargo xtask e2e --compose` needs Docker \
             (or a compatible engine) with Compose v2; `cargo xtask e2e` runs the same suite on local processes"
        );
    }
    let compose = compose_command()?;
    let file = workspace_root().join("docker-compose.yml");
    let signing_key = compose_signing_key(&file)?;
    let project = |args: &[&str]| {
        let mut command = Command::new(&compose[0]);
        command
            .args(&compose[1..])
            .args(["-p", COMPOSE_PROJECT, "-f"])
            .arg(&file)
            .args(args)
            .current_dir(workspace_root());
        command
    };
    eprintln!("==> docker compose up (builds the image on the first run)");
    let outcome = run(&mut project(&[
        "up",
        "--build",
        "--wait",
        "--wait-timeout",
        "300",
    ]))
    .and_then(|()| {
        suite(
            &Target {
                urls: COMPOSE_URLS.into(),
                signing_key,
                harbor_url: COMPOSE_HARBOR_URL.into(),
            },
            filters,
        )
    });
    if outcome.is_err() {
        let _ = run(&mut project(&["logs", "--no-color", "--tail", "200"]));
    }
    let _ = run(&mut project(&["down", "-v", "--remove-orphans"]));
    outcome
}

/// `docker compose` (the v2 plugin), else a standalone `docker-compose` of v2 (`--wait`).
fn compose_command() -> anyhow::Result<Vec<String>> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if works("docker", &["compose", "version"]) {
        return Ok(vec!["docker".into(), "compose".into()]);
    }
    if works("docker-compose", &["up", "--help"])
        && Command::new("docker-compose")
            .args(["up", "--help"])
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("--wait"))
    {
        return Ok(vec!["docker-compose".into()]);
    }
    bail!(
        "no Compose v2 here: install the docker compose plugin (or docker-compose 2.x, for `up --wait`)"
    )
}

/// The HS256 secret `docker-compose.yml` gives Berth: the suite mints its tokens with it.
fn compose_signing_key(file: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("BERTH_AUTH__HS256_SECRET:"))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .context("docker-compose.yml sets no BERTH_AUTH__HS256_SECRET")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_with_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0x00]), "//79AA==");
    }

    #[test]
    fn the_database_is_swapped_and_the_rest_kept() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "e"),
            "postgres://postgres@127.0.0.1:5432/e"
        );
        assert_eq!(
            database_url("postgres://u@h:1/db?sslmode=disable", "e"),
            "postgres://u@h:1/e?sslmode=disable"
        );
        assert_eq!(database_url("postgres://u@h:1", "e"), "postgres://u@h:1/e");
    }

    #[test]
    fn the_compose_file_names_the_signing_key() {
        let key = compose_signing_key(&workspace_root().join("docker-compose.yml")).unwrap();
        assert!(key.len() >= 32, "{key}");
    }
}
