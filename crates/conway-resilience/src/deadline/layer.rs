use std::time::Duration;

use tower::Layer;

use super::SetDeadline;

/// Gives each request a deadline of `timeout`, or less if the caller asks.
#[derive(Debug, Clone, Copy)]
pub struct SetDeadlineLayer {
    timeout: Duration,
}

impl SetDeadlineLayer {
    /// A layer with this configured timeout.
    pub const fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for SetDeadlineLayer {
    type Service = SetDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetDeadline::new(inner, self.timeout)
    }
}
