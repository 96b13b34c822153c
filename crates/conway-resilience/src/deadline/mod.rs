//! Deadlines: how long a request may take, retries included.
//!
//! A request's deadline is the route's or service's `timeout`, shortened, never
//! lengthened, by the caller's `x-conway-deadline-ms` ([`Deadline::for_request`]). What
//! is left of it goes upstream in the same header ([`Deadline::set_header`]), and each
//! try gets `min(per_try_timeout, remaining)` ([`Deadline::per_try`]).
//!
//! The proxy calls [`Deadline`] directly. [`SetDeadline`] is the same policy as a tower
//! service over `http::Request`s, for the SDK: it computes the deadline, sets the
//! header, stores the [`Deadline`] in the request's extensions (where
//! [`HttpRetry`](crate::retry::HttpRetry) finds it), and fails the call with
//! [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded) when it passes.

pub mod future;
mod header;
mod layer;
#[cfg(test)]
mod tests;
mod time;

use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::Service;

use self::future::ResponseFuture;
pub use self::header::{
    DEADLINE_HEADER, MAX_HEADER_DEADLINE, deadline_from_headers, deadline_header_value,
    parse_deadline,
};
pub use self::layer::SetDeadlineLayer;
pub use self::time::Deadline;
use crate::error::BoxError;

/// Gives each request a deadline and fails it when the deadline passes.
#[derive(Debug, Clone)]
pub struct SetDeadline<S> {
    inner: S,
    timeout: Duration,
}

impl<S> SetDeadline<S> {
    /// Wraps `inner` with a deadline of `timeout`, or less if the caller asks.
    pub const fn new(inner: S, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<http::Request<B>> for SetDeadline<S>
where
    S: Service<http::Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let now = Instant::now();
        let deadline = Deadline::for_request(now, self.timeout, request.headers());
        if !deadline.set_header(now, request.headers_mut()) {
            return ResponseFuture::expired(deadline);
        }
        request.extensions_mut().insert(deadline);
        ResponseFuture::new(self.inner.call(request), deadline)
    }
}
