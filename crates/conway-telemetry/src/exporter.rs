//! A batching OTLP/HTTP exporter (protobuf) with bounded memory: what the proxy uses to
//! send its spans and request counters to the receiver, and what the control plane uses
//! to forward spans and logs to an external collector.
//!
//! Spans and logs go through a bounded queue (by count and by bytes); when it is full
//! they are dropped and counted, never waited for. Request counts are summed in memory
//! per (caller, callee, route, status class), at most `max_series` of them, and pushed
//! every `metrics_interval` as the `conway.requests` Sum and `conway.request.duration`
//! Histogram (delta temporality; see [`crate::counters`]). A failed send is dropped and
//! counted, not retried: the next batch is already coming.
//!
//! ```no_run
//! # async fn example() -> Result<(), conway_telemetry::ExporterError> {
//! use std::time::Duration;
//! let exporter = conway_telemetry::Exporter::new("http://127.0.0.1:4318")?;
//! exporter.add_request("gateway", "orders", "orders", 200, Duration::from_millis(12));
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use opentelemetry_proto::tonic::metrics::v1::{
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use crate::counters::{DURATION_BOUNDS, DURATION_METRIC, REQUESTS_METRIC};
use crate::metrics::{ReasonLabels, SignalLabels};
use crate::model::{LogRecord, SpanRecord, unix_nanos};
use crate::otlp::encode::{resource, scope};
use crate::otlp::values::string_kv;
use crate::otlp::{logs_request, traces_request};

/// The exporter's tunables.
#[derive(Debug, Clone)]
pub struct ExporterOptions {
    /// `service.name` of the metrics it pushes (spans and logs carry their own).
    pub service_name: String,
    /// The most spans and logs queued.
    pub queue_capacity: usize,
    /// The most bytes (roughly) of spans and logs queued.
    pub queue_bytes: usize,
    /// Spans or logs per request.
    pub batch_size: usize,
    /// How often queued spans and logs are sent.
    pub flush_interval: Duration,
    /// How often request counts are pushed.
    pub metrics_interval: Duration,
    /// The most (caller, callee, route, status class) sets summed between pushes.
    pub max_series: usize,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Default for ExporterOptions {
    fn default() -> Self {
        Self {
            service_name: "conway-proxy".to_owned(),
            queue_capacity: 4_096,
            queue_bytes: 8 * 1024 * 1024,
            batch_size: 512,
            flush_interval: Duration::from_secs(1),
            metrics_interval: Duration::from_secs(10),
            max_series: 2_000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// An endpoint the exporter cannot use.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid OTLP endpoint {endpoint:?}: expected an http:// or https:// URL like http://127.0.0.1:4318"
)]
pub struct ExporterError {
    endpoint: String,
}

/// The exporter's counters, as Prometheus metrics.
#[derive(Debug, Clone, Default)]
pub struct ExportMetrics {
    sent: Family<SignalLabels, Counter>,
    dropped: Family<ReasonLabels, Counter>,
}

impl ExportMetrics {
    /// Registers `export_sent` and `export_dropped` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "export_sent",
            "Spans, log records and metric data points exported over OTLP",
            self.sent.clone(),
        );
        registry.register(
            "export_dropped",
            "Items not exported, by signal and reason (queue_full, send_failed, series_limit)",
            self.dropped.clone(),
        );
    }

    fn sent(&self, signal: &'static str, count: u64) {
        self.sent
            .get_or_create(&SignalLabels { signal })
            .inc_by(count);
    }

    fn drop_items(&self, signal: &'static str, reason: &'static str, count: u64) {
        self.dropped
            .get_or_create(&ReasonLabels { signal, reason })
            .inc_by(count);
    }

    /// Items of `signal` (`spans`, `logs`, `metric_points`) sent.
    pub fn sent_count(&self, signal: &'static str) -> u64 {
        self.sent.get_or_create(&SignalLabels { signal }).get()
    }

    /// Items of `signal` dropped for `reason`.
    pub fn dropped_count(&self, signal: &'static str, reason: &'static str) -> u64 {
        self.dropped
            .get_or_create(&ReasonLabels { signal, reason })
            .get()
    }
}

enum Item {
    Span(SpanRecord),
    Log(LogRecord),
    Flush(oneshot::Sender<()>),
}

/// One (caller, callee, route, status class) summed since the last push.
#[derive(Debug)]
struct Aggregate {
    caller: String,
    callee: String,
    route: String,
    class: &'static str,
    count: u64,
    sum_seconds: f64,
    latency: [u64; DURATION_BOUNDS.len() + 1],
}

#[derive(Debug)]
struct Aggregates {
    by_hash: HashMap<u64, Vec<Aggregate>>,
    len: usize,
    since: SystemTime,
}

#[derive(Debug)]
struct Shared {
    options: ExporterOptions,
    queued_bytes: AtomicUsize,
    aggregates: Mutex<Aggregates>,
    metrics: ExportMetrics,
}

/// The exporter. Cheap to clone; the background task ends (after a last flush) when
/// every clone is dropped.
#[derive(Debug, Clone)]
pub struct Exporter {
    tx: mpsc::Sender<Item>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Span(_) => "Span",
            Self::Log(_) => "Log",
            Self::Flush(_) => "Flush",
        })
    }
}

fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

impl Exporter {
    /// An exporter to the OTLP/HTTP base URL `endpoint` (`http://127.0.0.1:4318`; the
    /// signal paths `/v1/traces`, `/v1/logs`, `/v1/metrics` are added), with the
    /// default options. Must be called inside a tokio runtime: it spawns its task.
    pub fn new(endpoint: &str) -> Result<Self, ExporterError> {
        Self::with_options(endpoint, ExporterOptions::default())
    }

    /// An exporter with `options`.
    pub fn with_options(endpoint: &str, options: ExporterOptions) -> Result<Self, ExporterError> {
        Self::build(endpoint, options, ExportMetrics::default())
    }

    /// An exporter counting into `metrics`.
    pub(crate) fn build(
        endpoint: &str,
        options: ExporterOptions,
        metrics: ExportMetrics,
    ) -> Result<Self, ExporterError> {
        let invalid = || ExporterError {
            endpoint: endpoint.to_owned(),
        };
        let base = reqwest::Url::parse(endpoint).map_err(|_| invalid())?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(invalid());
        }
        let url = |path: &str| {
            let mut url = base.clone();
            let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
            url.set_path(&joined);
            url
        };
        let urls = Urls {
            traces: url("v1/traces"),
            logs: url("v1/logs"),
            metrics: url("v1/metrics"),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(options.timeout)
            .build()
            .map_err(|_| invalid())?;
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            options,
            queued_bytes: AtomicUsize::new(0),
            aggregates: Mutex::new(Aggregates {
                by_hash: HashMap::new(),
                len: 0,
                since: SystemTime::now(),
            }),
            metrics,
        });
        tokio::spawn(run(rx, shared.clone(), http, urls));
        Ok(Self { tx, shared })
    }

    /// The exporter's counters (to register them, or to read them in tests).
    pub fn metrics(&self) -> &ExportMetrics {
        &self.shared.metrics
    }

    /// Queues a finished span; dropped and counted when the queue is full.
    pub fn export_span(&self, span: SpanRecord) {
        let size = span.approximate_size();
        self.enqueue(Item::Span(span), size, "spans");
    }

    /// Queues a log record; dropped and counted when the queue is full.
    pub fn export_log(&self, log: LogRecord) {
        let size = log.approximate_size();
        self.enqueue(Item::Log(log), size, "logs");
    }

    fn enqueue(&self, item: Item, size: usize, signal: &'static str) {
        let queued = self.shared.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if queued + size > self.shared.options.queue_bytes {
            self.shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            self.shared.metrics.drop_items(signal, "queue_full", 1);
            return;
        }
        if self.tx.try_send(item).is_err() {
            self.shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            self.shared.metrics.drop_items(signal, "queue_full", 1);
        }
    }

    /// Counts one request caller → callee on `route`, answered `status` after
    /// `duration`. Allocates only for a combination not seen since the last push.
    pub fn add_request(
        &self,
        caller: &str,
        callee: &str,
        route: &str,
        status: u16,
        duration: Duration,
    ) {
        let class = status_class(status);
        let mut hasher = std::hash::DefaultHasher::new();
        (caller, callee, route, class).hash(&mut hasher);
        let hash = hasher.finish();
        let seconds = duration.as_secs_f64();
        let slot = DURATION_BOUNDS.partition_point(|&b| b < seconds);
        let mut guard = self.shared.aggregates.lock();
        let aggregates: &mut Aggregates = &mut guard;
        let full = aggregates.len >= self.shared.options.max_series;
        let entries = aggregates.by_hash.entry(hash).or_default();
        let index = match entries.iter().position(|a| {
            a.class == class && a.caller == caller && a.callee == callee && a.route == route
        }) {
            Some(index) => index,
            None if full => {
                self.shared
                    .metrics
                    .drop_items("metric_points", "series_limit", 1);
                return;
            }
            None => {
                entries.push(Aggregate {
                    caller: caller.to_owned(),
                    callee: callee.to_owned(),
                    route: route.to_owned(),
                    class,
                    count: 0,
                    sum_seconds: 0.0,
                    latency: [0; DURATION_BOUNDS.len() + 1],
                });
                aggregates.len += 1;
                entries.len() - 1
            }
        };
        let aggregate = &mut entries[index];
        aggregate.count += 1;
        aggregate.sum_seconds += seconds;
        aggregate.latency[slot] += 1;
    }

    /// Sends everything queued and counted so far, and waits until it was sent.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Item::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

