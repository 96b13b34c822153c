//! Decoded OTLP requests into Conway's records, within the limits.

use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::values::{Cutter, body_text, string_attribute};
use crate::config::Limits;
use crate::model::{
    Level, LogRecord, SpanId, SpanKind, SpanRecord, SpanStatus, TraceId, from_unix_nanos,
};

/// The service of spans and logs whose resource names none, as OpenTelemetry SDKs say.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Records made from one request, and what was refused on the way.
#[derive(Debug)]
pub(crate) struct Converted<T> {
    pub(crate) items: Vec<T>,
    /// Items refused: malformed, or beyond the per-request limit.
    pub(crate) rejected: u64,
    /// Of those, how many were beyond the limit.
    pub(crate) over_limit: u64,
    /// Why the first one was refused.
    pub(crate) reason: Option<String>,
    /// Strings cut to the length limit.
    pub(crate) truncated: u64,
    /// Attributes dropped beyond the count limit.
    pub(crate) attributes_dropped: u64,
}

impl<T> Converted<T> {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            rejected: 0,
            over_limit: 0,
            reason: None,
            truncated: 0,
            attributes_dropped: 0,
        }
    }

    fn reject(&mut self, reason: impl FnOnce() -> String) {
        self.rejected += 1;
        if self.reason.is_none() {
            self.reason = Some(reason());
        }
    }

    fn over_limit(&mut self, count: u64, limits: &Limits) {
        if count > 0 {
            self.rejected += count;
            self.over_limit += count;
            self.reason.get_or_insert_with(|| {
                format!(
                    "a request may carry at most {} items; send smaller batches",
                    limits.max_items
                )
            });
        }
    }
}

/// The service and instance a resource names.
fn service_of(resource: Option<&Resource>, cutter: &mut Cutter<'_>) -> (String, Option<String>) {
    let attributes = resource.map_or(&[][..], |r| &r.attributes[..]);
    let service = string_attribute(attributes, "service.name")
        .filter(|s| !s.is_empty())
        .map_or_else(|| UNKNOWN_SERVICE.to_owned(), |s| cutter.text(s));
    let instance = string_attribute(attributes, "service.instance.id").map(|s| cutter.text(s));
    (service, instance)
}

/// The spans of a trace export request.
pub(crate) fn spans(request: ExportTraceServiceRequest, limits: &Limits) -> Converted<SpanRecord> {
    let mut out = Converted::new();
    let mut cutter = Cutter::new(limits);
    let mut room = limits.max_items;
    for resource_spans in request.resource_spans {
        let (service, instance) = service_of(resource_spans.resource.as_ref(), &mut cutter);
        for scope_spans in resource_spans.scope_spans {
            let count = scope_spans.spans.len();
            let over = count.saturating_sub(room);
            out.over_limit(over as u64, limits);
            for span in scope_spans.spans.into_iter().take(room) {
                room -= 1;
                let Some(trace_id) = TraceId::from_bytes(&span.trace_id) else {
                    out.reject(|| "a span has no valid trace id (16 bytes, not all zero)".into());
                    continue;
                };
                let Some(span_id) = SpanId::from_bytes(&span.span_id) else {
                    out.reject(|| "a span has no valid span id (8 bytes, not all zero)".into());
                    continue;
                };
                let parent_span_id = match span.parent_span_id.len() {
                    0 => None,
                    _ => match SpanId::from_bytes(&span.parent_span_id) {
                        Some(parent) => Some(parent),
                        None => {
                            out.reject(|| "a span's parent span id is not 8 bytes".into());
                            continue;
                        }
                    },
                };
                let start = from_unix_nanos(span.start_time_unix_nano);
                let duration = Duration::from_nanos(
                    span.end_time_unix_nano
                        .saturating_sub(span.start_time_unix_nano),
                );
                let mut attributes = cutter.attributes(span.attributes);
                if let Some(instance) = &instance {
                    attributes
                        .entry("service.instance.id")
                        .or_insert_with(|| instance.clone().into());
                }
                let status = span.status.unwrap_or_default();
                out.items.push(SpanRecord {
                    trace_id,
                    span_id,
                    parent_span_id,
                    service: service.clone(),
                    operation: cutter.text(span.name),
                    kind: SpanKind::from_otlp(span.kind),
                    start,
                    duration,
                    status: SpanStatus::from_otlp(status.code),
                    status_message: Some(status.message)
                        .filter(|m| !m.is_empty())
                        .map(|m| cutter.text(m)),
                    attributes,
                });
            }
        }
    }
    out.truncated = cutter.truncated;
    out.attributes_dropped = cutter.dropped;
    out
}

/// The log records of a logs export request; records without a time get `now`.
pub(crate) fn logs(
    request: ExportLogsServiceRequest,
    limits: &Limits,
    now: SystemTime,
) -> Converted<LogRecord> {
    let mut out = Converted::new();
    let mut cutter = Cutter::new(limits);
    let mut room = limits.max_items;
    for resource_logs in request.resource_logs {
        let (service, instance) = service_of(resource_logs.resource.as_ref(), &mut cutter);
        for scope_logs in resource_logs.scope_logs {
            let over = scope_logs.log_records.len().saturating_sub(room);
            out.over_limit(over as u64, limits);
            for record in scope_logs.log_records.into_iter().take(room) {
                room -= 1;
                let time = match (record.time_unix_nano, record.observed_time_unix_nano) {
                    (0, 0) => now,
                    (0, observed) => from_unix_nanos(observed),
                    (time, _) => from_unix_nanos(time),
                };
                let body = body_text(cutter.value(record.body));
                out.items.push(LogRecord {
                    time,
                    service: service.clone(),
                    instance: instance.clone(),
                    level: Level::from_otlp(record.severity_number, &record.severity_text),
                    body: cutter.body(body),
                    trace_id: TraceId::from_bytes(&record.trace_id),
                    span_id: SpanId::from_bytes(&record.span_id),
                    attributes: cutter.attributes(record.attributes),
                });
            }
        }
    }
    out.truncated = cutter.truncated;
    out.attributes_dropped = cutter.dropped;
    out
}
