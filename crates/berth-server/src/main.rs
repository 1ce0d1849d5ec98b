//! The `berth` binary: wires adapters into the services and serves.

fn main() -> anyhow::Result<()> {
    berth_server::telemetry::restart_without_unparsable_compression()?;
    actix_web::rt::System::new().block_on(berth_server::cli::run())
}
