//! `shop-catalog`: the shop's products and prices. Read-heavy: every order and every
//! recommendation reads it. Kept in SQLite in `DATA_DIR`, shared by the replicas.

mod app;

use std::process::ExitCode;

use shop_kit::{Config, serve};

#[tokio::main]
async fn main() -> ExitCode {
    serve::main("catalog", run).await
}

async fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let listener = serve::bind(config).await?;
    let app = app::router(app::Catalog::open(config)?);
    serve::run(listener, serve::app(app, config), config).await?;
    Ok(())
}
