//! Every line the supervisor captures, into the telemetry store as a log record, so
//! `GET /v1/logs?service=&instance=`, `conway logs` and the dashboard show what the
//! instances wrote beside what their SDKs sent.
//!
//! A line that is a JSON object may say its own `level` (`"info"`, `"WARNING"`, …) and
//! `trace_id` (32 hex digits; `span_id`, 16, too); otherwise — or when the level is not
//! one Conway knows — stderr is `warn` and stdout `info`. The supervisor's own notes
//! (`exited (exit status: 1)`, `N lines dropped`) are `warn`, except `stopped` (`info`).
//! The body is the line as written; the record's attribute `stream` says where it came
//! from (`stdout`, `stderr`, `conway`).
//!
//! Bounded: the supervisor caps and rate-limits lines per instance before they get
//! here, and the telemetry store's sink never blocks — it queues at most 8,192 records
//! or 8 MiB, then drops and counts (`conway_telemetry_dropped_total{reason="queue_full"}`).

use conway_supervisor::logs::Stream;
use conway_supervisor::{LogLine, LogSink};
use conway_telemetry::{Level, LogRecord, SpanId, TraceId};
use serde_json::{Map, Value};

/// Hands each captured line to the store.
#[derive(Debug)]
pub(super) struct StoreSink(pub(super) conway_telemetry::LogSink);

impl LogSink for StoreSink {
    fn send(&self, line: &LogLine) {
        self.0.send(record(line));
    }
}

/// The log record of one captured line.
fn record(line: &LogLine) -> LogRecord {
    let mut level = match line.stream {
        Stream::Stdout => Level::Info,
        Stream::Stderr => Level::Warn,
        Stream::Supervisor if line.text.starts_with("stopped") => Level::Info,
        Stream::Supervisor => Level::Warn,
    };
    let mut trace_id = None;
    let mut span_id = None;
    let json = (line.stream != Stream::Supervisor && line.text.trim_start().starts_with('{'))
        .then(|| serde_json::from_str::<Map<String, Value>>(&line.text).ok())
        .flatten();
    if let Some(fields) = json {
        let text = |key: &str| fields.get(key).and_then(Value::as_str);
        if let Some(said) = text("level").and_then(|l| l.parse::<Level>().ok())
            && said != Level::Unspecified
        {
            level = said;
        }
        trace_id = text("trace_id").and_then(|t| t.parse::<TraceId>().ok());
        span_id = text("span_id").and_then(|s| s.parse::<SpanId>().ok());
    }
    let mut attributes = Map::new();
    attributes.insert("stream".to_owned(), line.stream.as_str().into());
    LogRecord {
        time: line.time,
        service: line.service.to_string(),
        instance: Some(line.instance.to_string()),
        level,
        body: line.text.clone(),
        trace_id,
        span_id: trace_id.and(span_id),
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn line(stream: Stream, text: &str) -> LogLine {
        LogLine {
            service: "orders".into(),
            instance: "orders-2".into(),
            stream,
            time: SystemTime::UNIX_EPOCH,
            text: text.to_owned(),
        }
    }

    #[test]
    fn plain_lines_take_their_level_from_the_stream() {
        let out = record(&line(Stream::Stdout, "listening on 8080"));
        assert_eq!(out.level, Level::Info);
        assert_eq!(out.service, "orders");
        assert_eq!(out.instance.as_deref(), Some("orders-2"));
        assert_eq!(out.body, "listening on 8080");
        assert_eq!(out.time, SystemTime::UNIX_EPOCH);
        assert_eq!(out.attributes["stream"], "stdout");
        assert_eq!(out.trace_id, None);
        let err = record(&line(Stream::Stderr, "Traceback (most recent call last):"));
        assert_eq!(err.level, Level::Warn);
        assert_eq!(err.attributes["stream"], "stderr");
    }

    #[test]
    fn json_lines_say_their_level_and_trace() {
        let text = r#"{"level":"ERROR","message":"declined","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331"}"#;
        let out = record(&line(Stream::Stdout, text));
        assert_eq!(out.level, Level::Error);
        assert_eq!(
            out.trace_id.map(|t| t.to_string()).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(
            out.span_id.map(|s| s.to_string()).as_deref(),
            Some("b7ad6b7169203331")
        );
        assert_eq!(out.body, text, "the body is the line as written");
        // An empty or unknown level, or a bad trace id, falls back.
        let out = record(&line(
            Stream::Stderr,
            r#"{"level":"loud","trace_id":"","msg":"x"}"#,
        ));
        assert_eq!((out.level, out.trace_id), (Level::Warn, None));
        let out = record(&line(Stream::Stdout, r#"{"level":"","trace_id":"zz"}"#));
        assert_eq!((out.level, out.trace_id), (Level::Info, None));
        // Not an object: a plain line.
        let out = record(&line(Stream::Stdout, r#"{"level": "error""#));
        assert_eq!(out.level, Level::Info);
    }

    #[test]
    fn the_supervisors_notes_warn_unless_a_stop() {
        assert_eq!(
            record(&line(Stream::Supervisor, "exited (exit status: 1)")).level,
            Level::Warn
        );
        assert_eq!(
            record(&line(Stream::Supervisor, "stopped (exit status: 0)")).level,
            Level::Info
        );
        let note = record(&line(Stream::Supervisor, r#"{"level":"debug"}"#));
        assert_eq!(note.level, Level::Warn, "notes are not parsed");
        assert_eq!(note.attributes["stream"], "conway");
    }
}
