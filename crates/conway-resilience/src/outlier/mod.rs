//! Outlier ejection per endpoint, as Envoy does it: take an endpoint that keeps
//! failing out of the balancer for a while.
//!
//! - `consecutive_errors` gateway failures in a row (`502`, `503`, `504`, connect
//!   errors, resets, try timeouts: see
//!   [`Failure::is_gateway_failure`](crate::Failure::is_gateway_failure)) eject an endpoint;
//!   any other outcome (a success, a `4xx`, a `500`) starts the count again.
//! - The n-th ejection lasts `base_ejection × n`, at most
//!   [`MAX_EJECTION_MULTIPLIER`]` × base_ejection` (10 × 30 s = Envoy's default
//!   `max_ejection_time` of 300 s). For each `base_ejection` an endpoint spends
//!   un-ejected, n drops by one, so an endpoint that recovered for good starts again
//!   from `base_ejection`.
//! - At most `⌊max_ejected × endpoints⌋` endpoints of a service are ejected at once.
//!   Unlike Envoy there is no minimum of one: a service of one endpoint never loses it,
//!   which would only trade its errors for "no endpoint" errors. An endpoint refused
//!   ejection for that reason is ejected at its next failure once there is room.
//! - Un-ejection needs no timer: an endpoint is ejected while `now` is before its end.
//!   Outcomes recorded while it is ejected (requests already in flight) do not count.
//!
//! The detector is keyed by whatever identifies an endpoint to the caller (an instance
//! id, an address, an index); call [`OutlierDetector::retain`] when endpoints go, so its
//! memory follows the endpoint set. There is no tower layer: ejection is an input to
//! the balancer, which asks [`OutlierDetector::is_ejected`] of its candidates.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conway_core::manifest::Outlier;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::outcome::Outcome;

/// The longest ejection, in multiples of `base_ejection`.
pub const MAX_EJECTION_MULTIPLIER: u32 = 10;

/// Tracks the endpoints of one service. Share it in an `Arc`; every method takes
/// `&self` and holds a lock for one hash-map lookup (a scan of the service's endpoints
/// when one is about to be ejected).
pub struct OutlierDetector<K> {
    consecutive_errors: u32,
    base_ejection: Duration,
    /// `max_ejected` in hundredths of a percent.
    max_ejected: u32,
    origin: Instant,
    /// When the last ejection in force ends, in nanoseconds after `origin`: past it,
    /// [`is_ejected`](Self::is_ejected) answers without the lock.
    last_ejection_end: AtomicU64,
    endpoints: Mutex<HashMap<K, Endpoint>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Endpoint {
    consecutive: u32,
    /// Ejections counted towards the next one's length (decays while healthy).
    ejections: u32,
    /// When the current or last ejection ends.
    until: Option<Instant>,
}

impl Endpoint {
    fn is_ejected(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }
}

/// An endpoint was ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// When it comes back.
    pub until: Instant,
    /// How long it is out.
    pub duration: Duration,
    /// Its ejection count, as the multiplier of `base_ejection` (at most
    /// [`MAX_EJECTION_MULTIPLIER`]).
    pub multiplier: u32,
}

impl<K: Hash + Eq + Clone> OutlierDetector<K> {
    /// A detector as the manifest configures it (`consecutive_errors` of 0 acts as 1).
    pub fn new(config: &Outlier) -> Self {
        Self {
            consecutive_errors: config.consecutive_errors.max(1),
            base_ejection: config.base_ejection.get(),
            max_ejected: config.max_ejected.basis_points(),
            origin: Instant::now(),
            last_ejection_end: AtomicU64::new(0),
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// Records a try's outcome on endpoint `id`, one of `total_endpoints` of the
    /// service; returns the ejection it caused, if any.
    pub fn record(
        &self,
        id: &K,
        outcome: Outcome,
        total_endpoints: usize,
        now: Instant,
    ) -> Option<Ejection> {
        let gateway_failure = outcome.failure().is_some_and(|f| f.is_gateway_failure());
        let mut endpoints = self.endpoints.lock();
        if !endpoints.contains_key(id) {
            if !gateway_failure {
                return None; // nothing to remember
            }
            endpoints.insert(id.clone(), Endpoint::default());
        }
        let endpoint = endpoints.get_mut(id)?;
        if !gateway_failure {
            endpoint.consecutive = 0;
            return None;
        }
        if endpoint.is_ejected(now) {
            return None;
        }
        endpoint.consecutive = endpoint.consecutive.saturating_add(1);
        if endpoint.consecutive < self.consecutive_errors {
            return None;
        }
        let ejected = endpoints.values().filter(|e| e.is_ejected(now)).count();
        let allowed = total_endpoints.saturating_mul(self.max_ejected as usize) / 10_000;
        if ejected >= allowed {
            return None;
        }
        let endpoint = endpoints.get_mut(id)?;
        let ejection = self.eject(endpoint, now);
        drop(endpoints);
        let end = self.nanos_since_origin(ejection.until);
        self.last_ejection_end.fetch_max(end, Ordering::Relaxed);
        Some(ejection)
    }

    /// Whether endpoint `id` is ejected at `now`.
    pub fn is_ejected(&self, id: &K, now: Instant) -> bool {
        if self.nanos_since_origin(now) >= self.last_ejection_end.load(Ordering::Relaxed) {
            return false;
        }
        self.endpoints
            .lock()
            .get(id)
            .is_some_and(|endpoint| endpoint.is_ejected(now))
    }

    /// How many endpoints are ejected at `now`, for a gauge.
    pub fn ejected(&self, now: Instant) -> usize {
        let endpoints = self.endpoints.lock();
        endpoints.values().filter(|e| e.is_ejected(now)).count()
    }

    /// Keeps only the endpoints `keep` says are still there.
    pub fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        self.endpoints.lock().retain(|id, _| keep(id));
    }

    /// How many endpoints the detector remembers.
    pub fn tracked(&self) -> usize {
        self.endpoints.lock().len()
    }

    fn eject(&self, endpoint: &mut Endpoint, now: Instant) -> Ejection {
        if let (Some(until), false) = (endpoint.until, self.base_ejection.is_zero()) {
            let healthy = now.saturating_duration_since(until);
            let periods = healthy.as_nanos() / self.base_ejection.as_nanos();
            let periods = u32::try_from(periods).unwrap_or(u32::MAX);
            endpoint.ejections = endpoint.ejections.saturating_sub(periods);
        }
        let multiplier = (endpoint.ejections + 1).min(MAX_EJECTION_MULTIPLIER);
        let duration = self.base_ejection * multiplier;
        let until = now.checked_add(duration).unwrap_or(now);
        *endpoint = Endpoint {
            consecutive: 0,
            ejections: multiplier,
            until: Some(until),
        };
        Ejection {
            until,
            duration,
            multiplier,
        }
    }

    fn nanos_since_origin(&self, instant: Instant) -> u64 {
        let nanos = instant.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }
}

impl<K> fmt::Debug for OutlierDetector<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierDetector")
            .field("consecutive_errors", &self.consecutive_errors)
            .field("base_ejection", &self.base_ejection)
            .field("max_ejected_basis_points", &self.max_ejected)
            .finish_non_exhaustive()
    }
}
