//! Conway's records as OTLP export requests (for the exporter and the forwarder).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpLog, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::values::{string_kv, to_key_values};
use crate::model::{LogRecord, SpanRecord, unix_nanos};

/// The instrumentation scope Conway reports as.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "conway".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    }
}

/// A resource naming the service (and instance).
pub(crate) fn resource(service: &str, instance: Option<&str>) -> Resource {
    let mut attributes = vec![string_kv("service.name", service)];
    if let Some(instance) = instance {
        attributes.push(string_kv("service.instance.id", instance));
    }
    Resource {
        attributes,
        ..Default::default()
    }
}

/// One span in OTLP.
pub fn span_to_otlp(span: &SpanRecord) -> Span {
    let start = unix_nanos(span.start);
    let end = start.saturating_add(u64::try_from(span.duration.as_nanos()).unwrap_or(u64::MAX));
    Span {
        trace_id: span.trace_id.as_bytes().to_vec(),
        span_id: span.span_id.as_bytes().to_vec(),
        parent_span_id: span
            .parent_span_id
            .map_or_else(Vec::new, |p| p.as_bytes().to_vec()),
        name: span.operation.clone(),
        kind: span.kind.to_otlp(),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: to_key_values(&span.attributes),
        status: Some(Status {
            code: span.status.to_otlp(),
            message: span.status_message.clone().unwrap_or_default(),
        }),
        ..Default::default()
    }
}

/// An export request carrying `spans`, one resource per service.
pub fn traces_request(spans: &[SpanRecord]) -> ExportTraceServiceRequest {
    let mut by_service: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    for span in spans {
        by_service
            .entry(&span.service)
            .or_default()
            .push(span_to_otlp(span));
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(resource(service, None)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

/// An export request carrying `logs`, one resource per service and instance.
pub fn logs_request(logs: &[LogRecord]) -> ExportLogsServiceRequest {
    let mut by_source: BTreeMap<(&str, Option<&str>), Vec<OtlpLog>> = BTreeMap::new();
    for log in logs {
        let time = unix_nanos(log.time);
        by_source
            .entry((&log.service, log.instance.as_deref()))
            .or_default()
            .push(OtlpLog {
                time_unix_nano: time,
                observed_time_unix_nano: time,
                severity_number: log.level.to_otlp(),
                severity_text: log.level.as_str().to_uppercase(),
                body: Some(AnyValue {
                    value: Some(Any::StringValue(log.body.clone())),
                }),
                attributes: to_key_values(&log.attributes),
                trace_id: log
                    .trace_id
                    .map_or_else(Vec::new, |t| t.as_bytes().to_vec()),
                span_id: log.span_id.map_or_else(Vec::new, |s| s.as_bytes().to_vec()),
                ..Default::default()
            });
    }
    ExportLogsServiceRequest {
        resource_logs: by_source
            .into_iter()
            .map(|((service, instance), log_records)| ResourceLogs {
                resource: Some(resource(service, instance)),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}
