//! Conway's metrics as Prometheus itself reads them: `promtool check metrics` (the
//! format and its lint) on the `/metrics` of `conway server`, of `conway gateway`'s
//! admin listener and of both in `conway up`; then a real `prometheus` server scraping
//! `up` every second, whose API must show the targets up and a Conway counter that
//! traffic moved.
//!
//! Without `prometheus` and `promtool` (Debian's `prometheus` package) the tests say
//! why and pass — except in CI (`CI` set), where they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conway_test_support::up::{Running, Up};
use conway_test_support::{ControlPlane, Gateway, TEST_SERVICE, temp_dir, wait_for};
use serde_json::Value;

const CONWAY: &str = env!("CARGO_BIN_EXE_conway");

/// How long a condition may take on a busy machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// The Prometheus binaries, or `None` (after saying why) when a developer has not
/// installed them.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let find = |name: &str| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    };
    match (find("prometheus"), find("promtool")) {
        (Some(prometheus), Some(promtool)) => Some((prometheus, promtool)),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "prometheus and promtool are not installed; .ci/run installs Debian's `prometheus`"
            )
        }
        _ => {
            eprintln!(
                "skipped: prometheus and promtool are not installed (apt-get install prometheus)"
            );
            None
        }
    }
}

/// A `conway up` of one small service behind a gateway route.
fn up() -> Running {
    let manifest = format!(
        "[system]\nname = \"metrics\"\n\n[gateway]\nlisten = \"127.0.0.1:0\"\n\n\
         [[gateway.routes]]\npath = \"/hello\"\nservice = \"hello\"\n\n\
         [services.hello]\nrun = [\"python3\", {TEST_SERVICE:?}]\nreplicas = 2\n\
         health = {{ tcp = true, interval = \"200ms\" }}\n"
    );
    Up::launch_with(&manifest, &[], &["--otlp-listen", "127.0.0.1:0"]).ready()
}

/// `GET url`: the status and body.
fn get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    })
}

/// Requests through the gateway, each answered 200.
fn traffic(gateway: &str, requests: usize) {
    for _ in 0..requests {
        let (status, body) = get(&format!("{gateway}/hello/x"));
        assert_eq!(status, 200, "{body}");
    }
}

/// `promtool check metrics` on what `url` serves: no error and no lint finding.
fn check_metrics(promtool: &Path, url: &str) -> String {
    let (status, text) = get(url);
    assert_eq!(status, 200, "{url}: {text}");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics on {url} ({}):\n{said}\n--- the metrics ---\n{text}",
        output.status
    );
    text
}

#[test]
fn promtool_finds_nothing_to_fix_in_any_metrics_endpoint() {
    let Some((_, promtool)) = tools() else {
        return;
    };
    let dir = temp_dir();
    // `conway server` and `conway gateway` apart, after some traffic (a route to a
    // service without instances answers 503, which counts too).
    let manifest = dir.path().join("server.toml");
    std::fs::write(
        &manifest,
        "[[gateway.routes]]\npath = \"/nobody\"\nservice = \"nobody\"\n\n[services.nobody]\nrun = [\"x\"]\n",
    )
    .expect("manifest");
    let server = ControlPlane::start(
        Path::new(CONWAY),
        &dir.path().join("server"),
        &[
            "-f",
            manifest.to_str().expect("UTF-8"),
            "--otlp-listen",
            "127.0.0.1:0",
        ],
    );
    let gateway = Gateway::start(Path::new(CONWAY), &server.url, &dir.path().join("gw"), &[]);
    let (status, _) = get(&format!("{}/v1/services", server.url));
    assert_eq!(status, 200);
    let (status, _) = get(&format!("{}/nobody/x", gateway.url));
    assert_eq!(status, 503);
    let text = check_metrics(&promtool, &format!("{}/metrics", server.url));
    assert!(text.contains("conway_api_requests_total{"), "{text}");
    let text = check_metrics(&promtool, &format!("{}/metrics", gateway.admin));
    assert!(text.contains("conway_proxy_requests_total{"), "{text}");

    // `conway up`: the control plane and the proxy's admin listener, after traffic.
    let up = up();
    traffic(&up.url("gateway"), 5);
    let text = check_metrics(&promtool, &format!("{}/metrics", up.url("control_plane")));
    assert!(
        text.contains("conway_registry_healthy_instances 2"),
        "{text}"
    );
    let text = check_metrics(&promtool, &format!("{}/metrics", up.url("admin")));
    assert!(
        text.contains("conway_proxy_endpoint_requests_total{"),
        "{text}"
    );
}

