//! The receiver's logic on real `opentelemetry-proto` messages, in protobuf and JSON,
//! and on bad input.

use std::time::Duration;

use bytes::Bytes;
use conway_telemetry::{
    Limits, SamplingConfig, Signal, Telemetry, TelemetryConfig, TraceId, TraceQuery,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

const PROTOBUF: Option<&str> = Some("application/x-protobuf");
const JSON: Option<&str> = Some("application/json");

fn telemetry(limits: Limits) -> Telemetry {
    Telemetry::in_memory(TelemetryConfig {
        sampling: SamplingConfig::keep_all(),
        limits,
        ..TelemetryConfig::default()
    })
    .expect("in-memory telemetry")
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

/// A request of one trace: a server span and a failed client span under it.
fn request(trace: [u8; 16], attribute: &str) -> ExportTraceServiceRequest {
    let start = now_nanos();
    let root = Span {
        trace_id: trace.to_vec(),
        span_id: vec![1; 8],
        name: "GET /orders".to_owned(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 30_000_000,
        attributes: vec![
            kv("http.route", Value::StringValue(attribute.to_owned())),
            kv("http.response.status_code", Value::IntValue(200)),
        ],
        ..Default::default()
    };
    let child = Span {
        trace_id: trace.to_vec(),
        span_id: vec![2; 8],
        parent_span_id: vec![1; 8],
        name: "reserve".to_owned(),
        kind: 3,
        start_time_unix_nano: start + 1_000_000,
        end_time_unix_nano: start + 21_000_000,
        status: Some(Status {
            code: 2,
            message: "out of stock".to_owned(),
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", Value::StringValue("orders".to_owned())),
                    kv(
                        "service.instance.id",
                        Value::StringValue("orders-1".to_owned()),
                    ),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![root, child],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn protobuf_traces_are_stored_and_answered_in_protobuf() {
    let telemetry = telemetry(Limits::default());
    let trace = [0xab; 16];
    let body = request(trace, "/orders").encode_to_vec();
    let response = telemetry
        .receive(Signal::Traces, PROTOBUF, None, Bytes::from(body))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type, "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(&response.body[..]).expect("a response");
    assert_eq!(answer.partial_success, None, "nothing was rejected");

    let stored = telemetry
        .trace(TraceId(trace))
        .await
        .expect("query")
        .expect("the trace");
    assert_eq!(stored.spans.len(), 2);
    let root = &stored.spans[0];
    assert_eq!(root.service, "orders");
    assert_eq!(root.operation, "GET /orders");
    assert_eq!(root.kind, "server");
    assert_eq!(root.duration_us, 30_000);
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.attributes["http.response.status_code"], 200);
    assert_eq!(root.attributes["service.instance.id"], "orders-1");
    let child = &stored.spans[1];
    assert_eq!(child.parent_span_id.as_deref(), Some("0101010101010101"));
    assert_eq!(child.status, "error");
    assert_eq!(child.status_message.as_deref(), Some("out of stock"));

    let summaries = telemetry
        .traces(TraceQuery {
            limit: 10,
            ..TraceQuery::default()
        })
        .await
        .expect("search");
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].root_operation, "GET /orders");
    assert_eq!((summaries[0].spans, summaries[0].error), (2, true));
}

/// The OTLP JSON mapping, written by hand as an SDK would: hex ids, lowerCamelCase,
/// enums as numbers, 64-bit integers as strings — with fields this version of OTLP
/// does not know, which must be ignored.
#[tokio::test]
async fn json_traces_follow_the_otlp_mapping_and_ignore_unknown_fields() {
    let telemetry = telemetry(Limits::default());
    let start = now_nanos();
    let body = serde_json::json!({
        "resourceSpans": [{
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}],
                "futureResourceField": {"anything": [1, 2, 3]}
            },
            "scopeSpans": [{
                "scope": {"name": "manual", "version": "1.0"},
                "spans": [{
                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                    "spanId": "EEE19B7EC3C1B174",
                    "parentSpanId": "",
                    "name": "POST /checkout",
                    "kind": 2,
                    "startTimeUnixNano": start.to_string(),
                    "endTimeUnixNano": (start + 5_000_000).to_string(),
                    "attributes": [
                        {"key": "retries", "value": {"intValue": "3"}},
                        {"key": "ratio", "value": {"doubleValue": 0.5}},
                        {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}
                    ],
                    "status": {"code": 1, "someNewStatusField": true},
                    "aFieldFromTheFuture": "ignored"
                }]
            }]
        }],
        "unknownTopLevel": 42
    });
    let response = telemetry
        .receive(Signal::Traces, JSON, None, Bytes::from(body.to_string()))
        .await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.content_type, "application/json");
    assert_eq!(response.body, b"{}");
    let trace: TraceId = "5b8efff798038103d269b633813fc60c".parse().expect("id");
    let stored = telemetry
        .trace(trace)
        .await
        .expect("query")
        .expect("stored");
    let span = &stored.spans[0];
    assert_eq!(span.span_id, "eee19b7ec3c1b174");
    assert_eq!(span.service, "checkout");
    assert_eq!(span.status, "ok");
    assert_eq!(span.duration_us, 5_000);
    assert_eq!(span.attributes["retries"], 3);
    assert_eq!(span.attributes["ratio"], 0.5);
    assert_eq!(span.attributes["tags"], serde_json::json!(["a"]));
}

