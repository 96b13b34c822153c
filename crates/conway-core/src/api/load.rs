//! Load: what each proxy reports about the requests it has in flight per service
//! (`PUT /v1/proxies/{proxy}/load`), what the control plane answers about one service
//! (`GET /v1/services/{name}/load`), and scaling (`POST /v1/services/{name}/scale`).

use serde::{Deserialize, Serialize};

/// Where a service's circuit breaker stands, as one proxy sees it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow (also: the service declares no breaker).
    #[default]
    Closed,
    /// A few probe requests test the service.
    HalfOpen,
    /// Requests fail fast.
    Open,
}

/// `PUT /v1/proxies/{proxy}/load`: one proxy's report, sent every `interval_ms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadReport {
    /// How often this proxy reports; a report older than three intervals (and at least
    /// three seconds) has expired.
    pub interval_ms: u64,
    /// Each service the proxy knows.
    pub services: Vec<ServiceLoadReport>,
}

/// One service in a proxy's [`LoadReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLoadReport {
    /// The service.
    pub service: String,
    /// Requests in flight to it, averaged over the last interval.
    pub inflight: f64,
    /// Requests in flight to it when the report was made.
    pub current: u64,
    /// Its circuit breaker.
    #[serde(default)]
    pub breaker: BreakerState,
}

/// `GET /v1/services/{name}/load`: the latest unexpired report of every proxy, summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLoad {
    /// The service.
    pub service: String,
    /// Requests in flight, averaged over each proxy's last interval, summed over proxies.
    pub inflight: f64,
    /// Requests in flight when each proxy last reported, summed.
    pub current: u64,
    /// The worst breaker state any proxy reports (open, then half-open, then closed).
    pub breaker: BreakerState,
    /// Each proxy's latest report about the service.
    pub proxies: Vec<ProxyLoad>,
}

/// One proxy's part of a [`ServiceLoad`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyLoad {
    /// The proxy (`gateway-HOST-PID`, `mesh-HOST-PID`).
    pub proxy: String,
    /// Its in-flight requests, averaged over its last interval.
    pub inflight: f64,
    /// Its in-flight requests when it reported.
    pub current: u64,
    /// Its view of the breaker.
    pub breaker: BreakerState,
    /// When the control plane received the report, in milliseconds since the Unix epoch.
    pub reported_at_ms: u64,
}

/// `POST /v1/services/{name}/scale`'s body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// The replicas wanted.
    pub replicas: u32,
}

/// `POST /v1/services/{name}/scale`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleAnswer {
    /// The service.
    pub service: String,
    /// The replicas now wanted.
    pub replicas: u32,
    /// The replicas wanted before.
    pub previous: u32,
}
