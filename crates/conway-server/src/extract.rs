//! Request bodies: JSON of any content type, within the size limit, decoded strictly
//! (unknown fields are errors) with the position of the first problem.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body decoded as `T`.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        status,
                        "body_too_large",
                        format!(
                            "the request body is larger than the {} bytes allowed",
                            crate::MAX_BODY_BYTES
                        ),
                    )
                } else {
                    ApiError::new(status, "invalid_body", rejection.body_text())
                }
            })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid("the request needs a JSON body"));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::invalid(format!(
                "invalid JSON body at line {} column {}: {e}",
                e.line(),
                e.column()
            ))
        })
    }
}
