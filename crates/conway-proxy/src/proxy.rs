//! What every role of the proxy shares: the table, the upstream clients, the metrics and
//! the access log, and how one exchange is recorded.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, Version};
use tokio::time::Instant;

use crate::access_log::{AccessLog, Entry};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::forward::Tried;
use crate::metrics::{ProxyMetrics, RequestMetrics};
use crate::ratelimit::{Allowed, RateLimits};
use crate::table::Table;
use crate::trace::{TRACERESPONSE, TraceContext};
use crate::upstream::Upstreams;
use conway_telemetry::{Exporter, SpanId, SpanKind, SpanRecord, SpanStatus, TraceId};

/// The engine behind every listener of one proxy process.
#[derive(Debug)]
pub struct Proxy {
    /// The table in force, swapped on every registry change.
    pub table: Arc<ArcSwap<Table>>,
    /// Connections to instances.
    pub upstreams: Upstreams,
    /// RED metrics.
    pub metrics: Arc<ProxyMetrics>,
    /// Where each request writes a line, when the access log is on.
    pub access_log: Option<AccessLog>,
    /// The gateway routes' rate limits.
    pub rate_limits: RateLimits,
    /// The port of the gateway's HTTPS listener, when it has one (for redirects).
    pub https_port: Option<u16>,
    /// Where each exchange goes as a span and a count (caller → callee), when an OTLP
    /// receiver is known.
    pub exporter: Option<Exporter>,
}

/// One request as it arrived, for the record written after it is answered.
#[derive(Debug)]
pub struct Exchange {
    started: Instant,
    /// The request's trace.
    pub trace: TraceContext,
    /// The trace as a header, formatted once: `traceparent` upstream and
    /// `traceresponse` back carry the same value.
    pub trace_header: HeaderValue,
    method: Method,
    /// The path, kept only when a log line or a span will need it.
    path: Option<String>,
    version: Version,
    client: SocketAddr,
}

/// What the exchange was about, once known: the route (or caller) and the service.
#[derive(Debug, Default)]
pub struct Labels {
    /// The calling service (`gateway` for outside clients).
    pub caller: Option<String>,
    /// The route's name, or for the mesh the calling service.
    pub route: Option<Arc<str>>,
    /// The service called.
    pub service: Option<Arc<str>>,
    /// The request metrics of the route and service, when the caller resolved them.
    pub metrics: Option<Arc<RequestMetrics>>,
    /// The endpoint tried last, and how many tries.
    pub tried: Tried,
    /// The rate limit's state after this request, for the `ratelimit-*` headers.
    pub rate: Option<Allowed>,
}

impl Exchange {
    /// Notes what the record needs before the request is consumed.
    pub fn begin(proxy: &Proxy, request: &Request<Incoming>, client: SocketAddr) -> Self {
        let trace = TraceContext::from_headers(request.headers());
        let keep_path = proxy.access_log.is_some() || proxy.exporter.is_some();
        Self {
            started: Instant::now(),
            trace,
            trace_header: trace.traceparent(),
            method: request.method().clone(),
            path: keep_path.then(|| request.uri().path().to_owned()),
            version: request.version(),
            client,
        }
    }
}

impl Proxy {
    /// Turns the result into the client's response and records it: `traceresponse`, the
    /// client's HTTP version, metrics, and an access-log line.
    pub fn finish(
        &self,
        exchange: Exchange,
        result: Result<Response<ProxyBody>, ProxyError>,
        labels: Labels,
    ) -> Response<ProxyBody> {
        let mut response = result.unwrap_or_else(ProxyError::into_response);
        *response.version_mut() = exchange.version;
        response
            .headers_mut()
            .insert(TRACERESPONSE, exchange.trace_header.clone());
        if let Some(rate) = labels.rate {
            let headers = response.headers_mut();
            headers.insert("ratelimit-limit", rate.limit.into());
            headers.insert("ratelimit-remaining", rate.remaining.into());
            headers.insert("ratelimit-reset", rate.reset.into());
        }
        let status = response.status();
        let elapsed = exchange.started.elapsed();
        let route = labels.route.as_deref().unwrap_or("none");
        let service = labels.service.as_deref().unwrap_or("none");
        match &labels.metrics {
            Some(metrics) => metrics.record(&self.metrics, status, elapsed.as_secs_f64()),
            None => self.metrics.requests_of(route, service).record(
                &self.metrics,
                status,
                elapsed.as_secs_f64(),
            ),
        }
        let path = exchange.path.as_deref().unwrap_or("");
        if let Some(exporter) = &self.exporter {
            let names = Names {
                route,
                service,
                path,
            };
            export(
                exporter,
                &exchange,
                &labels,
                &names,
                status.as_u16(),
                elapsed,
            );
        }
        if let Some(log) = &self.access_log {
            log.record(&Entry {
                client: exchange.client,
                method: exchange.method.as_str(),
                path,
                status: status.as_u16(),
                route,
                service,
                endpoint: labels.tried.endpoint.as_deref().unwrap_or("-"),
                tries: labels.tried.tries,
                duration: elapsed,
                trace_id: exchange.trace.trace_id,
            });
        }
        response
    }
}

/// What a span names.
struct Names<'a> {
    route: &'a str,
    service: &'a str,
    path: &'a str,
}

/// The exchange as a client span of the caller, and as a count on its graph edge.
fn export(
    exporter: &Exporter,
    exchange: &Exchange,
    labels: &Labels,
    names: &Names<'_>,
    status: u16,
    elapsed: std::time::Duration,
) {
    let caller = labels.caller.as_deref().unwrap_or("gateway");
    exporter.add_request(caller, names.service, names.route, status, elapsed);
    let mut attributes = serde_json::Map::new();
    attributes.insert(
        "http.request.method".into(),
        exchange.method.as_str().into(),
    );
    attributes.insert("http.response.status_code".into(), status.into());
    attributes.insert("url.path".into(), names.path.into());
    attributes.insert("conway.callee".into(), names.service.into());
    attributes.insert("conway.route".into(), names.route.into());
    if let Some(endpoint) = &labels.tried.endpoint {
        attributes.insert("conway.endpoint".into(), endpoint.as_str().into());
    }
    let trace = &exchange.trace;
    exporter.export_span(SpanRecord {
        trace_id: TraceId(trace.trace_id.to_be_bytes()),
        span_id: SpanId(trace.span_id.to_be_bytes()),
        parent_span_id: trace.parent_id.map(|p| SpanId(p.to_be_bytes())),
        service: caller.to_owned(),
        operation: format!("{} {}", exchange.method, names.route),
        kind: SpanKind::Client,
        start: std::time::SystemTime::now() - elapsed,
        duration: elapsed,
        status: if status >= 500 {
            SpanStatus::Error
        } else {
            SpanStatus::Unset
        },
        status_message: (status >= 500).then(|| format!("HTTP {status}")),
        attributes,
    });
}
