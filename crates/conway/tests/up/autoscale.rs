//! Autoscaling on in-flight requests, and `conway scale`.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conway_test_support::wait_for;
use parking_lot::Mutex;
use serde_json::Value;

use crate::support::{CONWAY, PATIENCE, Running, Up, header, http, service};

/// Closed-loop clients, each sending one request after another through the gateway,
/// counting the answers by the instance that gave them.
struct Load {
    stop: Arc<AtomicBool>,
    served: Arc<Mutex<BTreeMap<String, u64>>>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: &str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(BTreeMap::new()));
        let clients = (0..clients)
            .map(|_| {
                let (stop, served, url) = (stop.clone(), served.clone(), url.to_owned());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let (status, body) = http("GET", &url, None);
                        if status == 200 {
                            *served.lock().entry(body.trim().to_owned()).or_default() += 1;
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            served,
            clients,
        }
    }

    fn served_by(&self, instance: &str) -> u64 {
        self.served.lock().get(instance).copied().unwrap_or(0)
    }

    fn stop(mut self) -> BTreeMap<String, u64> {
        self.stop.store(true, Ordering::Relaxed);
        for client in std::mem::take(&mut self.clients) {
            let _ = client.join();
        }
        self.served.lock().clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn get_json(url: &str) -> Value {
    let (status, body) = http("GET", url, None);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

/// The `conway_autoscale_desired_replicas` of `service` on the control plane's metrics.
fn desired(up: &Running, service: &str) -> Option<u64> {
    let (_, metrics) = http("GET", &format!("{}/metrics", up.url("control_plane")), None);
    let prefix = format!("conway_autoscale_desired_replicas{{service=\"{service}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
}

#[test]
fn scales_an_io_bound_service_up_under_load_and_back_to_min_after_the_stable_window() {
    let manifest = format!(
        "{}[[gateway.routes]]\npath = \"/slow\"\nservice = \"slow\"\n\n{}",
        header(),
        service(
            "slow",
            &["delay", "50"],
            "autoscale = { min = 1, max = 3, target_inflight = 2, stable_window = \"4s\", panic_window = \"2s\" }",
        ),
    );
    let up = Up::start(&manifest, &[]);
    assert_eq!(up.healthy("slow"), ["slow-1"], "min replicas at start");
    let control_plane = up.url("control_plane");
    let load_url = format!("{control_plane}/v1/services/slow/load");
    let idle = get_json(&load_url);
    assert_eq!(idle["service"], "slow");
    assert_eq!(idle["breaker"], "closed");

    // Eight clients keep eight requests of 50 ms in flight: four times the target.
    let load = Load::start(&format!("{}/slow/work", up.url("gateway")), 8);
    let started = Instant::now();
    wait_for("the proxy to report the load", PATIENCE, || {
        let load = get_json(&load_url);
        load["inflight"].as_f64().unwrap_or(0.0) >= 4.0
            && load["proxies"][0]["proxy"]
                .as_str()
                .is_some_and(|p| p.starts_with("gateway-"))
    });
    wait_for("a second replica healthy and serving", PATIENCE, || {
        up.healthy("slow").contains(&"slow-2".to_owned()) && load.served_by("slow-2") > 0
    });
    let scaled_up_after = started.elapsed();
    assert!(
        desired(&up, "slow").is_some_and(|d| d >= 2),
        "the desired replicas metric"
    );
    up.wait_stderr("info: autoscaled slow from 1 to ");
    let served = load.stop();
    let stopped = Instant::now();
    assert!(served.get("slow-1").copied().unwrap_or(0) > 0, "{served:?}");
    assert!(served.get("slow-2").copied().unwrap_or(0) > 0, "{served:?}");

    wait_for("the service back at min", PATIENCE, || {
        up.instances("slow").len() == 1 && desired(&up, "slow") == Some(1)
    });
    let scaled_down_after = stopped.elapsed();
    assert_eq!(up.healthy("slow"), ["slow-1"]);
    // Down only once a stable window (4 s) has passed since the last busy second (the
    // load stopped within a second of it).
    assert!(
        scaled_down_after >= Duration::from_secs(3),
        "scaled down {scaled_down_after:?} after the load stopped"
    );
    eprintln!(
        "scaled up {scaled_up_after:?} after the load began; down {scaled_down_after:?} after it stopped"
    );
}

fn conway_scale(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(CONWAY)
        .arg("scale")
        .args(args)
        .env_remove("CONWAY_URL")
        .output()
        .expect("run conway scale");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn conway_scale_sets_replicas_and_says_why_it_cannot() {
    let manifest = format!(
        "{}{}[services.external]\naddress = \"127.0.0.1:9\"\n",
        header(),
        service("a", &[], "")
    );
    let up = Up::start(&manifest, &[]);
    let server = up.url("control_plane");
    let (code, stdout, stderr) = conway_scale(&["a", "2", "--server", &server]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "scaled a from 1 to 2 replicas\n");
    up.wait_healthy("a", &["a-1", "a-2"]);
    let (code, stdout, stderr) = conway_scale(&["a", "1", "--server", &server, "--output", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        answer,
        serde_json::json!({"service": "a", "replicas": 1, "previous": 2})
    );
    wait_for("a-2 gone", PATIENCE, || up.instances("a").len() == 1);

    let (code, _, stderr) = conway_scale(&["nope", "2", "--server", &server]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no service named \"nope\""), "{stderr}");
    let (code, _, stderr) = conway_scale(&["external", "2", "--server", &server]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no `run` command"), "{stderr}");

    // A control plane alone has no supervisor.
    let data = conway_test_support::temp_dir();
    let alone =
        conway_test_support::ControlPlane::start(std::path::Path::new(CONWAY), data.path(), &[]);
    let (code, _, stderr) = conway_scale(&["a", "2", "--server", &alone.url]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("runs no supervisor"), "{stderr}");
    // Nothing listening there any more: exit 3.
    let gone = alone.url.clone();
    drop(alone);
    let (code, _, stderr) = conway_scale(&["a", "2", "--server", &gone]);
    assert_eq!(code, Some(3), "{stderr}");
}
