//! The one error the policies return, for the proxy to turn into an HTTP answer in one
//! place.
//!
//! Modelled on pingora's `pingora-error`: each error says where it came from
//! ([`ErrorSource`]) and whether another try may succeed ([`Error::is_retryable`]), and
//! carries what the answer needs: its status, a stable code for the JSON error body,
//! and a `retry-after` where one helps. The tower layers of this crate return it boxed;
//! [`Error::find`] walks a cause chain to it.

use std::error::Error as StdError;
use std::time::Duration;

use crate::outcome::Failure;

/// A boxed error, as tower services return them.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorSource {
    /// The instance, or the way to it.
    Upstream,
    /// The caller.
    Downstream,
    /// A policy of this proxy decided.
    Internal,
}

/// Why a policy ended a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bulkhead is full: the request was shed at once, not queued.
    #[error("too many requests in flight to the service; shed")]
    Shed {
        /// When the caller may try again.
        retry_after: Duration,
    },
    /// The service's circuit breaker is open.
    #[error("the service's circuit breaker is open")]
    CircuitOpen {
        /// When the breaker lets a probe through again.
        retry_after: Duration,
    },
    /// The request's deadline passed.
    #[error("the request's deadline passed")]
    DeadlineExceeded,
    /// One try's own deadline (`per_try_timeout`) passed; another try may succeed.
    #[error("the try's deadline passed")]
    TryTimedOut,
    /// A try failed and the retry budget had nothing left for another.
    #[error("retry budget exhausted after {last}")]
    BudgetExhausted {
        /// How the last try failed.
        last: Failure,
    },
    /// An injected fault aborted the request.
    #[error("aborted by an injected fault with status {status}")]
    FaultAbort {
        /// The status to answer with.
        status: u16,
    },
}

impl Error {
    /// Where the error came from.
    pub const fn origin(&self) -> ErrorSource {
        match self {
            Self::Shed { .. } | Self::CircuitOpen { .. } | Self::FaultAbort { .. } => {
                ErrorSource::Internal
            }
            Self::DeadlineExceeded | Self::TryTimedOut | Self::BudgetExhausted { .. } => {
                ErrorSource::Upstream
            }
        }
    }

    /// Whether another try of the same request, by this proxy and now, may succeed.
    /// Only a try's own timeout is; every other error is a decision about the whole
    /// request (the caller may still try later, after [`Error::retry_after`]).
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::TryTimedOut)
    }

    /// The HTTP status to answer with: `503` when shed or the circuit is open, `504`
    /// when a deadline passed, the last failure's status when the budget ran out, the
    /// fault's own status when one aborted.
    pub const fn status(&self) -> u16 {
        match self {
            Self::Shed { .. } | Self::CircuitOpen { .. } => 503,
            Self::DeadlineExceeded | Self::TryTimedOut => 504,
            Self::BudgetExhausted { last } => last.status(),
            Self::FaultAbort { status } => *status,
        }
    }

    /// A stable code for the JSON error body (`{"error": {"code", "message"}}`).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Shed { .. } => "overloaded",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::TryTimedOut => "upstream_timeout",
            Self::BudgetExhausted { .. } => "retry_budget_exhausted",
            Self::FaultAbort { .. } => "fault_injected",
        }
    }

    /// How long the caller should wait before trying again, where that is known.
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Shed { retry_after } | Self::CircuitOpen { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// [`Error::retry_after`] in whole seconds for a `retry-after` header: rounded up,
    /// and at least 1 (`retry-after: 0` would invite an immediate retry storm).
    pub fn retry_after_secs(&self) -> Option<u64> {
        let wait = self.retry_after()?;
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Some(secs.max(1))
    }

    /// The failure this error stands for, for a policy that counts it.
    pub const fn failure(&self) -> Option<Failure> {
        match self {
            Self::DeadlineExceeded | Self::TryTimedOut => Some(Failure::Timeout),
            Self::BudgetExhausted { last } => Some(*last),
            _ => None,
        }
    }

    /// The first [`Error`] in `error`'s cause chain, `error` itself included.
    pub fn find<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if let Some(found) = error.downcast_ref::<Self>() {
                return Some(found);
            }
            cause = error.source();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ServerError;

    #[test]
    fn each_error_maps_to_its_answer() {
        let shed = Error::Shed {
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(shed.status(), 503);
        assert_eq!(shed.retry_after_secs(), Some(2));
        assert_eq!(shed.origin(), ErrorSource::Internal);
        assert!(!shed.is_retryable());

        let open = Error::CircuitOpen {
            retry_after: Duration::from_millis(1),
        };
        assert_eq!((open.status(), open.retry_after_secs()), (503, Some(1)));

        assert_eq!(Error::DeadlineExceeded.status(), 504);
        assert_eq!(Error::DeadlineExceeded.retry_after_secs(), None);
        assert!(Error::TryTimedOut.is_retryable());
        assert_eq!(Error::TryTimedOut.origin(), ErrorSource::Upstream);

        let last = Failure::Status(ServerError::new(503).unwrap());
        assert_eq!(Error::BudgetExhausted { last }.status(), 503);
        let last = Failure::ConnectError;
        assert_eq!(Error::BudgetExhausted { last }.status(), 502);
        assert_eq!(Error::FaultAbort { status: 418 }.status(), 418);
        assert_eq!(Error::FaultAbort { status: 418 }.code(), "fault_injected");
    }

    #[test]
    fn find_walks_the_cause_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Error);

        let boxed: BoxError = Box::new(Outer(Error::DeadlineExceeded));
        assert_eq!(Error::find(&*boxed), Some(&Error::DeadlineExceeded));
        let other: BoxError = "something else".into();
        assert_eq!(Error::find(&*other), None);
    }
}
