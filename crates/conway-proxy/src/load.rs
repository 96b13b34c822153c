//! Load reports: how many requests this proxy has in flight to each service, and where
//! each service's circuit breaker stands, sent to the control plane every second
//! (`PUT /v1/proxies/{proxy}/load`) for the autoscaler and the dashboard.
//!
//! The request path pays one atomic increment and one decrement per request
//! ([`InFlight::enter`], on the service's own counter, carried from table to table):
//! no lookup, no lock, no allocation. A background task samples every counter every
//! [`SAMPLE_EVERY`] and reports, per service, the average of its samples over the
//! interval (what Knative's autoscaler averages) and the count at the end of it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use conway_client::Client;
use conway_core::api::{BreakerState, LoadReport, ServiceLoadReport};
use conway_resilience::circuit_breaker::State;

use crate::run::Listen;
use crate::table::{ServiceState, Table};

/// How often a report is sent.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How often the counters are sampled for the interval's average.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// One service's requests in flight through this proxy.
#[derive(Debug, Default)]
pub struct InFlight(AtomicU64);

/// A request in flight; dropping it ends it.
#[derive(Debug)]
#[must_use = "the request counts as in flight only while this is held"]
pub struct Entered<'a>(&'a InFlight);

impl InFlight {
    /// Counts a request in flight until the returned guard is dropped.
    pub fn enter(&self) -> Entered<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Entered(self)
    }

    /// Requests in flight now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The breaker's state as the API names it.
pub fn breaker_state(service: &ServiceState) -> BreakerState {
    match service.breaker.as_ref().map(|b| b.state()) {
        None | Some(State::Closed) => BreakerState::Closed,
        Some(State::HalfOpen) => BreakerState::HalfOpen,
        Some(State::Open) => BreakerState::Open,
    }
}

/// The name this proxy reports under: its role (`gateway` when it has a gateway
/// listener, else `mesh`), the host and the process id.
pub fn proxy_name(listens: &[Listen]) -> String {
    let role = if listens
        .iter()
        .any(|l| matches!(l, Listen::Gateway(_) | Listen::GatewayTls(_)))
    {
        "gateway"
    } else {
        "mesh"
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{role}-{host}-{}", std::process::id())
}

/// Sums of samples over one interval, per service.
#[derive(Debug, Default)]
pub struct Sampler {
    sums: HashMap<Arc<str>, (u64, u32)>,
}

impl Sampler {
    /// Samples every service of `table`.
    pub fn sample(&mut self, table: &Table) {
        for service in table.services.values() {
            let entry = self.sums.entry(service.name.clone()).or_default();
            entry.0 += service.inflight.get();
            entry.1 += 1;
        }
    }

    /// The report for the interval now ending, and a fresh interval.
    pub fn report(&mut self, table: &Table, interval: Duration) -> LoadReport {
        let sums = std::mem::take(&mut self.sums);
        let mut services: Vec<ServiceLoadReport> = table
            .services
            .values()
            .map(|service| {
                let current = service.inflight.get();
                let inflight = match sums.get(&service.name) {
                    Some(&(sum, samples)) if samples > 0 => sum as f64 / f64::from(samples),
                    _ => current as f64,
                };
                ServiceLoadReport {
                    service: service.name.to_string(),
                    inflight,
                    current,
                    breaker: breaker_state(service),
                }
            })
            .collect();
        services.sort_by(|a, b| a.service.cmp(&b.service));
        LoadReport {
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            services,
        }
    }
}

/// Samples and reports until `shutdown` completes. A report the control plane does not
/// take is dropped (the next one replaces it anyway).
pub fn spawn_reporter(
    server: &str,
    listens: &[Listen],
    table: Arc<ArcSwap<Table>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = Client::builder(server).timeout(REPORT_EVERY);
    // A report is a change: it needs the admin token where the control plane asks for one.
    if let Ok(token) = std::env::var(conway_client::TOKEN_ENV)
        && !token.is_empty()
    {
        builder = builder.token(token);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "no load reports");
            return;
        }
    };
    let name = proxy_name(listens);
    tokio::spawn(async move {
        tokio::select! {
            () = report_forever(&client, &name, &table) => {}
            () = shutdown => {}
        }
    });
}

async fn report_forever(client: &Client, name: &str, table: &ArcSwap<Table>) {
    let mut sampler = Sampler::default();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let per_report = (REPORT_EVERY.as_millis() / SAMPLE_EVERY.as_millis()).max(1);
    let mut samples = 0;
    loop {
        tick.tick().await;
        let current = table.load();
        sampler.sample(&current);
        samples += 1;
        if samples < per_report {
            continue;
        }
        samples = 0;
        let report = sampler.report(&current, REPORT_EVERY);
        drop(current);
        if let Err(error) = client.report_load(name, &report).await {
            tracing::debug!(%error, "load report not taken");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_counts_while_held() {
        let inflight = InFlight::default();
        let first = inflight.enter();
        {
            let _second = inflight.enter();
            assert_eq!(inflight.get(), 2);
        }
        assert_eq!(inflight.get(), 1);
        drop(first);
        assert_eq!(inflight.get(), 0);
    }

    fn table(services: &[&str], previous: &Table) -> Table {
        let mut snapshot = conway_client::MirrorSnapshot::default();
        for name in services {
            snapshot.config.services.insert(
                (*name).to_owned(),
                conway_core::manifest::Service::default(),
            );
        }
        Table::build(&snapshot, previous)
    }

    #[test]
    fn the_report_averages_the_samples_and_survives_a_new_table() {
        let first = table(&["orders", "catalog"], &Table::default());
        let orders = first.service("orders").expect("orders").clone();
        let mut sampler = Sampler::default();
        let held: Vec<_> = (0..4).map(|_| orders.inflight.enter()).collect();
        sampler.sample(&first);
        sampler.sample(&first);
        drop(held);
        sampler.sample(&first);
        // The counter carries over to the next table: a request in flight across a
        // registry change still counts, and ends on the same counter.
        let second = table(&["orders", "catalog"], &first);
        let still = second.service("orders").expect("orders").inflight.enter();
        sampler.sample(&second);
        let report = sampler.report(&second, REPORT_EVERY);
        assert_eq!(report.interval_ms, 1000);
        let names: Vec<&str> = report.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["catalog", "orders"]);
        let orders = &report.services[1];
        assert_eq!(orders.inflight, 9.0 / 4.0, "(4 + 4 + 0 + 1) / 4 samples");
        assert_eq!(orders.current, 1);
        assert_eq!(orders.breaker, BreakerState::Closed);
        assert_eq!(report.services[0].inflight, 0.0);
        drop(still);
        let next = sampler.report(&second, REPORT_EVERY);
        assert_eq!(next.services[1].inflight, 0.0, "a fresh interval");
    }

    #[test]
    fn the_name_says_the_role() {
        let any = "127.0.0.1:0".parse().expect("address");
        assert!(proxy_name(&[Listen::Gateway(any), Listen::Mesh(any)]).starts_with("gateway-"));
        let name = proxy_name(&[Listen::Mesh(any)]);
        assert!(name.starts_with("mesh-"), "{name}");
        assert!(
            name.ends_with(&format!("-{}", std::process::id())),
            "{name}"
        );
    }
}
