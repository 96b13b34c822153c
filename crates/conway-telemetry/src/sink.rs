//! [`LogSink`]: how the supervisor hands captured output lines to the store without
//! waiting on it. Bounded by count and bytes; a full sink drops and counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use crate::config::truncate;
use crate::metrics::{Signal, TelemetryMetrics};
use crate::model::LogRecord;

/// Records a sink holds before it drops.
pub(crate) const SINK_CAPACITY: usize = 8_192;
/// Bytes (roughly) a sink holds before it drops.
pub(crate) const SINK_BYTES: usize = 8 * 1024 * 1024;

/// A cheap, cloneable handle that queues log records for the store.
#[derive(Debug, Clone)]
pub struct LogSink {
    tx: mpsc::Sender<LogRecord>,
    queued_bytes: Arc<AtomicUsize>,
    max_body_bytes: usize,
    metrics: TelemetryMetrics,
}

impl LogSink {
    pub(crate) fn new(
        tx: mpsc::Sender<LogRecord>,
        queued_bytes: Arc<AtomicUsize>,
        max_body_bytes: usize,
        metrics: TelemetryMetrics,
    ) -> Self {
        Self {
            tx,
            queued_bytes,
            max_body_bytes,
            metrics,
        }
    }

    /// Queues `record` (its body cut to the limit); false if the sink was full and the
    /// record was dropped (counted as `queue_full`). Never blocks.
    pub fn send(&self, mut record: LogRecord) -> bool {
        self.metrics.receive_items(Signal::Logs, 1);
        if truncate(&mut record.body, self.max_body_bytes) {
            self.metrics.truncated.inc();
        }
        let size = record.approximate_size();
        let queued = self.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if queued + size > SINK_BYTES || self.tx.try_send(record).is_err() {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            self.metrics.drop_items(Signal::Logs, "queue_full", 1);
            return false;
        }
        true
    }
}
