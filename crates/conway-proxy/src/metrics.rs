//! The proxy's Prometheus metrics: RED per route and service, and per endpoint.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use hyper::StatusCode;
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::balance::Endpoint;

/// Labels of a request: the route's name (never the raw path), the service, and the
/// status class.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's name, or the caller for mesh traffic.
    pub route: String,
    /// The service.
    pub service: String,
    /// `2xx` … `5xx`.
    pub class: String,
}

/// Labels of a try: the service and the instance.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// The service.
    pub service: String,
    /// The instance id.
    pub endpoint: String,
}

/// Labels of a call between services.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The calling service.
    pub caller: String,
    /// The service called.
    pub callee: String,
}

/// Labels by service alone.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// The service.
    pub service: String,
}

/// Every metric of a proxy.
#[derive(Debug)]
pub struct ProxyMetrics {
    registry: Registry,
    /// Requests answered, by route, service and status class.
    pub requests: Family<RequestLabels, Counter>,
    /// Time to the response head, by route and service.
    pub duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    /// Requests sent to each endpoint.
    pub endpoint_requests: Family<EndpointLabels, Counter>,
    /// Retries, by service.
    pub retries: Family<ServiceLabels, Counter>,
    /// Calls outside `depends_on`, by caller and callee.
    pub undeclared_calls: Family<CallLabels, Counter>,
    /// Handles of the request metrics, by route and service, so that a request finds
    /// its series without building labels.
    handles: RwLock<HashMap<Arc<str>, ByService>>,
}

/// Request metrics of one route, by service.
type ByService = HashMap<Arc<str>, Arc<RequestMetrics>>;

/// The request metrics of one route and service, resolved once: per status class, the
/// counter and the histogram (each registered at its first use).
#[derive(Debug)]
pub struct RequestMetrics {
    route: Arc<str>,
    service: Arc<str>,
    by_class: [OnceLock<(Counter, Histogram)>; 5],
}

impl RequestMetrics {
    /// Counts a request answered with `status` after `seconds`.
    pub fn record(&self, metrics: &ProxyMetrics, status: StatusCode, seconds: f64) {
        let class = (status.as_u16() / 100).clamp(1, 5);
        let (count, duration) = self.by_class[usize::from(class - 1)].get_or_init(|| {
            let labels = RequestLabels {
                route: self.route.to_string(),
                service: self.service.to_string(),
                class: format!("{class}xx"),
            };
            (
                metrics.requests.get_or_create(&labels).clone(),
                metrics.duration.get_or_create(&labels).clone(),
            )
        });
        count.inc();
        duration.observe(seconds);
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl ProxyMetrics {
    /// Registers the metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("conway_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        let endpoint_requests = Family::<EndpointLabels, Counter>::default();
        let retries = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route, service and status class",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to the response head",
            duration.clone(),
        );
        registry.register(
            "endpoint_requests",
            "Tries sent to each endpoint",
            endpoint_requests.clone(),
        );
        registry.register("retries", "Retries, by service", retries.clone());
        let undeclared_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "undeclared_calls",
            "Calls between services outside depends_on, by caller and callee",
            undeclared_calls.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            endpoint_requests,
            retries,
            undeclared_calls,
            handles: RwLock::default(),
        }
    }

    /// The request metrics of `route` and `service`.
    pub fn requests_of(&self, route: &str, service: &str) -> Arc<RequestMetrics> {
        if let Some(found) = self.handles.read().get(route).and_then(|s| s.get(service)) {
            return found.clone();
        }
        let mut handles = self.handles.write();
        let by_service = handles.entry(route.into()).or_default();
        by_service
            .entry(service.into())
            .or_insert_with(|| {
                Arc::new(RequestMetrics {
                    route: route.into(),
                    service: service.into(),
                    by_class: Default::default(),
                })
            })
            .clone()
    }

    /// The counter of tries sent to `endpoint` of `service`, kept with the endpoint.
    pub fn endpoint_tries<'a>(&self, service: &str, endpoint: &'a Endpoint) -> &'a Counter {
        endpoint.stats().tries.get_or_init(|| {
            self.endpoint_requests
                .get_or_create(&EndpointLabels {
                    service: service.to_owned(),
                    endpoint: endpoint.id().to_owned(),
                })
                .clone()
        })
    }

    /// The metrics in Prometheus text format 0.0.4.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        Self::new()
    }
}
