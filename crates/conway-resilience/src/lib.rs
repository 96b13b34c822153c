//! Conway's resilience policies, usable by the proxy and by the Rust SDK alike:
//! deadlines, retries within a budget, the circuit breaker, outlier ejection, the
//! concurrency limit (bulkhead) and fault injection, each configured by the manifest's
//! types (`conway_core::manifest::{Resilience, Faults}`).
//!
//! Each policy's core is a small thread-safe state machine the proxy calls directly
//! on its hot path, once per request or per try: atomics or a `parking_lot` lock held
//! for a few field updates, no allocation per request, and tokio's clock, so tests run
//! under `tokio::time::pause()`. Where a policy fits a tower middleware it is also one
//! (`layer.rs`, `future.rs` beside its `mod.rs`), for the SDK.
//!
//! In ARCHITECTURE.md's order, a request meets:
//! [`fault`] → [`deadline`] → [`retry`] → [`circuit_breaker`] → balancer (outside this
//! crate, skipping endpoints [`outlier`] ejected) → the try. [`concurrency`] bounds
//! what is in flight to a service. Every try's result is classified once as an
//! [`Outcome`], which all the policies read; a `4xx` is never a failure. Every refusal
//! is an [`Error`], which says its status, source and whether another try may help, so
//! the proxy maps errors to answers in one place.
//!
//! One request on the proxy's hot path, in outline (`send` stands for a try upstream):
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use conway_core::manifest::{CircuitBreaker as BreakerConfig, Retries};
//! use conway_resilience::retry::{Attempt, Decision, is_idempotent};
//! use conway_resilience::{CircuitBreaker, Deadline, Error, Outcome, RetryPolicy};
//! use tokio::time::Instant;
//!
//! # let breaker_config = BreakerConfig { failure_ratio: 0.5, min_requests: 20,
//! #     window: Duration::from_secs(10).into(), open_for: Duration::from_secs(5).into(),
//! #     half_open_probes: 3 };
//! // Per service, built once from the manifest:
//! let breaker = Arc::new(CircuitBreaker::new(&breaker_config));
//! let retry = RetryPolicy::new(&Retries::default());
//!
//! // Per request:
//! let mut request = http::Request::get("http://inventory/stock").body(()).unwrap();
//! # let send = |_: &http::Request<()>, _per_try: Duration| Outcome::from_status(200);
//! let now = Instant::now();
//! let deadline = Deadline::for_request(now, Duration::from_secs(2), request.headers());
//! retry.on_request();
//! let mut tries = 0;
//! let answer: Result<Outcome, Error> = loop {
//!     let permit = match breaker.try_acquire() {
//!         Ok(permit) => permit,
//!         Err(open) => break Err(open.into()), // 503 + retry-after
//!     };
//!     let now = Instant::now();
//!     if !deadline.set_header(now, request.headers_mut()) {
//!         break Err(Error::DeadlineExceeded); // 504
//!     }
//!     let outcome = send(&request, deadline.per_try(now, retry.per_try_timeout()));
//!     tries += 1;
//!     let _transition = permit.record(outcome); // and the outlier detector's record
//!     let Some(failure) = outcome.failure() else { break Ok(outcome) };
//!     let attempt = Attempt {
//!         failure,
//!         idempotent: is_idempotent(request.method(), request.headers()),
//!         replayable: true, // no body, or one buffered for replay
//!         tries,
//!         remaining: deadline.remaining(Instant::now()),
//!     };
//!     match retry.decide(&attempt) {
//!         Decision::Retry => continue, // re-pick an endpoint, avoiding the last one
//!         Decision::Stop(stop) => break stop.error(failure).map_or(Ok(outcome), Err),
//!     }
//! };
//! assert_eq!(answer, Ok(Outcome::Success));
//! ```
//!
//! This crate knows no HTTP serving (no listener, connection or body), no registry and
//! no control plane: it sees requests only as `http` heads, endpoints only as keys, and
//! configuration only as `conway-core`'s manifest types.

pub mod circuit_breaker;
pub mod concurrency;
pub mod deadline;
pub mod error;
pub mod fault;
pub mod outcome;
pub mod outlier;
pub mod retry;

pub use circuit_breaker::CircuitBreaker;
pub use concurrency::Bulkhead;
pub use deadline::{DEADLINE_HEADER, Deadline};
pub use error::{BoxError, Error, ErrorSource};
pub use fault::FaultInjector;
pub use outcome::{Failure, Outcome};
pub use outlier::OutlierDetector;
pub use retry::{IDEMPOTENCY_KEY, RetryBudget, RetryPolicy};

#[cfg(test)]
mod tests {
    /// The shared policy state crosses threads (the proxy's workers).
    #[test]
    fn shared_state_is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<super::CircuitBreaker>();
        shared::<super::OutlierDetector<u64>>();
        shared::<super::RetryPolicy>();
        shared::<super::Bulkhead>();
        shared::<super::FaultInjector>();
        shared::<super::circuit_breaker::Permit>();
        shared::<super::concurrency::BulkheadPermit>();
        shared::<super::Error>();
    }
}
