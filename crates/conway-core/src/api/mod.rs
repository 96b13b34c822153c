//! The control plane's HTTP API as types: the JSON bodies that the server reads and
//! writes and that the client parses. Request bodies reject unknown fields.

mod config;
mod instance;
mod load;
mod operations;
mod telemetry;
mod watch;

use serde::{Deserialize, Serialize};

pub use config::{ConfigSnapshot, ServiceView};
pub use instance::{
    CheckedBy, Instance, InstanceState, RegisterInstance, ReportHealth, is_instance_id,
};
pub use load::{
    BreakerState, LoadReport, ProxyLoad, ScaleAnswer, ScaleRequest, ServiceLoad, ServiceLoadReport,
};
pub use operations::{
    Applied, ApplyRequest, ChaosJob, ChaosJobState, ChaosKillRequest, DEFAULT_HEALTH_TIMEOUT,
    DeployRequest, DeployState, Deployment, Split, SystemEvent,
};
pub use telemetry::{
    Graph, GraphEdge, GraphNode, LogLine, LogStreamLine, SeriesPoint, ServiceSeries, Span, Trace,
    TraceSummary,
};
pub use watch::{WatchEvent, WatchKind, WatchLine, WatchOp};

/// Every API error: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A machine-readable code (`not_found`, `invalid_request`, `compacted`…) and a message
/// for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, for programs.
    pub code: String,
    /// Says what is wrong and, where it helps, how to fix it.
    pub message: String,
}

/// The answer to `POST /v1/instances/{id}/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The instance.
    pub id: String,
    /// The lease's full TTL, renewed from now.
    pub ttl: crate::units::Duration,
}

/// The ready line that long-running components print on stdout once they serve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyLine {
    /// Always true.
    pub ready: bool,
    /// The control plane's API, `http://ADDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<String>,
    /// The OTLP/HTTP receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<String>,
    /// The gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<String>,
    /// The gateway's HTTPS listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_tls: Option<String>,
    /// The mesh proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    /// A proxy's admin listener (`/healthz`, `/metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
}
