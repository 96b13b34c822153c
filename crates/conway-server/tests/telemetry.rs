//! Telemetry through the routers without sockets: OTLP in on the receiver's router,
//! traces, logs, the graph and series out on the API's.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use conway_registry::registry::Registry;
use conway_registry::store::EmbeddedStore;
use conway_server::{ServerOptions, otlp_router, router};
use conway_telemetry::{SamplingConfig, Telemetry, TelemetryConfig};
use futures_util::StreamExt;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use opentelemetry_proto::tonic::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::Value;
use tower::ServiceExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

struct Apps {
    api: Router,
    otlp: Router,
}

async fn apps() -> Apps {
    let store = EmbeddedStore::in_memory().await.expect("in-memory store");
    let registry = Registry::new(Arc::new(store));
    let manifest = conway_core::parse(
        "[services.orders]\nrun = [\"orders\"]\ndepends_on = [\"payments\"]\n[services.payments]\nrun = [\"payments\"]\n",
    )
    .expect("valid manifest")
    .manifest;
    registry.load_manifest(&manifest).await.expect("load");
    let telemetry = Telemetry::in_memory(TelemetryConfig {
        sampling: SamplingConfig::keep_all(),
        ..TelemetryConfig::default()
    })
    .expect("telemetry");
    let options = ServerOptions {
        keepalive: Duration::from_millis(50),
        telemetry: Some(telemetry.clone()),
        ..ServerOptions::default()
    };
    Apps {
        api: router(registry, &options),
        otlp: otlp_router(telemetry),
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Any::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

fn spans() -> ExportTraceServiceRequest {
    let trace = (0..16)
        .map(|i| u8::from_str_radix(&TRACE[i * 2..i * 2 + 2], 16).expect("hex"))
        .collect::<Vec<u8>>();
    let start = now_nanos();
    let span = |id: u8, parent: Option<u8>, name: &str, ms: u64, error: bool| Span {
        trace_id: trace.clone(),
        span_id: vec![id; 8],
        parent_span_id: parent.map_or_else(Vec::new, |p| vec![p; 8]),
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + ms * 1_000_000,
        status: error.then(|| Status {
            code: 2,
            message: "boom".into(),
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "orders")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span(1, None, "POST /orders", 120, false),
                    span(2, Some(1), "charge", 80, true),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(
    app: &Router,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, bytes.to_vec())
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

#[tokio::test]
async fn spans_posted_over_otlp_are_listed_and_fetched() {
    let apps = apps().await;
    let (status, body) = post(
        &apps.otlp,
        "/v1/traces",
        "application/x-protobuf",
        spans().encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ExportTraceServiceResponse::decode(&body[..]).expect("response"),
        ExportTraceServiceResponse::default()
    );

    let (status, list) = get(
        &apps.api,
        "/v1/traces?service=orders&status=error&min_duration=100ms",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["trace_id"], TRACE);
    assert_eq!(list[0]["root_operation"], "POST /orders");
    assert_eq!(list[0]["spans"], 2);
    assert_eq!(list[0]["error"], true);
    assert_eq!(list[0]["duration_us"], 120_000);
    let (_, none) = get(&apps.api, "/v1/traces?min_duration=1s").await;
    assert_eq!(none, serde_json::json!([]));

    let (status, trace) = get(&apps.api, &format!("/v1/traces/{TRACE}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(trace["spans"].as_array().map(Vec::len), Some(2));
    assert_eq!(trace["spans"][1]["parent_span_id"], "0101010101010101");
    let (status, _) = get(&apps.api, "/v1/traces/0af7651916cd43dd8448eb211c80319c").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for bad in [
        "/v1/traces/xyz",
        "/v1/traces?status=ok",
        "/v1/traces?limit=0",
        "/v1/traces?min_duration=soon",
        "/v1/traces?colour=red",
    ] {
        let (status, body) = get(&apps.api, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request", "{bad}");
    }
}

#[tokio::test]
async fn the_receiver_answers_bad_requests_as_otlp_says() {
    let apps = apps().await;
    let (status, _) = post(
        &apps.otlp,
        "/v1/traces",
        "application/x-protobuf",
        vec![0xff, 0xff],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(&apps.otlp, "/v1/traces", "text/plain", b"hi".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = vec![b' '; 5 * 1024 * 1024];
    let (status, _) = post(&apps.otlp, "/v1/logs", "application/json", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked (no Content-Length) and over the limit.
    let chunks = futures_util::stream::iter(
        (0..6).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024 * 1024])),
    );
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/logs")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(chunks))
        .expect("request");
    let response = apps.otlp.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = get(&apps.otlp, "/v1/traces").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    let (_, metrics) = get(&apps.api, "/metrics").await;
    let metrics = metrics.as_str().expect("text").to_owned();
    for line in [
        r#"conway_telemetry_otlp_requests_total{signal="spans",code="400"} 1"#,
        r#"conway_telemetry_otlp_requests_total{signal="spans",code="415"} 1"#,
        r#"conway_telemetry_otlp_requests_total{signal="logs",code="413"} 2"#,
        "conway_telemetry_store_bytes ",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn logs_are_queried_and_followed() {
    let apps = apps().await;
    let logs = |body: &str, level: u8| {
        serde_json::json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
            "scopeLogs": [{"logRecords": [{
                "timeUnixNano": now_nanos().to_string(),
                "severityNumber": level,
                "body": {"stringValue": body},
                "traceId": TRACE
            }]}]
        }]})
        .to_string()
        .into_bytes()
    };
    let (status, _) = post(&apps.otlp, "/v1/logs", "application/json", logs("first", 9)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, list) = get(
        &apps.api,
        &format!("/v1/logs?service=orders&trace_id={TRACE}&level=info&since=5m"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["body"], "first");
    let (_, none) = get(&apps.api, "/v1/logs?level=error").await;
    assert_eq!(none, serde_json::json!([]));
    let (status, _) = get(&apps.api, "/v1/logs?level=loud").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let request = Request::builder()
        .uri("/v1/logs?follow=true&service=orders")
        .body(Body::empty())
        .expect("request");
    let response = apps.api.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    let mut stream = response.into_body().into_data_stream();
    let mut next_line = async || -> Value {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a line in time")
            .expect("open")
            .expect("data");
        serde_json::from_slice(&chunk).expect("one JSON line")
    };
    assert_eq!(next_line().await["body"], "first", "the backlog first");
    assert_eq!(next_line().await["keepalive"], true, "then keep-alives");
    let (status, _) = post(
        &apps.otlp,
        "/v1/logs",
        "application/json",
        logs("second", 17),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut line = next_line().await;
    while line.get("keepalive").is_some() {
        line = next_line().await;
    }
    assert_eq!(line["body"], "second");
    assert_eq!(line["level"], "error");
}

fn requests_metric(
    caller: &str,
    callee: &str,
    class: &str,
    count: i64,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "conway.requests".to_owned(),
                    data: Some(Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![
                                kv("caller", caller),
                                kv("callee", callee),
                                kv("route", callee),
                                kv("status_class", class),
                            ],
                            time_unix_nano: now_nanos(),
                            value: Some(Number::AsInt(count)),
                            ..Default::default()
                        }],
                        aggregation_temporality: 1,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn the_graph_joins_pushed_counters_and_declared_dependencies() {
    let apps = apps().await;
    for request in [
        requests_metric("gateway", "orders", "2xx", 60),
        requests_metric("orders", "audit", "5xx", 3),
    ] {
        let (status, _) = post(
            &apps.otlp,
            "/v1/metrics",
            "application/x-protobuf",
            request.encode_to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, graph) = get(&apps.api, "/v1/graph").await;
    assert_eq!(status, StatusCode::OK, "{graph}");
    assert_eq!(graph["window_seconds"], 300);
    let edges = graph["edges"].as_array().expect("edges");
    let edge = |from: &str, to: &str| {
        edges
            .iter()
            .find(|e| e["from"] == from && e["to"] == to)
            .cloned()
            .unwrap_or_else(|| panic!("{from} -> {to} in {graph}"))
    };
    let gateway = edge("gateway", "orders");
    assert_eq!(
        (gateway["observed"].clone(), gateway["declared"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(gateway["requests"], 60);
    let undeclared = edge("orders", "audit");
    assert_eq!(undeclared["error_rate"], 1.0);
    let unused = edge("orders", "payments");
    assert_eq!(
        (unused["observed"].clone(), unused["declared"].clone()),
        (false.into(), true.into())
    );
    let names: Vec<&str> = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["audit", "gateway", "orders", "payments"]);

    let (status, series) = get(&apps.api, "/v1/services/orders/series?window=1m").await;
    assert_eq!(status, StatusCode::OK);
    let points = series["points"].as_array().expect("points");
    assert_eq!(points.len(), 6);
    let requests: f64 = points
        .iter()
        .filter_map(|p| p["rate"].as_f64())
        .sum::<f64>()
        * 10.0;
    assert!((requests - 60.0).abs() < 1e-9, "{series}");
    let (status, _) = get(&apps.api, "/v1/graph?window=2h").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
