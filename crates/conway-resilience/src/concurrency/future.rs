//! The response future of [`ConcurrencyLimit`](super::ConcurrencyLimit).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::{BulkheadPermit, Shed};
use crate::error::{BoxError, Error};

pin_project! {
    /// The inner service's answer, holding a place in the bulkhead until it comes; or
    /// [`Error::Shed`] at once.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        response: Option<F>,
        permit: Option<BulkheadPermit>,
        shed: Option<Shed>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(response: F, permit: BulkheadPermit) -> Self {
        Self {
            response: Some(response),
            permit: Some(permit),
            shed: None,
        }
    }

    pub(super) fn shed(shed: Shed) -> Self {
        Self {
            response: None,
            permit: None,
            shed: Some(shed),
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(response) = this.response.as_pin_mut() else {
            let shed = this.shed.take().expect("polled after completion");
            return Poll::Ready(Err(Error::from(shed).into()));
        };
        let result = match response.poll(cx) {
            Poll::Ready(result) => result.map_err(Into::into),
            Poll::Pending => return Poll::Pending,
        };
        this.permit.take();
        Poll::Ready(result)
    }
}
