//! The exporter against a real receiver on a loopback socket: spans and request
//! counters arrive, the graph shows the pushed calls beside the declared ones, and a
//! full queue drops and counts.

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use conway_telemetry::{
    Exporter, ExporterOptions, SamplingConfig, Signal, SpanId, SpanKind, SpanRecord, SpanStatus,
    Telemetry, TelemetryConfig, TraceId,
};

/// A minimal OTLP/HTTP server over `telemetry` (the control plane has the real one).
async fn receiver(telemetry: Telemetry) -> String {
    async fn handle(
        signal: Signal,
        telemetry: Telemetry,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, Vec<u8>) {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let response = telemetry.receive(signal, content_type, None, body).await;
        (
            StatusCode::from_u16(response.status).expect("status"),
            response.body,
        )
    }
    let app = Router::new()
        .route(
            "/v1/traces",
            post(|State(t): State<Telemetry>, h: HeaderMap, b: Bytes| {
                handle(Signal::Traces, t, h, b)
            }),
        )
        .route(
            "/v1/metrics",
            post(|State(t): State<Telemetry>, h: HeaderMap, b: Bytes| {
                handle(Signal::Metrics, t, h, b)
            }),
        )
        .route(
            "/v1/logs",
            post(|State(t): State<Telemetry>, h: HeaderMap, b: Bytes| {
                handle(Signal::Logs, t, h, b)
            }),
        )
        .with_state(telemetry);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn span(service: &str) -> SpanRecord {
    SpanRecord {
        trace_id: TraceId::random(),
        span_id: SpanId::random(),
        parent_span_id: None,
        service: service.to_owned(),
        operation: "GET /api/orders".to_owned(),
        kind: SpanKind::Server,
        start: SystemTime::now(),
        duration: Duration::from_millis(12),
        status: SpanStatus::Error,
        status_message: Some("upstream reset".to_owned()),
        attributes: serde_json::json!({"http.response.status_code": 502})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn spans_and_request_counts_reach_the_receiver() {
    let telemetry = Telemetry::in_memory(TelemetryConfig {
        sampling: SamplingConfig::keep_all(),
        ..TelemetryConfig::default()
    })
    .expect("telemetry");
    let endpoint = receiver(telemetry.clone()).await;
    let exporter = Exporter::new(&endpoint).expect("exporter");
    let sent = span("gateway");
    exporter.export_span(sent.clone());
    for _ in 0..95 {
        exporter.add_request(
            "gateway",
            "orders",
            "orders",
            200,
            Duration::from_millis(20),
        );
    }
    for _ in 0..5 {
        exporter.add_request(
            "gateway",
            "orders",
            "orders",
            503,
            Duration::from_millis(300),
        );
    }
    exporter.add_request("orders", "fraud", "fraud", 200, Duration::from_millis(2));
    exporter.flush().await;

    assert_eq!(exporter.metrics().sent_count("spans"), 1);
    assert_eq!(exporter.metrics().sent_count("metric_points"), 3);
    let trace = telemetry
        .trace(sent.trace_id)
        .await
        .expect("query")
        .expect("the exported span");
    let stored = &trace.spans[0];
    assert_eq!(stored.span_id, sent.span_id.to_string());
    assert_eq!(stored.status, "error");
    assert_eq!(stored.duration_us, 12_000);
    assert_eq!(stored.attributes["http.response.status_code"], 502);

    let graph = telemetry.graph(
        &["orders".to_owned(), "payments".to_owned()],
        &[("orders".to_owned(), "payments".to_owned())],
        Duration::from_secs(300),
    );
    let edge = |from: &str, to: &str| {
        graph
            .edges
            .iter()
            .find(|e| e.from == from && e.to == to)
            .cloned()
            .unwrap_or_else(|| panic!("{from} -> {to} in {graph:?}"))
    };
    let orders = edge("gateway", "orders");
    assert!(orders.observed && !orders.declared);
    assert_eq!(orders.requests, 100);
    assert!((orders.error_rate - 0.05).abs() < 1e-9, "{orders:?}");
    let p50 = orders.p50_ms.expect("p50");
    assert!(
        (10.0..=25.0).contains(&p50),
        "the median is in the 10–25 ms bucket: {p50}"
    );
    let p99 = orders.p99_ms.expect("p99");
    assert!((250.0..=500.0).contains(&p99), "{p99}");
    assert!(edge("orders", "fraud").observed);
    let declared = edge("orders", "payments");
    assert!(declared.declared && !declared.observed);
    let series = telemetry.series("orders", Duration::from_secs(900));
    let total: f64 = series.points.iter().map(|p| p.rate * 10.0).sum();
    assert!((total - 100.0).abs() < 1e-6, "{total}");
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    // Nothing listens on port 1; the exporter's task has not run yet when the spans
    // are queued (this test's runtime has one thread).
    let exporter = Exporter::with_options(
        "http://127.0.0.1:1",
        ExporterOptions {
            queue_capacity: 1,
            timeout: Duration::from_millis(500),
            ..ExporterOptions::default()
        },
    )
    .expect("exporter");
    for _ in 0..10 {
        exporter.export_span(span("gateway"));
    }
    assert_eq!(exporter.metrics().dropped_count("spans", "queue_full"), 9);
    exporter.flush().await;
    assert_eq!(exporter.metrics().dropped_count("spans", "send_failed"), 1);
    assert!(Exporter::new("not a url").is_err());
    assert!(Exporter::new("ftp://127.0.0.1:4318").is_err());
}

#[tokio::test]
async fn request_series_beyond_the_cap_are_dropped() {
    let exporter = Exporter::with_options(
        "http://127.0.0.1:1",
        ExporterOptions {
            max_series: 2,
            timeout: Duration::from_millis(200),
            ..ExporterOptions::default()
        },
    )
    .expect("exporter");
    exporter.add_request("a", "b", "r", 200, Duration::from_millis(1));
    exporter.add_request("a", "b", "r", 500, Duration::from_millis(1));
    exporter.add_request("a", "c", "r", 200, Duration::from_millis(1));
    exporter.add_request("a", "b", "r", 200, Duration::from_millis(1));
    assert_eq!(
        exporter
            .metrics()
            .dropped_count("metric_points", "series_limit"),
        1
    );
}

#[tokio::test]
async fn kept_spans_and_logs_are_forwarded_to_the_configured_collector() {
    let collector = Telemetry::in_memory(TelemetryConfig {
        sampling: SamplingConfig::keep_all(),
        ..TelemetryConfig::default()
    })
    .expect("collector");
    let endpoint = receiver(collector.clone()).await;
    let control_plane = Telemetry::in_memory(TelemetryConfig {
        sampling: SamplingConfig {
            per_service: None,
            share: 0.0,
        },
        otlp_endpoint: Some(endpoint),
        ..TelemetryConfig::default()
    })
    .expect("control plane");
    let _tasks = control_plane.start();
    let failed = span("orders");
    let mut healthy = span("orders");
    healthy.status = SpanStatus::Unset;
    control_plane
        .ingest_spans(vec![failed.clone(), healthy.clone()])
        .await
        .expect("ingest");
    control_plane
        .ingest_logs(vec![conway_telemetry::LogRecord::line(
            "orders",
            Some("orders-1"),
            conway_telemetry::Level::Warn,
            "forwarded",
        )])
        .await
        .expect("ingest");
    // The forwarder sends every second; wait for the collector to have both.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let trace = collector.trace(failed.trace_id).await.expect("query");
        let logs = collector
            .logs(conway_telemetry::LogQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("logs");
        let counted = control_plane.metrics().export_sent("logs") == 1;
        if trace.is_some() && !logs.is_empty() && counted {
            assert_eq!(logs[0].body, "forwarded");
            assert_eq!(logs[0].instance.as_deref(), Some("orders-1"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing forwarded in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        collector
            .trace(healthy.trace_id)
            .await
            .expect("query")
            .is_none(),
        "what sampling dropped is not forwarded"
    );
    let metrics = control_plane.metrics();
    assert_eq!(metrics.export_sent("spans"), 1);
}
