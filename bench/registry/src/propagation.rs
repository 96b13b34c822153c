//! Row 1: from a registration's acknowledgement until each watcher has read its event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::api::{Target, client};
use crate::stats::Summary;

/// How the row is run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) watchers: usize,
    pub(crate) registrations: usize,
    /// Pause between one acknowledgement and the next registration.
    pub(crate) spacing: Duration,
}

/// What the row measured.
#[derive(Debug)]
pub(crate) struct Propagation {
    /// Over every watcher × registration pair.
    pub(crate) summary: Option<Summary>,
    /// Pairs whose event no watcher read within the grace period.
    pub(crate) missing: usize,
    /// Pairs whose event arrived before the acknowledgement (counted as 0).
    pub(crate) before_ack: usize,
    /// The same pairs timed from when the registration was sent, which includes the
    /// write itself.
    pub(crate) from_send: Option<Summary>,
}

const SERVICE: &str = "bench-propagation";
const WARMUP: &str = "p-warmup";

pub(crate) async fn run(target: &Target, plan: Plan) -> anyhow::Result<Propagation> {
    let watch_client = client()?;
    let client = client()?;
    target.define_service(&client, SERVICE, json!({})).await?;

    let (ready_tx, mut ready_rx) = mpsc::channel(plan.watchers);
    let (stop_tx, stop_rx) = watch::channel(false);
    let warm = Arc::new(AtomicUsize::new(0));
    let seen_total = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..plan.watchers)
        .map(|_| {
            tokio::spawn(watcher(
                target.clone(),
                watch_client.clone(),
                ready_tx.clone(),
                Arc::clone(&warm),
                Arc::clone(&seen_total),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    for _ in 0..plan.watchers {
        tokio::time::timeout(Duration::from_secs(15), ready_rx.recv())
            .await
            .context("watchers did not all connect in 15 s")?
            .context("a watcher failed to connect")?;
    }

    // One registration that every watcher must see: proves every watch delivers, and
    // warms up connections and caches.
    target
        .register(&client, SERVICE, WARMUP, "60s")
        .await
        .context("warm-up registration")?;
    wait_until(Duration::from_secs(10), || {
        warm.load(Ordering::Relaxed) >= plan.watchers
    })
    .await
    .context("not every watcher saw the warm-up registration within 10 s")?;

    let mut acks = HashMap::with_capacity(plan.registrations);
    for i in 0..plan.registrations {
        let id = format!("p-{i:05}");
        let sent = Instant::now();
        target.register(&client, SERVICE, &id, "60s").await?;
        acks.insert(id, (sent, Instant::now()));
        tokio::time::sleep(plan.spacing).await;
    }
    let expected = plan.watchers * plan.registrations;
    let _ = wait_until(Duration::from_secs(5), || {
        seen_total.load(Ordering::Relaxed) >= expected
    })
    .await;
    let _ = stop_tx.send(true);

    let mut samples = Vec::with_capacity(expected);
    let mut from_send = Vec::with_capacity(expected);
    let mut before_ack = 0;
    for task in tasks {
        for (id, arrived) in task.await?? {
            if let Some(&(sent, ack)) = acks.get(&id) {
                if arrived < ack {
                    before_ack += 1;
                }
                samples.push(arrived.saturating_duration_since(ack));
                from_send.push(arrived.saturating_duration_since(sent));
            }
        }
    }
    Ok(Propagation {
        missing: expected.saturating_sub(samples.len()),
        summary: Summary::of(samples),
        before_ack,
        from_send: Summary::of(from_send),
    })
}

/// One watcher: reports when its watch is in place, then notes when each registration's
/// event arrived until told to stop.
async fn watcher(
    target: Target,
    client: reqwest::Client,
    ready: mpsc::Sender<()>,
    warm: Arc<AtomicUsize>,
    seen_total: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let mut lines = target.watch(&client).await?;
    let _ = ready.send(()).await;
    let mut seen = Vec::with_capacity(512);
    let mut ids = Vec::new();
    {
        let read = lines.for_each(|line, arrived| {
            target.changed(line, "put", &mut ids);
            for id in ids.drain(..) {
                if id == WARMUP {
                    warm.fetch_add(1, Ordering::Relaxed);
                } else {
                    seen_total.fetch_add(1, Ordering::Relaxed);
                    seen.push((id, arrived));
                }
            }
            true
        });
        tokio::select! {
            read = read => read?,
            _ = stop.changed() => {}
        }
    }
    Ok(seen)
}

/// Polls `done` every millisecond until it holds, or fails after `limit`.
pub(crate) async fn wait_until(limit: Duration, done: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
