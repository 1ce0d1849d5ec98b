//! `cargo xtask <task>`: the project's front door for developer tasks.
//!
//! - `test`: the whole suite, once on SQLite and once on PostgreSQL.
//! - `ci`: formatting, lints, the dependency fences, then `test` and `e2e`.
//! - `fences`: each crate's forbidden dependencies (the domain's I/O fence among them), and
//!   no source line over 150 characters.
//! - `e2e [--compose] [FILTER...]`: the black-box suite (`crates/berth-e2e`) against two Berth
//!   replicas on local processes, or against `docker-compose.yml` (see `e2e`).
//! - `bench [--quick]`: speed and memory against the floors: builds in release mode and starts
//!   `berth-bench drive` (bench/README.md).
//!
//! Small on purpose: `std` and `anyhow`.

use std::env;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

mod e2e;

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
/// Berth's adapters: only `berth-server` (and the tools: the benchmark, the test kit, xtask)
/// may depend on them.
const ADAPTERS: &[&str] = &[
    "berth-persistence",
    "berth-harbor",
    "berth-registry-probe",
    "harbor-emulator",
];

/// One crate's fence: the crates its normal dependencies may not include, and why.
struct Fence {
    package: &'static str,
    /// Extra `cargo tree` arguments (a feature set).
    args: &'static [&'static str],
    forbidden: &'static [&'static [&'static str]],
    why: &'static str,
}

const FENCES: &[Fence] = &[
    Fence {
        package: "berth-domain",
        args: &[],
        forbidden: &[IO_CRATES, ADAPTERS, &["berth-auth", "berth-http"]],
        why: "the domain is embeddable: no I/O and no runtime",
    },
    Fence {
        package: "berth-domain",
        args: &["--all-features"],
        forbidden: &[IO_CRATES, ADAPTERS, &["berth-auth", "berth-http"]],
        why: "the in-memory adapters and the contract suite are embeddable too: no I/O, no runtime",
    },
    Fence {
        package: "berth-auth",
        args: &[],
        forbidden: &[&["actix-web", "actix-http", "sea-orm", "sqlx"], ADAPTERS],
        why: "token verification knows no HTTP framework and no database",
    },
    Fence {
        package: "berth-http",
        args: &[],
        forbidden: &[
            &[
                "sea-orm",
                "sqlx",
                "figment",
                "config",
                "clap",
                "opentelemetry-otlp",
            ],
            ADAPTERS,
        ],
        why: "the wire layer reaches the world through ports; only berth-server builds adapters",
    },
    Fence {
        package: "berth-persistence",
        args: &[],
        forbidden: &[&[
            "actix-web",
            "reqwest",
            "berth-harbor",
            "berth-registry-probe",
            "harbor-emulator",
        ]],
        why: "an adapter depends on the domain, never on another adapter or the HTTP layer",
    },
    Fence {
        package: "berth-harbor",
        args: &[],
        forbidden: &[&[
            "actix-web",
            "sea-orm",
            "sqlx",
            "berth-persistence",
            "berth-registry-probe",
            "harbor-emulator",
        ]],
        why: "an adapter depends on the domain, never on another adapter or the HTTP layer",
    },
    Fence {
        package: "berth-registry-probe",
        args: &[],
        forbidden: &[&[
            "actix-web",
            "sea-orm",
            "sqlx",
            "berth-persistence",
            "berth-harbor",
            "harbor-emulator",
        ]],
        why: "an adapter depends on the domain, never on another adapter or the HTTP layer",
    },
    Fence {
        package: "berth-client",
        args: &[],
        forbidden: &[
            &[
                "berth-domain",
                "berth-auth",
                "berth-http",
                "berth-server",
                "actix-web",
                "actix-http",
                "sea-orm",
                "sqlx",
            ],
            ADAPTERS,
        ],
        why: "a client of the wire protocol stands alone: no Berth crate, no server or database crate",
    },
    Fence {
        package: "berth-e2e",
        args: &[],
        forbidden: &[
            &[
                "berth-domain",
                "berth-auth",
                "berth-http",
                "berth-server",
                "berth-testkit",
                "actix-web",
                "sea-orm",
                "sqlx",
            ],
            ADAPTERS,
        ],
        why: "the end-to-end suite knows only URLs and secrets: no Berth crate but the client",
    },
    Fence {
        package: "berth-server",
        args: &["--no-default-features"],
        forbidden: &[&["harbor-emulator"]],
        why: "a production build (--no-default-features) links no Harbor emulator",
    },
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("ci") => ci(),
        Some("fences") => fences(),
        Some("openapi") => openapi(),
        Some("bench") => bench(&args[1..]),
        Some("e2e") => e2e::e2e(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test [-- extra test args] | ci | fences | openapi | e2e [--compose] [FILTER...] | bench [--quick]>"
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
    ensure_client_tools()?;
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

/// Real clients and registries that the tests drive, each from Debian's packages: `skopeo`
/// (pulls through `docker-credential-berth`), `docker-registry` (a real Registry v2 server)
/// and `htpasswd` (its bcrypt password file). The tests that need one fail clearly without it.
const CLIENT_TOOLS: &[(&str, &str)] = &[
    ("skopeo", "skopeo"),
    ("docker-registry", "docker-registry"),
    ("htpasswd", "apache2-utils"),
];

/// Installs the missing [`CLIENT_TOOLS`] with apt-get, where apt-get runs (as root).
fn ensure_client_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = CLIENT_TOOLS
        .iter()
        .filter(|(binary, _)| !on_path(binary))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !on_path("apt-get") {
        eprintln!(
            "==> warning: {} missing and no apt-get here: the tests that drive them will fail",
            missing.join(", ")
        );
        return Ok(());
    }
    eprintln!(
        "==> installing {} from Debian's packages",
        missing.join(", ")
    );
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .with_context(|| format!("the tests need {}: apt-get install them", missing.join(" ")))
}

fn on_path(binary: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(binary).is_file()))
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

