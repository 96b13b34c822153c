//! Liveness, readiness, metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process serves.
pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers.
pub(super) async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let revision = state.registry.revision().await?;
    Ok(Json(json!({ "status": "ready", "revision": revision })))
}

/// `GET /metrics`: Prometheus text format 0.0.4.
pub(super) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let services = state.registry.services().await?;
    let (instances, healthy) = services
        .iter()
        .fold((0, 0), |(i, h), s| (i + s.instances, h + s.healthy));
    state.metrics.services.set(services.len() as i64);
    state.metrics.instances.set(instances as i64);
    state.metrics.healthy_instances.set(healthy as i64);
    state.metrics.revision.set(state.registry.revision().await?);
    // Sets the telemetry store's size gauge.
    state.telemetry.store_size().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    ))
}

/// The OpenAPI document, kept beside the routes.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// `GET /v1/openapi.json`.
pub(super) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
