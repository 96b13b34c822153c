//! A concurrency limit (bulkhead) per service: at most `max_concurrency` requests in
//! flight from one proxy, the excess shed at once — never queued, so an overloaded
//! service costs its callers no waiting and the proxy no memory. The proxy answers a
//! shed request `503` with `retry-after` (see [`Error::Shed`](crate::Error::Shed)).
//!
//! The proxy calls [`Bulkhead::try_acquire`] directly and holds the permit until the
//! response body is done. [`ConcurrencyLimit`] is the same policy as a tower service
//! for the SDK; it holds the permit until the response head arrives (a generic service
//! cannot see the body end), as tower's own `ConcurrencyLimit` does.

mod bulkhead;
mod error;
pub mod future;
mod layer;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

pub use self::bulkhead::{Bulkhead, BulkheadPermit};
pub use self::error::Shed;
use self::future::ResponseFuture;
pub use self::layer::ConcurrencyLimitLayer;
use crate::error::BoxError;

/// A service behind a bulkhead.
#[derive(Debug, Clone)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    bulkhead: Arc<Bulkhead>,
}

impl<S> ConcurrencyLimit<S> {
    /// Puts `inner` behind `bulkhead` (shared by every clone).
    pub const fn new(inner: S, bulkhead: Arc<Bulkhead>) -> Self {
        Self { inner, bulkhead }
    }

    /// The bulkhead.
    pub fn bulkhead(&self) -> &Arc<Bulkhead> {
        &self.bulkhead
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Request> Service<Request> for ConcurrencyLimit<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.bulkhead.try_acquire() {
            Ok(permit) => ResponseFuture::new(self.inner.call(request), permit),
            Err(shed) => ResponseFuture::shed(shed),
        }
    }
}
