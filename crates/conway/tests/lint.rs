//! `conway lint` against a real `conway server`: the manifest's own findings, then the
//! live ones once the proxies' request counters (sent as a proxy sends them, over OTLP)
//! show a call nobody declared.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use conway_telemetry::Exporter;
use conway_test_support::{ControlPlane, temp_dir};

const CONWAY: &str = env!("CARGO_BIN_EXE_conway");

const MANIFEST: &str = r#"[system]
name = "shop"

[[gateway.routes]]
path = "/api/orders"
service = "orders"

[services.orders]
run = ["x"]
owner = "team-checkout"
depends_on = ["catalog"]

[services.catalog]
run = ["x"]
owner = "team-catalog"

[services.audit]
run = ["x"]
"#;

/// How a `conway lint` run ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn lint(server: &str, manifest: &Path, json: bool) -> Run {
    let mut command = Command::new(CONWAY);
    command
        .args(["--server", server, "lint", "-f"])
        .arg(manifest)
        .env_remove("CONWAY_URL");
    if json {
        command.args(["--output", "json"]);
    }
    let output = command.output().expect("run conway lint");
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_finds_unowned_services_open_routes_then_undeclared_calls() {
    let dir = temp_dir();
    let manifest = dir.path().join("conway.toml");
    std::fs::write(&manifest, MANIFEST).expect("write the manifest");
    let shown = manifest.display().to_string();

    // No control plane: the manifest's findings, warnings only, so exit 0.
    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("bound"))
    };
    let offline = {
        let manifest = manifest.clone();
        tokio::task::spawn_blocking(move || lint(&nowhere, &manifest, false))
            .await
            .expect("run")
    };
    assert_eq!(offline.code, 0, "{}{}", offline.stdout, offline.stderr);
    let lines: Vec<&str> = offline.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", offline.stdout);
    assert!(
        lines[0].starts_with(&format!(
            "{shown}:4:1: warning: open-route: route \"orders:/api/orders\""
        )),
        "{}",
        offline.stdout
    );
    assert!(
        lines[1].starts_with(&format!(
            "{shown}:17:11: warning: no-owner: service \"audit\""
        )),
        "{}",
        offline.stdout
    );
    assert!(
        offline.stderr.contains("live checks skipped"),
        "{}",
        offline.stderr
    );

    let plane = ControlPlane::start(
        Path::new(CONWAY),
        &dir.path().join("data"),
        &[
            "-f",
            manifest.to_str().expect("UTF-8"),
            "--otlp-listen",
            "127.0.0.1:0",
        ],
    );
    // What the gateway and orders' mesh proxy would report: the gateway called orders,
    // and orders called audit, which its depends_on does not list.
    let exporter = Exporter::new(&plane.process.url("otlp")).expect("an exporter");
    for _ in 0..3 {
        exporter.add_request(
            "gateway",
            "orders",
            "orders:/api/orders",
            200,
            Duration::from_millis(4),
        );
        exporter.add_request("orders", "audit", "audit", 200, Duration::from_millis(2));
    }
    exporter.flush().await;
    let client = conway_client::Client::new(&plane.url).expect("a client");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let graph = client.graph().await.expect("the graph");
        if graph
            .edges
            .iter()
            .any(|e| e.from == "orders" && e.to == "audit" && e.observed)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no orders → audit edge: {graph:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let url = plane.url.clone();
    let live = {
        let manifest = manifest.clone();
        tokio::task::spawn_blocking(move || lint(&url, &manifest, false))
            .await
            .expect("run")
    };
    assert_eq!(
        live.code, 1,
        "an undeclared call is an error: {}{}",
        live.stdout, live.stderr
    );
    assert!(
        live.stdout.contains(&format!(
            "{shown}:11:1: undeclared-call: \"orders\" called \"audit\" 3 time(s)"
        )),
        "{}",
        live.stdout
    );
    assert!(
        live.stdout.contains(&format!(
            "{shown}:11:15: warning: unused-dependency: \"orders\" served requests"
        )),
        "{}",
        live.stdout
    );
    assert!(
        live.stderr.contains("checked against traffic seen by"),
        "{}",
        live.stderr
    );

    let url = plane.url.clone();
    let json = tokio::task::spawn_blocking(move || lint(&url, &manifest, true))
        .await
        .expect("run");
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(report["live_checked"], true, "{report}");
    let findings = report["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 4, "{report}");
    assert!(
        findings
            .iter()
            .any(|f| f["severity"] == "error" && f["line"] == 11 && f["column"] == 1),
        "{report}"
    );
}
