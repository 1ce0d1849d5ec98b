//! `harbor-emulator --listen 127.0.0.1:0`: the emulated Harbor as its own process.

use clap::Parser;
use harbor_emulator::{EmulatorConfig, start};

/// A stateful emulator of the Harbor v2.0 API subset Berth uses.
#[derive(Debug, Parser)]
#[command(name = "harbor-emulator", version)]
struct Args {
    /// Address to serve on; port 0 picks a free port (printed on start).
    #[arg(long, env = "HARBOR_EMULATOR_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    #[arg(long, env = "HARBOR_EMULATOR_ADMIN_USERNAME", default_value = "admin")]
    admin_username: String,
    #[arg(
        long,
        env = "HARBOR_EMULATOR_ADMIN_PASSWORD",
        default_value = "Harbor12345"
    )]
    admin_password: String,
    /// Harbor's robot_name_prefix.
    #[arg(long, env = "HARBOR_EMULATOR_ROBOT_PREFIX", default_value = "robot$")]
    robot_prefix: String,
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = EmulatorConfig {
        admin_username: args.admin_username,
        admin_password: args.admin_password,
        robot_prefix: args.robot_prefix,
    };
    let (emulator, server) = start(config, &args.listen)?;
    println!("harbor-emulator listening on {}", emulator.url());
    server.await
}
