//! The response future of [`WithCircuitBreaker`](super::WithCircuitBreaker).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::{Open, Permit};
use crate::error::{BoxError, Error};
use crate::outcome::{Classify, Outcome};

pin_project! {
    /// The inner service's answer, recorded with the breaker; or the breaker's refusal.
    #[derive(Debug)]
    pub struct ResponseFuture<F, C> {
        #[pin]
        response: Option<F>,
        permit: Option<Permit>,
        refused: Option<Open>,
        classify: C,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn new(response: F, permit: Permit, classify: C) -> Self {
        Self {
            response: Some(response),
            permit: Some(permit),
            refused: None,
            classify,
        }
    }

    pub(super) fn refused(open: Open, classify: C) -> Self {
        Self {
            response: None,
            permit: None,
            refused: Some(open),
            classify,
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(response) = this.response.as_pin_mut() else {
            let open = this.refused.take().expect("polled after completion");
            return Poll::Ready(Err(Error::from(open).into()));
        };
        let result = match response.poll(cx) {
            Poll::Ready(result) => result.map_err(Into::into),
            Poll::Pending => return Poll::Pending,
        };
        let outcome = match &result {
            Ok(response) => Some(this.classify.response(response)),
            Err(error) => this.classify.error(&**error).map(Outcome::Failure),
        };
        if let (Some(permit), Some(outcome)) = (this.permit.take(), outcome) {
            let _transition = permit.record(outcome);
        }
        Poll::Ready(result)
    }
}
