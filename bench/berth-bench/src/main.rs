#![doc = include_str!("../README.md")]

mod drive;
mod floor;
mod queries;
mod seed;
mod token;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One benchmark run, end to end (what `cargo xtask bench` starts after the build).
    Drive(drive::DriveArgs),
    Seed(seed::SeedArgs),
    Floor(floor::FloorArgs),
    Token(token::TokenArgs),
    Explain(queries::ExplainArgs),
    /// Drops and creates a database on the server of `--server-url`.
    CreateDatabase {
        #[arg(long)]
        server_url: String,
        #[arg(long)]
        name: String,
    },
    /// Prints a one-key ring, `bench:<base64 key>`.
    KeyRing,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Drive(args) => drive::drive(args),
        Command::Seed(args) => runtime()?.block_on(seed::run(args)),
        Command::Floor(args) => floor::run(args),
        Command::Token(args) => token::run(&args),
        Command::Explain(args) => runtime()?.block_on(queries::explain(args)),
        Command::CreateDatabase { server_url, name } => {
            runtime()?.block_on(create_database(&server_url, &name))
        }
        Command::KeyRing => {
            let entry = berth_persistence::sealing::KeyRing::generate_spec_entry("bench")?;
            println!("{}", secrecy::ExposeSecret::expose_secret(&entry));
            Ok(())
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn create_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    anyhow::ensure!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database names here are lowercase letters, digits and underscores"
    );
    let server = berth_persistence::connect(server_url, &Default::default()).await?;
    server
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    server
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(())
}