#[tokio::test]
async fn json_logs_and_protobuf_logs_are_stored() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let telemetry = telemetry(Limits::default());
    let json = serde_json::json!({
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
            "scopeLogs": [{"logRecords": [{
                "timeUnixNano": now_nanos().to_string(),
                "severityNumber": 17,
                "severityText": "ERROR",
                "body": {"stringValue": "payment declined"},
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "unknown": {"nested": true}
            }]}]
        }]
    });
    let response = telemetry
        .receive(Signal::Logs, JSON, None, Bytes::from(json.to_string()))
        .await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let protobuf = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Value::StringValue("billing".into()))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    observed_time_unix_nano: now_nanos(),
                    severity_text: "warning".into(),
                    body: Some(AnyValue {
                        value: Some(Value::StringValue("slow ledger".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let response = telemetry
        .receive(
            Signal::Logs,
            PROTOBUF,
            None,
            Bytes::from(protobuf.encode_to_vec()),
        )
        .await;
    assert_eq!(response.status, 200);
    let logs = telemetry
        .logs(conway_telemetry::LogQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("logs");
    assert_eq!(logs.len(), 2);
    let declined = logs.iter().find(|l| l.service == "orders").expect("orders");
    assert_eq!(declined.level, "error");
    assert_eq!(declined.body, "payment declined");
    assert_eq!(
        declined.trace_id.as_deref(),
        Some("5b8efff798038103d269b633813fc60c")
    );
    let slow = logs
        .iter()
        .find(|l| l.service == "billing")
        .expect("billing");
    assert_eq!(slow.level, "warn", "from the severity text");
    let errors = telemetry
        .logs(conway_telemetry::LogQuery {
            min_level: Some(conway_telemetry::Level::Error),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("logs");
    assert_eq!(errors.len(), 1);
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_status_in_the_request_encoding() {
    let telemetry = telemetry(Limits::default());
    let bad_protobuf = Bytes::from_static(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    let response = telemetry
        .receive(Signal::Traces, PROTOBUF, None, bad_protobuf)
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.content_type, "application/x-protobuf");
    assert!(!response.body.is_empty(), "a google.rpc.Status");
    for bad in [
        "{",
        "[1, 2]",
        r#"{"resourceSpans": "not a list"}"#,
        r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not hex"}]}]}]}"#,
    ] {
        let response = telemetry
            .receive(Signal::Traces, JSON, None, Bytes::from(bad))
            .await;
        assert_eq!(response.status, 400, "{bad}");
        let status: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
        assert_eq!(status["code"], 3, "INVALID_ARGUMENT");
    }
    let response = telemetry
        .receive(Signal::Logs, Some("text/plain"), None, Bytes::from("hello"))
        .await;
    assert_eq!(response.status, 415);
    let response = telemetry
        .receive(Signal::Logs, JSON, Some("gzip"), Bytes::from("not gzip"))
        .await;
    assert_eq!(response.status, 400);
    assert!(
        telemetry.metrics().received(Signal::Traces) == 0,
        "nothing was received"
    );
}

#[tokio::test]
async fn invalid_spans_are_rejected_in_a_partial_success() {
    let telemetry = telemetry(Limits::default());
    let mut request = request([7; 16], "/x");
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![0; 16];
    let response = telemetry
        .receive(
            Signal::Traces,
            PROTOBUF,
            None,
            Bytes::from(request.encode_to_vec()),
        )
        .await;
    assert_eq!(response.status, 200);
    let answer = ExportTraceServiceResponse::decode(&response.body[..]).expect("response");
    let partial = answer.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace id"),
        "{}",
        partial.error_message
    );
    assert_eq!(telemetry.metrics().dropped(Signal::Traces, "invalid"), 1);
}

#[tokio::test]
async fn huge_attributes_are_cut_and_counted() {
    let telemetry = telemetry(Limits::default());
    let huge = "x".repeat(100_000);
    let body = request([9; 16], &huge).encode_to_vec();
    let response = telemetry
        .receive(Signal::Traces, PROTOBUF, None, Bytes::from(body))
        .await;
    assert_eq!(response.status, 200);
    let stored = telemetry
        .trace(TraceId([9; 16]))
        .await
        .expect("query")
        .expect("stored");
    let route = stored.spans[0].attributes["http.route"]
        .as_str()
        .expect("a string");
    assert_eq!(route.len(), Limits::default().max_value_bytes);
    assert_eq!(telemetry.metrics().truncated(), 1);
}

#[tokio::test]
async fn over_the_item_limit_the_rest_is_rejected() {
    let telemetry = telemetry(Limits {
        max_items: 1,
        ..Limits::default()
    });
    let body = request([3; 16], "/").encode_to_vec();
    let response = telemetry
        .receive(Signal::Traces, PROTOBUF, None, Bytes::from(body))
        .await;
    let answer = ExportTraceServiceResponse::decode(&response.body[..]).expect("response");
    assert_eq!(answer.partial_success.map(|p| p.rejected_spans), Some(1));
    assert_eq!(telemetry.metrics().dropped(Signal::Traces, "over_limit"), 1);
    let stored = telemetry.trace(TraceId([3; 16])).await.expect("query");
    assert_eq!(stored.map(|t| t.spans.len()), Some(1));
}

#[tokio::test]
async fn a_gzip_bomb_is_413() {
    use std::io::Write;
    let telemetry = telemetry(Limits {
        max_body_bytes: 64 * 1024,
        ..Limits::default()
    });
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![b' '; 1024 * 1024]).expect("write");
    let body = encoder.finish().expect("gzip");
    assert!(body.len() < 64 * 1024);
    let response = telemetry
        .receive(Signal::Traces, JSON, Some("gzip"), Bytes::from(body))
        .await;
    assert_eq!(response.status, 413);
}

#[tokio::test]
async fn admission_is_bounded() {
    let telemetry = Telemetry::in_memory(TelemetryConfig {
        limits: Limits {
            max_concurrent_requests: 1,
            admission_wait: Duration::from_millis(20),
            ..Limits::default()
        },
        ..TelemetryConfig::default()
    })
    .expect("telemetry");
    let first = telemetry.admit().await;
    assert!(first.is_some());
    assert!(
        telemetry.admit().await.is_none(),
        "the second waits, then gives up"
    );
    drop(first);
    assert!(telemetry.admit().await.is_some());
}
