//! Conway's telemetry: traces, logs and request counters, stored in one place with no
//! other infrastructure.
//!
//! - [`Telemetry::receive`] is the OTLP/HTTP receiver's logic (protobuf and JSON,
//!   traces, logs and metrics) without the HTTP server: the control plane serves it on
//!   its own port and sends back the [`OtlpResponse`] it returns.
//! - The [`Store`] keeps spans and logs in SQLite (WAL) in `DATA_DIR/telemetry/`,
//!   bounded by age and size (the manifest's `[telemetry]`), surviving restarts.
//! - Spans are sampled at the head: every trace up to a rate per service, then a
//!   share; errors always ([`sampling`](crate::sampling)).
//! - [`Counters`] see every request (never sampled) through the `conway.requests` and
//!   `conway.request.duration` metrics the proxies push, and give the dependency graph
//!   and the charts.
//! - [`Exporter`] is the other side of OTLP: the proxy sends spans and request counts
//!   with it, and the control plane forwards to `[telemetry] otlp_endpoint` with it.
//! - [`LogSink`] takes the supervisor's captured output lines.
//!
//! It knows nothing of HTTP serving, as ARCHITECTURE.md asks.

mod clock;
mod config;
pub mod counters;
mod exporter;
mod metrics;
mod model;
pub mod otlp;
mod sampling;
mod sink;
pub mod store;
mod telemetry;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use config::{Limits, SamplingConfig, TelemetryConfig};
pub use counters::Counters;
pub use exporter::{ExportMetrics, Exporter, ExporterError, ExporterOptions};
pub use metrics::{Signal, TelemetryMetrics};
pub use model::{
    IdError, Level, LogRecord, SpanId, SpanKind, SpanRecord, SpanStatus, TraceId, from_unix_micros,
    from_unix_nanos, unix_micros, unix_nanos,
};
pub use otlp::{Encoding, OtlpResponse};
pub use sink::LogSink;
pub use store::{LogQuery, Store, StoreError, TraceQuery};
pub use telemetry::{IngestPermit, Telemetry, TelemetryTasks};
