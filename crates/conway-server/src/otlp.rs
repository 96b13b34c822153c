//! The OTLP/HTTP receiver's listener (`--otlp-listen`, default `127.0.0.1:4318`):
//! `POST /v1/traces`, `/v1/logs` and `/v1/metrics`, served over the telemetry crate's
//! receiver logic. Separate from the API: its own port, its own body limit, no admin
//! token (any OpenTelemetry SDK on this machine reports here), and unknown fields
//! ignored as the OTLP specification requires.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use conway_telemetry::{Encoding, OtlpResponse, Signal, Telemetry};

/// The receiver as an axum router over `telemetry`.
pub fn otlp_router(telemetry: Telemetry) -> Router {
    Router::new()
        .route(
            "/v1/traces",
            post(|State(t): State<Telemetry>, request: Request| {
                receive(Signal::Traces, t, request)
            }),
        )
        .route(
            "/v1/logs",
            post(|State(t): State<Telemetry>, request: Request| receive(Signal::Logs, t, request)),
        )
        .route(
            "/v1/metrics",
            post(|State(t): State<Telemetry>, request: Request| {
                receive(Signal::Metrics, t, request)
            }),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "OTLP/HTTP receiver: POST /v1/traces, /v1/logs or /v1/metrics\n",
            )
        })
        .with_state(telemetry)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Waits for a turn, reads the body within the limit, and hands it to the receiver.
async fn receive(signal: Signal, telemetry: Telemetry, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let content_type = header_text(&parts.headers, header::CONTENT_TYPE);
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        // Answered (415) and counted without reading the body.
        let response = telemetry
            .receive(signal, content_type, None, Default::default())
            .await;
        return respond(response);
    };
    let limit = telemetry.limits().max_body_bytes;
    let declared =
        header_text(&parts.headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return respond(telemetry.answered(signal, OtlpResponse::too_large(encoding, limit)));
    }
    let Some(_turn) = telemetry.admit().await else {
        return respond(telemetry.answered(signal, OtlpResponse::busy(encoding)));
    };
    let body = match axum::body::to_bytes(Body::new(body), limit).await {
        Ok(body) => body,
        // Over the limit while streaming (a chunked body), or cut short.
        Err(_) => {
            return respond(telemetry.answered(signal, OtlpResponse::too_large(encoding, limit)));
        }
    };
    let content_encoding = header_text(&parts.headers, header::CONTENT_ENCODING);
    respond(
        telemetry
            .receive(signal, content_type, content_encoding, body)
            .await,
    )
}

fn respond(answer: OtlpResponse) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(answer.content_type),
        )],
        answer.body,
    )
        .into_response();
    if let Some(seconds) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
