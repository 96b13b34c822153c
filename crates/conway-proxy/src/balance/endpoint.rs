//! An endpoint of a service, and the live statistics it keeps across updates of its set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use super::clock;

/// One instance of a service, as the balancer sees it.
///
/// Built from the registry with [`Endpoint::new`] and the `with_*` methods, then handed to
/// an [`EndpointSet`](super::EndpointSet), which gives it its [`EndpointStats`]: those of
/// the endpoint with the same id in the set it replaces, or new ones.
#[derive(Debug, Clone)]
pub struct Endpoint {
    id: String,
    addr: SocketAddr,
    zone: Option<String>,
    version: Option<String>,
    healthy: bool,
    pub(super) stats: Arc<EndpointStats>,
}

impl Endpoint {
    /// A healthy endpoint with no zone and no version.
    pub fn new(id: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            id: id.into(),
            addr,
            zone: None,
            version: None,
            healthy: true,
            stats: Arc::new(EndpointStats::new(Duration::from_millis(1), Arc::default())),
        }
    }

    /// In this zone (`"a"`, `"eu-west-1b"`): zone-aware balancing keeps a caller there.
    #[must_use]
    pub fn with_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// Running this version of the service, for version splits and pins.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Whether its health checks pass (and its lease lives).
    #[must_use]
    pub fn with_health(mut self, healthy: bool) -> Self {
        self.healthy = healthy;
        self
    }

    /// The instance id, unique within the service.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its zone, if the registry knows one.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    /// Its version, if the registry knows one.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Whether its health checks pass. Ejection by the outlier detector is separate:
    /// see [`EndpointStats::eject_until`].
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Its live statistics, shared with every set that holds this instance id.
    pub fn stats(&self) -> &Arc<EndpointStats> {
        &self.stats
    }
}

/// The latest `ejected_until` of any endpoint of one service (as clock nanos). While it
/// lies in the past, no endpoint of the service is ejected and picks skip the checks.
#[derive(Debug, Default)]
pub(super) struct EjectionHint(AtomicU64);

impl EjectionHint {
    /// Whether some endpoint may still be ejected at `now`.
    pub(super) fn active(&self, now: u64) -> bool {
        self.0.load(Relaxed) > now
    }
}

/// Live statistics of one endpoint: requests in flight, a peak-EWMA latency estimate,
/// and the outlier detector's ejection. All lock-free; read on every pick.
///
/// The estimate is Finagle's and linkerd2-proxy's peak EWMA: a response slower than the
/// estimate replaces it at once (the peak); a faster one pulls it down with a weight
/// that grows with the time since the last update, `1 - exp(-elapsed / decay)`. Between
/// responses the estimate read by the balancer decays toward zero at the same rate, so
/// an endpoint that was slow, then left alone, is tried again. The cost the balancer
/// compares is `estimate × (in_flight + 1)`.
#[derive(Debug)]
pub struct EndpointStats {
    in_flight: AtomicUsize,
    /// The estimate in nanoseconds, as `f64` bits.
    rtt: AtomicU64,
    /// When the estimate was last updated (clock nanos).
    updated: AtomicU64,
    /// Ejected until this instant (clock nanos); 0 when never ejected.
    ejected_until: AtomicU64,
    service: Arc<EjectionHint>,
    /// The proxy's counter of tries sent here, resolved at the first.
    pub(crate) tries: std::sync::OnceLock<prometheus_client::metrics::counter::Counter>,
}