/// A `prometheus` server with its own folder, killed (and its folder removed) on drop.
struct Prometheus {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `binary` scraping `targets` (job name, `host:port`) every second.
    fn start(binary: &Path, targets: &[(&str, String)]) -> Self {
        let dir = temp_dir();
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (job, target) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write the configuration");
        // Prometheus cannot listen on port 0: take a free port and let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/...`'s `data`, or `None` while Prometheus is not answering.
    fn api(&self, path_and_query: &str) -> Option<Value> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let url = format!("{}/api/v1/{path_and_query}", self.url);
        let body = runtime.block_on(async {
            let response = reqwest::Client::new()
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            response.text().await.ok()
        })?;
        let answer: Value = serde_json::from_str(&body).ok()?;
        (answer["status"] == "success").then(|| answer["data"].clone())
    }

    /// The value of the instant query `expr`'s first sample.
    fn query(&self, expr: &str) -> Option<f64> {
        let data = self.api(&format!("query?query={}", encode(expr)))?;
        data["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- prometheus's log ---\n{}", self.log());
        }
    }
}

/// Percent-encodes a query parameter's value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_real_prometheus_scrapes_up_and_sees_traffic() {
    let Some((binary, _)) = tools() else {
        return;
    };
    let up = up();
    let host = |url: String| url.trim_start_matches("http://").to_owned();
    let control_plane = host(up.url("control_plane"));
    let admin = host(up.url("admin"));
    let prometheus = Prometheus::start(
        &binary,
        &[
            ("conway-control-plane", control_plane.clone()),
            ("conway-proxy", admin.clone()),
        ],
    );
    let started = Instant::now();
    wait_for("prometheus to find both targets up", PATIENCE, || {
        let Some(data) = prometheus.api("targets") else {
            return false;
        };
        let targets = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let up: Vec<&str> = targets
            .iter()
            .filter(|t| t["health"] == "up")
            .filter_map(|t| t["scrapeUrl"].as_str())
            .collect();
        targets.len() == 2 && up.len() == 2
    });
    eprintln!("targets up after {:?}", started.elapsed());
    let targets = prometheus.api("targets").expect("targets");
    let mut scraped: Vec<String> = targets["activeTargets"]
        .as_array()
        .expect("activeTargets")
        .iter()
        .map(|t| t["scrapeUrl"].as_str().unwrap_or_default().to_owned())
        .collect();
    scraped.sort();
    let mut expected = vec![
        format!("http://{control_plane}/metrics"),
        format!("http://{admin}/metrics"),
    ];
    expected.sort();
    assert_eq!(scraped, expected);
    // Prometheus itself finds both endpoints' metrics with their types.
    assert_eq!(
        prometheus.query("up{job=\"conway-control-plane\"}"),
        Some(1.0)
    );

    traffic(&up.url("gateway"), 7);
    let requests = "sum(conway_proxy_requests_total{service=\"hello\",class=\"2xx\"})";
    wait_for("prometheus to see the 7 requests", PATIENCE, || {
        prometheus.query(requests).is_some_and(|n| n >= 7.0)
    });
    assert_eq!(prometheus.query(requests), Some(7.0));
    let healthy = "conway_registry_healthy_instances";
    wait_for("prometheus to see 2 healthy instances", PATIENCE, || {
        prometheus.query(healthy) == Some(2.0)
    });
    // A histogram Prometheus can take a quantile of.
    let p99 = "histogram_quantile(0.99, sum by (le) (conway_proxy_request_duration_seconds_bucket{service=\"hello\"}))";
    let latency = prometheus.query(p99).expect("a p99");
    assert!(latency > 0.0 && latency <= 10.0, "p99 {latency}");
}