/// Checks every crate's [`Fence`] against `cargo tree` (normal dependencies only).
fn fences() -> anyhow::Result<()> {
    let mut breaches = Vec::new();
    for fence in FENCES {
        let tree = dependency_names(fence.package, fence.args)?;
        let found: Vec<&str> = fence
            .forbidden
            .iter()
            .flat_map(|names| names.iter().copied())
            .filter(|name| tree.iter().any(|dependency| dependency == name))
            .collect();
        if found.is_empty() {
            eprintln!("==> fence holds: {} ({})", fence.package, fence.why);
        } else {
            breaches.push(format!(
                "{} depends on {}: {}",
                fence.package,
                found.join(", "),
                fence.why
            ));
        }
    }
    if !breaches.is_empty() {
        bail!("dependency fences broken:\n  {}", breaches.join("\n  "));
    }
    source_line_lengths()
}

/// The longest line a library or binary source file may have: attributes and macros that
/// rustfmt cannot break are broken by hand, one argument a line.
const MAX_SOURCE_LINE: usize = 150;

/// Checks every `crates/*/src/**/*.rs` against [`MAX_SOURCE_LINE`].
fn source_line_lengths() -> anyhow::Result<()> {
    let mut long = Vec::new();
    let mut pending = vec![workspace_root().join("crates")];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                if path
                    .file_name()
                    .is_none_or(|name| name != "tests" && name != "target")
                {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "rs")
                && path.components().any(|part| part.as_os_str() == "src")
            {
                let text = std::fs::read_to_string(&path)?;
                for (index, line) in text.lines().enumerate() {
                    if line.chars().count() > MAX_SOURCE_LINE {
                        long.push(format!("{}:{}", path.display(), index + 1));
                    }
                }
            }
        }
    }
    if !long.is_empty() {
        bail!(
            "source lines over {MAX_SOURCE_LINE} characters (break them by hand):\n  {}",
            long.join("\n  ")
        );
    }
    eprintln!("==> no source line over {MAX_SOURCE_LINE} characters");
    Ok(())
}

/// The names of every crate in `package`'s normal dependency tree (itself excluded).
fn dependency_names(package: &str, args: &[&str]) -> anyhow::Result<Vec<String>> {
    let output = cargo()
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .args(args)
        .output()
        .context("cargo tree")?;
    if !output.status.success() {
        bail!(
            "cargo tree -p {package} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// `cargo xtask bench [--quick]`: the release build, then the driver (`berth-bench drive`),
/// which seeds, starts the processes, runs wrk and writes `bench/results/`.
fn bench(args: &[String]) -> anyhow::Result<()> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => bail!("usage: cargo xtask bench [--quick]"),
    };
    let server_url = postgres_url()?;
    eprintln!("==> release build");
    run(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "berth-server",
        "-p",
        "harbor-emulator",
        "-p",
        "berth-bench",
    ]))?;
    let mut drive = Command::new(workspace_root().join("target/release/berth-bench"));
    drive.args(["drive", "--server-url", &server_url]);
    if quick {
        drive.arg("--quick");
    }
    run(&mut drive)
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
    fences()?;
    test(&[])?;
    e2e::e2e(&[])
}
