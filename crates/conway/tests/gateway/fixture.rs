//! A whole system for one test: a manifest, a control plane, a gateway, and helpers to
//! speak to them and wait for what they say.

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use conway_test_support::upstream::Upstream;
use conway_test_support::{ControlPlane, Gateway, temp_dir};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The binary under test.
pub(crate) fn conway() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_conway"))
}

/// How long a condition may take to hold on a busy two-core machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// `[services.NAME]` for external instances at these servers' addresses, checked by the
/// control plane every 100 ms on `/health`, with `extra` lines appended to the table.
pub(crate) fn external(name: &str, servers: &[&Upstream], extra: &str) -> String {
    let addresses: Vec<String> = servers
        .iter()
        .map(|s| format!("{:?}", s.address()))
        .collect();
    format!(
        "[services.{name}]\naddresses = [{}]\nhealth = {{ http = \"/health\", interval = \"100ms\" }}\n{extra}\n",
        addresses.join(", ")
    )
}

/// A control plane loaded with a manifest, and a gateway following it.
#[derive(Debug)]
pub(crate) struct System {
    // Dropped in this order: the gateway goes before the control plane it follows.
    pub(crate) gateway: Gateway,
    pub(crate) plane: ControlPlane,
    pub(crate) http: reqwest::Client,
    /// Holds the manifest and both data folders.
    _dir: TempDir,
}

impl System {
    /// Starts both with `manifest` (a `[system]` table is added), and waits until every
    /// declared instance is routable through the gateway.
    pub(crate) async fn start(manifest: &str) -> Self {
        let system = Self::start_unchecked(manifest);
        system.wait_all_healthy().await;
        system
    }

    /// Starts both without waiting for any instance.
    pub(crate) fn start_unchecked(manifest: &str) -> Self {
        let dir = temp_dir();
        let path = dir.path().join("conway.toml");
        std::fs::write(&path, format!("[system]\nname = \"test\"\n\n{manifest}"))
            .expect("write the manifest");
        let manifest = path.to_str().expect("UTF-8 path");
        let plane = ControlPlane::start(conway(), &dir.path().join("plane"), &["-f", manifest]);
        let gateway = Gateway::start(
            conway(),
            &plane.url,
            &dir.path().join("gateway"),
            &["--threads", "2"],
        );
        Self {
            plane,
            gateway,
            http: client(),
            _dir: dir,
        }
    }

