//! The response future of [`InjectFaults`](super::InjectFaults).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Sleep, sleep};
use tower::Service;

use crate::error::{BoxError, Error};

pin_project! {
    /// The inner service's answer, after an injected delay if any; or an injected abort.
    pub struct ResponseFuture<S, Request>
    where
        S: Service<Request>,
    {
        #[pin]
        state: State<S, S::Future, Request>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F, Request> {
        Delaying {
            #[pin]
            sleep: Sleep,
            // The ready service and the request, until the delay is over.
            call: Option<(S, Request)>,
            abort: Option<u16>,
        },
        Called {
            #[pin]
            future: F,
        },
        Aborted {
            status: u16,
        },
    }
}

impl<S: Service<Request>, Request> ResponseFuture<S, Request> {
    pub(super) fn called(future: S::Future) -> Self {
        Self {
            state: State::Called { future },
        }
    }

    pub(super) fn aborted(status: u16) -> Self {
        Self {
            state: State::Aborted { status },
        }
    }

    pub(super) fn delayed(delay: Duration, ready: S, request: Request, abort: Option<u16>) -> Self {
        Self {
            state: State::Delaying {
                sleep: sleep(delay),
                call: Some((ready, request)),
                abort,
            },
        }
    }
}

impl<S, Request> Future for ResponseFuture<S, Request>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Delaying { sleep, call, abort } => {
                    if sleep.poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    if let Some(status) = *abort {
                        return Poll::Ready(Err(Error::FaultAbort { status }.into()));
                    }
                    let (mut ready, request) = call.take().expect("polled after completion");
                    let future = ready.call(request);
                    this.state.set(State::Called { future });
                }
                StateProj::Called { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
                StateProj::Aborted { status } => {
                    return Poll::Ready(Err(Error::FaultAbort { status: *status }.into()));
                }
            }
        }
    }
}

impl<S: Service<Request>, Request> std::fmt::Debug for ResponseFuture<S, Request> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
