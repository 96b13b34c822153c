//! The admin token: changes to the control plane (every method but GET, HEAD and
//! OPTIONS) need `authorization: Bearer TOKEN` when the control plane listens beyond
//! loopback or runs with `--require-token`. Reads stay open.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Refuses a change without the right token, with 401 and a message that never echoes
/// what was sent.
pub(crate) async fn require_token(
    State(token): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(presented) if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "the admin token is not valid").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_required",
            "changes need the admin token: authorization: Bearer TOKEN (the conway CLI sends CONWAY_ADMIN_TOKEN)",
        )
        .into_response(),
    }
}
