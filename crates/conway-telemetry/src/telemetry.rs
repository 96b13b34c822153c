//! [`Telemetry`]: the store, the sampler, the counters and the forwarder behind one
//! handle, with async methods that keep SQLite off the async threads.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use conway_core::api::{Graph, LogLine, ServiceSeries, Trace, TraceSummary};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit, mpsc, watch};
use tokio::task::JoinHandle;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Limits, TelemetryConfig, truncate};
use crate::counters::Counters;
use crate::exporter::{Exporter, ExporterOptions};
use crate::metrics::{Signal, TelemetryMetrics};
use crate::model::{LogRecord, SpanRecord, TraceId, unix_micros};
use crate::otlp::{self, BodyError, Encoding, OtlpResponse, convert};
use crate::sampling::Sampler;
use crate::sink::{LogSink, SINK_CAPACITY};
use crate::store::{Deleted, LogQuery, OpenReport, Store, StoreError, TraceQuery};

/// Conway's telemetry. Cheap to clone: clones share everything.
#[derive(Debug, Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: TelemetryConfig,
    store: Store,
    report: OpenReport,
    sampler: Sampler,
    counters: Counters,
    metrics: TelemetryMetrics,
    clock: SharedClock,
    admission: Semaphore,
    logs_written: watch::Sender<i64>,
    sink: LogSink,
    sink_rx: Mutex<Option<mpsc::Receiver<LogRecord>>>,
    sink_bytes: Arc<AtomicUsize>,
    forwarder: Mutex<Option<Exporter>>,
}

/// A turn to decode and store one OTLP request.
#[derive(Debug)]
pub struct IngestPermit<'a> {
    _permit: SemaphorePermit<'a>,
}

/// The background tasks of [`Telemetry::start`]; dropping this stops them.
#[derive(Debug)]
pub struct TelemetryTasks(Vec<JoinHandle<()>>);

impl Drop for TelemetryTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Telemetry {
    /// Opens (or creates) the store in the folder `dir` (`DATA_DIR/telemetry`). Blocks.
    pub fn open(dir: &Path, config: TelemetryConfig) -> Result<Self, StoreError> {
        Self::with_clock(Some(dir), config, Arc::new(SystemClock))
    }

    /// Telemetry kept in memory only.
    pub fn in_memory(config: TelemetryConfig) -> Result<Self, StoreError> {
        Self::with_clock(None, config, Arc::new(SystemClock))
    }

