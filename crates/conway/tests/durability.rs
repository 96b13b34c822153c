//! The registry survives `kill -9`: every registration the server acknowledged is there
//! after a restart on the same data folder, and leases start again at their full TTL.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conway_test_support::{ControlPlane, temp_dir, wait_for};
use parking_lot::Mutex;
use serde_json::{Value, json};

const REGISTRATIONS: usize = 1_000;

fn conway() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_conway"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_registrations_survive_kill_9() {
    let data = temp_dir();
    let mut server = ControlPlane::start(conway(), data.path(), &[]);
    let http = reqwest::Client::new();
    let defined = http
        .put(format!("{}/v1/services/orders", server.url))
        .json(&json!({ "owner": "team-checkout" }))
        .send()
        .await
        .expect("define the service");
    assert_eq!(defined.status(), 200);

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for n in 0..REGISTRATIONS {
        let (http, url) = (http.clone(), server.url.clone());
        let (acknowledged, finished) = (acknowledged.clone(), finished.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("orders-{n}");
            let body = json!({ "id": id, "address": "127.0.0.1", "port": 10_000 + n, "ttl": "1h", "checked_by": "registrant" });
            let response = http.post(format!("{url}/v1/services/orders/instances")).json(&body).send().await;
            if response.is_ok_and(|r| r.status() == 201) {
                acknowledged.lock().push(id);
            }
            finished.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // Kill the server in the middle of the burst.
    let progress = acknowledged.clone();
    tokio::task::spawn_blocking(move || {
        wait_for(
            "a third of the registrations to be acknowledged",
            Duration::from_secs(60),
            || progress.lock().len() >= REGISTRATIONS / 3,
        )
    })
    .await
    .expect("waiting task");
    server.process.kill();
    for task in tasks {
        task.await.expect("registration task");
    }
    assert_eq!(finished.load(Ordering::SeqCst), REGISTRATIONS);
    let acknowledged = acknowledged.lock().clone();
    assert!(
        acknowledged.len() >= REGISTRATIONS / 3 && acknowledged.len() < REGISTRATIONS,
        "killed mid-burst: {}",
        acknowledged.len()
    );

    let restarted = ControlPlane::start(conway(), data.path(), &[]);
    let instances: Vec<Value> = http
        .get(format!("{}/v1/services/orders/instances", restarted.url))
        .send()
        .await
        .expect("list instances")
        .json()
        .await
        .expect("instances as JSON");
    let present: std::collections::HashSet<&str> =
        instances.iter().filter_map(|i| i["id"].as_str()).collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !present.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged registrations lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );

    // Their leases live on: a heartbeat renews one for its full TTL.
    let beat: Value = http
        .post(format!(
            "{}/v1/instances/{}/heartbeat",
            restarted.url, acknowledged[0]
        ))
        .send()
        .await
        .expect("heartbeat")
        .json()
        .await
        .expect("heartbeat as JSON");
    assert_eq!(beat["ttl"], "1h");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_folder_is_refused() {
    let data = temp_dir();
    let _first = ControlPlane::start(conway(), data.path(), &[]);
    let output = std::process::Command::new(conway())
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("run a second server");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
}
