//! The `berth` command line: `serve` (default), `migrate`, `keys status|rotate`, `token`,
//! `healthcheck`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::SecretString;

use crate::config;
use crate::dev::{self, ADMIN_TOKEN_FILE};
use crate::startup::{Application, Mode, Runtime};
use crate::telemetry;
use berth_auth::{MintClaims, mint_hs256};

/// Berth: registry credentials and organization registries for a cloud platform.
#[derive(Debug, Parser)]
#[command(name = "berth", version)]
pub struct Cli {
    /// A TOML configuration file; `BERTH_<SECTION>__<KEY>` variables override it.
    #[arg(long, env = "BERTH_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Dev mode even when a database URL is configured.
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve {
        /// Apply pending migrations before serving (production; dev mode always does).
        #[arg(long)]
        migrate: bool,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Inspect or rotate the encryption keys of sealed secrets.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Exit 0 when the Berth on this machine's `listen` port answers /readyz with 200, 1
    /// otherwise: a container HEALTHCHECK without curl.
    Healthcheck,
    /// Print new random guids, one a line: ids for the directory routes, on any machine.
    Guid {
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        count: u16,
    },
    /// Print one HS256 token (dev mode, or where auth.hs256_secret is set).
    Token {
        #[arg(long, default_value = "berth-cli")]
        sub: String,
        /// A platform scope such as berth.admin; repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A role as <cf_role_name>:<guid>; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Lifetime such as 3600s, 30m, 12h or 7d.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: Duration,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Count sealed rows per key label.
    Status,
    /// Re-seal every row under the current key label, in batches, online.
    Rotate {
        #[arg(long, default_value_t = 500)]
        batch_size: u64,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30m"))?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        "d" => value * 86_400,
        _ => return Err(format!("{text:?} has an unknown unit: use s, m, h or d")),
    };
    if seconds == 0 {
        return Err("the lifetime must be positive".into());
    }
    Ok(Duration::from_secs(seconds))
}

/// Runs the command line.
///
/// # Errors
/// Whatever stops the command; `main` prints it.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        println!("{}", berth_http::openapi::document_json());
        return Ok(());
    }
    if let Some(Command::Guid { count }) = cli.command {
        for _ in 0..count {
            println!("{}", uuid::Uuid::new_v4());
        }
        return Ok(());
    }
    let settings = config::load(cli.config.as_deref()).context("reading configuration")?;
    if matches!(cli.command, Some(Command::Healthcheck)) {
        // Before the runtime resolves: the probe needs only the listen address, not keys.
        let address = crate::healthcheck::probe_address(&settings.listen)?;
        crate::healthcheck::check(address)?;
        println!("ready: {address}");
        return Ok(());
    }
    let log_format = settings.log.format.clone();
    let log_level = settings.log.level.clone();
    let telemetry = settings.telemetry.clone();
    let mut runtime = Runtime::resolve(settings, cli.dev)?;
    let json_logs = match log_format.as_deref() {
        Some("json") => true,
        Some("pretty") => false,
        Some(other) => {
            bail!("log.format (BERTH_LOG__FORMAT) must be json or pretty, not {other:?}")
        }
        None => runtime.mode == Mode::Production,
    };
    match cli.command.unwrap_or(Command::Serve { migrate: false }) {
        Command::Serve { migrate } => {
            let _telemetry = telemetry::init(
                json_logs,
                log_level.as_deref(),
                telemetry.otlp_endpoint.as_deref(),
                &telemetry.service_name,
            );
            runtime.migrate_on_start |= migrate;
            serve(runtime).await
        }
        Command::Migrate => {
            let db =
                berth_persistence::connect(&runtime.database_url, &unbounded(&runtime)).await?;
            let pending = berth_persistence::pending_migrations(&db).await?;
            berth_persistence::migrate(&db).await?;
            println!("applied {} migration(s)", pending.len());
            Ok(())
        }
        Command::Keys { command } => keys(runtime, command).await,
        Command::Openapi | Command::Guid { .. } | Command::Healthcheck => Ok(()),
        Command::Token {
            sub,
            scopes,
            roles,
            ttl,
        } => {
            let secret = runtime.auth.hs256_secret.clone().context(
                "no HS256 key: use dev mode or set auth.hs256_secret (BERTH_AUTH__HS256_SECRET)",
            )?;
            let claims = MintClaims {
                subject: sub,
                scopes,
                roles,
                ttl,
                issuer: runtime.auth.issuer.clone(),
                audience: runtime.auth.audience.clone(),
            };
            println!("{}", mint_hs256(&secret, &claims)?);
            Ok(())
        }
    }
}

