//! Request counters that see every request (never sampled), for the dependency graph
//! and the charts: per caller → callee pair, 10-second buckets for the last hour, in
//! memory.
//!
//! # The contract with the proxies
//!
//! Proxies push OTLP metrics to the receiver (`POST /v1/metrics`) every 10 seconds:
//!
//! - [`REQUESTS_METRIC`] (`conway.requests`): a monotonic Sum with **delta**
//!   temporality, one data point per attribute set, with the attributes `caller` (the
//!   calling service, or `gateway`), `callee` (the service called), `route` (the
//!   route's name, or the callee for mesh calls) and `status_class` (`2xx` … `5xx`).
//! - [`DURATION_METRIC`] (`conway.request.duration`): a Histogram in seconds with
//!   **delta** temporality and explicit bounds (best: [`DURATION_BOUNDS`]), with the
//!   same attributes except `status_class`.
//!
//! A point counts in the 10-second bucket of its `time_unix_nano`. Points older than
//! the hour kept, or ahead of the clock by more than a bucket, are dropped (`stale`);
//! cumulative points are dropped (`not_delta`); other metrics are accepted and ignored.
//! `route` is accepted and summed over: the counters keep caller → callee pairs, at
//! most [`crate::TelemetryConfig::max_series`] of them (further pairs: `series_limit`).

mod view;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use parking_lot::Mutex;

use crate::clock::SharedClock;
use crate::metrics::{Signal, TelemetryMetrics};
use crate::model::from_unix_nanos;
use crate::otlp::values::string_attribute;

/// The request counter's name.
pub const REQUESTS_METRIC: &str = "conway.requests";
/// The request duration histogram's name.
pub const DURATION_METRIC: &str = "conway.request.duration";
/// The histogram's bounds, in seconds (the proxy's Prometheus histogram's too).
pub const DURATION_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// A bucket's width.
pub const STEP: Duration = Duration::from_secs(10);
/// Buckets kept: an hour.
pub const HISTORY_STEPS: i64 = 360;
/// The longest caller or callee name kept.
const MAX_NAME_BYTES: usize = 256;
/// OTLP's `AGGREGATION_TEMPORALITY_DELTA`.
const DELTA: i32 = 1;

const LATENCY_SLOTS: usize = DURATION_BOUNDS.len() + 1;

/// One 10-second bucket of one pair.
#[derive(Debug, Clone)]
struct Bucket {
    step: i64,
    requests: u64,
    errors: u64,
    latency: [u32; LATENCY_SLOTS],
}

/// The buckets of one pair, oldest first.
#[derive(Debug, Default)]
struct Series {
    buckets: VecDeque<Bucket>,
}

impl Series {
    fn bucket(&mut self, step: i64) -> &mut Bucket {
        let at = self.buckets.partition_point(|b| b.step < step);
        if self.buckets.get(at).is_none_or(|b| b.step != step) {
            self.buckets.insert(
                at,
                Bucket {
                    step,
                    requests: 0,
                    errors: 0,
                    latency: [0; LATENCY_SLOTS],
                },
            );
        }
        &mut self.buckets[at]
    }

    fn prune(&mut self, oldest: i64) {
        while self.buckets.front().is_some_and(|b| b.step < oldest) {
            self.buckets.pop_front();
        }
    }
}

/// What a metrics request amounted to.
#[derive(Debug, Default)]
pub(crate) struct MetricsOutcome {
    pub(crate) points: u64,
    pub(crate) rejected: u64,
    pub(crate) reason: Option<String>,
}

/// The counters.
#[derive(Debug)]
pub struct Counters {
    series: Mutex<HashMap<(String, String), Series>>,
    clock: SharedClock,
    max_series: usize,
    metrics: TelemetryMetrics,
}

/// The 10-second step of a time.
fn step_of(time: SystemTime) -> i64 {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(seconds / STEP.as_secs()).unwrap_or(i64::MAX)
}

/// Our slot for an upper bound (seconds): the first bound at or above it.
fn slot_of(upper: f64) -> usize {
    DURATION_BOUNDS.partition_point(|&b| b < upper)
}

impl Counters {
    pub(crate) fn new(clock: SharedClock, max_series: usize, metrics: TelemetryMetrics) -> Self {
        Self {
            series: Mutex::new(HashMap::new()),
            clock,
            max_series,
            metrics,
        }
    }

    /// The step a point at `time` belongs to, if it is within the hour kept.
    fn step_in_range(&self, time: SystemTime) -> Option<i64> {
        let now = step_of(self.clock.now());
        let step = step_of(time);
        (step > now - HISTORY_STEPS && step <= now + 1).then_some(step)
    }

    /// Runs `f` on the pair's series, creating it within the cap; false if dropped.
    fn with_series(&self, caller: &str, callee: &str, f: impl FnOnce(&mut Series)) -> bool {
        let mut all = self.series.lock();
        let key = (cut(caller), cut(callee));
        if !all.contains_key(&key) {
            if all.len() >= self.max_series {
                return false;
            }
            all.insert(key.clone(), Series::default());
            self.metrics.series.set(all.len() as i64);
        }
        if let Some(series) = all.get_mut(&key) {
            f(series);
        }
        true
    }

    /// Counts `count` requests caller → callee answered with `status_class` (`5xx`
    /// counts as an error) at `time`. False if dropped (stale, or over the pair cap).
    pub fn add_requests(
        &self,
        time: SystemTime,
        caller: &str,
        callee: &str,
        status_class: &str,
        count: u64,
    ) -> bool {
        let Some(step) = self.step_in_range(time) else {
            self.metrics.drop_items(Signal::Metrics, "stale", 1);
            return false;
        };
        let error = status_class.starts_with('5');
        let kept = self.with_series(caller, callee, |series| {
            let bucket = series.bucket(step);
            bucket.requests += count;
            if error {
                bucket.errors += count;
            }
        });
        if !kept {
            self.metrics.drop_items(Signal::Metrics, "series_limit", 1);
        }
        kept
    }

