//! The guard a pick returns: it holds the endpoint's place in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::clock;
use super::endpoint::Endpoint;

/// The longest latency a failure records; see [`PickedEndpoint::fail`].
const MAX_FAILURE_RTT: f64 = 30e9;

/// An endpoint chosen for one request, counted in flight until it is completed or
/// dropped.
///
/// - [`complete`](Self::complete) records the latency the caller measured (to the
///   response head, say);
/// - [`fail`](Self::fail) records a failure as a latency peak, so a fast-failing
///   endpoint does not look like a fast one;
/// - dropping it records the time since the pick, as tower's `PeakEwma` handle does: a
///   request cancelled or abandoned still counts what it cost.
#[derive(Debug)]
pub struct PickedEndpoint {
    endpoint: Arc<Endpoint>,
    picked_at: Instant,
    decay: f64,
    open: bool,
}

impl PickedEndpoint {
    pub(super) fn new(endpoint: &Arc<Endpoint>, picked_at: Instant, decay: f64) -> Self {
        endpoint.stats.start();
        Self {
            endpoint: Arc::clone(endpoint),
            picked_at,
            decay,
            open: true,
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint's instance id (to `avoid` it on a retry).
    pub fn id(&self) -> &str {
        self.endpoint.id()
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint.addr()
    }

    /// When it was picked.
    pub fn picked_at(&self) -> Instant {
        self.picked_at
    }

    /// The request got its answer `rtt` after the pick. (The observation is dated
    /// `picked_at + rtt`, which spares a read of the clock.)
    pub fn complete(mut self, rtt: Duration) {
        self.finish(clock::float_nanos(rtt), self.picked_at + rtt);
    }

    /// The request failed (connect error, reset, 5xx): recorded as a latency of at least
    /// twice the current estimate (up to 30 s), which makes peak-EWMA steer away from
    /// the endpoint until the estimate decays back. Ejection is the outlier detector's.
    pub fn fail(mut self) {
        let now = Instant::now();
        let elapsed = clock::float_nanos(now.saturating_duration_since(self.picked_at));
        let penalty = (self.endpoint.stats.stored_rtt() * 2.0).min(MAX_FAILURE_RTT);
        self.finish(elapsed.max(penalty), now);
    }

    fn finish(&mut self, rtt: f64, at: Instant) {
        if std::mem::replace(&mut self.open, false) {
            self.endpoint
                .stats
                .finish(rtt, clock::nanos(at), self.decay);
        }
    }
}

impl Drop for PickedEndpoint {
    fn drop(&mut self) {
        if self.open {
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(self.picked_at);
            self.finish(clock::float_nanos(elapsed), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::super::{BalanceOptions, EndpointSet, PickRequest};
    use super::*;

    fn one() -> EndpointSet {
        let endpoint = Endpoint::new("e0", SocketAddr::from(([127, 0, 0, 1], 9000)));
        EndpointSet::new(BalanceOptions::default(), vec![endpoint])
    }

    fn estimate(set: &EndpointSet) -> Duration {
        let stats = set.get("e0").unwrap().stats();
        stats.rtt_estimate(Instant::now(), set.options().decay)
    }

    #[tokio::test(start_paused = true)]
    async fn complete_records_the_given_latency() {
        let set = one();
        let picked = set.pick(&PickRequest::default()).unwrap();
        assert_eq!(set.get("e0").unwrap().stats().in_flight(), 1);
        picked.complete(Duration::from_millis(40));
        assert_eq!(set.get("e0").unwrap().stats().in_flight(), 0);
        assert_eq!(estimate(&set), Duration::from_millis(40));
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_records_the_time_since_the_pick() {
        let set = one();
        let picked = set.pick(&PickRequest::default()).unwrap();
        tokio::time::advance(Duration::from_millis(70)).await;
        drop(picked);
        assert_eq!(set.get("e0").unwrap().stats().in_flight(), 0);
        assert_eq!(estimate(&set), Duration::from_millis(70));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_at_least_doubles_the_estimate() {
        let set = one();
        set.pick(&PickRequest::default())
            .unwrap()
            .complete(Duration::from_millis(5));
        set.pick(&PickRequest::default()).unwrap().fail();
        assert_eq!(set.get("e0").unwrap().stats().in_flight(), 0);
        assert_eq!(estimate(&set), Duration::from_millis(10));
    }
}
