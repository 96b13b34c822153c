//! `shop-payments`: accounts, charges and refunds. Every charge is idempotent by its
//! `Idempotency-Key`; `DECLINE_RATE` and `FAILURE_RATE` make it decline and fail for
//! demonstrations. SQLite in `DATA_DIR`, shared by the replicas.

mod app;

use std::process::ExitCode;

use shop_kit::{Config, serve};

#[tokio::main]
async fn main() -> ExitCode {
    serve::main("payments", run).await
}

async fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let listener = serve::bind(config).await?;
    let decline_rate = Config::env_f64("DECLINE_RATE", 0.0);
    let failure_rate = Config::env_f64("FAILURE_RATE", 0.0);
    tracing::info!(decline_rate, failure_rate, "payments configured");
    let app = app::router(app::Payments::open(config, decline_rate, failure_rate)?);
    serve::run(listener, serve::app(app, config), config).await?;
    Ok(())
}
