//! The counters as the dashboard reads them: the dependency graph over a window, and a
//! service's chart series.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use conway_core::api::{Graph, GraphEdge, GraphNode, SeriesPoint, ServiceSeries};

use super::{Bucket, Counters, DURATION_BOUNDS, HISTORY_STEPS, LATENCY_SLOTS, STEP, step_of};

/// Sums of some buckets.
#[derive(Debug, Clone)]
struct Totals {
    requests: u64,
    errors: u64,
    latency: [u64; LATENCY_SLOTS],
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            requests: 0,
            errors: 0,
            latency: [0; LATENCY_SLOTS],
        }
    }
}

impl Totals {
    fn add(&mut self, bucket: &Bucket) {
        self.requests += bucket.requests;
        self.errors += bucket.errors;
        for (sum, &count) in self.latency.iter_mut().zip(&bucket.latency) {
            *sum += u64::from(count);
        }
    }

    fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// The `q` quantile in milliseconds, interpolated inside its bucket (as
    /// Prometheus' `histogram_quantile`); beyond the last bound, the last bound.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (slot, &count) in self.latency.iter().enumerate() {
            if count > 0 && (below + count) as f64 >= rank {
                let Some(&upper) = DURATION_BOUNDS.get(slot) else {
                    return Some(DURATION_BOUNDS[DURATION_BOUNDS.len() - 1] * 1000.0);
                };
                let lower = if slot == 0 {
                    0.0
                } else {
                    DURATION_BOUNDS[slot - 1]
                };
                let within = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
                return Some((lower + (upper - lower) * within) * 1000.0);
            }
            below += count;
        }
        Some(DURATION_BOUNDS[DURATION_BOUNDS.len() - 1] * 1000.0)
    }
}

/// Steps in a window ending now: `(first, last)` inclusive.
fn window_steps(now: i64, window: Duration) -> (i64, i64) {
    let steps = (window.as_secs() / STEP.as_secs()).clamp(1, HISTORY_STEPS as u64) as i64;
    (now - steps + 1, now)
}

impl Counters {
    /// The graph over the last `window`: observed pairs with their figures, beside the
    /// `declared` edges (caller, callee) and the `defined` services.
    pub fn graph(
        &self,
        defined: &[String],
        declared: &[(String, String)],
        window: Duration,
    ) -> Graph {
        self.prune();
        let (first, last) = window_steps(step_of(self.clock.now()), window);
        let seconds = ((last - first + 1) as u64 * STEP.as_secs()) as f64;
        let mut observed: BTreeMap<(String, String), Totals> = BTreeMap::new();
        for ((caller, callee), series) in self.series.lock().iter() {
            let mut totals = Totals::default();
            for bucket in series
                .buckets
                .iter()
                .filter(|b| (first..=last).contains(&b.step))
            {
                totals.add(bucket);
            }
            if totals.requests > 0 {
                observed.insert((caller.clone(), callee.clone()), totals);
            }
        }
        let declared: BTreeSet<(String, String)> = declared.iter().cloned().collect();
        let pairs: BTreeSet<(String, String)> = observed
            .keys()
            .cloned()
            .chain(declared.iter().cloned())
            .collect();
        let mut incoming: BTreeMap<String, Totals> = BTreeMap::new();
        let mut edges = Vec::new();
        for pair in pairs {
            let totals = observed.get(&pair).cloned().unwrap_or_default();
            let into = incoming.entry(pair.1.clone()).or_default();
            into.requests += totals.requests;
            into.errors += totals.errors;
            edges.push(GraphEdge {
                observed: totals.requests > 0,
                declared: declared.contains(&pair),
                requests: totals.requests,
                rate: totals.requests as f64 / seconds,
                error_rate: totals.error_rate(),
                p50_ms: totals.quantile_ms(0.5),
                p99_ms: totals.quantile_ms(0.99),
                from: pair.0,
                to: pair.1,
            });
        }
        let defined_set: BTreeSet<&String> = defined.iter().collect();
        let names: BTreeSet<String> = defined
            .iter()
            .cloned()
            .chain(edges.iter().flat_map(|e| [e.from.clone(), e.to.clone()]))
            .collect();
        let nodes = names
            .into_iter()
            .map(|name| {
                let totals = incoming.get(&name).cloned().unwrap_or_default();
                GraphNode {
                    defined: defined_set.contains(&name),
                    rate: totals.requests as f64 / seconds,
                    error_rate: totals.error_rate(),
                    name,
                }
            })
            .collect();
        Graph {
            window_seconds: seconds as u64,
            nodes,
            edges,
        }
    }

