//! What instances write lands in the log store: `GET /v1/logs?service=&instance=` and
//! `conway logs` read it back, with levels from the stream or from JSON lines.

use std::process::Command;

use conway_test_support::wait_for;
use serde_json::Value;

use crate::support::{CONWAY, PATIENCE, SERVICE, Up, header, http, toml_array};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// The records of `instance`, oldest first.
fn logs(control_plane: &str, query: &str) -> Vec<Value> {
    let (status, body) = http("GET", &format!("{control_plane}/v1/logs?{query}"), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("log records")
}

#[test]
fn every_line_goes_to_the_log_store_with_its_level_and_trace() {
    let script = format!(
        r#"echo plain line; echo '{{"level":"error","message":"card declined","trace_id":"{TRACE}"}}'; echo 'to stderr' >&2; exec python3 {SERVICE}"#
    );
    let run = toml_array(&["sh".to_owned(), "-c".to_owned(), script]);
    let manifest = format!(
        "{}[services.talker]\nrun = {run}\nreplicas = 2\nhealth = {{ tcp = true, interval = \"200ms\" }}\n",
        header()
    );
    let up = Up::start(&manifest, &[]);
    let control_plane = up.url("control_plane");
    let query = "service=talker&instance=talker-2&limit=50";
    wait_for("talker-2's lines in the store", PATIENCE, || {
        logs(&control_plane, query).iter().any(|r| {
            r["body"]
                .as_str()
                .is_some_and(|b| b.starts_with("listening on"))
        })
    });
    let records = logs(&control_plane, query);
    assert!(
        records.iter().all(|r| r["instance"] == "talker-2"),
        "{records:#?}"
    );
    let find = |body: &str| {
        records
            .iter()
            .find(|r| r["body"].as_str().is_some_and(|b| b.contains(body)))
            .unwrap_or_else(|| panic!("no {body:?} in {records:#?}"))
    };
    let plain = find("plain line");
    assert_eq!(plain["level"], "info");
    assert_eq!(plain["service"], "talker");
    assert_eq!(plain["attributes"]["stream"], "stdout");
    let json = find("card declined");
    assert_eq!(json["level"], "error");
    assert_eq!(json["trace_id"], TRACE);
    let stderr = find("to stderr");
    assert_eq!(stderr["level"], "warn");
    assert_eq!(stderr["attributes"]["stream"], "stderr");
    // The trace's logs, and a minimum level, across both instances.
    let by_trace = logs(&control_plane, &format!("trace_id={TRACE}"));
    let mut instances: Vec<&str> = by_trace
        .iter()
        .filter_map(|r| r["instance"].as_str())
        .collect();
    instances.sort_unstable();
    assert_eq!(instances, ["talker-1", "talker-2"], "{by_trace:#?}");
    let warnings = logs(
        &control_plane,
        "service=talker&instance=talker-1&level=warn",
    );
    let bodies: Vec<&str> = warnings.iter().filter_map(|r| r["body"].as_str()).collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies.contains(&"to stderr"), "{bodies:?}");

    // The CLI reads the same records.
    let output = Command::new(CONWAY)
        .args(["logs", "--server", &control_plane])
        .args(["--service", "talker", "--instance", "talker-1"])
        .env_remove("CONWAY_URL")
        .output()
        .expect("conway logs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("talker/talker-1"), "{text}");
    assert!(text.contains("plain line"), "{text}");
    assert!(!text.contains("talker-2"), "{text}");
}
