//! One `conway up` per test: a manifest with a supervised `client` service (the Python
//! test service, whose `GET /env` shows what the supervisor gave it) that depends on
//! services the test serves itself, registered as external instances. The test then
//! calls those services as `client` would, with `client`'s own `http_proxy` and
//! `CONWAY_UPSTREAM_<DEPENDENCY>`.

use std::time::Duration;

use conway_test_support::up::Running;
use conway_test_support::wait_for;
use serde_json::Value;

/// How long a condition may take on a busy two-core machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// A running `conway up`, killed when dropped (its instances die with it).
pub(crate) struct Up(Running);

impl Up {
    /// Starts `conway up` on `services` (manifest tables; a `[system]`, a gateway on a
    /// free port and `[mesh] authorization = "audit"` are added) and waits for its
    /// ready line.
    pub(crate) fn start(services: &str) -> Self {
        let manifest = format!(
            "[system]\nname = \"test\"\n\n[gateway]\nlisten = \"127.0.0.1:0\"\n\n\
             [mesh]\nauthorization = \"audit\"\n\n{services}"
        );
        Self(
            conway_test_support::up::Up::launch_with(
                &manifest,
                &[],
                &["--otlp-listen", "127.0.0.1:0"],
            )
            .ready(),
        )
    }

    /// An address of its ready line (`control_plane`, `mesh`, `admin`…).
    pub(crate) fn url(&self, field: &str) -> String {
        self.0.url(field)
    }

    /// The control plane's JSON answer to `GET path`.
    pub(crate) fn plane(&self, path: &str) -> Value {
        let (status, body) = get(&format!("{}{path}", self.url("control_plane")));
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// Waits until `service` has `count` healthy instances.
    pub(crate) fn wait_healthy(&self, service: &str, count: usize) {
        wait_for(&format!("{count} healthy {service}"), PATIENCE, || {
            let instances = self.plane(&format!("/v1/services/{service}/instances?healthy=true"));
            instances.as_array().map_or(0, Vec::len) == count
        });
    }

    /// The environment the supervisor gave the first instance of `service` (the test
    /// service answers it on `GET /env`).
    pub(crate) fn environment(&self, service: &str) -> Value {
        self.wait_healthy(service, 1);
        let instances = self.plane(&format!("/v1/services/{service}/instances"));
        let port = instances[0]["port"].as_u64().expect("a port");
        let (status, body) = get(&format!("http://127.0.0.1:{port}/env"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("the environment as JSON")
    }

    /// The proxy's `/metrics` text (its admin listener).
    pub(crate) fn metrics(&self) -> String {
        let (status, body) = get(&format!("{}/metrics", self.url("admin")));
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// `[services.NAME]` for an external instance at `address`, checked by the control
/// plane over TCP every 100 ms, with `extra` lines.
pub(crate) fn external(name: &str, address: &str, extra: &str) -> String {
    format!(
        "[services.{name}]\naddresses = [{address:?}]\nhealth = {{ tcp = true, interval = \"100ms\" }}\n{extra}\n"
    )
}

/// `[services.client]`: the Python test service, depending on `depends_on`.
pub(crate) fn client(depends_on: &[&str]) -> String {
    format!(
        "[services.client]\nrun = [\"python3\", {:?}]\ndepends_on = {depends_on:?}\n\
         health = {{ tcp = true, interval = \"100ms\" }}\n\n",
        conway_test_support::TEST_SERVICE
    )
}

/// `GET url` over a fresh connection, no proxy: the status and body.
pub(crate) fn get(url: &str) -> (u16, String) {
    conway_test_support::up::http("GET", url, None)
}
