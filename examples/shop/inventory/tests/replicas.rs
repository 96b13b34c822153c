//! Two real inventory processes on one redb file, as `conway up` runs the replicas: both
//! write, one is killed (SIGKILL) in the middle of the writes, and the other goes on
//! with a store that holds every acknowledged reservation and still balances.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `shop-inventory` on a free port; its address comes from its `listening` log line.
fn start(data: &Path, instance: &str) -> Replica {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shop-inventory"))
        .env("PORT", "0")
        .env("DATA_DIR", data)
        .env("CONWAY_SERVICE", "inventory")
        .env("CONWAY_INSTANCE", instance)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shop-inventory");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let address = loop {
        let line = lines.next().expect("a listening line").expect("a log line");
        let log: Value = serde_json::from_str(&line).expect("a JSON log line");
        if log["message"] == "listening" {
            break log["address"].as_str().expect("an address").to_owned();
        }
    };
    // Keep reading, so the process never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    Replica {
        child,
        base: format!("http://{address}"),
    }
}

async fn reserve(client: &reqwest::Client, base: &str, key: &str) -> Result<u16, reqwest::Error> {
    let response = client
        .post(format!("{base}/reservations"))
        .header("idempotency-key", key)
        .json(&json!({ "order_id": key, "items": [{ "sku": "sku-mug", "quantity": 1 }] }))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// The replica's `/internal/audit`: its reservations, stock and what does not balance.
async fn audit(client: &reqwest::Client, base: &str) -> Value {
    client
        .get(format!("{base}/internal/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn two_processes_share_the_store_and_one_dying_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut one = start(data.path(), "inventory-1");
    let two = start(data.path(), "inventory-2");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let mut writers = Vec::new();
    for (replica, base) in [(1, one.base.clone()), (2, two.base.clone())] {
        for writer in 0..4 {
            let (client, base) = (client.clone(), base.clone());
            writers.push(tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for n in 0..25 {
                    let key = format!("r{replica}-w{writer}-{n}");
                    if let Ok(201) = reserve(&client, &base, &key).await {
                        acknowledged.push(key);
                    }
                }
                acknowledged
            }));
        }
    }
    // Killed while its writers are busy: once a fifth of the reservations are in.
    loop {
        let audit = audit(&client, &two.base).await;
        if audit["reservations"].as_array().unwrap().len() >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    one.child.kill().unwrap();
    one.child.wait().unwrap();

    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    let by_one = acknowledged
        .iter()
        .filter(|key| key.starts_with("r1-"))
        .count();
    assert!(
        by_one < 100,
        "the kill came before the dead replica was done"
    );
    assert_eq!(
        acknowledged.len() - by_one,
        100,
        "the surviving replica's writes all succeed"
    );
    // Every acknowledged reservation survived; the ones lost with the dead replica's
    // answers are retried (same key) on the other and reserve once.
    for replica in 1..=2 {
        for writer in 0..4 {
            for n in 0..25 {
                let key = format!("r{replica}-w{writer}-{n}");
                assert_eq!(
                    reserve(&client, &two.base, &key).await.unwrap(),
                    201,
                    "{key}"
                );
            }
        }
    }
    let audit = audit(&client, &two.base).await;
    assert_eq!(audit["unbalanced"], json!([]), "the stock balances");
    let held = audit["reservations"].as_array().unwrap().len();
    assert_eq!(held, 200, "one reservation per key");
    let mug = audit["stock"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sku"] == "sku-mug")
        .unwrap()
        .clone();
    assert_eq!(
        mug["added"].as_u64().unwrap() - mug["available"].as_u64().unwrap(),
        200
    );

    // A replica started on the file the dead one left behind opens it and serves.
    let three = start(data.path(), "inventory-3");
    let status = reserve(&client, &three.base, &acknowledged[0])
        .await
        .unwrap();
    assert_eq!(status, 201);
}
