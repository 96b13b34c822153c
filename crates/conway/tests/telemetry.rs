//! OTLP/protobuf built with the official OpenTelemetry definitions, posted to a real
//! `conway server --otlp-listen 127.0.0.1:0`, read back with `conway traces`,
//! `conway trace`, `conway logs` and `conway graph` — and still there after a restart.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use conway_test_support::{ControlPlane, temp_dir};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

const CONWAY: &str = env!("CARGO_BIN_EXE_conway");
const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn conway(server: &str, args: &[&str]) -> String {
    let output = Command::new(CONWAY)
        .arg("--server")
        .arg(server)
        .args(args)
        .env_remove("CONWAY_URL")
        .output()
        .expect("run conway");
    assert!(
        output.status.success(),
        "conway {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn start(dir: &Path) -> ControlPlane {
    let manifest = dir.join("conway.toml");
    std::fs::write(
        &manifest,
        "[services.gateway-api]\nrun = [\"x\"]\ndepends_on = [\"orders\"]\n[services.orders]\nrun = [\"x\"]\ndepends_on = [\"payments\"]\n[services.payments]\nrun = [\"x\"]\n",
    )
    .expect("manifest");
    let manifest = manifest.to_str().expect("UTF-8").to_owned();
    ControlPlane::start(
        Path::new(CONWAY),
        &dir.join("data"),
        &["-f", &manifest, "--otlp-listen", "127.0.0.1:0"],
    )
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

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

fn bytes_of(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).expect("hex"))
        .collect()
}

/// Three services' spans of one trace, each service in its own resource, as three
/// SDKs would send them: orders → payments failed.
fn trace_request() -> ExportTraceServiceRequest {
    let start = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64;
    let ms = 1_000_000;
    let span = |id: u8, parent: Option<u8>, name: &str, from: u64, to: u64, error: bool| Span {
        trace_id: bytes_of(TRACE),
        span_id: vec![id; 8],
        parent_span_id: parent.map_or_else(Vec::new, |p| vec![p; 8]),
        name: name.to_owned(),
        kind: if parent.is_none() { 2 } else { 3 },
        start_time_unix_nano: start + from * ms,
        end_time_unix_nano: start + to * ms,
        attributes: vec![kv("http.route", name)],
        status: error.then(|| Status {
            code: 2,
            message: "card declined".to_owned(),
        }),
        ..Default::default()
    };
    let resource_spans = |service: &str, spans: Vec<Span>| ResourceSpans {
        resource: resource(service),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(
                "gateway-api",
                vec![span(1, None, "POST /api/orders", 0, 200, false)],
            ),
            resource_spans(
                "orders",
                vec![
                    span(2, Some(1), "create order", 10, 180, false),
                    span(3, Some(2), "reserve stock", 20, 60, false),
                ],
            ),
            resource_spans("payments", vec![span(4, Some(2), "charge", 70, 170, true)]),
        ],
    }
}