    /// Telemetry in `dir` (or in memory) reading the time from `clock` (for tests).
    pub fn with_clock(
        dir: Option<&Path>,
        config: TelemetryConfig,
        clock: SharedClock,
    ) -> Result<Self, StoreError> {
        let (store, report) = match dir {
            Some(dir) => Store::open(dir)?,
            None => (Store::in_memory()?, OpenReport::default()),
        };
        let last_log = store.last_log_id()?;
        let metrics = TelemetryMetrics::default();
        let (sink_tx, sink_rx) = mpsc::channel(SINK_CAPACITY);
        let sink_bytes = Arc::new(AtomicUsize::new(0));
        let sink = LogSink::new(
            sink_tx,
            sink_bytes.clone(),
            config.limits.max_log_body_bytes,
            metrics.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                sampler: Sampler::new(config.sampling.clone(), clock.clone()),
                counters: Counters::new(clock.clone(), config.max_series, metrics.clone()),
                admission: Semaphore::new(config.limits.max_concurrent_requests.max(1)),
                logs_written: watch::Sender::new(last_log),
                store,
                report,
                metrics,
                clock,
                sink,
                sink_rx: Mutex::new(Some(sink_rx)),
                sink_bytes,
                forwarder: Mutex::new(None),
                config,
            }),
        })
    }

    /// What opening the store found (a damaged file moved aside).
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }

    /// The settings.
    pub fn config(&self) -> &TelemetryConfig {
        &self.inner.config
    }

    /// The receiver's limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    /// The pipeline's metrics.
    pub fn metrics(&self) -> &TelemetryMetrics {
        &self.inner.metrics
    }

    /// The request counters (graph and charts).
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// A handle for in-process producers of log lines (the supervisor).
    pub fn log_sink(&self) -> LogSink {
        self.inner.sink.clone()
    }

    /// Starts the background tasks: retention every `maintenance_interval`, the log
    /// sink's writer, and the forwarder to `otlp_endpoint` if one is set. Call once,
    /// inside a tokio runtime.
    pub fn start(&self) -> TelemetryTasks {
        let mut tasks = Vec::new();
        if let Some(endpoint) = &self.inner.config.otlp_endpoint {
            let options = ExporterOptions {
                service_name: "conway".to_owned(),
                ..ExporterOptions::default()
            };
            match Exporter::build(endpoint, options, self.inner.metrics.export.clone()) {
                Ok(exporter) => *self.inner.forwarder.lock() = Some(exporter),
                Err(error) => tracing::error!(%error, "not forwarding telemetry"),
            }
        }
        let this = self.clone();
        tasks.push(tokio::spawn(async move { this.maintain().await }));
        if let Some(mut rx) = self.inner.sink_rx.lock().take() {
            let this = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut batch = Vec::with_capacity(1_000);
                while rx.recv_many(&mut batch, 1_000).await > 0 {
                    let size: usize = batch.iter().map(LogRecord::approximate_size).sum();
                    this.inner.sink_bytes.fetch_sub(size, Ordering::Relaxed);
                    let logs = std::mem::take(&mut batch);
                    if let Err(error) = this.store_logs(logs).await {
                        tracing::warn!(%error, "could not store captured log lines");
                    }
                }
            }));
        }
        TelemetryTasks(tasks)
    }

    async fn maintain(&self) {
        let mut every = tokio::time::interval(self.inner.config.maintenance_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(error) = self.run_retention().await {
                tracing::warn!(%error, "telemetry retention failed");
            }
            self.inner.counters.prune();
        }
    }

    /// Applies retention now: records older than `retention` go, then the oldest while
    /// the store is over `max_size`. Updates the store size gauge.
    pub async fn run_retention(&self) -> Result<(Deleted, Deleted), StoreError> {
        let inner = self.inner.clone();
        blocking(move || {
            let cutoff = inner
                .clock
                .now()
                .checked_sub(inner.config.retention)
                .map_or(i64::MIN, unix_micros);
            let by_age = inner.store.delete_before(cutoff)?;
            let by_size = inner.store.enforce_size(inner.config.max_size)?;
            let metrics = &inner.metrics;
            metrics.delete_items(Signal::Traces, "age", by_age.spans);
            metrics.delete_items(Signal::Logs, "age", by_age.logs);
            metrics.delete_items(Signal::Traces, "size", by_size.spans);
            metrics.delete_items(Signal::Logs, "size", by_size.logs);
            let size = inner.store.size()?;
            metrics
                .store_bytes
                .set(i64::try_from(size.used).unwrap_or(i64::MAX));
            if by_age.spans + by_age.logs + by_size.spans + by_size.logs > 0 {
                tracing::debug!(?by_age, ?by_size, used = size.used, "telemetry retention");
            }
            Ok((by_age, by_size))
        })
        .await
    }

    /// Waits for a turn to decode and store an OTLP request: at most
    /// `max_concurrent_requests` at once, so memory stays bounded. `None` after
    /// `admission_wait`: answer [`OtlpResponse::busy`].
    pub async fn admit(&self) -> Option<IngestPermit<'_>> {
        let wait = self.inner.config.limits.admission_wait;
        match tokio::time::timeout(wait, self.inner.admission.acquire()).await {
            Ok(Ok(permit)) => Some(IngestPermit { _permit: permit }),
            _ => None,
        }
    }

    /// Handles one OTLP/HTTP request's body (already read within
    /// `limits().max_body_bytes`): checks the encoding, undoes gzip, decodes, samples,
    /// stores or counts, and returns the answer to send.
    pub async fn receive(
        &self,
        signal: Signal,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        body: Bytes,
    ) -> OtlpResponse {
        let Some(encoding) = Encoding::from_content_type(content_type) else {
            let response = OtlpResponse::unsupported_media_type(content_type);
            self.inner.metrics.answer(signal, response.status);
            return response;
        };
        let inner = self.inner.clone();
        let content_encoding = content_encoding.map(str::to_owned);
        let response = tokio::task::spawn_blocking(move || {
            inner.receive_blocking(signal, encoding, content_encoding.as_deref(), body)
        })
        .await
        .unwrap_or_else(|_| {
            OtlpResponse::error(encoding, 500, "the receiver failed on this request".into())
        });
        self.inner.metrics.answer(signal, response.status);
        response
    }

    /// Samples and stores spans produced in this process (clamped to the limits).
    pub async fn ingest_spans(&self, spans: Vec<SpanRecord>) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        blocking(move || {
            inner
                .metrics
                .receive_items(Signal::Traces, spans.len() as u64);
            let spans = spans
                .into_iter()
                .map(|span| inner.clamp_span(span))
                .collect();
            inner.sample_and_store(spans)
        })
        .await
    }

    /// Stores log records produced in this process (clamped to the limits).
    pub async fn ingest_logs(&self, logs: Vec<LogRecord>) -> Result<(), StoreError> {
        self.inner
            .metrics
            .receive_items(Signal::Logs, logs.len() as u64);
        self.store_logs(logs).await
    }

    async fn store_logs(&self, logs: Vec<LogRecord>) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let last = blocking(move || {
            let logs: Vec<LogRecord> = logs.into_iter().map(|l| inner.clamp_log(l)).collect();
            inner.write_logs(&logs)
        })
        .await?;
        self.inner.logs_written.send_if_modified(|seen| {
            let changed = last > *seen;
            *seen = (*seen).max(last);
            changed
        });
        Ok(())
    }

    /// Every stored span of a trace; `None` if there is none.
    pub async fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StoreError> {
        let inner = self.inner.clone();
        let spans = blocking(move || inner.store.trace(&trace_id)).await?;
        Ok((!spans.is_empty()).then(|| Trace {
            trace_id: trace_id.to_string(),
            spans,
        }))
    }

    /// Traces matching `query`, newest first.
    pub async fn traces(&self, query: TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        let inner = self.inner.clone();
        blocking(move || inner.store.traces(&query)).await
    }

    /// Log records matching `query`, oldest first.
    pub async fn logs(&self, query: LogQuery) -> Result<Vec<LogLine>, StoreError> {
        let inner = self.inner.clone();
        blocking(move || inner.store.logs(&query)).await
    }

    /// The id of the newest stored log record, updated as records land (for
    /// `follow=true`).
    pub fn watch_logs(&self) -> watch::Receiver<i64> {
        self.inner.logs_written.subscribe()
    }

    /// The dependency graph over `window`, with the registry's `defined` services and
    /// `declared` (caller, callee) edges.
    pub fn graph(
        &self,
        defined: &[String],
        declared: &[(String, String)],
        window: Duration,
    ) -> Graph {
        self.inner.counters.graph(defined, declared, window)
    }

    /// What `service` received per 10-second step over `span`.
    pub fn series(&self, service: &str, span: Duration) -> ServiceSeries {
        self.inner.counters.series(service, span)
    }

    /// The store's size now; also sets the `store_bytes` gauge.
    pub async fn store_size(&self) -> Result<crate::store::StoreSize, StoreError> {
        let inner = self.inner.clone();
        let size = blocking(move || inner.store.size()).await?;
        self.inner
            .metrics
            .store_bytes
            .set(i64::try_from(size.used).unwrap_or(i64::MAX));
        Ok(size)
    }

    /// Counts an answer the server made without [`Telemetry::receive`] (413 before the
    /// body was read, 503 when busy), and returns it.
    pub fn answered(&self, signal: Signal, response: OtlpResponse) -> OtlpResponse {
        self.inner.metrics.answer(signal, response.status);
        response
    }
}

