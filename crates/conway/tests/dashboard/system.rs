//! The system under test: a control plane with a small manifest, instances, and spans
//! and logs posted to its OTLP receiver.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conway_test_support::ControlPlane;
use serde_json::{Value, json};

use crate::{PATIENCE, SERVICES, TRACE_ID, note};

const CONWAY: &str = env!("CARGO_BIN_EXE_conway");

const MANIFEST: &str = r#"
[system]
name = "dashboard-test"

[[gateway.routes]]
path = "/api/orders"
service = "orders"

[services.orders]
version = "1.4.0"
owner = "team-checkout"
depends_on = ["inventory", "payments"]

[services.orders.resilience]
circuit_breaker = { failure_ratio = 0.5 }

[services.inventory]
version = "2.0.1"
owner = "team-stock"
run = ["inventory-server"]

[services.payments]
version = "0.9.0"
owner = "team-payments"
"#;

/// A control plane with the test manifest and its OTLP receiver, both on free ports.
pub(crate) fn start(dir: &Path) -> ControlPlane {
    let manifest = dir.join("conway.toml");
    std::fs::write(&manifest, MANIFEST).expect("write the manifest");
    let manifest = manifest.to_str().expect("a UTF-8 path");
    let args = ["-f", manifest, "--otlp-listen", "127.0.0.1:0"];
    ControlPlane::start(Path::new(CONWAY), &dir.join("data"), &args)
}

pub(crate) async fn api(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Value,
) -> Value {
    let request = http.request(method.clone(), url);
    let request = if body.is_null() {
        request
    } else {
        request.json(&body)
    };
    let response = request.send().await.expect("the control plane answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{method} {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Two orders (one healthy), one healthy inventory, one unhealthy payments.
pub(crate) async fn register(http: &reqwest::Client, url: &str) {
    let instances = [
        ("orders", "orders-1", 9101, "a", Some("healthy")),
        ("orders", "orders-2", 9102, "b", None),
        ("inventory", "inventory-1", 9201, "a", Some("healthy")),
        ("payments", "payments-1", 9301, "b", Some("unhealthy")),
    ];
    for (service, id, port, zone, state) in instances {
        let body = json!({
            "id": id, "address": "127.0.0.1", "port": port, "zone": zone,
            "version": "1.0.0", "ttl": "10m", "checked_by": "registrant",
        });
        let post = reqwest::Method::POST;
        api(
            http,
            post,
            &format!("{url}/v1/services/{service}/instances"),
            body,
        )
        .await;
        if let Some(state) = state {
            let body = json!({ "state": state, "reason": "test" });
            let put = reqwest::Method::PUT;
            api(http, put, &format!("{url}/v1/instances/{id}/health"), body).await;
        }
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}

/// One failed order as OTLP/JSON: orders calls inventory, then payments, which fails.
fn spans() -> Value {
    let start = now_nanos() - 2_000_000_000;
    let at = |ms: u128| (start + ms * 1_000_000).to_string();
    let span = |id: &str, parent: &str, name: &str, kind: u8, from: u128, to: u128, error: bool| {
        json!({
            "traceId": TRACE_ID, "spanId": id, "parentSpanId": parent, "name": name, "kind": kind,
            "startTimeUnixNano": at(from), "endTimeUnixNano": at(to),
            "status": if error { json!({"code": 2, "message": "payment declined"}) } else { json!({"code": 1}) },
            "attributes": [{"key": "http.request.method", "value": {"stringValue": "POST"}}],
        })
    };
    let resource = |service: &str, spans: Vec<Value>| {
        json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"scope": {"name": "dashboard-test"}, "spans": spans}],
        })
    };
    json!({"resourceSpans": [
        resource("orders", vec![
            span("a000000000000001", "", "POST /api/orders", 2, 0, 120, true),
            span("a000000000000002", "a000000000000001", "GET inventory/reserve", 3, 5, 18, false),
            span("a000000000000004", "a000000000000001", "POST payments/charge", 3, 20, 110, true),
        ]),
        resource("inventory", vec![span("a000000000000003", "a000000000000002", "GET /reserve", 2, 6, 17, false)]),
        resource("payments", vec![span("a000000000000005", "a000000000000004", "POST /charge", 2, 25, 105, true)]),
    ]})
}