fn log_request() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("payments"),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .expect("after 1970")
                        .as_nanos() as u64,
                    severity_number: 17,
                    body: Some(AnyValue {
                        value: Some(Any::StringValue("card declined for order 42".into())),
                    }),
                    trace_id: bytes_of(TRACE),
                    span_id: vec![4; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(otlp: &str, path: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{otlp}{path}"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("the receiver answers")
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_in_then_traces_trace_logs_and_graph_out_across_a_restart() {
    let dir = temp_dir();
    let mut plane = start(dir.path());
    let otlp = plane.process.url("otlp");
    assert!(otlp.starts_with("http://127.0.0.1:"), "{otlp}");

    let response = post(&otlp, "/v1/traces", trace_request().encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.expect("body"))
        .expect("an ExportTraceServiceResponse");
    assert_eq!(answer.partial_success, None);
    let response = post(&otlp, "/v1/logs", log_request().encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    let refused = reqwest::Client::new()
        .post(format!("{otlp}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 400);

    let url = plane.url.clone();
    let table = tokio::task::spawn_blocking(move || conway(&url, &["traces", "--errors"]))
        .await
        .expect("run");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("TRACE ID"), "{table}");
    assert!(lines[1].starts_with(TRACE), "{table}");
    assert!(
        lines[1].contains("gateway-api: POST /api/orders"),
        "{table}"
    );
    assert!(
        lines[1].contains("200.0ms") && lines[1].ends_with("error"),
        "{table}"
    );

    let url = plane.url.clone();
    let json = tokio::task::spawn_blocking(move || {
        conway(
            &url,
            &[
                "traces",
                "--service",
                "payments",
                "--min-duration",
                "150ms",
                "--output",
                "json",
            ],
        )
    })
    .await
    .expect("run");
    let listed: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(listed[0]["trace_id"], TRACE);
    assert_eq!(listed[0]["spans"], 4);

    let url = plane.url.clone();
    let waterfall = tokio::task::spawn_blocking(move || conway(&url, &["trace", TRACE]))
        .await
        .expect("run");
    let lines: Vec<&str> = waterfall.lines().collect();
    assert!(
        lines[0].contains("4 spans · 3 services · 200.0ms · 1 error"),
        "{waterfall}"
    );
    let rows: Vec<&str> = lines.iter().skip(3).copied().collect();
    assert!(
        rows[0].starts_with("gateway-api: POST /api/orders"),
        "{waterfall}"
    );
    assert!(
        rows[1].starts_with("└─ orders: create order"),
        "{waterfall}"
    );
    assert!(
        rows[2].starts_with("   ├─ orders: reserve stock"),
        "{waterfall}"
    );
    assert!(
        rows[3].starts_with("   └─ payments: charge ✗"),
        "{waterfall}"
    );
    assert!(
        rows[3].contains("70.0ms") && rows[3].contains("100.0ms"),
        "{waterfall}"
    );

    let url = plane.url.clone();
    let logs = tokio::task::spawn_blocking(move || conway(&url, &["logs", "--trace", TRACE]))
        .await
        .expect("run");
    assert!(
        logs.trim_end()
            .ends_with("payments ERROR card declined for order 42"),
        "{logs}"
    );

    let url = plane.url.clone();
    let dot = tokio::task::spawn_blocking(move || conway(&url, &["graph", "--format", "dot"]))
        .await
        .expect("run");
    assert!(
        dot.contains("\"orders\" -> \"payments\""),
        "declared edges: {dot}"
    );
    assert!(
        dot.contains("style=dashed color=gray"),
        "declared only, no calls counted: {dot}"
    );

    // The store survives a restart of the control plane.
    assert_eq!(plane.process.terminate(Duration::from_secs(10)), Some(0));
    let plane = start(dir.path());
    let url = plane.url.clone();
    let again =
        tokio::task::spawn_blocking(move || conway(&url, &["trace", TRACE, "--output", "json"]))
            .await
            .expect("run");
    let trace: serde_json::Value = serde_json::from_str(&again).expect("JSON");
    assert_eq!(trace["spans"].as_array().map(Vec::len), Some(4));
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_prints_records_as_they_arrive() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = temp_dir();
    let plane = start(dir.path());
    let otlp = plane.process.url("otlp");
    let mut follower = Command::new(CONWAY)
        .args([
            "--server",
            &plane.url,
            "logs",
            "--service",
            "payments",
            "--follow",
        ])
        .env_remove("CONWAY_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start conway logs --follow");
    let stdout = follower.stdout.take().expect("piped");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.expect("a line")).is_err() {
                return;
            }
        }
    });
    // The follower may connect after the post: it prints the backlog first, so the
    // record shows either way.
    let response = post(&otlp, "/v1/logs", log_request().encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    let line = received
        .recv_timeout(Duration::from_secs(15))
        .expect("a line from conway logs --follow");
    assert!(
        line.ends_with("payments ERROR card declined for order 42"),
        "{line}"
    );
    let response = post(&otlp, "/v1/logs", log_request().encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    let second = received
        .recv_timeout(Duration::from_secs(15))
        .expect("the next record, followed");
    assert!(second.ends_with("card declined for order 42"), "{second}");
    let _ = follower.kill();
    let _ = follower.wait();
}
