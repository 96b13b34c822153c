//! Instances: register, list, heartbeat, report health, deregister.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use conway_core::api::{Heartbeat, Instance, RegisterInstance, ReportHealth};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// The query of `GET /v1/services/{name}/instances`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only routable instances.
    #[serde(default)]
    healthy: bool,
}

/// `GET /v1/services/{name}/instances[?healthy=true]`.
pub(super) async fn list(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Instance>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let mut instances = state.registry.instances(Some(&name)).await?;
    if query.healthy {
        instances.retain(Instance::is_routable);
    }
    Ok(Json(instances))
}

/// `POST /v1/services/{name}/instances`: 201 with the instance.
pub(super) async fn register(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(request): JsonBody<RegisterInstance>,
) -> Result<(StatusCode, Json<Instance>), ApiError> {
    let instance = state.registry.register(&name, request).await?;
    Ok((StatusCode::CREATED, Json(instance)))
}

/// `GET /v1/instances/{id}`.
pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Instance>, ApiError> {
    state
        .registry
        .instance(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no instance {id:?}")))
}

/// `POST /v1/instances/{id}/heartbeat`.
pub(super) async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Heartbeat>, ApiError> {
    let ttl = state.registry.heartbeat(&id).await?;
    Ok(Json(Heartbeat {
        id,
        ttl: ttl.into(),
    }))
}

/// `PUT /v1/instances/{id}/health`.
pub(super) async fn report_health(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(report): JsonBody<ReportHealth>,
) -> Result<Json<Instance>, ApiError> {
    state
        .registry
        .set_health(&id, report.state, report.reason)
        .await?;
    get(State(state), Path(id)).await
}

/// `DELETE /v1/instances/{id}`.
pub(super) async fn deregister(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.registry.deregister(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
