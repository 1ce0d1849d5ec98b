//! `cargo xtask <task>`: the project's front door for developer tasks.
//!
//! - `test`: the whole suite, once on SQLite and once on PostgreSQL.
//! - `ci`: formatting, lints, the domain's dependency fence, then `test`.
//! - `bench [--quick]`: speed and memory against the floors (docs/BENCHMARKS.md).
//!
//! Small on purpose: `std`, `anyhow`, and `serde_json` for the benchmark's results.

mod bench;

use std::env;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Crates that perform I/O: `berth-domain` must depend on none of them.
const IO_CRATES: &[&str] = &[
    "tokio",
    "sea-orm",
    "sqlx",
    "reqwest",
    "actix-web",
    "hyper",
    "mio",
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("ci") => ci(),
        Some("domain-fence") => domain_fence(),
        Some("openapi") => openapi(),
        Some("bench") => bench::bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test [-- extra test args] | ci | domain-fence | openapi | bench [--quick]>"
            );
            std::process::exit(2);
        }
    }
}

fn cargo() -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
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

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs every test on SQLite, then on PostgreSQL.
fn test(extra: &[String]) -> anyhow::Result<()> {
    let postgres_url = postgres_url()?;
    let nextest = has_nextest();
    for backend in ["sqlite", "postgres"] {
        eprintln!("==> test suite on {backend}");
        let mut command = cargo();
        if nextest {
            command.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        } else {
            command.args(["test", "--workspace", "--no-fail-fast"]);
        }
        command
            .args(extra)
            .env("BERTH_TEST_BACKEND", backend)
            .env("BERTH_TEST_DATABASE_URL", &postgres_url);
        run(&mut command).with_context(|| format!("the test suite failed on {backend}"))?;
    }
    Ok(())
}

/// `BERTH_TEST_DATABASE_URL`, or the local server on 127.0.0.1:5432 (started if it is down).
fn postgres_url() -> anyhow::Result<String> {
    if let Ok(url) = env::var("BERTH_TEST_DATABASE_URL") {
        return Ok(url);
    }
    let address: SocketAddr = "127.0.0.1:5432".parse()?;
    if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
        return Ok(DEFAULT_POSTGRES_URL.into());
    }
    if let Some(version) = local_cluster_version() {
        eprintln!("==> starting the local PostgreSQL {version} cluster");
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", "start"])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
                return Ok(DEFAULT_POSTGRES_URL.into());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    bail!(
        "no PostgreSQL for the tests: set BERTH_TEST_DATABASE_URL=postgres://user@host:port/db \
         or run a server on 127.0.0.1:5432 (trust auth)"
    )
}

fn local_cluster_version() -> Option<String> {
    let entries = std::fs::read_dir("/etc/postgresql").ok()?;
    let mut versions: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    versions.pop()
}

/// `berth-domain` must stay embeddable: no I/O crate anywhere in its normal dependencies.
fn domain_fence() -> anyhow::Result<()> {
    let output = cargo()
        .args([
            "tree",
            "-p",
            "berth-domain",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .context("cargo tree")?;
    if !output.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let found: Vec<&str> = IO_CRATES
        .iter()
        .copied()
        .filter(|name| {
            tree.lines()
                .any(|line| line.split_whitespace().next() == Some(name))
        })
        .collect();
    if !found.is_empty() {
        bail!("berth-domain depends on I/O crates: {}", found.join(", "));
    }
    eprintln!("==> berth-domain depends on no I/O crate");
    Ok(())
}

/// Rewrites `docs/openapi.json` from the code (a test fails while the two differ).
fn openapi() -> anyhow::Result<()> {
    let output = cargo()
        .args([
            "run",
            "--quiet",
            "--package",
            "berth-server",
            "--bin",
            "berth",
            "--",
            "openapi",
        ])
        .output()?;
    if !output.status.success() {
        bail!(
            "berth openapi failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::write(workspace_root().join("docs/openapi.json"), &output.stdout)?;
    eprintln!("==> wrote docs/openapi.json");
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    domain_fence()?;
    test(&[])
}
