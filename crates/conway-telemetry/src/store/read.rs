//! Reading: one trace by id, trace searches newest first, log queries.

use std::time::{Duration, SystemTime};

use conway_core::api::{LogLine, Span, TraceSummary};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params_from_iter};

use super::{Store, StoreError};
use crate::model::{Level, SpanKind, SpanStatus, TraceId, unix_micros};

/// The most traces or log records one query returns.
pub const MAX_LIMIT: usize = 1_000;
/// The most span rows a trace search by service or operation examines; past that it
/// returns what it found.
const MAX_SCANNED: usize = 200_000;
/// How many of the newest traces a duration search reads in time order before it
/// turns to the duration index.
const DURATION_SCAN: usize = 20_000;

/// A trace search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceQuery {
    /// Traces with a span of this service.
    pub service: Option<String>,
    /// Traces with a span of this name (of `service`, when given).
    pub operation: Option<String>,
    /// Traces at least this long.
    pub min_duration: Option<Duration>,
    /// Traces with an error span only.
    pub errors_only: bool,
    /// The most traces returned (at most [`MAX_LIMIT`]).
    pub limit: usize,
}

/// A log query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    /// This service's records.
    pub service: Option<String>,
    /// This instance's records.
    pub instance: Option<String>,
    /// This trace's records.
    pub trace_id: Option<TraceId>,
    /// Records at this level or above.
    pub min_level: Option<Level>,
    /// Records whose body contains this text (ASCII case-insensitive).
    pub text: Option<String>,
    /// Records written at or after this time.
    pub since: Option<SystemTime>,
    /// Records stored after this id, oldest first (following); without it, the newest
    /// `limit` records, returned oldest first.
    pub after_id: Option<i64>,
    /// The most records returned (at most [`MAX_LIMIT`]).
    pub limit: usize,
}

const SPAN_COLUMNS: &str = "trace_id, span_id, parent_id, service, operation, kind, start_us, \
     duration_us, status, status_message, attributes";
const SUMMARY_COLUMNS: &str =
    "trace_id, root_service, root_operation, start_us, duration_us, spans, error";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(text: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(text).unwrap_or_default()
}

fn span_of(row: &Row<'_>) -> rusqlite::Result<Span> {
    let parent: Option<Vec<u8>> = row.get(2)?;
    let kind: i32 = row.get(5)?;
    let status: i32 = row.get(8)?;
    let attributes_text: String = row.get(10)?;
    Ok(Span {
        trace_id: hex(&row.get::<_, Vec<u8>>(0)?),
        span_id: hex(&row.get::<_, Vec<u8>>(1)?),
        parent_span_id: parent.map(|p| hex(&p)),
        service: row.get(3)?,
        operation: row.get(4)?,
        kind: SpanKind::from_otlp(kind).as_str().to_owned(),
        start_us: row.get(6)?,
        duration_us: row.get(7)?,
        status: SpanStatus::from_otlp(status).as_str().to_owned(),
        status_message: row.get(9)?,
        attributes: attributes(&attributes_text),
    })
}

fn summary_of(row: &Row<'_>) -> rusqlite::Result<TraceSummary> {
    Ok(TraceSummary {
        trace_id: hex(&row.get::<_, Vec<u8>>(0)?),
        root_service: row.get(1)?,
        root_operation: row.get(2)?,
        start_us: row.get(3)?,
        duration_us: row.get(4)?,
        spans: row.get(5)?,
        error: row.get(6)?,
    })
}

fn log_of(row: &Row<'_>) -> rusqlite::Result<LogLine> {
    let trace: Option<Vec<u8>> = row.get(6)?;
    let span: Option<Vec<u8>> = row.get(7)?;
    let attributes_text: String = row.get(8)?;
    Ok(LogLine {
        id: row.get(0)?,
        time_us: row.get(1)?,
        service: row.get(2)?,
        instance: row.get(3)?,
        level: Level::from_rank(row.get(4)?).as_str().to_owned(),
        body: row.get(5)?,
        trace_id: trace.map(|t| hex(&t)),
        span_id: span.map(|s| hex(&s)),
        attributes: attributes(&attributes_text),
    })
}

