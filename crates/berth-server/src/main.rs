//! The `berth` binary: wires adapters into the services and serves.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    berth_server::cli::run().await
}
