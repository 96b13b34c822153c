//! Load: proxies report their in-flight requests per service; the autoscaler and the
//! dashboard read them per service (see [`crate::load`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use conway_core::api::{LoadReport, ServiceLoad};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// The longest proxy name taken.
const MAX_PROXY_NAME: usize = 253;

/// `PUT /v1/proxies/{proxy}/load`: a proxy's latest report (204).
pub(super) async fn report(
    State(state): State<AppState>,
    Path(proxy): Path<String>,
    JsonBody(report): JsonBody<LoadReport>,
) -> Result<StatusCode, ApiError> {
    if proxy.is_empty() || proxy.len() > MAX_PROXY_NAME {
        return Err(ApiError::invalid(format!(
            "a proxy's name has 1 to {MAX_PROXY_NAME} bytes"
        )));
    }
    if report.interval_ms == 0 {
        return Err(ApiError::invalid("interval_ms must be at least 1"));
    }
    if let Some(bad) = report
        .services
        .iter()
        .find(|s| !s.inflight.is_finite() || s.inflight < 0.0)
    {
        return Err(ApiError::invalid(format!(
            "services[{:?}].inflight must be a number from 0 up",
            bad.service
        )));
    }
    state.load.record(&proxy, report);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/services/{name}/load`.
pub(super) async fn service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceLoad>, ApiError> {
    if state.registry.service(&name).await?.is_none() {
        return Err(ApiError::not_found(format!("no service named {name:?}")));
    }
    Ok(Json(state.load.service(&name)))
}