    /// Adds a latency histogram (`counts` has one more entry than `bounds`, seconds).
    pub fn add_latency(
        &self,
        time: SystemTime,
        caller: &str,
        callee: &str,
        bounds: &[f64],
        counts: &[u64],
    ) -> bool {
        let Some(step) = self.step_in_range(time) else {
            self.metrics.drop_items(Signal::Metrics, "stale", 1);
            return false;
        };
        let kept = self.with_series(caller, callee, |series| {
            let bucket = series.bucket(step);
            for (i, &count) in counts.iter().enumerate() {
                let upper = bounds.get(i).copied().unwrap_or(f64::INFINITY);
                let slot = &mut bucket.latency[slot_of(upper)];
                *slot = slot.saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
            }
        });
        if !kept {
            self.metrics.drop_items(Signal::Metrics, "series_limit", 1);
        }
        kept
    }

    /// Drops buckets older than the hour and pairs left empty.
    pub fn prune(&self) {
        let oldest = step_of(self.clock.now()) - HISTORY_STEPS + 1;
        let mut all = self.series.lock();
        all.retain(|_, series| {
            series.prune(oldest);
            !series.buckets.is_empty()
        });
        self.metrics.series.set(all.len() as i64);
    }

    /// Counts the `conway.*` points of an OTLP metrics request.
    pub(crate) fn ingest(
        &self,
        request: ExportMetricsServiceRequest,
        max_points: usize,
    ) -> MetricsOutcome {
        let mut outcome = MetricsOutcome::default();
        let mut reject = |outcome: &mut MetricsOutcome, reason: &'static str, why: String| {
            outcome.rejected += 1;
            self.metrics.drop_items(Signal::Metrics, reason, 1);
            outcome.reason.get_or_insert(why);
        };
        for resource in request.resource_metrics {
            for scope in resource.scope_metrics {
                for metric in scope.metrics {
                    let (temporality, points): (i32, Vec<Point>) = match metric.data {
                        Some(Data::Sum(sum)) if metric.name == REQUESTS_METRIC => (
                            sum.aggregation_temporality,
                            sum.data_points
                                .into_iter()
                                .map(|p| Point {
                                    attributes: p.attributes,
                                    time: p.time_unix_nano,
                                    kind: PointKind::Count(match p.value {
                                        Some(Number::AsInt(n)) => n.max(0) as u64,
                                        Some(Number::AsDouble(d)) => d.max(0.0) as u64,
                                        None => 0,
                                    }),
                                })
                                .collect(),
                        ),
                        Some(Data::Histogram(histogram)) if metric.name == DURATION_METRIC => (
                            histogram.aggregation_temporality,
                            histogram
                                .data_points
                                .into_iter()
                                .map(|p| Point {
                                    attributes: p.attributes,
                                    time: p.time_unix_nano,
                                    kind: PointKind::Histogram(p.explicit_bounds, p.bucket_counts),
                                })
                                .collect(),
                        ),
                        other => {
                            let ignored = points_in(other.as_ref());
                            outcome.points += ignored;
                            self.metrics.drop_items(Signal::Metrics, "ignored", ignored);
                            continue;
                        }
                    };
                    for point in points {
                        outcome.points += 1;
                        if outcome.points > max_points as u64 {
                            reject(
                                &mut outcome,
                                "over_limit",
                                format!("a request may carry at most {max_points} data points"),
                            );
                            continue;
                        }
                        if temporality != DELTA {
                            reject(
                                &mut outcome,
                                "not_delta",
                                format!("{} must have delta temporality", metric.name),
                            );
                            continue;
                        }
                        self.count_point(point, &mut outcome, &mut reject);
                    }
                }
            }
        }
        outcome
    }

    fn count_point(
        &self,
        point: Point,
        outcome: &mut MetricsOutcome,
        reject: &mut impl FnMut(&mut MetricsOutcome, &'static str, String),
    ) {
        let caller = string_attribute(&point.attributes, "caller").filter(|s| !s.is_empty());
        let callee = string_attribute(&point.attributes, "callee").filter(|s| !s.is_empty());
        let (Some(caller), Some(callee)) = (caller, callee) else {
            reject(
                outcome,
                "invalid",
                "conway.* points need the attributes caller and callee".to_owned(),
            );
            return;
        };
        let time = from_unix_nanos(point.time);
        match point.kind {
            PointKind::Count(count) => {
                let class = status_class(&point.attributes);
                self.add_requests(time, &caller, &callee, &class, count);
            }
            PointKind::Histogram(bounds, counts) => {
                if counts.len() != bounds.len() + 1 {
                    reject(
                        outcome,
                        "invalid",
                        "a histogram needs one more bucket count than bounds".to_owned(),
                    );
                    return;
                }
                self.add_latency(time, &caller, &callee, &bounds, &counts);
            }
        }
    }
}

/// A decoded data point of one of Conway's metrics.
struct Point {
    attributes: Vec<KeyValue>,
    time: u64,
    kind: PointKind,
}

enum PointKind {
    Count(u64),
    Histogram(Vec<f64>, Vec<u64>),
}

fn status_class(attributes: &[KeyValue]) -> String {
    string_attribute(attributes, "status_class").unwrap_or_default()
}

fn points_in(data: Option<&Data>) -> u64 {
    let n = match data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    };
    n as u64
}

fn cut(name: &str) -> String {
    let mut name = name.to_owned();
    crate::config::truncate(&mut name, MAX_NAME_BYTES);
    name
}
