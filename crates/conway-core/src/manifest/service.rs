//! `[services.NAME]`: what a service is, how it runs, and the policies around it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::string_or_table::table_only;

pub use super::resilience::{
    Balancer, CircuitBreaker, Outlier, Resilience, Retries, RetryCondition,
};
use crate::units::{Duration, Share};

/// One service: a business capability, its own process and its own data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Service {
    /// What the service does, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The team that owns the service and answers for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The version that `run` starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The command (argv) that builds the service; identical build commands run once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Vec<String>>,
    /// The command (argv) that runs one instance; `$PORT` and the other instance
    /// variables expand. A service without `run` is external.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Vec<String>>,
    /// The folder `build` and `run` execute in, relative to the manifest; default: the
    /// manifest's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Extra environment variables for each instance.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The services this one calls; the mesh lets it call these (see `[mesh]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// How many instances to run (default 1); with `autoscale`, the starting count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Scale on in-flight requests between `min` and `max` instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    /// The zone the instances run in, for zone-aware balancing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// How instances are checked; default: a TCP connect to the instance's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Traffic shares by version (`{ "1.4.0" = "90%", "1.5.0" = "10%" }`), adding up to 100%.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub split: BTreeMap<String, Share>,
    /// An external service's one instance, `HOST:PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// An external service's instances, each `HOST:PORT`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// The HTTP version spoken to the instances.
    #[serde(default)]
    pub protocol: Protocol,
    /// Timeouts, retries, circuit breaking, outlier ejection, concurrency and balancing.
    #[serde(default)]
    pub resilience: Resilience,
    /// Faults injected into every request to this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
}

impl Service {
    /// The number of instances started when `replicas` is not given.
    pub const DEFAULT_REPLICAS: u32 = 1;

    /// Whether the service runs elsewhere (it has no `run` command).
    pub fn is_external(&self) -> bool {
        self.run.is_none()
    }

    /// How many instances to start.
    pub fn replicas(&self) -> u32 {
        self.replicas
            .or(self.autoscale.as_ref().map(|a| a.min))
            .unwrap_or(Self::DEFAULT_REPLICAS)
    }

    /// The health check in force: the declared one, or the default TCP connect.
    pub fn health(&self) -> Health {
        self.health.clone().unwrap_or_default()
    }
}

/// The upstream HTTP version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// As the client spoke (gRPC stays HTTP/2).
    #[default]
    Auto,
    /// Always HTTP/1.1.
    Http1,
    /// Always HTTP/2 (h2c without TLS).
    Http2,
}

/// Scaling on in-flight requests, in the style of Knative's autoscaler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Autoscale {
    /// Never fewer instances than this; at least 1 (no scaling to zero).
    #[serde(default = "Autoscale::default_min")]
    pub min: u32,
    /// Never more instances than this.
    pub max: u32,
    /// The in-flight requests each instance should carry on average.
    #[serde(default = "Autoscale::default_target_inflight")]
    pub target_inflight: u32,
    /// Load is averaged over this window; scaling down waits for it.
    #[serde(default = "Autoscale::default_stable_window")]
    pub stable_window: Duration,
    /// When load over this short window reaches twice the target per ready instance,
    /// scale up at once (panic mode, which never scales down); at least 1s.
    #[serde(default = "Autoscale::default_panic_window")]
    pub panic_window: Duration,
}

impl Autoscale {
    fn default_min() -> u32 {
        1
    }

    fn default_target_inflight() -> u32 {
        10
    }

    fn default_stable_window() -> Duration {
        Duration::from_secs(60)
    }

    fn default_panic_window() -> Duration {
        Duration::from_secs(6)
    }
}

/// How an instance is checked: an HTTP GET that must answer 2xx, or a TCP connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Health {
    /// GET this path; any 2xx answer passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Connect over TCP; a connection passes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    /// Time between checks.
    #[serde(default = "Health::default_interval")]
    pub interval: Duration,
    /// How long one check may take; default: 500ms, or the interval if that is shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Consecutive passes that make a failing instance healthy again.
    #[serde(default = "Health::default_healthy_threshold")]
    pub healthy_threshold: u32,
    /// Consecutive failures that make a healthy instance unhealthy.
    #[serde(default = "Health::default_unhealthy_threshold")]
    pub unhealthy_threshold: u32,
}

impl Health {
    fn default_interval() -> Duration {
        Duration::from_secs(1)
    }

    /// The timeout when none is given.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

    /// How long one check may take: `timeout`, or the default bounded by the interval.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .unwrap_or(Self::DEFAULT_TIMEOUT.min(self.interval))
    }

    fn default_healthy_threshold() -> u32 {
        1
    }

    fn default_unhealthy_threshold() -> u32 {
        2
    }
}

impl Default for Health {
    fn default() -> Self {
        Self {
            http: None,
            tcp: true,
            interval: Self::default_interval(),
            timeout: None,
            healthy_threshold: Self::default_healthy_threshold(),
            unhealthy_threshold: Self::default_unhealthy_threshold(),
        }
    }
}

/// Faults injected into requests, for chaos experiments and resilience tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Faults {
    /// Hold a share of requests for a while before sending them on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
    /// Answer a share of requests at once with an error status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
}

/// A delay fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Delay {
    /// The percentage of requests delayed, from 0 to 100.
    pub percent: f64,
    /// How long each is held.
    pub duration: Duration,
}

/// An abort fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Abort {
    /// The percentage of requests aborted, from 0 to 100.
    pub percent: f64,
    /// The HTTP status they are answered with (400 to 599).
    pub status: u16,
}

table_only!(Service, Autoscale, Health, Faults, Delay, Abort);
