//! `shop-orders`: orders and the order saga (reserve stock → charge payment → confirm),
//! persisted with a lease per saga in SQLite in `DATA_DIR`, so any replica resumes a
//! saga whose owner died. Calls `catalog`, `inventory` and `payments` through the mesh.

mod api;
mod model;
mod saga;
#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::time::Duration;

use shop_kit::sqlite::Db;
use shop_kit::{Config, Mesh, serve};

#[tokio::main]
async fn main() -> ExitCode {
    serve::main("orders", run).await
}

fn millis(name: &str, default: Duration) -> Duration {
    Duration::from_millis(Config::env_f64(name, default.as_millis() as f64) as u64)
}

async fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let listener = serve::bind(config).await?;
    let db = Db::open(config.data_dir.join("orders.db"), model::SCHEMA)?;
    let defaults = saga::Settings::default();
    let settings = saga::Settings {
        lease: millis("SAGA_LEASE_MS", defaults.lease),
        call_timeout: millis("SAGA_CALL_TIMEOUT_MS", defaults.call_timeout),
        give_up: millis("SAGA_GIVE_UP_MS", defaults.give_up),
        sweep_every: defaults.sweep_every,
    };
    let mesh = Mesh::from_env()?;
    let sagas = saga::Sagas::new(db.clone(), mesh.clone(), config.instance.clone(), settings);
    let sweeper = sagas.sweep();
    let wait = millis("ORDER_WAIT_MS", Duration::from_secs(4));
    let app = api::router(api::Orders::new(db, mesh, sagas, wait));
    let result = serve::run(listener, serve::app(app, config), config).await;
    sweeper.abort();
    Ok(result?)
}
