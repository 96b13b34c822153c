//! The error of a full [`Bulkhead`](super::Bulkhead).

use std::time::Duration;

/// Every place is taken: the request is shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests in flight; shed")]
pub struct Shed {
    retry_after: Duration,
}

impl Shed {
    pub(super) const fn new(retry_after: Duration) -> Self {
        Self { retry_after }
    }

    /// How long the caller is told to wait.
    pub const fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl From<Shed> for crate::Error {
    fn from(shed: Shed) -> Self {
        Self::Shed {
            retry_after: shed.retry_after,
        }
    }
}
