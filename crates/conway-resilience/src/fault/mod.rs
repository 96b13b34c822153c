//! Fault injection per route and service: delay a share of requests, abort a share
//! with a status, so chaos experiments and resilience tests can make failure happen.
//!
//! [`FaultInjector`] merges the route's, the service's declared and the service's
//! run-time faults (see its docs for the rule) and samples each request with a
//! `fastrand::Rng` the caller passes in, seeded in tests. A delay comes before an
//! abort, as in Envoy. The proxy calls [`FaultInjector::decide`] directly and rebuilds
//! the injector when the faults change. [`InjectFaults`] is the same policy as a tower
//! service, for the SDK and tests: it fails aborted requests with
//! [`Error::FaultAbort`](crate::Error::FaultAbort) without calling the inner service.

pub mod future;
mod injector;
mod layer;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

use self::future::ResponseFuture;
pub use self::injector::{FaultDecision, FaultInjector, FaultSources};
pub use self::layer::InjectFaultsLayer;
use crate::error::BoxError;

/// A service with faults injected in front of it.
pub struct InjectFaults<S> {
    inner: S,
    injector: Arc<FaultInjector>,
    rng: fastrand::Rng,
}

impl<S> InjectFaults<S> {
    /// Injects `injector`'s faults in front of `inner`, with a randomly seeded RNG.
    pub fn new(inner: S, injector: Arc<FaultInjector>) -> Self {
        Self::with_rng(inner, injector, fastrand::Rng::new())
    }

    /// The same with a given RNG (seed it for deterministic tests).
    pub const fn with_rng(inner: S, injector: Arc<FaultInjector>, rng: fastrand::Rng) -> Self {
        Self {
            inner,
            injector,
            rng,
        }
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for InjectFaults<S> {
    /// A clone rolls its own dice: it gets a fresh random seed, not a copy of this
    /// RNG's state (which would repeat this service's decisions).
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), Arc::clone(&self.injector))
    }
}

impl<S: fmt::Debug> fmt::Debug for InjectFaults<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InjectFaults")
            .field("inner", &self.inner)
            .field("injector", &self.injector)
            .finish_non_exhaustive()
    }
}

impl<S, Request> Service<Request> for InjectFaults<S>
where
    S: Service<Request> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Request>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let decision = self.injector.decide(&mut self.rng);
        match decision {
            FaultDecision {
                delay: None,
                abort: None,
            } => ResponseFuture::called(self.inner.call(request)),
            FaultDecision {
                delay: None,
                abort: Some(status),
            } => ResponseFuture::aborted(status),
            FaultDecision {
                delay: Some(delay),
                abort,
            } => {
                // The ready service goes with the request; a clone takes its place.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::delayed(delay, ready, request, abort)
            }
        }
    }
}
