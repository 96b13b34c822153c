//! Traces, logs, the dependency graph and per-service charts, as the control plane
//! serves them (`GET /v1/traces`, `/v1/traces/{trace_id}`, `/v1/logs`, `/v1/graph`,
//! `/v1/services/{name}/series`).
//!
//! Times are microseconds since the Unix epoch (`*_us`), durations microseconds, so
//! every number stays exact in JavaScript; latency figures are milliseconds (`*_ms`).
//! Trace ids are 32 lower-case hex digits, span ids 16.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One trace in a search result (`GET /v1/traces`), newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// 32 hex digits.
    pub trace_id: String,
    /// The service of the root span (the span without a parent), or of the earliest
    /// span while the root has not arrived.
    pub root_service: String,
    /// The root span's operation (its name).
    pub root_operation: String,
    /// When the earliest span started.
    pub start_us: i64,
    /// From the earliest start to the latest end.
    pub duration_us: i64,
    /// Spans stored.
    pub spans: u64,
    /// Whether any span has the error status.
    pub error: bool,
}

/// One span (`GET /v1/traces/{trace_id}` lists them in start order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// The parent span; none for a root span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// The service that reported it (`service.name`).
    pub service: String,
    /// The span's name.
    pub operation: String,
    /// `internal`, `server`, `client`, `producer`, `consumer` or `unspecified`.
    pub kind: String,
    /// When it started.
    pub start_us: i64,
    /// How long it took.
    pub duration_us: i64,
    /// `unset`, `ok` or `error`.
    pub status: String,
    /// The status description, for errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// The span's attributes (long values cut to the receiver's limit).
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// `GET /v1/traces/{trace_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// 32 hex digits.
    pub trace_id: String,
    /// Every stored span of the trace, by start time.
    pub spans: Vec<Span>,
}

/// One log record (`GET /v1/logs`, oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// The store's sequence number: later records have larger ones.
    pub id: i64,
    /// When it was written.
    pub time_us: i64,
    /// The service that wrote it.
    pub service: String,
    /// The instance, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `unspecified`.
    pub level: String,
    /// The message.
    pub body: String,
    /// The trace it belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The span it belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// Its attributes.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// A line of `GET /v1/logs?follow=true`: a record, or a keep-alive
/// (`{"keepalive": true}`) after a quiet while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogStreamLine {
    /// A record.
    Log(Box<LogLine>),
    /// Nothing new.
    KeepAlive {
        /// Always true.
        keepalive: bool,
    },
}

/// `GET /v1/graph`: services and the calls between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// The window the observed figures cover, in seconds.
    pub window_seconds: u64,
    /// Every service defined or seen, and `gateway` when it called anything.
    pub nodes: Vec<GraphNode>,
    /// Caller → callee.
    pub edges: Vec<GraphEdge>,
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    /// The service's name (`gateway` for the gateway).
    pub name: String,
    /// Whether the registry defines it.
    pub defined: bool,
    /// Requests it received per second over the window.
    pub rate: f64,
    /// The share of those answered 5xx, from 0 to 1.
    pub error_rate: f64,
}

/// An edge caller → callee: observed (calls counted in the window), declared
/// (`depends_on`), or both. Observed-only is an undeclared dependency; declared-only an
/// unused one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEdge {
    /// The caller (`gateway` for north-south traffic).
    pub from: String,
    /// The callee.
    pub to: String,
    /// Calls were counted in the window.
    pub observed: bool,
    /// The caller's `depends_on` lists the callee.
    pub declared: bool,
    /// Requests in the window.
    pub requests: u64,
    /// Requests per second over the window.
    pub rate: f64,
    /// The share answered 5xx, from 0 to 1.
    pub error_rate: f64,
    /// The median latency, when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// The 99th percentile latency, when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

/// `GET /v1/services/{name}/series`: what a service received, per 10-second step, for
/// charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSeries {
    /// The service.
    pub service: String,
    /// The step between points, in seconds.
    pub step_seconds: u64,
    /// Oldest first; a step without requests has a rate of 0 and no p99.
    pub points: Vec<SeriesPoint>,
}

/// One step of a [`ServiceSeries`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The step's start, in seconds since the Unix epoch.
    pub time_s: i64,
    /// Requests per second.
    pub rate: f64,
    /// 5xx answers per second.
    pub errors: f64,
    /// The 99th percentile latency, when there were requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}