#[derive(Debug)]
struct Urls {
    traces: reqwest::Url,
    logs: reqwest::Url,
    metrics: reqwest::Url,
}

async fn run(mut rx: mpsc::Receiver<Item>, shared: Arc<Shared>, http: reqwest::Client, urls: Urls) {
    let options = shared.options.clone();
    let mut spans: Vec<SpanRecord> = Vec::new();
    let mut logs: Vec<LogRecord> = Vec::new();
    let mut flush = tokio::time::interval(options.flush_interval.max(Duration::from_millis(10)));
    let mut push = tokio::time::interval(options.metrics_interval.max(Duration::from_millis(10)));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    push.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sender = Sender { shared, http, urls };
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some(Item::Span(span)) => {
                    sender.dequeued(span.approximate_size());
                    spans.push(span);
                    if spans.len() >= options.batch_size {
                        sender.send_spans(&mut spans).await;
                    }
                }
                Some(Item::Log(log)) => {
                    sender.dequeued(log.approximate_size());
                    logs.push(log);
                    if logs.len() >= options.batch_size {
                        sender.send_logs(&mut logs).await;
                    }
                }
                Some(Item::Flush(done)) => {
                    sender.send_spans(&mut spans).await;
                    sender.send_logs(&mut logs).await;
                    sender.push_metrics().await;
                    let _ = done.send(());
                }
                None => {
                    sender.send_spans(&mut spans).await;
                    sender.send_logs(&mut logs).await;
                    sender.push_metrics().await;
                    return;
                }
            },
            _ = flush.tick() => {
                sender.send_spans(&mut spans).await;
                sender.send_logs(&mut logs).await;
            }
            _ = push.tick() => sender.push_metrics().await,
        }
    }
}

struct Sender {
    shared: Arc<Shared>,
    http: reqwest::Client,
    urls: Urls,
}

impl Sender {
    fn dequeued(&self, size: usize) {
        self.shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
    }