impl Store {
    /// Every stored span of a trace, by start time; empty if none.
    pub fn trace(&self, trace_id: &TraceId) -> Result<Vec<Span>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {SPAN_COLUMNS} FROM spans WHERE trace_id = ?1 ORDER BY start_us, id"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let spans = statement
                .query_map([trace_id.as_bytes()], span_of)?
                .collect::<Result<_, _>>()?;
            Ok(spans)
        })
    }

    /// Traces matching `query`, newest first.
    pub fn traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        self.read(|conn| {
            if query.service.is_some() || query.operation.is_some() {
                traces_by_spans(conn, query, limit)
            } else {
                traces_by_summary(conn, query, limit)
            }
        })
    }

    /// Log records matching `query`, oldest first.
    pub fn logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        self.read(|conn| {
            let mut conditions = Vec::new();
            let mut values: Vec<SqlValue> = Vec::new();
            let mut add = |condition: &str, value: SqlValue| {
                values.push(value);
                conditions.push(condition.replace('?', &format!("?{}", values.len())));
            };
            if let Some(service) = &query.service {
                add("service = ?", service.clone().into());
            }
            if let Some(instance) = &query.instance {
                add("instance = ?", instance.clone().into());
            }
            if let Some(trace) = &query.trace_id {
                add("trace_id = ?", trace.as_bytes().to_vec().into());
            }
            if let Some(level) = query.min_level {
                add("level >= ?", i64::from(level.rank()).into());
            }
            if let Some(text) = &query.text {
                add("body LIKE ? ESCAPE '\\'", like_pattern(text).into());
            }
            if let Some(since) = query.since {
                add("time_us >= ?", unix_micros(since).into());
            }
            if let Some(after) = query.after_id {
                add("id > ?", after.into());
            }
            let filter = if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            };
            let order = if query.after_id.is_some() {
                "id ASC"
            } else {
                "time_us DESC, id DESC"
            };
            let sql = format!(
                "SELECT id, time_us, service, instance, level, body, trace_id, span_id, attributes \
                 FROM logs {filter} ORDER BY {order} LIMIT {limit}"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let mut lines: Vec<LogLine> = statement
                .query_map(params_from_iter(values), log_of)?
                .collect::<Result<_, _>>()?;
            if query.after_id.is_none() {
                lines.reverse();
            }
            Ok(lines)
        })
    }
}

/// `%text%` with LIKE's wildcards escaped.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Without a service or operation: the summaries, newest first. A duration filter
/// first reads the newest traces in time order; if too few of them qualify, the
/// duration index finds the rest.
fn traces_by_summary(
    conn: &Connection,
    query: &TraceQuery,
    limit: usize,
) -> Result<Vec<TraceSummary>, StoreError> {
    let error = if query.errors_only {
        "AND error = 1"
    } else {
        ""
    };
    let Some(min) = query.min_duration else {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM traces WHERE 1 {error} ORDER BY start_us DESC LIMIT {limit}"
        );
        let mut statement = conn.prepare_cached(&sql)?;
        return Ok(statement
            .query_map([], summary_of)?
            .collect::<Result<_, _>>()?);
    };
    let min = i64::try_from(min.as_micros()).unwrap_or(i64::MAX);
    // The `+` keeps SQLite from using the duration index here: this pass walks time.
    let recent = format!(
        "SELECT {SUMMARY_COLUMNS} FROM (SELECT * FROM traces WHERE 1 {error} \
         ORDER BY start_us DESC LIMIT {DURATION_SCAN}) WHERE +duration_us >= ?1 \
         ORDER BY start_us DESC LIMIT {limit}"
    );
    let mut statement = conn.prepare_cached(&recent)?;
    let found: Vec<TraceSummary> = statement
        .query_map([min], summary_of)?
        .collect::<Result<_, _>>()?;
    let scanned: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM (SELECT 1 FROM traces WHERE 1 {error} LIMIT {DURATION_SCAN})"
        ),
        [],
        |r| r.get(0),
    )?;
    if found.len() >= limit || (scanned as usize) < DURATION_SCAN {
        return Ok(found);
    }
    let by_duration = format!(
        "SELECT {SUMMARY_COLUMNS} FROM traces INDEXED BY traces_by_duration \
         WHERE duration_us >= ?1 {error} ORDER BY start_us DESC LIMIT {limit}"
    );
    let mut statement = conn.prepare_cached(&by_duration)?;
    Ok(statement
        .query_map([min], summary_of)?
        .collect::<Result<_, _>>()?)
}

/// With a service or operation: that service's spans newest first, each new trace
/// checked against the other filters, until `limit` traces or [`MAX_SCANNED`] spans.
fn traces_by_spans(
    conn: &Connection,
    query: &TraceQuery,
    limit: usize,
) -> Result<Vec<TraceSummary>, StoreError> {
    let mut values: Vec<SqlValue> = Vec::new();
    let mut conditions = Vec::new();
    if let Some(service) = &query.service {
        values.push(service.clone().into());
        conditions.push(format!("service = ?{}", values.len()));
    }
    if let Some(operation) = &query.operation {
        values.push(operation.clone().into());
        conditions.push(format!("operation = ?{}", values.len()));
    }
    let sql = format!(
        "SELECT trace_id FROM spans WHERE {} ORDER BY start_us DESC",
        conditions.join(" AND ")
    );
    let mut spans = conn.prepare_cached(&sql)?;
    let mut summary = conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM traces WHERE trace_id = ?1"
    ))?;
    let min = query
        .min_duration
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    let mut rows = spans.query(params_from_iter(values))?;
    let mut scanned = 0;
    while let Some(row) = rows.next()? {
        scanned += 1;
        if scanned > MAX_SCANNED {
            break;
        }
        let trace: Vec<u8> = row.get(0)?;
        if !seen.insert(trace.clone()) {
            continue;
        }
        let Some(trace) = summary
            .query_map([&trace], summary_of)?
            .next()
            .transpose()?
        else {
            continue;
        };
        if trace.duration_us >= min && (trace.error || !query.errors_only) {
            found.push(trace);
            if found.len() >= limit {
                break;
            }
        }
    }
    Ok(found)
}
