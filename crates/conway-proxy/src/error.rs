//! Every way a proxied request can fail, turned into a response in one place: a status,
//! a JSON body `{"error": {"code", "message"}}`, and `retry-after` where it helps.

use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::body::ProxyBody;

/// Where a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client's request is at fault.
    Downstream,
    /// The service (or reaching it) failed.
    Upstream,
    /// A policy of the proxy's refused the request.
    Policy,
}

/// A request the proxy could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No route matches.
    #[error("no route for {method} {path}")]
    NoRoute {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
    /// The route's service is not known to the registry.
    #[error("service {0:?} is not defined")]
    UnknownService(String),
    /// No endpoint of the service may take the request.
    #[error("no healthy endpoint of service {0:?}")]
    NoEndpoint(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than the route allows.
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The route's `max_body`.
        limit: u64,
    },
    /// Connecting to the endpoint failed.
    #[error("cannot connect to {service} at {endpoint}: {detail}")]
    Connect {
        /// The service.
        service: String,
        /// The endpoint tried last.
        endpoint: String,
        /// What went wrong.
        detail: String,
    },
    /// The endpoint broke the connection before a response.
    #[error("{service} at {endpoint} closed the connection: {detail}")]
    Reset {
        /// The service.
        service: String,
        /// The endpoint tried last.
        endpoint: String,
        /// What went wrong.
        detail: String,
    },
    /// The deadline passed.
    #[error("{service} did not answer within the deadline of {deadline:?}")]
    Timeout {
        /// The service.
        service: String,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// A resilience policy refused the request (circuit open, shed, budget).
    #[error("{message}")]
    Refused {
        /// The status to answer with.
        status: StatusCode,
        /// A stable code.
        code: &'static str,
        /// For people.
        message: String,
        /// When to try again.
        retry_after: Option<Duration>,
    },
    /// The route's rate limit for this consumer (or client) is spent.
    #[error("too many requests: the limit is {limit} at once; try again in {retry_after:?}")]
    RateLimited {
        /// The burst size.
        limit: u32,
        /// When the next request would be allowed.
        retry_after: Duration,
    },
    /// An injected abort fault.
    #[error("fault injected: abort with {status}")]
    FaultAbort {
        /// The status to answer with.
        status: StatusCode,
    },
}

impl ProxyError {
    /// Where the failure came from.
    pub fn origin(&self) -> Origin {
        match self {
            Self::NoRoute { .. } | Self::BadRequest(_) | Self::BodyTooLarge { .. } => {
                Origin::Downstream
            }
            Self::Refused { .. } | Self::FaultAbort { .. } | Self::RateLimited { .. } => {
                Origin::Policy
            }
            _ => Origin::Upstream,
        }
    }

    /// The status, code and retry hint of the response.
    fn parts(&self) -> (StatusCode, &'static str, Option<Duration>) {
        match self {
            Self::NoRoute { .. } => (StatusCode::NOT_FOUND, "no_route", None),
            Self::UnknownService(_) => (StatusCode::SERVICE_UNAVAILABLE, "unknown_service", None),
            Self::NoEndpoint(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no_healthy_endpoint",
                Some(Duration::from_secs(1)),
            ),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", None),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None),
            Self::Connect { .. } => (StatusCode::BAD_GATEWAY, "connect_error", None),
            Self::Reset { .. } => (StatusCode::BAD_GATEWAY, "upstream_reset", None),
            Self::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "timeout", None),
            Self::Refused {
                status,
                code,
                retry_after,
                ..
            } => (*status, code, *retry_after),
            Self::FaultAbort { status } => (*status, "fault_injected", None),
            Self::RateLimited { retry_after, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                Some(*retry_after),
            ),
        }
    }

    /// The response the client gets.
    pub fn into_response(self) -> Response<ProxyBody> {
        let (status, code, retry_after) = self.parts();
        let mut response = error_response(status, code, &self.to_string(), retry_after);
        if let Self::RateLimited { limit, retry_after } = self {
            let headers = response.headers_mut();
            headers.insert("ratelimit-limit", HeaderValue::from(limit));
            headers.insert("ratelimit-remaining", HeaderValue::from(0));
            headers.insert(
                "ratelimit-reset",
                HeaderValue::from(retry_after.as_secs_f64().ceil() as u64),
            );
        }
        response
    }
}

/// A JSON error response.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<Duration>,
) -> Response<ProxyBody> {
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    let mut response = Response::new(ProxyBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(after) = retry_after {
        let seconds = (after.as_secs_f64().ceil() as u64).max(1);
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
