//! Every error the API returns, turned into `{"error": {"code", "message"}}` in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conway_core::api::{ErrorBody, ErrorDetail};
use conway_registry::registry::RegistryError;
use conway_registry::store::StoreError;

/// An API error: a status, a stable code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::NotFound(message) => Self::not_found(message),
            RegistryError::Conflict(message) => {
                Self::new(StatusCode::CONFLICT, "conflict", message)
            }
            RegistryError::Invalid(message) => Self::invalid(message),
            RegistryError::Store(store) => store.into(),
            corrupt @ RegistryError::Corrupt { .. } => {
                tracing::error!(error = %corrupt, "registry holds a value it cannot decode");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    corrupt.to_string(),
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Compacted { .. } => Self::new(
                StatusCode::GONE,
                "compacted",
                format!("{error}; list again, then watch from the revision of that listing"),
            ),
            StoreError::FutureRevision { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                "future_revision",
                error.to_string(),
            ),
            other => {
                tracing::error!(error = %other, "store failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    other.to_string(),
                )
            }
        }
    }
}

impl From<conway_telemetry::StoreError> for ApiError {
    fn from(error: conway_telemetry::StoreError) -> Self {
        tracing::error!(%error, "telemetry store failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            error.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
