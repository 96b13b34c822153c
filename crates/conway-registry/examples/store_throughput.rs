//! Throughput of the embedded store, durable (a folder, WAL, fsync before every
//! acknowledgement) beside in memory (the same code without durability).
//!
//! `cargo run --release -p conway-registry --example store_throughput`
//!
//! Writers each put keys one after another; with many writers, group commit turns the
//! queued puts into one transaction and one fsync. Not a timed test: it only prints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conway_registry::store::{EmbeddedStore, Store, StoreError};

/// How long each measurement runs.
const RUN_FOR: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    println!(
        "{:<10} {:>8} {:>14} {:>14}",
        "store", "clients", "puts/s", "gets/s"
    );
    for clients in [1, 16, 128] {
        let durable: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(dir.path().join(clients.to_string())).await?);
        let memory: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory().await?);
        for (name, store) in [("durable", durable), ("in-memory", memory)] {
            let puts = run(&store, clients, true).await?;
            let gets = run(&store, clients, false).await?;
            println!("{name:<10} {clients:>8} {puts:>14.0} {gets:>14.0}");
        }
    }
    Ok(())
}

/// Operations per second of `clients` loops of puts (or gets) for [`RUN_FOR`].
async fn run(store: &Arc<dyn Store>, clients: usize, put: bool) -> Result<f64, StoreError> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0_u64;
            while start.elapsed() < RUN_FOR {
                let key = format!("bench/{client}/{}", done % 100);
                if put {
                    store.put(&key, Bytes::from_static(b"value"), None).await?;
                } else {
                    store.get(&key).await?;
                }
                done += 1;
            }
            Ok::<_, StoreError>(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.map_err(StoreError::backend)??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