/// Log lines of that order, and one of no trace, written `ago` before now.
pub(crate) fn logs(ago: Duration) -> Value {
    let time = (now_nanos() - ago.as_nanos()).to_string();
    let record = |severity: u8, text: &str, span: &str, body: &str| {
        let mut record = json!({
            "timeUnixNano": time, "severityNumber": severity, "severityText": text,
            "body": {"stringValue": body},
        });
        if !span.is_empty() {
            record["traceId"] = json!(TRACE_ID);
            record["spanId"] = json!(span);
        }
        record
    };
    let resource = |service: &str, records: Vec<Value>| {
        json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeLogs": [{"scope": {"name": "dashboard-test"}, "logRecords": records}],
        })
    };
    json!({"resourceLogs": [
        resource("orders", vec![
            record(17, "ERROR", "a000000000000001", "order 42 failed: payment declined"),
            record(9, "INFO", "", "orders started"),
        ]),
        resource("payments", vec![record(13, "WARN", "a000000000000005", "card issuer answered 503")]),
    ]})
}

/// Posts the spans and logs when the control plane serves telemetry, and answers the
/// OTLP receiver's address; why not, otherwise.
pub(crate) async fn telemetry(
    http: &reqwest::Client,
    plane: &ControlPlane,
) -> Result<String, String> {
    let probe = http
        .get(format!("{}/v1/traces", plane.url))
        .send()
        .await
        .expect("the control plane answers");
    if probe.status() == reqwest::StatusCode::NOT_FOUND {
        return Err("the control plane does not serve /v1/traces yet".to_owned());
    }
    let Some(otlp) = plane.process.ready["otlp"].as_str() else {
        return Err("conway server's ready line names no OTLP receiver".to_owned());
    };
    let post = reqwest::Method::POST;
    api(http, post.clone(), &format!("{otlp}/v1/traces"), spans()).await;
    let logs = logs(Duration::from_secs(1));
    api(http, post, &format!("{otlp}/v1/logs"), logs).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let trace = http
            .get(format!("{}/v1/traces/{TRACE_ID}", plane.url))
            .send()
            .await
            .expect("answer");
        if trace.status().is_success() {
            let trace: Value = trace.json().await.expect("JSON");
            if trace["spans"].as_array().map(Vec::len) == Some(5) {
                return Ok(otlp.to_owned());
            }
        }
        assert!(
            Instant::now() < deadline,
            "the posted trace was never stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The nodes and edges the map should draw: `/v1/graph`'s, or the declared ones.
pub(crate) async fn expected_graph(
    http: &reqwest::Client,
    url: &str,
) -> (Vec<String>, Vec<String>) {
    let graph = http
        .get(format!("{url}/v1/graph"))
        .send()
        .await
        .expect("answer");
    if graph.status() == reqwest::StatusCode::NOT_FOUND {
        note("NOTE: /v1/graph is not served yet: the map shows the declared graph");
        let nodes = SERVICES.map(str::to_owned).to_vec();
        let edges = vec!["orders>inventory".to_owned(), "orders>payments".to_owned()];
        return (nodes, edges);
    }
    let graph: Value = graph.json().await.expect("JSON");
    let mut nodes: Vec<String> = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].as_str().expect("a name").to_owned())
        .collect();
    let mut edges: Vec<String> = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            format!(
                "{}>{}",
                e["from"].as_str().unwrap_or_default(),
                e["to"].as_str().unwrap_or_default()
            )
        })
        .collect();
    nodes.sort();
    edges.sort();
    (nodes, edges)
}
