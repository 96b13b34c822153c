//! `GET /v1/watch?since=REVISION`: NDJSON, one change a line, with keep-alive lines.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use conway_core::api::{ErrorBody, ErrorDetail, WatchLine};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// The query of `GET /v1/watch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WatchQuery {
    /// Changes after this revision; default: from now.
    since: Option<i64>,
}

/// Streams every change after `since` (exclusive: pass the revision of the listing the
/// client holds). A revision older than the history kept answers 410 `compacted`; one
/// beyond the current revision answers 400 `future_revision`.
pub(super) async fn watch(
    State(state): State<AppState>,
    query: Result<Query<WatchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let since = match query.since {
        Some(since) if since < 0 => {
            return Err(ApiError::invalid("since must be a revision, 0 or more"));
        }
        Some(since) => {
            let current = state.registry.revision().await?;
            if since > current {
                return Err(ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "future_revision",
                    format!("revision {since} is in the future: the registry is at {current}"),
                ));
            }
            Some(since + 1)
        }
        None => None,
    };
    let events = state.registry.watch(since).await?;
    let lines = with_keepalives(state, events);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

/// The watch's lines: each event, a keep-alive after each quiet `keepalive`, and a final
/// error line if the watch ends badly.
fn with_keepalives(
    state: AppState,
    events: impl Stream<
        Item = Result<conway_core::api::WatchEvent, conway_registry::registry::RegistryError>,
    > + Send
    + 'static,
) -> impl Stream<Item = Result<String, std::convert::Infallible>> + Send + 'static {
    let metrics = state.metrics.clone();
    metrics.watchers.inc();
    let guard = WatcherGuard(metrics.clone());
    let keepalive = state.keepalive;
    futures_util::stream::unfold(
        (Box::pin(events), state, guard, 0_i64, false),
        move |(mut events, state, guard, mut last, done)| async move {
            if done {
                return None;
            }
            let line =
                match tokio::time::timeout(keepalive.max(Duration::from_millis(10)), events.next())
                    .await
                {
                    Ok(Some(Ok(event))) => {
                        last = event.revision;
                        state.metrics.watch_events.inc();
                        (line_of(&WatchLine::Event(event)), false)
                    }
                    Ok(Some(Err(error))) => {
                        if matches!(
                            error,
                            conway_registry::registry::RegistryError::Store(
                                conway_registry::store::StoreError::WatcherLagged
                            )
                        ) {
                            state.metrics.watchers_cut_off.inc();
                        }
                        let body = ErrorBody {
                            error: ErrorDetail {
                                code: "watch_ended".to_owned(),
                                message: format!("{error}; watch again from revision {last}"),
                            },
                        };
                        (line_of(&body), true)
                    }
                    Ok(None) => return None,
                    Err(_) => {
                        let revision = state.registry.revision().await.unwrap_or(last);
                        (
                            line_of(&WatchLine::KeepAlive {
                                keepalive: true,
                                revision,
                            }),
                            false,
                        )
                    }
                };
            Some((Ok(line.0), (events, state, guard, last, line.1)))
        },
    )
}

fn line_of<T: serde::Serialize>(value: &T) -> String {
    let mut line = serde_json::to_string(value).unwrap_or_default();
    line.push('\n');
    line
}

/// Counts an open watch until its stream is dropped.
struct WatcherGuard(std::sync::Arc<crate::metrics::Metrics>);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.watchers.dec();
    }
}