    /// The gateway's URL for `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url)
    }

    /// The gateway's `host:port`.
    pub(crate) fn address(&self) -> String {
        self.gateway.url.trim_start_matches("http://").to_owned()
    }

    /// `GET path` through the gateway.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The control plane's JSON answer to `GET path`.
    pub(crate) async fn plane_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.plane.url))
            .send()
            .await
            .expect("the control plane answers")
            .json()
            .await
            .expect("JSON")
    }

    /// Sends `body` as JSON to the control plane with `method`; returns the status.
    pub(crate) async fn plane_send(&self, method: reqwest::Method, path: &str, body: Value) -> u16 {
        self.http
            .request(method, format!("{}{path}", self.plane.url))
            .json(&body)
            .send()
            .await
            .expect("the control plane answers")
            .status()
            .as_u16()
    }

    /// Registers an instance of `service` at `server` with `version`, checked by the
    /// control plane; returns its id.
    pub(crate) async fn register(&self, service: &str, server: &Upstream, version: &str) -> String {
        let response = self
            .http
            .post(format!(
                "{}/v1/services/{service}/instances",
                self.plane.url
            ))
            .json(&json!({
                "address": "127.0.0.1",
                "port": server.port(),
                "version": version,
                "ttl": "60s",
            }))
            .send()
            .await
            .expect("the control plane answers");
        assert_eq!(response.status(), 201, "registering {service}");
        let instance: Value = response.json().await.expect("JSON");
        instance["id"].as_str().expect("an id").to_owned()
    }

    /// Registers an instance of `service` at `port` that the test vouches for: checked
    /// by its registrant, reported healthy at once, whether anything listens or not.
    pub(crate) async fn register_healthy(&self, service: &str, port: u16) -> String {
        let response = self
            .http
            .post(format!(
                "{}/v1/services/{service}/instances",
                self.plane.url
            ))
            .json(&json!({
                "address": "127.0.0.1",
                "port": port,
                "ttl": "60s",
                "checked_by": "registrant",
            }))
            .send()
            .await
            .expect("the control plane answers");
        assert_eq!(response.status(), 201, "registering {service}");
        let instance: Value = response.json().await.expect("JSON");
        let id = instance["id"].as_str().expect("an id").to_owned();
        let status = self
            .plane_send(
                reqwest::Method::PUT,
                &format!("/v1/instances/{id}/health"),
                json!({ "state": "healthy" }),
            )
            .await;
        assert_eq!(status, 200, "reporting {id} healthy");
        id
    }

    /// The instances of `service` the control plane holds, by state.
    pub(crate) async fn states(&self, service: &str) -> Vec<(String, String)> {
        let instances = self
            .plane_json(&format!("/v1/services/{service}/instances"))
            .await;
        instances
            .as_array()
            .expect("a list")
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap_or_default().to_owned(),
                    i["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Waits until every instance of every service is healthy, then until the gateway
    /// has caught up.
    pub(crate) async fn wait_all_healthy(&self) {
        eventually("every instance healthy", || async {
            let services = self.plane_json("/v1/services").await;
            services
                .as_array()
                .expect("a list")
                .iter()
                .all(|service| service["healthy"] == service["instances"])
        })
        .await;
        self.sync().await;
    }

    /// Waits until `service` has exactly `healthy` healthy instances, then until the
    /// gateway has caught up.
    pub(crate) async fn wait_healthy(&self, service: &str, healthy: usize) {
        eventually(
            &format!("{healthy} healthy instances of {service}"),
            || async {
                let states = self.states(service).await;
                states.iter().filter(|(_, s)| s == "healthy").count() == healthy
            },
        )
        .await;
        self.sync().await;
    }

    /// Waits until the gateway's table holds the control plane's current revision.
    pub(crate) async fn sync(&self) {
        let target = self.plane_json("/v1/config").await["revision"]
            .as_i64()
            .expect("a revision");
        eventually(&format!("the gateway at revision {target}"), || async {
            self.gateway_revision().await >= target
        })
        .await;
    }

    /// The revision of the gateway's table.
    pub(crate) async fn gateway_revision(&self) -> i64 {
        let health: Value = self
            .http
            .get(format!("{}/healthz", self.gateway.admin))
            .send()
            .await
            .expect("the admin listener answers")
            .json()
            .await
            .expect("JSON");
        health["revision"].as_i64().expect("a revision")
    }

    /// The gateway's `/metrics` text.
    pub(crate) async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.gateway.admin))
            .send()
            .await
            .expect("the admin listener answers")
            .text()
            .await
            .expect("text")
    }

    /// Sends `count` GETs for `path`, `parallel` at a time; the `x-served-by` of each
    /// answer (or `"STATUS"` for anything but 200).
    pub(crate) async fn spread(&self, path: &str, count: usize, parallel: usize) -> Vec<String> {
        let mut served = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(parallel) {
            let answers = futures_util::future::join_all(chunk.iter().map(|_| self.get(path)));
            for response in answers.await {
                served.push(served_by(&response));
            }
        }
        served
    }
}

/// A loopback port where nothing listens (bound, then released).
pub(crate) fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("bound").port()
}

/// Who served a response: its `x-served-by`, or its status if not 200.
pub(crate) fn served_by(response: &reqwest::Response) -> String {
    if response.status() != 200 {
        return response.status().as_u16().to_string();
    }
    response
        .headers()
        .get("x-served-by")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned()
}

/// How many of `served` are `name`.
pub(crate) fn count(served: &[String], name: &str) -> usize {
    served.iter().filter(|s| *s == name).count()
}

/// A client that never uses a proxy from the environment.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client")
}

/// The JSON error of a gateway answer: its `error.code`.
pub(crate) async fn error_code(response: reqwest::Response) -> String {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/json", "an error in JSON");
    let body: Value = response.json().await.expect("a JSON error");
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_owned()
}

/// Waits until `condition` holds, checking every 20 ms, for at most [`PATIENCE`].
pub(crate) async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a raw exchange got: the bytes read, and whether the server closed the
/// connection (rather than the read timing out).
#[derive(Debug)]
pub(crate) struct RawAnswer {
    pub(crate) text: String,
    pub(crate) closed: bool,
}

impl RawAnswer {
    /// The status code of the first answer, if there is one.
    pub(crate) fn status(&self) -> Option<u16> {
        self.text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }

    /// The body of the first answer (what follows the blank line).
    pub(crate) fn body(&self) -> &str {
        self.text
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }
}

/// Writes `request` on a new connection to `address` and reads until the server closes
/// the connection or `timeout` passes.
pub(crate) fn raw(address: &str, request: &[u8], timeout: Duration) -> RawAnswer {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(timeout)).expect("a timeout");
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buffer = [0; 8192];
    let closed = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    RawAnswer {
        text: String::from_utf8_lossy(&answer).into_owned(),
        closed,
    }
}
