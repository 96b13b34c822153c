//! [`RetryPolicy`] as a tower `retry::Policy` over `http` requests, for the SDK.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower::retry::Policy;

use super::{Attempt, Decision, RetryPolicy, is_idempotent};
use crate::deadline::Deadline;
use crate::error::BoxError;
use crate::outcome::{Classify, ClassifyHttp};

/// Retries `http` requests by a [`RetryPolicy`]. Requests are cloned for each try,
/// so their bodies must be `Clone` (buffered); the [`Deadline`] a
/// [`SetDeadline`](crate::deadline::SetDeadline) layer outside stored in the request's
/// extensions bounds the retries, and each retry carries what is left of it upstream.
/// There is no backoff: a retry goes at once, to whichever endpoint the balancer below
/// picks.
#[derive(Debug, Clone)]
pub struct HttpRetry<C = ClassifyHttp> {
    policy: Arc<RetryPolicy>,
    classify: C,
    /// Tries made of this request; 0 in the service's own copy, which tower clones
    /// for each request.
    tries: u32,
}

impl HttpRetry {
    /// Retries by `policy`, failing `5xx` answers and errors.
    pub fn new(policy: Arc<RetryPolicy>) -> Self {
        Self::with_classify(policy, ClassifyHttp)
    }
}

impl<C> HttpRetry<C> {
    /// Retries by `policy`, with outcomes told by `classify`.
    pub fn with_classify(policy: Arc<RetryPolicy>, classify: C) -> Self {
        Self {
            policy,
            classify,
            tries: 0,
        }
    }
}

impl<B, Rb, C> Policy<http::Request<B>, http::Response<Rb>, BoxError> for HttpRetry<C>
where
    B: Clone,
    C: Classify<http::Response<Rb>>,
{
    type Future = Ready<()>;

    fn retry(
        &mut self,
        request: &mut http::Request<B>,
        result: &mut Result<http::Response<Rb>, BoxError>,
    ) -> Option<Self::Future> {
        let failure = match result {
            Ok(response) => self.classify.response(response).failure()?,
            Err(error) => self.classify.error(&**error)?,
        };
        self.tries += 1;
        let now = Instant::now();
        let deadline = request.extensions().get::<Deadline>().copied();
        let attempt = Attempt {
            failure,
            idempotent: is_idempotent(request.method(), request.headers()),
            replayable: true,
            tries: self.tries,
            remaining: deadline.map_or(Duration::MAX, |deadline| deadline.remaining(now)),
        };
        match self.policy.decide(&attempt) {
            Decision::Retry => {
                if let Some(deadline) = deadline {
                    deadline.set_header(now, request.headers_mut());
                }
                Some(ready(()))
            }
            Decision::Stop(_) => None,
        }
    }

    fn clone_request(&mut self, request: &http::Request<B>) -> Option<http::Request<B>> {
        // tower calls this on the service's own copy before a request's first try, and
        // on the request's copy before each retry: count each request once.
        if self.tries == 0 {
            self.policy.on_request();
        }
        Some(request.clone())
    }
}
