//! Row 2: how fast the registry stops routing to a failing instance (2a) and forgets a
//! lease nobody renews (2b).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::{Target, client};

/// The health settings row 2a uses.
pub(crate) const INTERVAL: Duration = Duration::from_millis(200);
pub(crate) const UNHEALTHY_THRESHOLD: u32 = 2;
/// The lease row 2b lets lapse.
pub(crate) const TTL: Duration = Duration::from_secs(2);

/// A tiny HTTP server that answers every request 200, or 503 once failed.
#[derive(Debug)]
struct HealthEndpoint {
    port: u16,
    passing: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for HealthEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HealthEndpoint {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let passing = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&passing);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, Arc::clone(&flag)));
            }
        });
        Ok(Self {
            port,
            passing,
            task,
        })
    }
}

/// Answers each request on a (keep-alive) connection; requests are bodiless GETs.
async fn answer(mut stream: tokio::net::TcpStream, passing: Arc<AtomicBool>) {
    let mut pending = Vec::new();
    let mut buf = [0_u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            let response: &[u8] = if passing.load(Ordering::SeqCst) {
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            } else {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nfail"
            };
            if stream.write_all(response).await.is_err() {
                return;
            }
        }
    }
}

/// 2a: flips an external instance's health endpoint to 503 and times until
/// `GET /v1/services/{name}/instances?healthy=true` (polled every 5 ms) drops it.
pub(crate) async fn failing_check(url: &str, trials: usize) -> anyhow::Result<Vec<Duration>> {
    const SERVICE: &str = "bench-http-check";
    let client = client()?;
    let endpoint = HealthEndpoint::start().await?;
    let conway = Target::Conway(url.to_owned());
    conway
        .define_service(
            &client,
            SERVICE,
            json!({"health": {
                "http": "/health",
                "interval": format!("{}ms", INTERVAL.as_millis()),
                "timeout": "100ms",
                "unhealthy_threshold": UNHEALTHY_THRESHOLD,
            }}),
        )
        .await?;
    let response = client
        .post(format!("{url}/v1/services/{SERVICE}/instances"))
        .json(&json!({"address": "127.0.0.1", "port": endpoint.port, "ttl": "120s"}))
        .send()
        .await?;
    if response.status().as_u16() != 201 {
        bail!("registering the checked instance: {}", response.status());
    }
    let instance: Value = response.json().await?;
    let id = instance["id"].as_str().context("no id")?.to_owned();
    let (client, id) = (&client, id.as_str());
    let listed = move || async move {
        let list: Vec<Value> = client
            .get(format!(
                "{url}/v1/services/{SERVICE}/instances?healthy=true"
            ))
            .send()
            .await?
            .json()
            .await?;
        anyhow::Ok(list.iter().any(|i| i["id"] == id))
    };

    let mut detections = Vec::with_capacity(trials);
    for _ in 0..trials {
        endpoint.passing.store(true, Ordering::SeqCst);
        poll(Duration::from_secs(10), listed)
            .await
            .context("the instance never became healthy")?;
        // Fail at a random phase of the check interval.
        let phase = fastrand::u64(0..INTERVAL.as_millis() as u64);
        tokio::time::sleep(INTERVAL + Duration::from_millis(phase)).await;
        endpoint.passing.store(false, Ordering::SeqCst);
        let flipped = Instant::now();
        poll(Duration::from_secs(10), || {
            let listed = listed();
            async move { Ok(!listed.await?) }
        })
        .await
        .context("the failing instance stayed routable for 10 s")?;
        detections.push(flipped.elapsed());
    }
    Ok(detections)
}

/// Polls `check` every 5 ms until it answers true, or fails after `limit`.
async fn poll<F, Fut>(limit: Duration, check: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + limit;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if check().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {limit:?}");
        }
    }
}

/// 2b: registers `leases` instances with a 2 s TTL, heartbeats each once, then times
/// from each last heartbeat's acknowledgement until its delete event is read.
pub(crate) async fn lapsed_lease(url: &str, leases: usize) -> anyhow::Result<Vec<Duration>> {
    const SERVICE: &str = "bench-lease";
    let client = client()?;
    let conway = Target::Conway(url.to_owned());
    conway.define_service(&client, SERVICE, json!({})).await?;

    let mut lines = conway.watch(&client).await?;
    let (deleted_tx, mut deleted_rx) = mpsc::unbounded_channel();
    let reader = {
        let conway = conway.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            lines
                .for_each(|line, arrived| {
                    conway.changed(line, "delete", &mut ids);
                    ids.drain(..)
                        .all(|id| deleted_tx.send((id, arrived)).is_ok())
                })
                .await
        })
    };
    let _abort = AbortOnDrop(reader);

    let ttl = format!("{}s", TTL.as_secs());
    let ids: Vec<String> = (0..leases).map(|i| format!("lease-{i}")).collect();
    for id in &ids {
        conway.register(&client, SERVICE, id, &ttl).await?;
    }
    let mut last_heartbeat = HashMap::new();
    for id in &ids {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let response = client
            .post(format!("{url}/v1/instances/{id}/heartbeat"))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("heartbeat of {id}: {}", response.status());
        }
        last_heartbeat.insert(id.clone(), Instant::now());
    }

    let deadline = tokio::time::Instant::now() + TTL + Duration::from_secs(10);
    let mut expiries = Vec::with_capacity(leases);
    while expiries.len() < leases {
        let Ok(Some((id, arrived))) = tokio::time::timeout_at(deadline, deleted_rx.recv()).await
        else {
            bail!(
                "{} of {leases} unrenewed leases still alive {:?} after their last heartbeat",
                leases - expiries.len(),
                TTL + Duration::from_secs(10)
            );
        };
        if let Some(beat) = last_heartbeat.remove(&id) {
            expiries.push(arrived.saturating_duration_since(beat));
        }
    }
    Ok(expiries)
}

/// Aborts a background task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
