//! The API's routes, one module per resource.

mod dashboard;
mod instances;
mod load;
mod operations;
mod ops;
mod services;
mod telemetry;
mod watch;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use tower_http::limit::RequestBodyLimitLayer;

use crate::error::ApiError;
use crate::metrics::RequestLabels;
use crate::state::AppState;

/// Every path the API serves, the dashboard's included; the OpenAPI document
/// (`/v1/openapi.json`) lists exactly these, as a test checks.
pub const PATHS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/openapi.json",
    "/v1/services",
    "/v1/services/{name}",
    "/v1/services/{name}/instances",
    "/v1/services/{name}/faults",
    "/v1/instances/{id}",
    "/v1/instances/{id}/heartbeat",
    "/v1/instances/{id}/health",
    "/v1/config",
    "/v1/watch",
    "/",
    "/ui/{file}",
    "/v1/traces",
    "/v1/traces/{id}",
    "/v1/logs",
    "/v1/graph",
    "/v1/services/{name}/series",
    "/v1/services/{name}/load",
    "/v1/proxies/{proxy}/load",
    "/v1/services/{name}/split",
    "/v1/services/{name}/deploy",
    "/v1/apply",
    "/v1/chaos/kill",
    "/v1/chaos/jobs",
    "/v1/chaos/jobs/{id}",
    "/v1/events",
];

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route(PATHS[0], get(ops::healthz))
        .route(PATHS[1], get(ops::readyz))
        .route(PATHS[2], get(ops::metrics))
        .route(PATHS[3], get(ops::openapi))
        .route(PATHS[4], get(services::list))
        .route(PATHS[5], get(services::get).put(services::put))
        .route(PATHS[6], get(instances::list).post(instances::register))
        .route(
            PATHS[7],
            put(services::put_faults).delete(services::delete_faults),
        )
        .route(PATHS[8], get(instances::get).delete(instances::deregister))
        .route(PATHS[9], post(instances::heartbeat))
        .route(PATHS[10], put(instances::report_health))
        .route(PATHS[11], get(services::config))
        .route(PATHS[12], get(watch::watch))
        .route(PATHS[13], get(dashboard::index))
        .route(PATHS[14], get(dashboard::file))
        // Telemetry, by path rather than by index, so other additions cannot shift them.
        .route("/v1/traces", get(telemetry::traces))
        .route("/v1/traces/{id}", get(telemetry::trace))
        .route("/v1/logs", get(telemetry::logs))
        .route("/v1/graph", get(telemetry::graph))
        .route("/v1/services/{name}/series", get(telemetry::series))
        .route(
            "/v1/services/{name}/split",
            put(operations::put_split).delete(operations::delete_split),
        )
        // Served by `conway up` in front of this router; here, 503 saying so.
        .route(
            "/v1/services/{name}/deploy",
            get(operations::needs_supervisor).post(operations::needs_supervisor),
        )
        .route("/v1/apply", post(operations::needs_supervisor))
        .route("/v1/chaos/kill", post(operations::needs_supervisor))
        .route("/v1/chaos/jobs", get(operations::needs_supervisor))
        .route("/v1/chaos/jobs/{id}", delete(operations::needs_supervisor))
        .route("/v1/events", get(operations::needs_supervisor))
        .route("/v1/services/{name}/load", get(load::service))
        .route("/v1/proxies/{proxy}/load", put(load::report))
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(RequestBodyLimitLayer::new(crate::MAX_BODY_BYTES))
        .with_state(state)
}

async fn no_route(request: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no API at {} {}; see /v1/openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Counts each request by route template and status class.
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = format!("{}xx", response.status().as_u16() / 100);
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status,
        })
        .inc();
    response
}
