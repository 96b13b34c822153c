//! Row 3: the server's memory and CPU while many instances heartbeat.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::api::{Target, client};
use crate::procs::{Conway, cpu_time, resident_bytes, ticks_per_second};

/// How the row is run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) instances: usize,
    pub(crate) services: usize,
    /// Each instance heartbeats once per period, instances spread evenly over it.
    pub(crate) period: Duration,
    /// Heartbeating before the measured window.
    pub(crate) warmup: Duration,
    pub(crate) window: Duration,
    /// Concurrent registrations while filling the registry.
    pub(crate) register_clients: usize,
    /// Connections that carry the heartbeats.
    pub(crate) heartbeat_connections: usize,
}

/// What the row measured.
#[derive(Debug)]
pub(crate) struct Scale {
    pub(crate) register_time: Duration,
    pub(crate) rss_after_register: u64,
    /// Largest resident size sampled in the window.
    pub(crate) rss_max: u64,
    /// CPU time over the window, as a share of one core.
    pub(crate) cpu_percent: f64,
    pub(crate) heartbeats_per_second: f64,
    pub(crate) heartbeat_errors: u64,
    /// Instances the server lists at the end (all of them, if no lease lapsed).
    pub(crate) listed: u64,
}

pub(crate) async fn run(conway: &Conway, plan: Plan) -> anyhow::Result<Scale> {
    let url = conway.url.clone();
    let pid = conway.process.pid();
    let target = Target::Conway(url.clone());
    let client = client()?;
    for s in 0..plan.services {
        target
            .define_service(&client, &service(s), json!({}))
            .await?;
    }

    let started = Instant::now();
    let tasks: Vec<_> = (0..plan.register_clients)
        .map(|c| {
            let (target, client) = (target.clone(), client.clone());
            tokio::spawn(async move {
                for i in (c..plan.instances).step_by(plan.register_clients) {
                    target
                        .register(&client, &service(i % plan.services), &id(i), "30s")
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await?.context("registering")?;
    }
    let register_time = started.elapsed();
    let rss_after_register = resident_bytes(pid)?;

    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let beat_start = Instant::now();
    let beat_end = beat_start + plan.warmup + plan.window;
    let heartbeaters: Vec<_> = (0..plan.heartbeat_connections)
        .map(|w| {
            let (url, client) = (url.clone(), client.clone());
            let (ok, errors) = (Arc::clone(&ok), Arc::clone(&errors));
            tokio::spawn(async move {
                let mine: Vec<usize> = (w..plan.instances)
                    .step_by(plan.heartbeat_connections)
                    .collect();
                for cycle in 0.. {
                    for &i in &mine {
                        let due = beat_start
                            + plan.period * cycle
                            + plan.period.mul_f64(i as f64 / plan.instances as f64);
                        if due >= beat_end {
                            return;
                        }
                        tokio::time::sleep_until(due.into()).await;
                        let sent = client
                            .post(format!("{url}/v1/instances/{}/heartbeat", id(i)))
                            .send()
                            .await;
                        match sent {
                            Ok(response) if response.status().is_success() => {
                                let _ = response.bytes().await;
                                ok.fetch_add(1, Ordering::Relaxed)
                            }
                            _ => errors.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(plan.warmup).await;
    let ticks = ticks_per_second();
    let window_start = Instant::now();
    let cpu_start = cpu_time(pid, ticks)?;
    let ok_start = ok.load(Ordering::Relaxed);
    let mut rss_max = 0;
    while window_start.elapsed() < plan.window {
        rss_max = rss_max.max(resident_bytes(pid)?);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let cpu = cpu_time(pid, ticks)? - cpu_start;
    let wall = window_start.elapsed();
    let beats = ok.load(Ordering::Relaxed) - ok_start;
    rss_max = rss_max.max(resident_bytes(pid)?);
    for heartbeater in heartbeaters {
        heartbeater.await?;
    }

    let services: Vec<Value> = client
        .get(format!("{url}/v1/services"))
        .send()
        .await?
        .json()
        .await?;
    let listed = services
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("scale-")))
        .filter_map(|s| s["instances"].as_u64())
        .sum();

    Ok(Scale {
        register_time,
        rss_after_register,
        rss_max,
        cpu_percent: 100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        heartbeats_per_second: beats as f64 / wall.as_secs_f64(),
        heartbeat_errors: errors.load(Ordering::Relaxed),
        listed,
    })
}

fn service(s: usize) -> String {
    format!("scale-{s:02}")
}

fn id(i: usize) -> String {
    format!("s-{i:05}")
}
