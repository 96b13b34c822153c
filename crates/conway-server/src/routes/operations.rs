//! Run-time splits, and the operations served where the supervisor runs.
//!
//! `PUT|DELETE /v1/services/{name}/split` sets or clears a service's run-time version
//! split here, in the registry. Deploys, `apply`, chaos jobs and their events need the
//! supervisor: `conway up` serves those paths itself, in front of this router; a lone
//! `conway server` answers them with 503 `unavailable`, saying so.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use conway_core::api::Split;
use conway_core::units::Share;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// `PUT /v1/services/{name}/split`: `{"1.4.0": "90%", "1.5.0": "10%"}`.
pub(super) async fn put_split(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(split): JsonBody<Split>,
) -> Result<Json<Value>, ApiError> {
    let total: u32 = split.values().map(|share| share.basis_points()).sum();
    if split.is_empty() || total != Share::FULL.basis_points() {
        return Err(ApiError::invalid(format!(
            "the shares of a split add up to 100%, not {}%; e.g. {{\"1.4.0\": \"90%\", \"1.5.0\": \"10%\"}}",
            f64::from(total) / 100.0
        )));
    }
    if let Some(empty) = split.keys().find(|version| version.is_empty()) {
        return Err(ApiError::invalid(format!(
            "a split names versions; {empty:?} is empty"
        )));
    }
    let revision = state.registry.put_split(&name, &split).await?;
    Ok(Json(
        json!({ "service": name, "split": split, "revision": revision }),
    ))
}

/// `DELETE /v1/services/{name}/split`.
pub(super) async fn delete_split(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.registry.delete_split(&name).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!(
            "service {name:?} has no run-time split"
        ))),
    }
}

/// Deploys, `apply`, chaos and events, when no supervisor runs beside this control plane.
pub(super) async fn needs_supervisor() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "this needs the supervisor: it is served by `conway up`, not by a lone `conway server`",
    )
}
