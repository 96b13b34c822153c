//! Services, their run-time faults, and the configuration proxies read.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use conway_core::api::{ConfigSnapshot, ServiceView};
use conway_core::manifest::{Faults, Service};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// `GET /v1/services`.
pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<Json<Vec<ServiceView>>, ApiError> {
    Ok(Json(state.registry.services().await?))
}

/// `GET /v1/services/{name}`.
pub(super) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceView>, ApiError> {
    state
        .registry
        .services()
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no service named {name:?}")))
}

/// `PUT /v1/services/{name}`: the body takes the manifest's service fields, all optional.
pub(super) async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(service): JsonBody<Service>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let revision = state.registry.put_service(&name, &service).await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "name": name, "revision": revision })),
    ))
}

/// `PUT /v1/services/{name}/faults`: `{"delay": {...}, "abort": {...}}`.
pub(super) async fn put_faults(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(faults): JsonBody<Faults>,
) -> Result<Json<Value>, ApiError> {
    check_faults(&faults)?;
    let revision = state.registry.put_faults(&name, &faults).await?;
    Ok(Json(
        json!({ "service": name, "faults": faults, "revision": revision }),
    ))
}

/// `DELETE /v1/services/{name}/faults`.
pub(super) async fn delete_faults(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.registry.delete_faults(&name).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!(
            "service {name:?} has no run-time faults"
        ))),
    }
}

/// `GET /v1/config`.
pub(super) async fn config(
    State(state): State<AppState>,
) -> Result<Json<ConfigSnapshot>, ApiError> {
    Ok(Json(state.registry.config().await?))
}

fn check_faults(faults: &Faults) -> Result<(), ApiError> {
    let percents = [
        faults.delay.as_ref().map(|d| d.percent),
        faults.abort.as_ref().map(|a| a.percent),
    ];
    if percents
        .into_iter()
        .flatten()
        .any(|p| !(0.0..=100.0).contains(&p))
    {
        return Err(ApiError::invalid("percent must be from 0 to 100"));
    }
    if faults
        .abort
        .as_ref()
        .is_some_and(|a| !(400..=599).contains(&a.status))
    {
        return Err(ApiError::invalid(
            "abort status must be an HTTP error status, 400 to 599",
        ));
    }
    if faults.delay.is_none() && faults.abort.is_none() {
        return Err(ApiError::invalid(
            "give a delay, an abort, or both; to remove faults, DELETE them",
        ));
    }
    Ok(())
}