    async fn post(&self, url: &reqwest::Url, body: Vec<u8>) -> bool {
        let sent = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => true,
            Ok(response) => {
                tracing::debug!(status = %response.status(), %url, "OTLP export refused");
                false
            }
            Err(error) => {
                tracing::debug!(%error, %url, "OTLP export failed");
                false
            }
        }
    }

    async fn send_spans(&self, spans: &mut Vec<SpanRecord>) {
        if spans.is_empty() {
            return;
        }
        let batch = std::mem::take(spans);
        let body = traces_request(&batch).encode_to_vec();
        self.account(
            "spans",
            batch.len() as u64,
            self.post(&self.urls.traces, body).await,
        );
    }

    async fn send_logs(&self, logs: &mut Vec<LogRecord>) {
        if logs.is_empty() {
            return;
        }
        let batch = std::mem::take(logs);
        let body = logs_request(&batch).encode_to_vec();
        self.account(
            "logs",
            batch.len() as u64,
            self.post(&self.urls.logs, body).await,
        );
    }

    async fn push_metrics(&self) {
        let now = SystemTime::now();
        let (aggregates, since) = {
            let mut all = self.shared.aggregates.lock();
            let since = std::mem::replace(&mut all.since, now);
            all.len = 0;
            (std::mem::take(&mut all.by_hash), since)
        };
        let aggregates: Vec<Aggregate> = aggregates.into_values().flatten().collect();
        if aggregates.is_empty() {
            return;
        }
        let request = metrics_request(
            &self.shared.options.service_name,
            &aggregates,
            unix_nanos(since),
            unix_nanos(now),
        );
        let points = aggregates.len() as u64;
        self.account(
            "metric_points",
            points,
            self.post(&self.urls.metrics, request.encode_to_vec()).await,
        );
    }

    fn account(&self, signal: &'static str, count: u64, sent: bool) {
        if sent {
            self.shared.metrics.sent(signal, count);
        } else {
            self.shared.metrics.drop_items(signal, "send_failed", count);
        }
    }
}

fn attributes(caller: &str, callee: &str, route: &str) -> Vec<KeyValue> {
    vec![
        string_kv("caller", caller),
        string_kv("callee", callee),
        string_kv("route", route),
    ]
}

/// The `conway.requests` Sum and `conway.request.duration` Histogram of `aggregates`.
fn metrics_request(
    service: &str,
    aggregates: &[Aggregate],
    start: u64,
    end: u64,
) -> ExportMetricsServiceRequest {
    let counts = aggregates
        .iter()
        .map(|a| {
            let mut attributes = attributes(&a.caller, &a.callee, &a.route);
            attributes.push(string_kv("status_class", a.class));
            NumberDataPoint {
                attributes,
                start_time_unix_nano: start,
                time_unix_nano: end,
                value: Some(Number::AsInt(i64::try_from(a.count).unwrap_or(i64::MAX))),
                ..Default::default()
            }
        })
        .collect();
    let mut histograms: HashMap<(&str, &str, &str), HistogramDataPoint> = HashMap::new();
    for a in aggregates {
        let point = histograms
            .entry((&a.caller, &a.callee, &a.route))
            .or_insert_with(|| HistogramDataPoint {
                attributes: attributes(&a.caller, &a.callee, &a.route),
                start_time_unix_nano: start,
                time_unix_nano: end,
                bucket_counts: vec![0; DURATION_BOUNDS.len() + 1],
                explicit_bounds: DURATION_BOUNDS.to_vec(),
                sum: Some(0.0),
                ..Default::default()
            });
        point.count += a.count;
        point.sum = Some(point.sum.unwrap_or_default() + a.sum_seconds);
        for (total, count) in point.bucket_counts.iter_mut().zip(a.latency) {
            *total += count;
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource(service, None)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![
                    Metric {
                        name: REQUESTS_METRIC.to_owned(),
                        description:
                            "Requests between services, by caller, callee, route and status class"
                                .to_owned(),
                        unit: "{request}".to_owned(),
                        data: Some(Data::Sum(Sum {
                            data_points: counts,
                            aggregation_temporality: 1,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: DURATION_METRIC.to_owned(),
                        description: "Time to the response head".to_owned(),
                        unit: "s".to_owned(),
                        data: Some(Data::Histogram(Histogram {
                            data_points: histograms.into_values().collect(),
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    },
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}
