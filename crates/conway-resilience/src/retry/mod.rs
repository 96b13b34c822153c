//! Retries: whether a failed try may be tried again.
//!
//! A try is retried only when all of these hold, checked in this order:
//! 1. its failure is one of the manifest's `retries.on` conditions;
//! 2. the request may be sent twice: its method is idempotent (`GET`, `HEAD`,
//!    `OPTIONS`, `PUT`, `DELETE`, `TRACE`) or it carries `Idempotency-Key` — or the
//!    try failed to connect, so nothing was sent ([`is_idempotent`]);
//! 3. the proxy still holds its body to send again;
//! 4. attempts are left (`attempts` retries after the first try);
//! 5. some of the request's deadline is left;
//! 6. the service's [`RetryBudget`] has a retry left — checked last, so only real
//!    retries withdraw from it.
//!
//! The proxy calls [`RetryPolicy::on_request`] once per request and
//! [`RetryPolicy::decide`] after each failed try. [`HttpRetry`] is the same policy as
//! a tower `retry::Policy` for the SDK ([`layer`] wraps it in tower's `RetryLayer`).

mod budget;
mod layer;
mod policy;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use conway_core::manifest::{Retries, RetryCondition};
use http::{HeaderMap, HeaderName, Method};

pub use self::budget::RetryBudget;
pub use self::layer::layer;
pub use self::policy::HttpRetry;
use crate::error::Error;
use crate::outcome::Failure;

/// The header that makes any request retryable, whatever its method.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Whether a request may be sent twice: its method is idempotent (RFC 9110 §9.2.2:
/// `GET`, `HEAD`, `OPTIONS`, `PUT`, `DELETE`, `TRACE`) or it carries `Idempotency-Key`.
pub fn is_idempotent(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    ) || headers.contains_key(&IDEMPOTENCY_KEY)
}

/// One service's retry policy: the manifest's `retries`, and the service's budget.
#[derive(Debug)]
pub struct RetryPolicy {
    attempts: u32,
    on: Conditions,
    per_try_timeout: Option<Duration>,
    budget: Arc<RetryBudget>,
}

/// A failed try, as [`RetryPolicy::decide`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// How the try failed.
    pub failure: Failure,
    /// Whether the request may be sent twice ([`is_idempotent`]).
    pub idempotent: bool,
    /// Whether the proxy can send the body again: there is none, or it was buffered
    /// within the replay cap.
    pub replayable: bool,
    /// Tries made so far, the failed one included (1 after the first try).
    pub tries: u32,
    /// What is left of the request's deadline.
    pub remaining: Duration,
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again (on another endpoint); one retry was taken from the budget.
    Retry,
    /// Answer with what the last try gave, for this reason.
    Stop(Stop),
}

/// Why a failed try is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stop {
    /// The failure is not one of the `on` conditions.
    NotRetried,
    /// The request may not be sent twice.
    NotIdempotent,
    /// The body is gone (streamed, or over the replay cap).
    NotReplayable,
    /// Every attempt was used.
    AttemptsExhausted,
    /// Nothing is left of the deadline.
    DeadlineExhausted,
    /// The retry budget had nothing left.
    BudgetExhausted,
}

impl Stop {
    /// The error to answer with instead of the last try's own answer, if any:
    /// [`Error::DeadlineExceeded`] or [`Error::BudgetExhausted`]. For the other
    /// reasons the last try's answer (or its failure's status) stands.
    pub const fn error(self, last: Failure) -> Option<Error> {
        match self {
            Self::DeadlineExhausted => Some(Error::DeadlineExceeded),
            Self::BudgetExhausted => Some(Error::BudgetExhausted { last }),
            _ => None,
        }
    }
}

impl RetryPolicy {
    /// The policy the manifest describes, with a budget of its own.
    pub fn new(config: &Retries) -> Self {
        Self::with_budget(config, Arc::new(RetryBudget::new(config.budget)))
    }

    /// The policy the manifest describes, drawing on a shared `budget`.
    pub fn with_budget(config: &Retries, budget: Arc<RetryBudget>) -> Self {
        Self {
            attempts: config.attempts,
            on: Conditions::new(&config.on),
            per_try_timeout: config.per_try_timeout.map(|timeout| timeout.get()),
            budget,
        }
    }

    /// Retries allowed after the first try.
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Each try's own deadline, if any.
    pub const fn per_try_timeout(&self) -> Option<Duration> {
        self.per_try_timeout
    }

    /// The service's budget.
    pub fn budget(&self) -> &Arc<RetryBudget> {
        &self.budget
    }

    /// Retries the budget would allow now, for metrics.
    pub fn budget_remaining(&self) -> u64 {
        self.budget.remaining()
    }

    /// Counts a request into the budget; call once per request, before its first try.
    pub fn on_request(&self) {
        self.budget.deposit();
    }

    /// Whether a failed try may be tried again (see the module's docs for the rules).
    pub fn decide(&self, attempt: &Attempt) -> Decision {
        let stop = if !self.on.contains(attempt.failure) {
            Stop::NotRetried
        } else if !attempt.idempotent && attempt.failure != Failure::ConnectError {
            Stop::NotIdempotent
        } else if !attempt.replayable {
            Stop::NotReplayable
        } else if attempt.tries > self.attempts {
            Stop::AttemptsExhausted
        } else if attempt.remaining.is_zero() {
            Stop::DeadlineExhausted
        } else if !self.budget.withdraw() {
            Stop::BudgetExhausted
        } else {
            return Decision::Retry;
        };
        Decision::Stop(stop)
    }
}

/// The `on` conditions as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Conditions(u8);

impl Conditions {
    const ALL: [RetryCondition; 5] = [
        RetryCondition::ConnectError,
        RetryCondition::Reset,
        RetryCondition::ServerError,
        RetryCondition::GatewayError,
        RetryCondition::Timeout,
    ];

    fn new(on: &[RetryCondition]) -> Self {
        let bits = Self::ALL
            .iter()
            .enumerate()
            .filter(|(_, condition)| on.contains(condition))
            .fold(0, |bits, (bit, _)| bits | 1 << bit);
        Self(bits)
    }

    fn contains(self, failure: Failure) -> bool {
        Self::ALL
            .iter()
            .enumerate()
            .any(|(bit, condition)| self.0 & 1 << bit != 0 && failure.matches(*condition))
    }
}