impl EndpointStats {
    pub(super) fn new(initial_rtt: Duration, service: Arc<EjectionHint>) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            rtt: AtomicU64::new(clock::float_nanos(initial_rtt).max(1.0).to_bits()),
            updated: AtomicU64::new(clock::nanos(Instant::now())),
            ejected_until: AtomicU64::new(0),
            service,
            tries: std::sync::OnceLock::new(),
        }
    }

    /// Whether these stats belong to the service whose hint is `service`.
    pub(super) fn belongs_to(&self, service: &Arc<EjectionHint>) -> bool {
        Arc::ptr_eq(&self.service, service)
    }

    /// Requests picked for this endpoint and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Relaxed)
    }

    /// The latency estimate as the balancer sees it at `now` (decayed since the last
    /// response).
    pub fn rtt_estimate(&self, now: Instant, decay: Duration) -> Duration {
        let nanos = self.decayed_rtt(clock::nanos(now), clock::float_nanos(decay));
        Duration::from_nanos(nanos as u64)
    }

    /// Take the endpoint out of balancing until `until` (the outlier detector's call).
    /// An ejected endpoint counts as unhealthy for the panic threshold and zone-aware
    /// spill-over.
    pub fn eject_until(&self, until: Instant) {
        let until = clock::nanos(until);
        self.ejected_until.store(until, Relaxed);
        self.service.0.fetch_max(until, Relaxed);
    }

    /// End an ejection early.
    pub fn clear_ejection(&self) {
        self.ejected_until.store(0, Relaxed);
    }

    /// The end of the current or last ejection, if there was one.
    pub fn ejected_until(&self) -> Option<Instant> {
        match self.ejected_until.load(Relaxed) {
            0 => None,
            nanos => Some(clock::instant(nanos)),
        }
    }

    /// Whether the endpoint is ejected at `now`.
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_at(clock::nanos(now))
    }

    pub(super) fn ejected_at(&self, now: u64) -> bool {
        self.ejected_until.load(Relaxed) > now
    }

    /// The estimate in nanoseconds at `now`, decayed toward zero since the last update.
    pub(super) fn decayed_rtt(&self, now: u64, decay: f64) -> f64 {
        let rtt = f64::from_bits(self.rtt.load(Relaxed));
        let elapsed = now.saturating_sub(self.updated.load(Relaxed));
        if elapsed == 0 {
            rtt
        } else {
            rtt * (-(elapsed as f64) / decay).exp()
        }
    }

    /// Peak-EWMA cost at `now`: the decayed estimate times (in flight + 1).
    pub(super) fn cost(&self, now: u64, decay: f64) -> f64 {
        // Floored so that requests in flight still count on an endpoint idle so long its
        // estimate decayed to nothing.
        self.decayed_rtt(now, decay).max(1.0) * (self.in_flight() as f64 + 1.0)
    }

    pub(super) fn start(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    /// Ends a request that took `rtt`, observed at `now`.
    pub(super) fn finish(&self, rtt: f64, now: u64, decay: f64) {
        self.in_flight.fetch_sub(1, Relaxed);
        // The previous update time; the estimate moves toward `rtt` with the weight of
        // the time since then. Racing completions each see the time since the other.
        let last = self.updated.fetch_max(now, Relaxed);
        let weight = (-(now.saturating_sub(last) as f64) / decay).exp();
        let _ = self.rtt.fetch_update(Relaxed, Relaxed, |bits| {
            let estimate = f64::from_bits(bits);
            let next = if rtt > estimate {
                rtt
            } else {
                estimate * weight + rtt * (1.0 - weight)
            };
            Some(next.max(1.0).to_bits())
        });
    }

    /// The estimate in nanoseconds as last stored, without decay.
    pub(super) fn stored_rtt(&self) -> f64 {
        f64::from_bits(self.rtt.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECAY: f64 = 10e9;

    fn stats(rtt_ms: u64) -> EndpointStats {
        EndpointStats::new(Duration::from_millis(rtt_ms), Arc::default())
    }

    #[tokio::test(start_paused = true)]
    async fn a_slower_response_becomes_the_estimate_at_once() {
        let stats = stats(1);
        stats.start();
        let now = clock::nanos(Instant::now());
        stats.finish(50e6, now, DECAY);
        assert_eq!(stats.stored_rtt(), 50e6);
        assert_eq!(stats.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_faster_response_pulls_the_estimate_down_by_elapsed_time() {
        let stats = stats(100);
        tokio::time::advance(Duration::from_secs(10)).await;
        stats.start();
        stats.finish(0.0, clock::nanos(Instant::now()), DECAY);
        // One decay period: the old estimate keeps exp(-1) of its weight.
        let expected = 100e6 * (-1.0f64).exp();
        assert!(
            (stats.stored_rtt() - expected).abs() < 1e3,
            "{}",
            stats.stored_rtt()
        );

        // Right after, another fast response barely moves it.
        stats.start();
        stats.finish(0.0, clock::nanos(Instant::now()), DECAY);
        assert!((stats.stored_rtt() - expected).abs() < 1e3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cost_decays_while_idle_and_grows_with_requests_in_flight() {
        let stats = stats(10);
        let now = clock::nanos(Instant::now());
        assert_eq!(stats.cost(now, DECAY), 10e6);
        stats.start();
        stats.start();
        assert_eq!(stats.cost(now, DECAY), 30e6);

        tokio::time::advance(Duration::from_secs(20)).await;
        let later = Instant::now();
        let decayed = stats.rtt_estimate(later, Duration::from_secs(10));
        assert!(decayed < Duration::from_millis(2), "{decayed:?}");
        assert!(decayed > Duration::from_millis(1), "{decayed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn ejection_ends_at_its_deadline_and_raises_the_service_hint() {
        let service = Arc::new(EjectionHint::default());
        let stats = EndpointStats::new(Duration::from_millis(1), service.clone());
        let now = Instant::now();
        assert!(!stats.is_ejected(now));
        assert!(!service.active(clock::nanos(now)));

        stats.eject_until(now + Duration::from_secs(30));
        assert!(stats.is_ejected(now));
        assert!(service.active(clock::nanos(now)));
        assert_eq!(stats.ejected_until(), Some(now + Duration::from_secs(30)));

        let after = now + Duration::from_secs(30);
        assert!(!stats.is_ejected(after));
        assert!(!service.active(clock::nanos(after)));

        stats.eject_until(now + Duration::from_secs(5));
        stats.clear_ejection();
        assert!(!stats.is_ejected(now));
        assert_eq!(stats.ejected_until(), None);
    }
}
