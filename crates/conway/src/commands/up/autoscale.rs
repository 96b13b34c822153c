//! The autoscaler's metrics on the control plane's `GET /metrics`: `up` runs the
//! autoscaler beside the control plane, which does not know it, so the decisions'
//! gauges (`conway_autoscale_desired_replicas{service}`…) are appended to that answer.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use conway_supervisor::autoscale::Decisions;

/// The largest metrics answer read before appending.
const MAX_METRICS_BYTES: usize = 64 * 1024 * 1024;

/// `router` with the decisions appended to its `GET /metrics`.
pub(super) fn with_metrics(router: Router, decisions: Decisions) -> Router {
    router.layer(middleware::from_fn_with_state(decisions, append))
}

async fn append(State(decisions): State<Decisions>, request: Request, next: Next) -> Response {
    let metrics = request.method() == Method::GET && request.uri().path() == "/metrics";
    let response = next.run(request).await;
    if !metrics || !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_METRICS_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    text.push_str(&decisions.encode());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}
