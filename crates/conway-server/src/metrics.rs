//! The control plane's own Prometheus metrics (text format 0.0.4).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry as MetricsRegistry;

/// Labels of an API request: the route template (never the raw path) and the status class.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) status: String,
}

/// The metrics, registered once.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: MetricsRegistry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) watchers: Gauge,
    pub(crate) watch_events: Counter,
    pub(crate) watchers_cut_off: Counter,
    pub(crate) services: Gauge,
    pub(crate) instances: Gauge,
    pub(crate) healthy_instances: Gauge,
    pub(crate) revision: Gauge,
}

impl Metrics {
    /// The control plane's metrics, with the telemetry pipeline's under
    /// `conway_telemetry_`.
    pub(crate) fn new(telemetry: &conway_telemetry::TelemetryMetrics) -> Self {
        let mut registry = MetricsRegistry::with_prefix("conway");
        let metrics = Self {
            requests: Family::default(),
            watchers: Gauge::default(),
            watch_events: Counter::default(),
            watchers_cut_off: Counter::default(),
            services: Gauge::default(),
            instances: Gauge::default(),
            healthy_instances: Gauge::default(),
            revision: Gauge::default(),
            registry: MetricsRegistry::default(),
        };
        registry.register(
            "api_requests",
            "Control-plane API requests by route and status",
            metrics.requests.clone(),
        );
        registry.register(
            "watchers",
            "Watch streams open now",
            metrics.watchers.clone(),
        );
        registry.register(
            "watch_events",
            "Change events sent to watchers",
            metrics.watch_events.clone(),
        );
        registry.register(
            "watchers_cut_off",
            "Watchers disconnected for reading too slowly",
            metrics.watchers_cut_off.clone(),
        );
        registry.register(
            "registry_services",
            "Services defined",
            metrics.services.clone(),
        );
        registry.register(
            "registry_instances",
            "Instances registered",
            metrics.instances.clone(),
        );
        registry.register(
            "registry_healthy_instances",
            "Instances whose checks pass",
            metrics.healthy_instances.clone(),
        );
        registry.register(
            "registry_revision",
            "The registry's current revision",
            metrics.revision.clone(),
        );
        telemetry.register(registry.sub_registry_with_prefix("telemetry"));
        Self {
            registry,
            ..metrics
        }
    }

    /// The metrics in Prometheus text format 0.0.4.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}
