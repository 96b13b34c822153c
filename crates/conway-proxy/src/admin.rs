//! A proxy's admin listener: `/healthz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::body::ProxyBody;
use crate::error::error_response;
use crate::metrics::ProxyMetrics;
use crate::server::Handler;
use crate::table::Table;

/// Serves a proxy's health and metrics.
#[derive(Debug)]
pub struct Admin {
    table: Arc<ArcSwap<Table>>,
    metrics: Arc<ProxyMetrics>,
}

impl Admin {
    /// An admin listener over the proxy's table and metrics.
    pub fn new(table: Arc<ArcSwap<Table>>, metrics: Arc<ProxyMetrics>) -> Self {
        Self { table, metrics }
    }
}

impl Handler for Admin {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        _client: SocketAddr,
    ) -> Response<ProxyBody> {
        match request.uri().path() {
            "/healthz" => {
                let revision = self.table.load().revision;
                let mut response = Response::new(ProxyBody::full(
                    json!({ "status": "ok", "revision": revision }).to_string(),
                ));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            "/metrics" => {
                let mut response = Response::new(ProxyBody::full(self.metrics.encode()));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            path => error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no {path} here: the admin listener serves /healthz and /metrics"),
                None,
            ),
        }
    }
}
