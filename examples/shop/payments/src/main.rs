//! `shop-payments`: accounts, charges and refunds. Every charge is idempotent by its
//! `Idempotency-Key`; `DECLINE_RATE` and `FAILURE_RATE` make it decline and fail for
//! demonstrations. SQLite in `DATA_DIR`, shared by the replicas.

mod app;

use std::process::ExitCode;

use shop_kit::{Config, serve, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::from_env("payments");
    let telemetry = telemetry::init(&config);
    let result = run(&config).await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "payments stopped");
            ExitCode::FAILURE
        }
    }
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