/// The pool settings for commands that may run long (migrations, key rotation): no statement
/// timeout.
fn unbounded(runtime: &Runtime) -> berth_persistence::PoolSettings {
    berth_persistence::PoolSettings {
        statement_timeout: None,
        ..runtime.pool.clone()
    }
}

async fn keys(runtime: Runtime, command: KeysCommand) -> anyhow::Result<()> {
    let db = berth_persistence::connect(&runtime.database_url, &unbounded(&runtime)).await?;
    if runtime.migrate_on_start {
        berth_persistence::migrate(&db).await?;
    }
    match command {
        KeysCommand::Status => {
            let counts = berth_persistence::keys::label_counts(&db).await?;
            println!("current label: {}", runtime.keys.current_label());
            println!("{:<24} {:<20} {:>10}  in ring", "table", "label", "rows");
            for count in &counts {
                let in_ring = if runtime.keys.contains(&count.label) {
                    "yes"
                } else {
                    "NO"
                };
                println!(
                    "{:<24} {:<20} {:>10}  {in_ring}",
                    count.table, count.label, count.rows
                );
            }
            if counts.is_empty() {
                println!("(no sealed rows)");
            }
            Ok(())
        }
        KeysCommand::Rotate { batch_size } => {
            let report =
                berth_persistence::keys::rotate(&db, runtime.keys.clone(), batch_size).await?;
            println!(
                "re-sealed {} row(s) under {}; {} row(s) changed concurrently and were left to their writer",
                report.rotated,
                runtime.keys.current_label(),
                report.raced
            );
            Ok(())
        }
    }
}

async fn serve(runtime: Runtime) -> anyhow::Result<()> {
    let mode = runtime.mode;
    let external_url = runtime.external_url.clone();
    let dev_parts = runtime.dev.as_ref().map(|parts| {
        (
            parts.data_dir.clone(),
            parts.hs256_secret.clone(),
            parts.generated_encryption_key,
        )
    });
    let database_url = runtime.database_url.clone();
    let application = Application::build(runtime).await?;
    tracing::info!(port = application.port(), ?mode, "berth is serving");
    if let Some((data_dir, secret, generated_key)) = dev_parts {
        print_dev_banner(
            &data_dir,
            secret.as_ref(),
            generated_key,
            &external_url,
            &database_url,
        )?;
    }
    application.run_until_stopped().await.context("server")
}

fn print_dev_banner(
    data_dir: &std::path::Path,
    secret: Option<&SecretString>,
    generated_key: bool,
    external_url: &str,
    database_url: &str,
) -> anyhow::Result<()> {
    let token = match secret {
        Some(secret) => {
            let claims = MintClaims {
                subject: "dev-admin".into(),
                // The admin resolves pull secrets too, so dev mode can feed docker and kubelets.
                scopes: vec!["berth.admin".into(), "berth.pull_secrets".into()],
                roles: Vec::new(),
                ttl: Duration::from_secs(7 * 86_400),
                issuer: None,
                audience: None,
            };
            let token = mint_hs256(secret, &claims)?;
            dev::write_private(&data_dir.join(ADMIN_TOKEN_FILE), &token)?;
            Some(token)
        }
        None => None,
    };
    println!("==> Berth is running in DEV MODE at {external_url}");
    println!("    Dev mode is for trying Berth out; every part below has a production setting.");
    println!("    - database: {database_url} (production: BERTH_DATABASE__URL=postgres://...)");
    if generated_key {
        println!(
            "    - encryption key: generated in {} (production: BERTH_ENCRYPTION__KEYS and BERTH_ENCRYPTION__CURRENT_LABEL)",
            data_dir.display()
        );
    }
    if let Some(token) = token {
        println!(
            "    - tokens: HS256 key generated in {} (production: BERTH_AUTH__JWKS_URL or BERTH_AUTH__JWKS_FILE)",
            data_dir.display()
        );
        println!("    - migrations: applied on start (production: `berth migrate`)");
        println!();
        println!(
            "    Admin token (also in {}):",
            data_dir.join(ADMIN_TOKEN_FILE).display()
        );
        println!();
        println!("{token}");
        println!();
        println!(
            "    Try: curl -H \"Authorization: Bearer $(cat {})\" {external_url}/v3/registry_credentials",
            data_dir.join(ADMIN_TOKEN_FILE).display()
        );
    }
    Ok(())
}
