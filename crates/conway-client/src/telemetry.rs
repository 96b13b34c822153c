//! Traces, logs, the dependency graph and chart series (`GET /v1/traces`,
//! `/v1/traces/{id}`, `/v1/logs`, `/v1/graph`, `/v1/services/{name}/series`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use conway_core::api::{
    ErrorBody, Graph, LogLine, LogStreamLine, ServiceSeries, Trace, TraceSummary,
};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use reqwest::{Method, Url};

use crate::client::Client;
use crate::error::ClientError;
use crate::ndjson;

/// No request body.
const NO_BODY: Option<&()> = None;

/// A trace search (`GET /v1/traces`); every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// Traces with a span of this service.
    pub service: Option<String>,
    /// Traces with a span of this name.
    pub operation: Option<String>,
    /// Traces at least this long, in the API's syntax (`100ms`).
    pub min_duration: Option<String>,
    /// Only traces with an error.
    pub errors: bool,
    /// The most traces (the server's default is 20).
    pub limit: Option<u32>,
}

/// A log query (`GET /v1/logs`); every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// This service's records.
    pub service: Option<String>,
    /// This instance's records.
    pub instance: Option<String>,
    /// This trace's records (32 hex digits).
    pub trace_id: Option<String>,
    /// This level and above (`warn`).
    pub level: Option<String>,
    /// Text the body contains.
    pub text: Option<String>,
    /// A duration back from now (`10m`).
    pub since: Option<String>,
    /// The most records (the server's default is 100).
    pub limit: Option<u32>,
}

fn append(url: &mut Url, pairs: &[(&str, Option<&str>)]) {
    let present: Vec<_> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .collect();
    if !present.is_empty() {
        url.query_pairs_mut().extend_pairs(present);
    }
}

impl LogFilter {
    fn apply(&self, url: &mut Url) {
        let limit = self.limit.map(|n| n.to_string());
        append(
            url,
            &[
                ("service", self.service.as_deref()),
                ("instance", self.instance.as_deref()),
                ("trace_id", self.trace_id.as_deref()),
                ("level", self.level.as_deref()),
                ("q", self.text.as_deref()),
                ("since", self.since.as_deref()),
                ("limit", limit.as_deref()),
            ],
        );
    }
}

impl Client {
    /// `GET /v1/traces`: matching traces, newest first.
    pub async fn traces(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>, ClientError> {
        let mut url = self.url(&["v1", "traces"]);
        let limit = filter.limit.map(|n| n.to_string());
        append(
            &mut url,
            &[
                ("service", filter.service.as_deref()),
                ("operation", filter.operation.as_deref()),
                ("min_duration", filter.min_duration.as_deref()),
                ("status", filter.errors.then_some("error")),
                ("limit", limit.as_deref()),
            ],
        );
        self.call(Method::GET, url, NO_BODY, "the trace list").await
    }

    /// `GET /v1/traces/{trace_id}`: every stored span of the trace.
    pub async fn trace(&self, trace_id: &str) -> Result<Trace, ClientError> {
        let url = self.url(&["v1", "traces", trace_id]);
        self.call(Method::GET, url, NO_BODY, "a trace").await
    }

    /// `GET /v1/logs`: the newest matching records, oldest first.
    pub async fn logs(&self, filter: &LogFilter) -> Result<Vec<LogLine>, ClientError> {
        let mut url = self.url(&["v1", "logs"]);
        filter.apply(&mut url);
        self.call(Method::GET, url, NO_BODY, "the log records")
            .await
    }

    /// `GET /v1/logs?follow=true`: the newest matching records, then new ones as they
    /// arrive. Keep-alive lines are skipped; the stream fails with
    /// [`ClientError::Timeout`] after a silence longer than the watch idle timeout.
    pub async fn follow_logs(&self, filter: &LogFilter) -> Result<LogStream, ClientError> {
        let mut url = self.url(&["v1", "logs"]);
        filter.apply(&mut url);
        url.query_pairs_mut().append_pair("follow", "true");
        let response = self.open_stream(url).await?;
        Ok(LogStream {
            inner: ndjson::items(self, response, parse_log_line),
        })
    }

    /// `GET /v1/graph`: services, observed calls and declared dependencies.
    pub async fn graph(&self) -> Result<Graph, ClientError> {
        self.call(
            Method::GET,
            self.url(&["v1", "graph"]),
            NO_BODY,
            "the graph",
        )
        .await
    }

    /// `GET /v1/services/{name}/series`: what the service received per 10 seconds.
    pub async fn series(
        &self,
        service: &str,
        window: Option<Duration>,
    ) -> Result<ServiceSeries, ClientError> {
        let mut url = self.url(&["v1", "services", service, "series"]);
        if let Some(window) = window {
            url.query_pairs_mut()
                .append_pair("window", &format!("{}s", window.as_secs()));
        }
        self.call(Method::GET, url, NO_BODY, "a service's series")
            .await
    }
}

/// The records of `follow_logs`, keep-alives left out. After an error the stream ends.
pub struct LogStream {
    inner: BoxStream<'static, Result<LogLine, ClientError>>,
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStream").finish_non_exhaustive()
    }
}

impl Stream for LogStream {
    type Item = Result<LogLine, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// A follow line: a record, a keep-alive (`None`), or the error that ends the stream.
fn parse_log_line(line: &[u8]) -> Result<Option<LogLine>, ClientError> {
    match serde_json::from_slice::<LogStreamLine>(line) {
        Ok(LogStreamLine::Log(log)) => Ok(Some(*log)),
        Ok(LogStreamLine::KeepAlive { .. }) => Ok(None),
        Err(source) => match serde_json::from_slice::<ErrorBody>(line) {
            Ok(ErrorBody { error }) => Err(ClientError::WatchEnded {
                code: error.code,
                message: error.message,
            }),
            Err(_) => Err(ClientError::Decode {
                what: "a log line",
                source,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_lines_are_records_keepalives_or_errors() {
        let record = parse_log_line(
            br#"{"id":3,"time_us":1,"service":"orders","level":"info","body":"hi","attributes":{}}"#,
        )
        .expect("a line")
        .expect("a record");
        assert_eq!((record.id, record.body.as_str()), (3, "hi"));
        assert_eq!(
            parse_log_line(br#"{"keepalive":true}"#).expect("a line"),
            None
        );
        let ended = parse_log_line(br#"{"error":{"code":"follow_ended","message":"x"}}"#)
            .expect_err("an error line");
        assert_eq!(ended.code(), Some("follow_ended"));
        assert!(parse_log_line(b"{}").is_err());
    }

    #[test]
    fn filters_become_query_parameters() {
        let mut url = Url::parse("http://127.0.0.1:7700/v1/logs").expect("url");
        LogFilter {
            service: Some("orders".into()),
            text: Some("a b&c".into()),
            limit: Some(5),
            ..LogFilter::default()
        }
        .apply(&mut url);
        assert_eq!(url.query(), Some("service=orders&q=a+b%26c&limit=5"));
    }
}
