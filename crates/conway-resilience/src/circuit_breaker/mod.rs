//! A circuit breaker per service: stop calling a service that keeps failing, and
//! probe it before trusting it again (Hystrix's model, made precise).
//!
//! - **Closed**: requests flow. Each recorded outcome goes into a sliding window of
//!   `window` (ten buckets). When a failure brings the window to at least
//!   `min_requests` requests with a failed share of at least `failure_ratio`, the
//!   breaker opens.
//! - **Open**: every request fails fast with [`Open`] (its `retry_after` is the time
//!   left) for `open_for`.
//! - **Half-open**: the first request after `open_for` turns the breaker half-open;
//!   exactly `half_open_probes` requests are let through as probes, others refused.
//!   When all probes succeed the breaker closes with an empty window; the first probe
//!   that fails opens it again for another `open_for`.
//!
//! Failures are what [`Outcome`](crate::Outcome) says they are: `5xx`, resets,
//! timeouts and connect errors; a `4xx` never counts. See [`Permit`] for requests
//! whose outcome is never recorded.
//!
//! The proxy calls [`CircuitBreaker::try_acquire`] and [`Permit::record`] directly.
//! [`WithCircuitBreaker`] is the same policy as a tower service (for the SDK), which
//! records each response as a [`Classify`] tells it and refuses with
//! [`Error::CircuitOpen`](crate::Error::CircuitOpen). It records when the response
//! head arrives; a body that fails later is not seen.

mod breaker;
mod error;
pub mod future;
mod layer;
#[cfg(test)]
mod tests;
mod window;

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

pub use self::breaker::{CircuitBreaker, Permit, State, Transition, Transitions};
pub use self::error::Open;
use self::future::ResponseFuture;
pub use self::layer::CircuitBreakerLayer;
use crate::error::BoxError;
use crate::outcome::{Classify, ClassifyHttp};

/// A service behind a circuit breaker.
#[derive(Debug, Clone)]
pub struct WithCircuitBreaker<S, C = ClassifyHttp> {
    inner: S,
    breaker: Arc<CircuitBreaker>,
    classify: C,
}

impl<S, C> WithCircuitBreaker<S, C> {
    /// Puts `inner` behind `breaker`, with outcomes told by `classify`.
    pub const fn new(inner: S, breaker: Arc<CircuitBreaker>, classify: C) -> Self {
        Self {
            inner,
            breaker,
            classify,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Request> Service<Request> for WithCircuitBreaker<S, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.breaker.try_acquire() {
            Ok(permit) => {
                ResponseFuture::new(self.inner.call(request), permit, self.classify.clone())
            }
            Err(open) => ResponseFuture::refused(open, self.classify.clone()),
        }
    }
}
