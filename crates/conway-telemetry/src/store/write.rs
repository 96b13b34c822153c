//! Writing batches: one transaction per batch, cached statements, trace summaries
//! folded in as each batch lands.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::{Store, StoreError};
use crate::model::{LogRecord, SpanRecord, SpanStatus, TraceId, unix_micros};

const INSERT_SPAN: &str = "INSERT INTO spans (trace_id, span_id, parent_id, service, operation, \
     kind, start_us, duration_us, status, status_message, attributes) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// Folds a batch's summary of a trace into its row: the earliest start, the latest end,
/// the span count, the error flag, and the root (a span without a parent beats the
/// earliest span seen so far). Every right-hand side reads the row as it was.
const UPSERT_TRACE: &str = "INSERT INTO traces (trace_id, start_us, end_us, duration_us, spans, \
     error, root_service, root_operation, root_found) \
     VALUES (?1, ?2, ?3, ?3 - ?2, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT (trace_id) DO UPDATE SET \
       start_us = min(start_us, excluded.start_us), \
       end_us = max(end_us, excluded.end_us), \
       duration_us = max(end_us, excluded.end_us) - min(start_us, excluded.start_us), \
       spans = spans + excluded.spans, \
       error = max(error, excluded.error), \
       root_service = CASE WHEN excluded.root_found > root_found \
         OR (excluded.root_found = root_found AND excluded.start_us < start_us) \
         THEN excluded.root_service ELSE root_service END, \
       root_operation = CASE WHEN excluded.root_found > root_found \
         OR (excluded.root_found = root_found AND excluded.start_us < start_us) \
         THEN excluded.root_operation ELSE root_operation END, \
       root_found = max(root_found, excluded.root_found)";

const INSERT_LOG: &str = "INSERT INTO logs (time_us, service, instance, level, body, trace_id, \
     span_id, attributes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// A batch's view of one trace.
struct Summary<'a> {
    start: i64,
    end: i64,
    spans: i64,
    error: bool,
    root: &'a SpanRecord,
    root_found: bool,
}

fn summarize(spans: &[SpanRecord]) -> Vec<(TraceId, Summary<'_>)> {
    let mut order = Vec::new();
    let mut by_trace: HashMap<TraceId, Summary<'_>> = HashMap::new();
    for span in spans {
        let start = unix_micros(span.start);
        let end =
            start.saturating_add(i64::try_from(span.duration.as_micros()).unwrap_or(i64::MAX));
        let is_root = span.parent_span_id.is_none();
        let summary = by_trace.entry(span.trace_id).or_insert_with(|| {
            order.push(span.trace_id);
            Summary {
                start,
                end,
                spans: 0,
                error: false,
                root: span,
                root_found: is_root,
            }
        });
        summary.spans += 1;
        summary.error |= span.status == SpanStatus::Error;
        let better_root = (is_root && !summary.root_found)
            || (is_root == summary.root_found && start < unix_micros(summary.root.start));
        if better_root {
            summary.root = span;
            summary.root_found = is_root;
        }
        summary.start = summary.start.min(start);
        summary.end = summary.end.max(end);
    }
    order
        .into_iter()
        .filter_map(|id| by_trace.remove(&id).map(|s| (id, s)))
        .collect()
}

impl Store {
    /// Writes `spans` in one transaction.
    pub fn insert_spans(&self, spans: &[SpanRecord]) -> Result<(), StoreError> {
        if spans.is_empty() {
            return Ok(());
        }
        let summaries = summarize(spans);
        let mut conn = self.writer.lock();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(INSERT_SPAN)?;
            for span in spans {
                let attributes = serde_json::to_string(&span.attributes).unwrap_or_default();
                insert.execute(params![
                    span.trace_id.as_bytes(),
                    span.span_id.as_bytes(),
                    span.parent_span_id.as_ref().map(|p| p.as_bytes()),
                    span.service,
                    span.operation,
                    span.kind.to_otlp(),
                    unix_micros(span.start),
                    i64::try_from(span.duration.as_micros()).unwrap_or(i64::MAX),
                    span.status.to_otlp(),
                    span.status_message,
                    attributes,
                ])?;
            }
            let mut upsert = tx.prepare_cached(UPSERT_TRACE)?;
            for (trace, summary) in &summaries {
                upsert.execute(params![
                    trace.as_bytes(),
                    summary.start,
                    summary.end,
                    summary.spans,
                    summary.error,
                    summary.root.service,
                    summary.root.operation,
                    summary.root_found,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes `logs` in one transaction; returns the id of the last one (0 if none).
    pub fn insert_logs(&self, logs: &[LogRecord]) -> Result<i64, StoreError> {
        if logs.is_empty() {
            return Ok(0);
        }
        let mut conn = self.writer.lock();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(INSERT_LOG)?;
            for log in logs {
                let attributes = serde_json::to_string(&log.attributes).unwrap_or_default();
                insert.execute(params![
                    unix_micros(log.time),
                    log.service,
                    log.instance,
                    log.level.rank(),
                    log.body,
                    log.trace_id.as_ref().map(|t| t.as_bytes()),
                    log.span_id.as_ref().map(|s| s.as_bytes()),
                    attributes,
                ])?;
            }
        }
        let last = tx.last_insert_rowid();
        tx.commit()?;
        Ok(last)
    }

    /// The id of the newest log record (0 if none).
    pub fn last_log_id(&self) -> Result<i64, StoreError> {
        let conn = self.writer.lock();
        Ok(conn.query_row("SELECT coalesce(max(id), 0) FROM logs", [], |r| r.get(0))?)
    }
}

/// Rebuilds every trace summary from the spans (after a salvage): the root is a span
/// without a parent if there is one, else the earliest.
pub(super) fn rebuild_traces(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "DELETE FROM traces;
         INSERT INTO traces (trace_id, start_us, end_us, duration_us, spans, error,
                             root_service, root_operation, root_found)
         SELECT trace_id, min(start_us), max(start_us + duration_us),
                max(start_us + duration_us) - min(start_us), count(*), max(status = 2),
                '', '', 0
         FROM spans GROUP BY trace_id;
         UPDATE traces SET
           root_service = (SELECT service FROM spans s WHERE s.trace_id = traces.trace_id
                           ORDER BY s.parent_id IS NOT NULL, s.start_us LIMIT 1),
           root_operation = (SELECT operation FROM spans s WHERE s.trace_id = traces.trace_id
                             ORDER BY s.parent_id IS NOT NULL, s.start_us LIMIT 1),
           root_found = EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = traces.trace_id
                                AND s.parent_id IS NULL);",
    )?;
    Ok(())
}
