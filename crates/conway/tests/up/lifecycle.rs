//! Start, routing, restart after a kill, scale.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{PATIENCE, Up, header, http, in_dir, read, service, wait_gone};

#[test]
fn builds_once_starts_everything_healthy_and_routes_through_the_gateway() {
    let build = r#"build = ["sh", "-c", "echo built >> builds.log"]"#;
    let manifest = format!(
        "{}[[gateway.routes]]\npath = \"/a\"\nservice = \"a\"\n\n[[gateway.routes]]\npath = \"/b\"\nservice = \"b\"\n\n{}{}",
        header(),
        service(
            "a",
            &[],
            &format!("replicas = 2\nversion = \"1.2.0\"\n{build}")
        ),
        service("b", &[], &format!("depends_on = [\"a\"]\n{build}")),
    );
    let up = Up::launch_with(&manifest, &[], &["--follow-logs"]).ready();
    // Identical build commands in the same folder ran once.
    assert_eq!(read(&in_dir(&up, "builds.log")), "built\n");
    assert!(
        up.stderr()
            .contains("built: sh -c echo built >> builds.log (for a, b)"),
        "{}",
        up.stderr()
    );
    // Ready means healthy: no waiting here.
    assert_eq!(up.healthy("a"), ["a-1", "a-2"]);
    assert_eq!(up.healthy("b"), ["b-1"]);
    let a1 = &up.instances("a")[0];
    assert_eq!(a1["checked_by"], "registrant");
    assert_eq!(a1["version"], "1.2.0");
    assert_eq!(
        a1["metadata"]["conway.token_sha256"].as_str().map(str::len),
        Some(64)
    );
    // The ready line, then the summary on stderr.
    let control_plane = up.url("control_plane");
    assert_eq!(up.url("dashboard"), format!("{control_plane}/"));
    let gateway = up.url("gateway");
    let stderr = up.stderr();
    let rows: Vec<Vec<&str>> = stderr
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.contains(&vec!["SERVICE", "REPLICAS", "VERSION", "STATE"]),
        "{stderr}"
    );
    assert!(
        rows.contains(&vec!["a", "2/2", "1.2.0", "running"]),
        "{stderr}"
    );
    assert!(rows.contains(&vec!["b", "1/1", "-", "running"]), "{stderr}");
    assert!(
        stderr.contains(&format!("gateway: {gateway}\n")),
        "{stderr}"
    );
    // --follow-logs: every instance's output, labelled.
    let port = a1["port"].as_u64().expect("port");
    assert!(
        stderr.contains(&format!("a/a-1 | listening on {port}\n")),
        "{stderr}"
    );
    // The gateway routes to a supervised instance.
    let (status, body) = http("GET", &format!("{gateway}/a/hello"), None);
    assert_eq!(status, 200, "{body}");
    assert!(body == "a-1\n" || body == "a-2\n", "{body:?}");
    // Through the gateway, the instance's environment.
    let (status, body) = http("GET", &format!("{gateway}/a/env"), None);
    assert_eq!(status, 200, "{body}");
    let env: Value = serde_json::from_str(&body).expect("env JSON");
    assert_eq!(env["CONWAY_URL"], control_plane.as_str());
    assert_eq!(env["CONWAY_SERVICE"], "a");
    let data_dir = in_dir(&up, "data/services/a");
    assert_eq!(env["DATA_DIR"], data_dir.display().to_string());
    assert!(data_dir.is_dir());
    assert_eq!(env["no_proxy"], "localhost,127.0.0.1,::1");
    assert_eq!(env["OTEL_EXPORTER_OTLP_PROTOCOL"], "http/protobuf");
    // b calls a through the mesh: its proxy URL names the mesh with b's token, and it
    // has a listener of its own for its dependency a.
    let (status, body) = http("GET", &format!("{gateway}/b/env"), None);
    assert_eq!(status, 200, "{body}");
    let env: Value = serde_json::from_str(&body).expect("env JSON");
    let mesh = up.url("mesh");
    let proxy = env["http_proxy"].as_str().expect("http_proxy");
    assert_eq!(env["HTTP_PROXY"], proxy);
    let token = proxy
        .strip_prefix("http://b:")
        .and_then(|rest| rest.strip_suffix(&format!("@{}", mesh.trim_start_matches("http://"))))
        .unwrap_or_else(|| panic!("{proxy} is not http://b:TOKEN@MESH ({mesh})"));
    assert_eq!(token.len(), 32);
    let upstream = env["CONWAY_UPSTREAM_A"]
        .as_str()
        .expect("CONWAY_UPSTREAM_A");
    let (status, body) = http("GET", &format!("{upstream}/hello"), None);
    assert_eq!(status, 200, "{body}");
    assert!(body == "a-1\n" || body == "a-2\n", "{body:?}");
}

#[test]
fn a_killed_instance_is_restarted_and_healthy_again() {
    let manifest = format!("{}{}", header(), service("a", &[], ""));
    let mut up = Up::start(&manifest, &[]);
    let first = up.instances("a")[0].clone();
    let before = first["port"].clone();
    assert_eq!(first["metadata"]["conway.restarts"], "0");
    let started: u64 = first["metadata"]["conway.started_at_ms"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("conway.started_at_ms");
    let pid = up.instance_pid("a-1").expect("a-1 runs");
    let killed = Instant::now();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    conway_test_support::wait_for("a-1 back on another port", PATIENCE, || {
        up.instances("a")
            .first()
            .is_some_and(|i| i["state"] == "healthy" && i["port"] != before)
    });
    let took = killed.elapsed();
    // Its metadata counts the restart and says when the new process started.
    let again = up.instances("a")[0].clone();
    assert_eq!(again["metadata"]["conway.restarts"], "1", "{again}");
    let restarted: u64 = again["metadata"]["conway.started_at_ms"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("conway.started_at_ms");
    assert!(restarted > started, "{restarted} after {started}");
    up.wait_stderr("a-1 exited (signal: 9 (SIGKILL)); restarting in");
    let again = up.instance_pid("a-1").expect("a-1 runs again");
    assert_ne!(again, pid);
    // The issue's bar is 2 s; a loaded test machine gets some slack.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn scaling_adds_replicas_and_removes_the_newest() {
    let manifest = format!("{}{}", header(), service("a", &[], ""));
    let mut up = Up::start(&manifest, &[]);
    let scale = format!("{}/v1/services/a/scale", up.url("control_plane"));
    let (status, body) = http("POST", &scale, Some(r#"{"replicas": 3}"#));
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (answer["replicas"].as_u64(), answer["previous"].as_u64()),
        (Some(3), Some(1))
    );
    up.wait_healthy("a", &["a-1", "a-2", "a-3"]);
    let pids: Vec<u32> = ["a-1", "a-2", "a-3"]
        .iter()
        .map(|id| up.instance_pid(id).expect("running"))
        .collect();
    let (status, body) = http("POST", &scale, Some(r#"{"replicas": 1}"#));
    assert_eq!(status, 200, "{body}");
    conway_test_support::wait_for("a-2 and a-3 deregistered", PATIENCE, || {
        up.instances("a").len() == 1
    });
    assert_eq!(up.healthy("a"), ["a-1"]);
    wait_gone(&pids[1..], PATIENCE);
    assert!(crate::support::alive(pids[0]), "a-1 kept running");
    let (status, body) = http(
        "POST",
        &format!("{}/v1/services/nope/scale", up.url("control_plane")),
        Some(r#"{"replicas": 1}"#),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_found"), "{body}");
}
