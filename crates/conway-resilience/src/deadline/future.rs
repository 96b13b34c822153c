//! The response future of [`SetDeadline`](super::SetDeadline).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::{Sleep, sleep_until};

use super::Deadline;
use crate::error::{BoxError, Error};

pin_project! {
    /// The inner service's answer, or [`Error::DeadlineExceeded`] if the deadline
    /// passes first.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        response: Option<F>,
        #[pin]
        sleep: Sleep,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(response: F, deadline: Deadline) -> Self {
        Self {
            response: Some(response),
            sleep: sleep_until(deadline.at()),
        }
    }

    /// A future that fails at once: the deadline passed before the call.
    pub(super) fn expired(deadline: Deadline) -> Self {
        Self {
            response: None,
            sleep: sleep_until(deadline.at()),
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
            return Poll::Ready(Err(Error::DeadlineExceeded.into()));
        };
        if let Poll::Ready(result) = response.poll(cx) {
            return Poll::Ready(result.map_err(Into::into));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Error::DeadlineExceeded.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}