    /// What `service` received over the last `span`, one point per 10-second step,
    /// oldest first.
    pub fn series(&self, service: &str, span: Duration) -> ServiceSeries {
        let (first, last) = window_steps(step_of(self.clock.now()), span);
        let mut steps: Vec<Totals> = vec![Totals::default(); (last - first + 1) as usize];
        for ((_, callee), series) in self.series.lock().iter() {
            if callee != service {
                continue;
            }
            for bucket in series
                .buckets
                .iter()
                .filter(|b| (first..=last).contains(&b.step))
            {
                steps[(bucket.step - first) as usize].add(bucket);
            }
        }
        let step_seconds = STEP.as_secs();
        ServiceSeries {
            service: service.to_owned(),
            step_seconds,
            points: steps
                .iter()
                .enumerate()
                .map(|(i, totals)| SeriesPoint {
                    time_s: (first + i as i64) * step_seconds as i64,
                    rate: totals.requests as f64 / step_seconds as f64,
                    errors: totals.errors as f64 / step_seconds as f64,
                    p99_ms: totals.quantile_ms(0.99),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::metrics::{Signal, TelemetryMetrics};

    fn counters(max_series: usize) -> (Counters, ManualClock, TelemetryMetrics) {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let metrics = TelemetryMetrics::default();
        (
            Counters::new(Arc::new(clock.clone()), max_series, metrics.clone()),
            clock,
            metrics,
        )
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let mut totals = Totals::default();
        // 100 requests between 10 ms and 25 ms.
        totals.latency[5] = 100;
        totals.requests = 100;
        let p50 = totals.quantile_ms(0.5).expect("p50");
        assert!((p50 - 17.5).abs() < 1e-6, "{p50}");
        let p99 = totals.quantile_ms(0.99).expect("p99");
        assert!((p99 - 24.85).abs() < 1e-6, "{p99}");
        assert_eq!(Totals::default().quantile_ms(0.5), None);
    }

    #[test]
    fn observed_and_declared_edges_are_marked() {
        let (counters, clock, _) = counters(100);
        let now = clock.now();
        counters.add_requests(now, "gateway", "orders", "2xx", 90);
        counters.add_requests(now, "gateway", "orders", "5xx", 10);
        counters.add_latency(now, "gateway", "orders", &DURATION_BOUNDS, &{
            let mut c = [0u64; LATENCY_SLOTS];
            c[6] = 100; // 25–50 ms
            c
        });
        counters.add_requests(now, "orders", "fraud", "2xx", 3);
        let graph = counters.graph(
            &["orders".into(), "payments".into(), "fraud".into()],
            &[
                ("orders".into(), "payments".into()),
                ("gateway".into(), "orders".into()),
            ],
            Duration::from_secs(300),
        );
        let edge = |from: &str, to: &str| {
            graph
                .edges
                .iter()
                .find(|e| e.from == from && e.to == to)
                .unwrap_or_else(|| panic!("edge {from} -> {to} in {graph:?}"))
                .clone()
        };
        let both = edge("gateway", "orders");
        assert!(both.observed && both.declared);
        assert_eq!(both.requests, 100);
        assert!((both.error_rate - 0.1).abs() < 1e-9);
        assert!((both.rate - 100.0 / 300.0).abs() < 1e-9);
        let p50 = both.p50_ms.expect("p50");
        assert!((25.0..=50.0).contains(&p50), "{p50}");
        let undeclared = edge("orders", "fraud");
        assert!(undeclared.observed && !undeclared.declared);
        let unused = edge("orders", "payments");
        assert!(!unused.observed && unused.declared && unused.p99_ms.is_none());
        let gateway = graph
            .nodes
            .iter()
            .find(|n| n.name == "gateway")
            .expect("gateway node");
        assert!(!gateway.defined);
        let orders = graph
            .nodes
            .iter()
            .find(|n| n.name == "orders")
            .expect("orders node");
        assert!(orders.defined && (orders.error_rate - 0.1).abs() < 1e-9);
    }

    #[test]
    fn the_window_and_the_hour_bound_what_counts() {
        let (counters, clock, metrics) = counters(100);
        let start = clock.now();
        counters.add_requests(start, "a", "b", "2xx", 5);
        clock.advance(Duration::from_secs(400));
        counters.add_requests(clock.now(), "a", "b", "2xx", 7);
        let graph = counters.graph(&[], &[], Duration::from_secs(300));
        assert_eq!(
            graph.edges[0].requests, 7,
            "the first count is outside 5 minutes"
        );
        // Within the hour, a point for the old time is still taken.
        assert!(counters.add_requests(start, "a", "b", "2xx", 1));
        clock.advance(Duration::from_secs(3600));
        assert!(
            !counters.add_requests(start, "a", "b", "2xx", 1),
            "older than an hour"
        );
        assert_eq!(metrics.dropped(Signal::Metrics, "stale"), 1);
        counters.prune();
        assert!(
            counters
                .graph(&[], &[], Duration::from_secs(300))
                .edges
                .is_empty()
        );
    }

    #[test]
    fn pairs_beyond_the_cap_are_dropped_and_counted() {
        let (counters, clock, metrics) = counters(2);
        let now = clock.now();
        assert!(counters.add_requests(now, "a", "b", "2xx", 1));
        assert!(counters.add_requests(now, "a", "c", "2xx", 1));
        assert!(!counters.add_requests(now, "a", "d", "2xx", 1));
        assert!(
            counters.add_requests(now, "a", "b", "2xx", 1),
            "known pairs go on"
        );
        assert_eq!(metrics.dropped(Signal::Metrics, "series_limit"), 1);
    }

    #[test]
    fn a_series_has_a_point_per_step() {
        let (counters, clock, _) = counters(100);
        counters.add_requests(clock.now(), "gateway", "orders", "2xx", 50);
        counters.add_requests(clock.now(), "gateway", "orders", "5xx", 10);
        counters.add_requests(clock.now(), "billing", "orders", "2xx", 40);
        let series = counters.series("orders", Duration::from_secs(900));
        assert_eq!(series.points.len(), 90);
        let last = series.points.last().expect("a point");
        assert!((last.rate - 10.0).abs() < 1e-9, "{last:?}");
        assert!((last.errors - 1.0).abs() < 1e-9);
        assert_eq!(series.points[0].rate, 0.0);
        assert!(
            series
                .points
                .windows(2)
                .all(|w| w[1].time_s - w[0].time_s == 10)
        );
    }
}
