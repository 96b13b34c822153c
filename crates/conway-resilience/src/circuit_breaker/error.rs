//! The error of a refused [`try_acquire`](super::CircuitBreaker::try_acquire).

use std::time::Duration;

/// The breaker is open (or half-open with every probe out): fail fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker open; retry after {retry_after:?}")]
pub struct Open {
    retry_after: Duration,
}

impl Open {
    pub(super) const fn new(retry_after: Duration) -> Self {
        Self { retry_after }
    }

    /// How long until the breaker lets a probe through.
    pub const fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl From<Open> for crate::Error {
    fn from(open: Open) -> Self {
        Self::CircuitOpen {
            retry_after: open.retry_after,
        }
    }
}
