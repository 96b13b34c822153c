//! Row 4: acknowledged registrations (or etcd puts) per second from many clients.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::{Target, client};

/// How the row is run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) clients: usize,
    /// Writes before the window, not counted (connections, caches).
    pub(crate) warmup: Duration,
    pub(crate) window: Duration,
}

/// What the row measured.
#[derive(Debug)]
pub(crate) struct Throughput {
    pub(crate) per_second: f64,
    pub(crate) errors: u64,
}

const SERVICES: usize = 8;

/// Each client writes one registration after another; counts the acknowledgements
/// received inside the window.
pub(crate) async fn run(target: &Target, plan: Plan) -> anyhow::Result<Throughput> {
    let client = client()?;
    for s in 0..SERVICES {
        target
            .define_service(&client, &format!("tput-{s}"), json!({}))
            .await?;
    }
    let start = Instant::now() + Duration::from_millis(50);
    let (window_start, window_end) = (start + plan.warmup, start + plan.warmup + plan.window);
    let tasks: Vec<_> = (0..plan.clients)
        .map(|c| {
            let (target, client) = (target.clone(), client.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until(start.into()).await;
                let service = format!("tput-{}", c % SERVICES);
                let (mut acked, mut errors) = (0_u64, 0_u64);
                for n in 0.. {
                    let id = format!("t-{c:02}-{n:06}");
                    let result = target.register(&client, &service, &id, "60s").await;
                    let now = Instant::now();
                    if now >= window_end {
                        break;
                    }
                    match result {
                        Ok(()) if now >= window_start => acked += 1,
                        Ok(()) => {}
                        Err(_) => errors += 1,
                    }
                }
                (acked, errors)
            })
        })
        .collect();
    let (mut acked, mut errors) = (0, 0);
    for task in tasks {
        let (a, e) = task.await?;
        acked += a;
        errors += e;
    }
    Ok(Throughput {
        per_second: acked as f64 / plan.window.as_secs_f64(),
        errors,
    })
}
