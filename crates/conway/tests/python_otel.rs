//! A Python service with the official OpenTelemetry SDK under `conway up`, end to end:
//! a request through the gateway reaches it, it calls another service through the mesh
//! (`http_proxy`), and exports its spans to the OTLP receiver Conway gives it in
//! `OTEL_EXPORTER_OTLP_ENDPOINT`. `GET /v1/traces/{id}` must then hold the gateway's
//! span, the Python service's server and client spans and the mesh's span, in one
//! trace, each the child of the one before; and its JSON log line, with the trace id,
//! must be among the trace's logs.
//!
//! The SDK comes from PyPI into a virtual environment kept in the target folder, named
//! by a hash of the shop's `recommendations/requirements.txt` (the same pinned
//! packages), so only the first run waits for pip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use conway_test_support::up::Up;
use conway_test_support::{OTEL_SERVICE, TEST_SERVICE};
use serde_json::Value;

fn requirements() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/shop/recommendations/requirements.txt")
}

/// 64-bit FNV-1a: a cache key that stays the same across runs and toolchains.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The interpreter of a virtual environment with the OpenTelemetry SDK, made once per
/// set of requirements; `None` (after saying why) when it cannot be made outside CI.
fn otel_python() -> Option<PathBuf> {
    let requirements = requirements();
    let pinned = std::fs::read(&requirements).expect("the shop's requirements");
    let venv =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("otel-venv-{:016x}", fnv(&pinned)));
    let python = venv.join("bin/python");
    if python.is_file() {
        return Some(python);
    }
    // Made aside, then renamed: an interrupted install is never taken for a whole one.
    let partial = venv.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&partial)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(partial.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements)
            .status()
            .is_ok_and(|s| s.success());
    if !made {
        let _ = std::fs::remove_dir_all(&partial);
        assert!(
            std::env::var_os("CI").is_none(),
            "cannot install the OpenTelemetry SDK into a virtual environment (python3-venv, PyPI)"
        );
        eprintln!("skipped: cannot install the OpenTelemetry SDK (python3 -m venv, pip)");
        return None;
    }
    if std::fs::rename(&partial, &venv).is_err() {
        // Another test made it meanwhile.
        let _ = std::fs::remove_dir_all(&partial);
    }
    Some(python)
}

/// `GET url`: status, `traceresponse` header, body.
async fn get(url: &str) -> (u16, Option<String>, String) {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let trace = response
        .headers()
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, trace, response.text().await.expect("body"))
}

async fn json(url: &str) -> Value {
    let (status, _, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn python_spans_join_the_gateway_and_mesh_spans_in_one_trace() {
    let Some(python) = tokio::task::spawn_blocking(otel_python)
        .await
        .expect("venv")
    else {
        return;
    };
    let manifest = format!(
        "[system]\nname = \"otel\"\n\n[gateway]\nlisten = \"127.0.0.1:0\"\n\n\
         [[gateway.routes]]\nname = \"front\"\npath = \"/front\"\nservice = \"front\"\n\n\
         [services.front]\nrun = [{python:?}, {OTEL_SERVICE:?}]\ndepends_on = [\"back\"]\n\
         env = {{ DOWNSTREAM = \"back\" }}\nhealth = {{ http = \"/health\", interval = \"200ms\" }}\n\n\
         [services.back]\nrun = [\"python3\", {TEST_SERVICE:?}]\n\
         health = {{ tcp = true, interval = \"200ms\" }}\n"
    );
    let up = tokio::task::spawn_blocking(move || {
        Up::launch_with(&manifest, &[], &["--otlp-listen", "127.0.0.1:0"]).ready()
    })
    .await
    .expect("conway up");
    let control_plane = up.url("control_plane");

    let (status, traceresponse, body) = get(&format!("{}/front/go", up.url("gateway"))).await;
    assert_eq!((status, body.as_str()), (200, "back-1\n"));
    let traceresponse = traceresponse.expect("a traceresponse header");
    let trace_id = traceresponse
        .split('-')
        .nth(1)
        .expect("00-TRACE-SPAN-01")
        .to_owned();

    // Spans arrive in batches (the SDK every 200 ms, the proxy every second).
    let url = format!("{control_plane}/v1/traces/{trace_id}");
    let mut spans = Vec::new();
    for _ in 0..300 {
        let (status, _, body) = get(&url).await;
        if status == 200 {
            let trace: Value = serde_json::from_str(&body).expect("trace");
            spans = trace["spans"].as_array().cloned().unwrap_or_default();
            if spans.len() >= 4 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let find = |what: &str, test: &dyn Fn(&Value) -> bool| -> Value {
        spans
            .iter()
            .find(|s| test(s))
            .cloned()
            .unwrap_or_else(|| panic!("no {what} span in {spans:#?}"))
    };
    assert!(spans.iter().all(|s| s["trace_id"] == trace_id.as_str()));
    let gateway = find("gateway", &|s| s["service"] == "gateway");
    let server = find("front's server", &|s| {
        s["service"] == "front" && s["kind"] == "server"
    });
    let client = find("front's client", &|s| {
        s["service"] == "front" && s["kind"] == "client" && s["operation"] == "GET back"
    });
    let mesh = find("mesh", &|s| {
        s["service"] == "front" && s["attributes"]["conway.callee"] == "back"
    });
    assert_eq!(
        gateway["parent_span_id"],
        Value::Null,
        "the gateway starts the trace"
    );
    assert_eq!(gateway["attributes"]["conway.callee"], "front");
    assert_eq!(
        traceresponse.split('-').nth(2),
        gateway["span_id"].as_str(),
        "traceresponse names the gateway's span"
    );
    assert_eq!(server["parent_span_id"], gateway["span_id"]);
    assert_eq!(server["operation"], "GET /front/go");
    assert_eq!(server["attributes"]["service.instance.id"], "front-1");
    assert_eq!(client["parent_span_id"], server["span_id"]);
    assert_eq!(mesh["parent_span_id"], client["span_id"]);
    assert_eq!(mesh["kind"], "client");
    assert_eq!(mesh["attributes"]["http.response.status_code"], 200);

    // Its JSON log line, captured by the supervisor, carries the same trace.
    let logs_url = format!("{control_plane}/v1/logs?trace_id={trace_id}");
    let mut logs = Vec::new();
    for _ in 0..100 {
        logs = json(&logs_url)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !logs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert_eq!(logs[0]["service"], "front");
    assert_eq!(logs[0]["instance"], "front-1");
    assert_eq!(logs[0]["level"], "info");
    assert!(
        logs[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("called back")),
        "{logs:#?}"
    );
    drop(up);
}
