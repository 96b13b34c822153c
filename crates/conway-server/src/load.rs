//! The load board: the latest report of each proxy about each service's in-flight
//! requests and circuit breaker, kept in memory (load is live state: it is not worth a
//! durable write every second, and a restarted control plane has fresh reports within
//! one interval). A report expires after three of its proxy's intervals, and at least
//! [`MIN_EXPIRY`], so a proxy that stopped stops counting.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conway_core::api::{BreakerState, LoadReport, ProxyLoad, ServiceLoad};
use parking_lot::Mutex;
use tokio::time::Instant;

/// A report lives at least this long.
pub(crate) const MIN_EXPIRY: Duration = Duration::from_secs(3);

/// The most proxies remembered; beyond it the stalest report is forgotten.
const MAX_PROXIES: usize = 1024;

#[derive(Debug)]
struct Entry {
    received: Instant,
    received_ms: u64,
    expiry: Duration,
    report: LoadReport,
}

/// Latest reports by proxy.
#[derive(Debug, Default)]
pub(crate) struct LoadBoard {
    proxies: Mutex<BTreeMap<String, Entry>>,
}

impl LoadBoard {
    /// Keeps `report` as `proxy`'s latest.
    pub(crate) fn record(&self, proxy: &str, report: LoadReport) {
        self.record_at(Instant::now(), proxy, report);
    }

    fn record_at(&self, now: Instant, proxy: &str, report: LoadReport) {
        let expiry = Duration::from_millis(report.interval_ms.saturating_mul(3)).max(MIN_EXPIRY);
        let mut proxies = self.proxies.lock();
        proxies.retain(|_, e| now.duration_since(e.received) < e.expiry);
        if proxies.len() >= MAX_PROXIES && !proxies.contains_key(proxy) {
            let stalest = proxies
                .iter()
                .min_by_key(|(_, e)| e.received)
                .map(|(name, _)| name.clone());
            if let Some(name) = stalest {
                proxies.remove(&name);
            }
        }
        proxies.insert(
            proxy.to_owned(),
            Entry {
                received: now,
                received_ms: unix_ms(),
                expiry,
                report,
            },
        );
    }

    /// `service`'s load: every unexpired report about it, summed.
    pub(crate) fn service(&self, service: &str) -> ServiceLoad {
        self.service_at(Instant::now(), service)
    }

    fn service_at(&self, now: Instant, service: &str) -> ServiceLoad {
        let proxies = self.proxies.lock();
        let mut load = ServiceLoad {
            service: service.to_owned(),
            inflight: 0.0,
            current: 0,
            breaker: BreakerState::Closed,
            proxies: Vec::new(),
        };
        for (proxy, entry) in proxies.iter() {
            if now.duration_since(entry.received) >= entry.expiry {
                continue;
            }
            for reported in entry
                .report
                .services
                .iter()
                .filter(|s| s.service == service)
            {
                load.inflight += reported.inflight;
                load.current += reported.current;
                load.breaker = load.breaker.max(reported.breaker);
                load.proxies.push(ProxyLoad {
                    proxy: proxy.clone(),
                    inflight: reported.inflight,
                    current: reported.current,
                    breaker: reported.breaker,
                    reported_at_ms: entry.received_ms,
                });
            }
        }
        load
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use conway_core::api::ServiceLoadReport;

    use super::*;

    fn report(services: &[(&str, f64, BreakerState)]) -> LoadReport {
        LoadReport {
            interval_ms: 1000,
            services: services
                .iter()
                .map(|(service, inflight, breaker)| ServiceLoadReport {
                    service: (*service).to_owned(),
                    inflight: *inflight,
                    current: inflight.round() as u64,
                    breaker: *breaker,
                })
                .collect(),
        }
    }

    #[test]
    fn sums_proxies_keeps_the_latest_and_expires_stale_reports() {
        let board = LoadBoard::default();
        let start = Instant::now();
        let mut now = start;
        assert_eq!(board.service_at(now, "orders").inflight, 0.0);
        assert!(board.service_at(now, "orders").proxies.is_empty());
        board.record_at(
            now,
            "gateway-a",
            report(&[("orders", 9.0, BreakerState::Closed)]),
        );
        board.record_at(
            now,
            "gateway-a",
            report(&[
                ("orders", 1.5, BreakerState::Closed),
                ("catalog", 4.0, BreakerState::Closed),
            ]),
        );
        now += Duration::from_secs(2);
        board.record_at(
            now,
            "mesh-b",
            report(&[("orders", 2.0, BreakerState::HalfOpen)]),
        );
        let orders = board.service_at(now, "orders");
        assert_eq!(orders.inflight, 3.5, "the latest of each proxy, summed");
        assert_eq!(orders.breaker, BreakerState::HalfOpen, "the worst state");
        assert_eq!(orders.proxies.len(), 2);
        assert_eq!(board.service_at(now, "catalog").inflight, 4.0);
        now += Duration::from_millis(1500);
        let orders = board.service_at(now, "orders");
        assert_eq!(orders.inflight, 2.0, "gateway-a's report expired after 3 s");
        assert_eq!(orders.proxies[0].proxy, "mesh-b");
        let json = serde_json::to_value(&orders).expect("JSON");
        assert_eq!(json["breaker"], "half_open");
        assert_eq!(json["proxies"][0]["breaker"], "half_open");
    }
}