/// Runs blocking store work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StoreError::Io(std::io::Error::other(format!(
            "telemetry store task failed: {e}"
        ))))
    })
}

impl Inner {
    fn receive_blocking(
        &self,
        signal: Signal,
        encoding: Encoding,
        content_encoding: Option<&str>,
        body: Bytes,
    ) -> OtlpResponse {
        let limits = &self.config.limits;
        let body = match otlp::inflate(content_encoding, body, limits.max_body_bytes) {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return OtlpResponse::too_large(encoding, limits.max_body_bytes);
            }
            Err(BodyError::Invalid(message)) => {
                return OtlpResponse::error(encoding, 400, message);
            }
        };
        let outcome = match signal {
            Signal::Traces => otlp::decode::<ExportTraceServiceRequest>(encoding, &body)
                .map(|request| self.receive_spans(request)),
            Signal::Logs => otlp::decode::<ExportLogsServiceRequest>(encoding, &body)
                .map(|request| self.receive_logs(request)),
            Signal::Metrics => {
                otlp::decode::<ExportMetricsServiceRequest>(encoding, &body).map(|request| {
                    let outcome = self.counters.ingest(request, limits.max_items);
                    self.metrics.receive_items(Signal::Metrics, outcome.points);
                    Ok((outcome.rejected, outcome.reason))
                })
            }
        };
        match outcome {
            Err(message) => OtlpResponse::error(encoding, 400, message),
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not store received telemetry");
                OtlpResponse::error(encoding, 503, format!("{error}; retry later"))
            }
            Ok(Ok((rejected, reason))) => OtlpResponse::success(encoding, signal, rejected, reason),
        }
    }

    /// Counts what conversion refused or cut.
    fn account<T>(&self, signal: Signal, converted: &convert::Converted<T>) {
        let metrics = &self.metrics;
        metrics.receive_items(signal, converted.items.len() as u64 + converted.rejected);
        metrics.drop_items(signal, "over_limit", converted.over_limit);
        metrics.drop_items(signal, "invalid", converted.rejected - converted.over_limit);
        metrics.truncated.inc_by(converted.truncated);
        metrics
            .attributes_dropped
            .inc_by(converted.attributes_dropped);
    }

    fn receive_spans(
        &self,
        request: ExportTraceServiceRequest,
    ) -> Result<(u64, Option<String>), StoreError> {
        let converted = convert::spans(request, &self.config.limits);
        self.account(Signal::Traces, &converted);
        self.sample_and_store(converted.items)?;
        Ok((converted.rejected, converted.reason))
    }

    fn receive_logs(
        &self,
        request: ExportLogsServiceRequest,
    ) -> Result<(u64, Option<String>), StoreError> {
        let converted = convert::logs(request, &self.config.limits, self.clock.now());
        self.account(Signal::Logs, &converted);
        let last = self.write_logs(&converted.items)?;
        self.logs_written.send_if_modified(|seen| {
            let changed = last > *seen;
            *seen = (*seen).max(last);
            changed
        });
        Ok((converted.rejected, converted.reason))
    }

    fn sample_and_store(&self, spans: Vec<SpanRecord>) -> Result<(), StoreError> {
        let sampled = self.sampler.sample(spans);
        for (decision, traces) in &sampled.decisions {
            self.metrics.decide(decision.label(), *traces);
        }
        self.metrics
            .drop_items(Signal::Traces, "sampled_out", sampled.dropped_spans);
        let kept = sampled.kept;
        if let Err(error) = self.store.insert_spans(&kept) {
            self.metrics
                .drop_items(Signal::Traces, "store_error", kept.len() as u64);
            return Err(error);
        }
        self.metrics.store_items(Signal::Traces, kept.len() as u64);
        if let Some(forwarder) = self.forwarder.lock().as_ref() {
            for span in kept {
                forwarder.export_span(span);
            }
        }
        Ok(())
    }

    fn write_logs(&self, logs: &[LogRecord]) -> Result<i64, StoreError> {
        match self.store.insert_logs(logs) {
            Ok(last) => {
                self.metrics.store_items(Signal::Logs, logs.len() as u64);
                if let Some(forwarder) = self.forwarder.lock().as_ref() {
                    for log in logs {
                        forwarder.export_log(log.clone());
                    }
                }
                Ok(last)
            }
            Err(error) => {
                self.metrics
                    .drop_items(Signal::Logs, "store_error", logs.len() as u64);
                Err(error)
            }
        }
    }

    fn cut(&self, text: &mut String, max: usize) {
        if truncate(text, max) {
            self.metrics.truncated.inc();
        }
    }

    fn cut_attributes(&self, attributes: &mut serde_json::Map<String, serde_json::Value>) {
        let limits = &self.config.limits;
        if attributes.len() > limits.max_attributes {
            let extra = attributes.len() - limits.max_attributes;
            let keep: Vec<String> = attributes
                .keys()
                .take(limits.max_attributes)
                .cloned()
                .collect();
            attributes.retain(|k, _| keep.contains(k));
            self.metrics.attributes_dropped.inc_by(extra as u64);
        }
        for value in attributes.values_mut() {
            if let serde_json::Value::String(text) = value {
                self.cut(text, limits.max_value_bytes);
            }
        }
    }

    fn clamp_span(&self, mut span: SpanRecord) -> SpanRecord {
        let max = self.config.limits.max_value_bytes;
        self.cut(&mut span.service, max);
        self.cut(&mut span.operation, max);
        if let Some(message) = &mut span.status_message {
            self.cut(message, max);
        }
        self.cut_attributes(&mut span.attributes);
        span
    }

    fn clamp_log(&self, mut log: LogRecord) -> LogRecord {
        let limits = &self.config.limits;
        self.cut(&mut log.service, limits.max_value_bytes);
        if let Some(instance) = &mut log.instance {
            self.cut(instance, limits.max_value_bytes);
        }
        self.cut(&mut log.body, limits.max_log_body_bytes);
        self.cut_attributes(&mut log.attributes);
        log
    }
}
