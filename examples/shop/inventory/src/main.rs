//! `shop-inventory`: stock, and reservations that expire. Its store is redb (an embedded
//! key-value store), unlike the other services' SQLite: counters and keyed records in
//! short transactions are what it needs, and nothing relational.

mod api;
mod store;

use std::process::ExitCode;
use std::time::Duration;

use shop_kit::{Config, serve};

#[tokio::main]
async fn main() -> ExitCode {
    serve::main("inventory", run).await
}

async fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let listener = serve::bind(config).await?;
    std::fs::create_dir_all(&config.data_dir)?;
    let path = config.data_dir.join("inventory.redb");
    let db = tokio::task::spawn_blocking(move || store::open(&path)).await??;
    // How long a reservation holds stock unless the request says otherwise.
    let ttl_ms = Config::env_f64("RESERVATION_TTL_MS", 30_000.0) as u64;
    let inventory = api::Inventory::new(db, ttl_ms);
    let sweeper = inventory.sweep(Duration::from_millis(250));
    let result = serve::run(listener, serve::app(api::router(inventory), config), config).await;
    sweeper.abort();
    Ok(result?)
}
