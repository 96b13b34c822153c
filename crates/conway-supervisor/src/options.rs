//! The supervisor's run-time settings (the manifest says what runs; these say how).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::logs::{LogOptions, LogSink};
use crate::process::Launcher;
use crate::restart::RestartPolicy;

/// How the supervisor runs what the manifest declares.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// The data folder; each service gets `services/<service>/` in it (`DATA_DIR`).
    pub data_dir: PathBuf,
    /// The address instances listen on and are registered at.
    pub address: IpAddr,
    /// How long a stopped instance may take to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// How long after its deregistration an instance being stopped gets SIGTERM: time
    /// for the proxies to see it gone and finish what they sent it (a rolling deploy
    /// with no failed request needs it).
    pub drain: Duration,
    /// The registration's lease; heartbeats renew it every third of it.
    pub ttl: Duration,
    /// How long a service waits for its dependencies to have a healthy instance before
    /// it starts anyway (saying which is not ready).
    pub dependency_timeout: Duration,
    /// Restarts and crash loops.
    pub restart: RestartPolicy,
    /// Output capture limits.
    pub logs: LogOptions,
    /// Where captured lines go, besides each instance's ring.
    pub sinks: Vec<Arc<dyn LogSink>>,
    /// How processes are started.
    pub launcher: Launcher,
    /// The mesh listener: when set, instances get `http_proxy`/`HTTP_PROXY` with their
    /// token.
    pub mesh: Option<SocketAddr>,
    /// Per service, one listener per dependency (`CONWAY_UPSTREAM_<DEPENDENCY>`): the
    /// hook for the mesh's dedicated upstream listeners.
    pub upstreams: BTreeMap<String, BTreeMap<String, SocketAddr>>,
    /// The OTLP/HTTP receiver's URL (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp: Option<String>,
}

impl SupervisorOptions {
    /// The default settings, with `data_dir` as the data folder.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            stop_grace: Duration::from_secs(10),
            drain: Duration::from_millis(250),
            ttl: Duration::from_secs(10),
            dependency_timeout: Duration::from_secs(60),
            restart: RestartPolicy::default(),
            logs: LogOptions::default(),
            sinks: Vec::new(),
            launcher: Launcher::Direct,
            mesh: None,
            upstreams: BTreeMap::new(),
            otlp: None,
        }
    }

    /// A service's data folder.
    pub fn service_dir(&self, service: &str) -> PathBuf {
        self.data_dir.join("services").join(service)
    }
}
