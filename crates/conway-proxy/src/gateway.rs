//! The gateway role: outside clients, matched against `[[gateway.routes]]`.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::forward::{Target, Tried, forward};
use crate::headers::CONSUMER;
use crate::metrics::{ProxyMetrics, RequestLabels};
use crate::router::{has_dot_segments, request_host};
use crate::server::Handler;
use crate::table::Table;
use crate::trace::{TRACERESPONSE, TraceContext};
use crate::upstream::Upstreams;

/// Serves outside clients from the routes in the current table.
#[derive(Debug)]
pub struct Gateway {
    table: Arc<ArcSwap<Table>>,
    upstreams: Upstreams,
    metrics: Arc<ProxyMetrics>,
    access_log: bool,
}

impl Gateway {
    /// A gateway over a table kept current by someone else.
    pub fn new(table: Arc<ArcSwap<Table>>, metrics: Arc<ProxyMetrics>, access_log: bool) -> Self {
        Self {
            table,
            upstreams: Upstreams::new(),
            metrics,
            access_log,
        }
    }

    async fn route(
        &self,
        mut request: Request<Incoming>,
        client: SocketAddr,
        trace: TraceContext,
    ) -> (
        Result<Response<ProxyBody>, ProxyError>,
        Option<(String, String)>,
        Tried,
    ) {
        let mut tried = Tried::default();
        // Only the gateway says who the consumer is.
        request.headers_mut().remove(CONSUMER);
        let path = request.uri().path();
        if has_dot_segments(path) {
            return (
                Err(ProxyError::BadRequest(format!(
                    "the path {path:?} has '.' or '..' segments"
                ))),
                None,
                tried,
            );
        }
        let table = self.table.load_full();
        let host = request_host(request.uri(), request.headers());
        let Some(route) = table
            .router
            .find(host, path, request.method(), request.headers())
        else {
            let error = ProxyError::NoRoute {
                method: request.method().to_string(),
                path: path.to_owned(),
            };
            return (Err(error), None, tried);
        };
        let names = Some((route.name.to_string(), route.service.to_string()));
        let Some(service) = table.service(&route.service).cloned() else {
            return (
                Err(ProxyError::UnknownService(route.service.to_string())),
                names,
                tried,
            );
        };
        let mut path_and_query = route.upstream_path(path).to_owned();
        if let Some(query) = request.uri().query() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        let target = Target {
            service: &service,
            path_and_query: &path_and_query,
            timeout: route.timeout,
            version: route.version.as_deref(),
            route_faults: route.faults.as_ref(),
            max_body: route.max_body,
            client,
            zone: None,
            trace,
        };
        let result = forward(&self.upstreams, request, &target, &mut tried).await;
        (result, names, tried)
    }
}

impl Handler for Gateway {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let trace = TraceContext::from_headers(request.headers());
        let method = request.method().clone();
        let version = request.version();
        let path = request.uri().path().to_owned();
        let (result, names, tried) = self.route(request, client, trace).await;
        let mut response = result.unwrap_or_else(ProxyError::into_response);
        // The client's HTTP version, whatever the instance spoke.
        *response.version_mut() = version;
        response
            .headers_mut()
            .entry(TRACERESPONSE)
            .or_insert_with(|| trace.traceresponse());
        let (route, service) = names.unwrap_or_else(|| ("none".to_owned(), "none".to_owned()));
        let status = response.status();
        let elapsed = started.elapsed();
        let labels = RequestLabels {
            route,
            service,
            class: class(status).to_owned(),
        };
        self.metrics.requests.get_or_create(&labels).inc();
        self.metrics
            .duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if self.access_log {
            tracing::info!(
                target: "conway::access",
                %client,
                %method,
                path,
                status = status.as_u16(),
                route = labels.route,
                service = labels.service,
                endpoint = tried.endpoint.as_deref().unwrap_or("-"),
                tries = tried.tries,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                trace_id = %trace.trace_id_hex(),
                "request"
            );
        }
        response
    }
}

fn class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
