//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use conway_registry::registry::Registry;

use crate::metrics::Metrics;

/// The control plane's shared state. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) registry: Registry,
    pub(crate) metrics: Arc<Metrics>,
    /// How long a quiet watch (or log follow) waits before a keep-alive line.
    pub(crate) keepalive: Duration,
    /// Traces, logs and request counters.
    pub(crate) telemetry: conway_telemetry::Telemetry,
    /// The proxies' latest load reports.
    pub(crate) load: Arc<crate::load::LoadBoard>,
}
