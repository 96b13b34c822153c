//! The telemetry pipeline's own Prometheus metrics. Counters are registered without
//! `_total` (the text encoder adds it); labels are small fixed sets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A kind of telemetry item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Spans (`POST /v1/traces`).
    Traces,
    /// Log records (`POST /v1/logs`).
    Logs,
    /// Metric data points (`POST /v1/metrics`).
    Metrics,
}

impl Signal {
    /// The label value: `spans`, `logs` or `metric_points`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Traces => "spans",
            Self::Logs => "logs",
            Self::Metrics => "metric_points",
        }
    }
}

/// Labels by signal.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SignalLabels {
    pub(crate) signal: &'static str,
}

/// Labels by signal and why.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    pub(crate) signal: &'static str,
    pub(crate) reason: &'static str,
}

/// Labels of an OTLP request: the signal and the HTTP status answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) signal: &'static str,
    pub(crate) code: u16,
}

/// Labels of a sampling decision.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DecisionLabels {
    pub(crate) decision: &'static str,
}

/// Every metric of the telemetry pipeline. Cheap to clone: clones share the values.
#[derive(Debug, Clone, Default)]
pub struct TelemetryMetrics {
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) received: Family<SignalLabels, Counter>,
    pub(crate) stored: Family<SignalLabels, Counter>,
    pub(crate) dropped: Family<ReasonLabels, Counter>,
    pub(crate) deleted: Family<ReasonLabels, Counter>,
    pub(crate) truncated: Counter,
    pub(crate) attributes_dropped: Counter,
    pub(crate) traces_sampled: Family<DecisionLabels, Counter>,
    pub(crate) store_bytes: Gauge,
    pub(crate) series: Gauge,
    pub(crate) export: crate::exporter::ExportMetrics,
}

impl TelemetryMetrics {
    /// Registers every metric in `registry` (the control plane gives a sub-registry
    /// prefixed `conway_telemetry`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "otlp_requests",
            "OTLP/HTTP requests received, by signal and HTTP status answered",
            self.requests.clone(),
        );
        registry.register(
            "received",
            "Spans, log records and metric data points decoded from OTLP requests or handed over in process",
            self.received.clone(),
        );
        registry.register(
            "stored",
            "Spans and log records written to the store",
            self.stored.clone(),
        );
        registry.register(
            "dropped",
            "Items not kept, by signal and reason (sampled_out, invalid, over_limit, queue_full, store_error, stale, not_delta, series_limit, ignored)",
            self.dropped.clone(),
        );
        registry.register(
            "deleted",
            "Records deleted by retention, by signal and reason (age, size)",
            self.deleted.clone(),
        );
        registry.register(
            "attributes_truncated",
            "Attribute values, names and log bodies cut to the receiver's length limit",
            self.truncated.clone(),
        );
        registry.register(
            "attributes_dropped",
            "Attributes dropped beyond the per-item limit",
            self.attributes_dropped.clone(),
        );
        registry.register(
            "traces_sampled",
            "Head-sampling decisions per trace (kept_rate, kept_share, kept_error, dropped)",
            self.traces_sampled.clone(),
        );
        registry.register(
            "store_bytes",
            "Bytes the telemetry store's pages in use take",
            self.store_bytes.clone(),
        );
        registry.register(
            "request_pairs",
            "Caller -> callee pairs held by the request counters",
            self.series.clone(),
        );
        self.export.register(registry);
        // The series a dashboard looks for first exist from the start, at zero.
        for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
            self.receive_items(signal, 0);
        }
        self.store_items(Signal::Traces, 0);
        self.store_items(Signal::Logs, 0);
        for (signal, reason) in [
            (Signal::Traces, "sampled_out"),
            (Signal::Traces, "invalid"),
            (Signal::Logs, "invalid"),
            (Signal::Logs, "queue_full"),
            (Signal::Metrics, "series_limit"),
        ] {
            self.dropped
                .get_or_create(&ReasonLabels {
                    signal: signal.label(),
                    reason,
                })
                .inc_by(0);
        }
    }

    pub(crate) fn drop_items(&self, signal: Signal, reason: &'static str, count: u64) {
        if count > 0 {
            self.dropped
                .get_or_create(&ReasonLabels {
                    signal: signal.label(),
                    reason,
                })
                .inc_by(count);
        }
    }

    pub(crate) fn receive_items(&self, signal: Signal, count: u64) {
        self.received
            .get_or_create(&SignalLabels {
                signal: signal.label(),
            })
            .inc_by(count);
    }

    pub(crate) fn store_items(&self, signal: Signal, count: u64) {
        self.stored
            .get_or_create(&SignalLabels {
                signal: signal.label(),
            })
            .inc_by(count);
    }

    pub(crate) fn delete_items(&self, signal: Signal, reason: &'static str, count: u64) {
        if count > 0 {
            self.deleted
                .get_or_create(&ReasonLabels {
                    signal: signal.label(),
                    reason,
                })
                .inc_by(count);
        }
    }

    pub(crate) fn decide(&self, decision: &'static str, traces: u64) {
        if traces > 0 {
            self.traces_sampled
                .get_or_create(&DecisionLabels { decision })
                .inc_by(traces);
        }
    }

    pub(crate) fn answer(&self, signal: Signal, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                signal: signal.label(),
                code,
            })
            .inc();
    }

    /// How many items of `signal` were dropped for `reason` (for tests and reports).
    pub fn dropped(&self, signal: Signal, reason: &'static str) -> u64 {
        self.dropped
            .get_or_create(&ReasonLabels {
                signal: signal.label(),
                reason,
            })
            .get()
    }

    /// How many items of `signal` were received.
    pub fn received(&self, signal: Signal) -> u64 {
        self.received
            .get_or_create(&SignalLabels {
                signal: signal.label(),
            })
            .get()
    }

    /// How many items of `signal` retention deleted for `reason` (`age` or `size`).
    pub fn deleted(&self, signal: Signal, reason: &'static str) -> u64 {
        self.deleted
            .get_or_create(&ReasonLabels {
                signal: signal.label(),
                reason,
            })
            .get()
    }

    /// How many values were cut to the length limit.
    pub fn truncated(&self) -> u64 {
        self.truncated.get()
    }

    /// How many traces got `decision` (`kept_rate`, `kept_share`, `kept_error`, `dropped`).
    pub fn sampled(&self, decision: &'static str) -> u64 {
        self.traces_sampled
            .get_or_create(&DecisionLabels { decision })
            .get()
    }

    /// Items of `signal` (`spans`, `logs`) forwarded to `[telemetry] otlp_endpoint`.
    pub fn export_sent(&self, signal: &'static str) -> u64 {
        self.export.sent_count(signal)
    }

    /// The store's size, as last measured.
    pub fn store_bytes(&self) -> i64 {
        self.store_bytes.get()
    }
}
