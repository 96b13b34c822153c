//! A request's deadline, and the budgets derived from it.

use std::time::Duration;

use http::HeaderMap;
use tokio::time::Instant;

use super::header::{DEADLINE_HEADER, deadline_from_headers, deadline_header_value};

/// The instant by which a request must be answered, retries included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The deadline `timeout` after `now`.
    pub fn after(now: Instant, timeout: Duration) -> Self {
        let at = now.checked_add(timeout).unwrap_or_else(|| far_future(now));
        Self { at }
    }

    /// A request's deadline: the configured `timeout`, or less if the caller's
    /// `x-conway-deadline-ms` says so (the smaller wins; malformed or absurd values are
    /// ignored, see [`parse_deadline`](super::parse_deadline)).
    pub fn for_request(now: Instant, timeout: Duration, headers: &HeaderMap) -> Self {
        let timeout = match deadline_from_headers(headers) {
            Some(asked) => asked.min(timeout),
            None => timeout,
        };
        Self::after(now, timeout)
    }

    /// The instant itself.
    pub const fn at(self) -> Instant {
        self.at
    }

    /// What is left of it at `now` (zero once it passed).
    pub fn remaining(self, now: Instant) -> Duration {
        self.at.saturating_duration_since(now)
    }

    /// Whether it has passed at `now`.
    pub fn is_expired(self, now: Instant) -> bool {
        now >= self.at
    }

    /// How long the next try may take: what is left, or less if `per_try_timeout` is
    /// shorter.
    pub fn per_try(self, now: Instant, per_try_timeout: Option<Duration>) -> Duration {
        let remaining = self.remaining(now);
        per_try_timeout.map_or(remaining, |per_try| per_try.min(remaining))
    }

    /// Sets `x-conway-deadline-ms` to what is left at `now` (replacing any the caller
    /// sent), for the request going upstream; removes it and returns `false` if the
    /// deadline has passed, when the request should not be sent at all.
    pub fn set_header(self, now: Instant, headers: &mut HeaderMap) -> bool {
        if self.is_expired(now) {
            headers.remove(&DEADLINE_HEADER);
            return false;
        }
        headers.insert(DEADLINE_HEADER, deadline_header_value(self.remaining(now)));
        true
    }
}

/// About thirty years on: what an overflowing deadline means.
fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(86_400 * 365 * 30)
}
