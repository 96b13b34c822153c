//! Traces, logs, the dependency graph and chart series: the telemetry store and
//! counters as JSON (`follow=true` on logs streams NDJSON).

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use conway_core::api::{Graph, LogLine, LogStreamLine, ServiceSeries, Trace, TraceSummary};
use conway_core::units;
use conway_telemetry::{Level, LogQuery, Telemetry, TraceId, TraceQuery};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// Traces listed when no limit is given.
const DEFAULT_TRACES: usize = 20;
/// Log records returned when no limit is given.
const DEFAULT_LOGS: usize = 100;
/// The graph's window when none is given, and the longest.
const GRAPH_WINDOW: Duration = Duration::from_secs(300);
/// A chart series' span when none is given.
const SERIES_SPAN: Duration = Duration::from_secs(900);
/// The counters keep an hour.
const MAX_SPAN: Duration = Duration::from_secs(3600);

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::invalid(e.body_text()))
}

fn limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=conway_telemetry::store::MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(format!(
            "limit must be from 1 to {}",
            conway_telemetry::store::MAX_LIMIT
        ))),
    }
}

fn trace_id(text: &str) -> Result<TraceId, ApiError> {
    text.parse()
        .map_err(|e| ApiError::invalid(format!("{e}: {text:?}")))
}

/// The query of `GET /v1/traces`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TracesQuery {
    service: Option<String>,
    operation: Option<String>,
    min_duration: Option<units::Duration>,
    /// Only `error`.
    status: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/traces`: traces newest first, each summarized.
pub(super) async fn traces(
    State(state): State<AppState>,
    q: Result<Query<TracesQuery>, QueryRejection>,
) -> Result<Json<Vec<TraceSummary>>, ApiError> {
    let q = query(q)?;
    let errors_only = match q.status.as_deref() {
        None => false,
        Some("error") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "status must be \"error\", not {other:?}"
            )));
        }
    };
    let found = state
        .telemetry
        .traces(TraceQuery {
            service: q.service.filter(|s| !s.is_empty()),
            operation: q.operation.filter(|s| !s.is_empty()),
            min_duration: q.min_duration.map(units::Duration::get),
            errors_only,
            limit: limit(q.limit, DEFAULT_TRACES)?,
        })
        .await?;
    Ok(Json(found))
}

/// `GET /v1/traces/{trace_id}`: every span of the trace.
pub(super) async fn trace(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Trace>, ApiError> {
    let id = trace_id(&id)?;
    state
        .telemetry
        .trace(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no spans of trace {id} are stored")))
}

/// The query of `GET /v1/logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogsQuery {
    service: Option<String>,
    instance: Option<String>,
    trace_id: Option<String>,
    /// The lowest level shown.
    level: Option<String>,
    /// Text the body contains.
    q: Option<String>,
    /// A duration back from now (`10m`), or microseconds since the Unix epoch.
    since: Option<String>,
    limit: Option<usize>,
    follow: Option<bool>,
}

fn since(text: &str) -> Result<SystemTime, ApiError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let micros = text
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("since is too large"))?;
        return Ok(conway_telemetry::from_unix_micros(micros));
    }
    let ago = units::Duration::from_str(text).map_err(|e| {
        ApiError::invalid(format!("since: {e}; or microseconds since the Unix epoch"))
    })?;
    Ok(SystemTime::now()
        .checked_sub(ago.get())
        .unwrap_or(SystemTime::UNIX_EPOCH))
}

/// `GET /v1/logs`: the newest matching records, oldest first; with `follow=true`, an
/// NDJSON stream of them and then of new ones as they arrive, with keep-alive lines.
pub(super) async fn logs(
    State(state): State<AppState>,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let store_query = LogQuery {
        service: q.service.filter(|s| !s.is_empty()),
        instance: q.instance.filter(|s| !s.is_empty()),
        trace_id: q.trace_id.as_deref().map(trace_id).transpose()?,
        min_level: q
            .level
            .as_deref()
            .map(Level::from_str)
            .transpose()
            .map_err(ApiError::invalid)?,
        text: q.q.filter(|s| !s.is_empty()),
        since: q.since.as_deref().map(since).transpose()?,
        after_id: None,
        limit: limit(q.limit, DEFAULT_LOGS)?,
    };
    if q.follow != Some(true) {
        let lines: Vec<LogLine> = state.telemetry.logs(store_query).await?;
        return Ok(Json(lines).into_response());
    }
    // Note the newest id before the backlog is read: whatever lands after it is either
    // in the backlog or followed, never lost in between.
    let watch = state.telemetry.watch_logs();
    let before = *watch.borrow();
    let backlog = state.telemetry.logs(store_query.clone()).await?;
    let start = backlog.iter().map(|line| line.id).fold(before, i64::max);
    let stream = follow(
        state.telemetry.clone(),
        watch,
        backlog,
        start,
        store_query,
        state.keepalive,
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The backlog's lines, then records after `last` as they land, a keep-alive after
/// each quiet `keepalive`; ends on a store error (with an error line).
fn follow(
    telemetry: Telemetry,
    watch: tokio::sync::watch::Receiver<i64>,
    backlog: Vec<LogLine>,
    last: i64,
    query: LogQuery,
    keepalive: Duration,
) -> impl futures_util::Stream<Item = Result<String, std::convert::Infallible>> + Send + 'static {
    struct Follow {
        telemetry: Telemetry,
        watch: tokio::sync::watch::Receiver<i64>,
        pending: std::collections::VecDeque<LogLine>,
        last: i64,
        query: LogQuery,
        done: bool,
    }
    let state = Follow {
        telemetry,
        watch,
        pending: backlog.into(),
        last,
        query,
        done: false,
    };
    let keepalive = keepalive.max(Duration::from_millis(10));
    futures_util::stream::unfold(state, move |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            if let Some(line) = s.pending.pop_front() {
                return Some((Ok(line_of(&LogStreamLine::Log(Box::new(line)))), s));
            }
            if *s.watch.borrow_and_update() > s.last {
                let query = LogQuery {
                    after_id: Some(s.last),
                    ..s.query.clone()
                };
                match s.telemetry.logs(query).await {
                    Ok(lines) => {
                        if let Some(line) = lines.last() {
                            s.last = line.id;
                        } else {
                            // Nothing matched the filters: skip what was written.
                            s.last = *s.watch.borrow();
                        }
                        s.pending.extend(lines);
                        continue;
                    }
                    Err(error) => {
                        s.done = true;
                        let body = conway_core::api::ErrorBody {
                            error: conway_core::api::ErrorDetail {
                                code: "follow_ended".to_owned(),
                                message: error.to_string(),
                            },
                        };
                        return Some((Ok(line_of(&body)), s));
                    }
                }
            }
            match tokio::time::timeout(keepalive, s.watch.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => {
                    let line = line_of(&LogStreamLine::KeepAlive { keepalive: true });
                    return Some((Ok(line), s));
                }
            }
        }
    })
}

fn line_of<T: serde::Serialize>(value: &T) -> String {
    let mut line = serde_json::to_string(value).unwrap_or_default();
    line.push('\n');
    line
}

/// The query of `GET /v1/graph` and `GET /v1/services/{name}/series`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WindowQuery {
    /// How far back the figures go.
    window: Option<units::Duration>,
}

fn window(query: WindowQuery, default: Duration) -> Result<Duration, ApiError> {
    match query.window.map(units::Duration::get) {
        None => Ok(default),
        Some(w) if w >= conway_telemetry::counters::STEP && w <= MAX_SPAN => Ok(w),
        Some(_) => Err(ApiError::invalid("window must be from 10s to 1h")),
    }
}

/// `GET /v1/graph`: services, observed calls and declared dependencies.
pub(super) async fn graph(
    State(state): State<AppState>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<Graph>, ApiError> {
    let window = window(query(q)?, GRAPH_WINDOW)?;
    let services = state.registry.services().await?;
    let defined: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    let declared: Vec<(String, String)> = services
        .iter()
        .flat_map(|s| {
            s.definition
                .depends_on
                .iter()
                .map(|to| (s.name.clone(), to.clone()))
        })
        .collect();
    Ok(Json(state.telemetry.graph(&defined, &declared, window)))
}

/// `GET /v1/services/{name}/series`: what the service received per 10 seconds.
pub(super) async fn series(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<ServiceSeries>, ApiError> {
    let span = window(query(q)?, SERIES_SPAN)?;
    Ok(Json(state.telemetry.series(&name, span)))
}
