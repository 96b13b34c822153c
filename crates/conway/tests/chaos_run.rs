//! `conway chaos run EXPERIMENT.toml` against a real `conway up`: a hypothesis that
//! holds through a delay, one that an abort breaks (the method stops, the rollback
//! still runs), SIGTERM in the middle of a method, and a malformed file.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conway_test_support::up::{PATIENCE, Running, Up, header, http, service};
use conway_test_support::wait_for;
use serde_json::Value;

const CONWAY: &str = env!("CARGO_BIN_EXE_conway");

/// `web`, two replicas of the test service, behind the gateway's `/`.
fn web() -> Running {
    let manifest = format!(
        "{}[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        header(),
        service("web", &[], "replicas = 2"),
    );
    let up = Up::start(&manifest, &[]);
    up.wait_healthy("web", &["web-1", "web-2"]);
    up
}

/// `conway chaos run FILE ARGS --server CONTROL_PLANE`: exit code, stdout, stderr.
fn chaos_run(server: Option<&str>, file: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(CONWAY);
    command.args(["chaos", "run"]).arg(file).args(args);
    if let Some(server) = server {
        command.args(["--server", server]);
    }
    let output = command
        .env("CONWAY_LOG", "warn")
        .output()
        .expect("run conway chaos run");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The run-time faults in force (`GET /v1/config`).
fn run_time_faults(up: &Running) -> Value {
    let (status, body) = http(
        "GET",
        &format!("{}/v1/config", up.url("control_plane")),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let config: Value = serde_json::from_str(&body).expect("config");
    config["faults"].clone()
}

fn write(up: &Running, name: &str, text: &str) -> std::path::PathBuf {
    let path = up.dir.path().join(name);
    std::fs::write(&path, text).expect("write the experiment");
    path
}

/// The milliseconds of an HTTP probe's observation, `200 in 312ms`.
fn millis(observed: &str) -> Option<u64> {
    observed
        .strip_prefix("200 in ")?
        .strip_suffix("ms")?
        .parse()
        .ok()
}

#[test]
fn a_hypothesis_that_holds_through_a_delay_exits_0_and_the_fault_is_gone() {
    let up = web();
    let experiment = write(
        &up,
        "slow-web.toml",
        &format!(
            r#"title = "web answers while slow"
[steady_state]
interval = "200ms"
[[steady_state.probes]]
name = "web answers"
http = {{ url = "{gateway}/", status = 200, timeout = "2s" }}
[[steady_state.probes]]
name = "web error rate"
service = "web"
max_error_rate = "1%"
max_p99 = "5s"
[[method]]
action = "delay"
service = "web"
percent = 100
duration = "300ms"
for = "2s"
[rollback]
recover_within = "10s"
"#,
            gateway = up.url("gateway")
        ),
    );
    let (code, stdout, stderr) = chaos_run(
        Some(&up.url("control_plane")),
        &experiment,
        &["--output", "json"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("the report");
    assert_eq!(report["verdict"], "held", "{report:#}");
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| p["phase"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(phases, ["before", "during", "after"]);
    // The delay was in force: the HTTP probe saw it during the method.
    let during = &report["phases"][1]["checks"];
    let slowest = during
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| millis(c["results"][0]["observed"].as_str().unwrap_or_default()))
        .max()
        .expect("HTTP results during the method");
    assert!(slowest >= 300, "slowest answer {slowest}ms: {during:#}");
    assert!(
        report["method"][0]["what"]
            .as_str()
            .is_some_and(|w| w.starts_with("delay web 100% by 300ms for 2s"))
    );
    // And it is gone.
    assert_eq!(run_time_faults(&up), serde_json::json!({}), "{stderr}");
}

#[test]
fn an_abort_that_breaks_the_hypothesis_exits_1_naming_the_probe_and_is_rolled_back() {
    let up = web();
    let experiment = write(
        &up,
        "broken-web.toml",
        &format!(
            r#"title = "web survives an abort"
[steady_state]
interval = "200ms"
[[steady_state.probes]]
name = "web answers"
http = {{ url = "{gateway}/", status = 200 }}
[[method]]
action = "abort"
service = "web"
percent = 100
status = 503
for = "60s"
"#,
            gateway = up.url("gateway")
        ),
    );
    let started = Instant::now();
    let (code, stdout, stderr) = chaos_run(Some(&up.url("control_plane")), &experiment, &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the hypothesis deviated during the method at +")
            && stdout.contains("probe \"web answers\" expected 200 within 1s, observed 503"),
        "{stdout}"
    );
    // The method stopped at the deviation, long before its 60 s.
    assert!(started.elapsed() < Duration::from_secs(30), "{stdout}");
    assert!(stdout.contains("faults of web removed"), "{stdout}");
    assert_eq!(run_time_faults(&up), serde_json::json!({}), "{stdout}");
    let (status, _) = http("GET", &format!("{}/", up.url("gateway")), None);
    assert_eq!(status, 200, "the gateway answers again");
}

#[test]
fn sigterm_during_the_method_still_rolls_back() {
    let up = web();
    let experiment = write(
        &up,
        "long.toml",
        &format!(
            r#"title = "web stays up under a long delay"
[steady_state]
[[steady_state.probes]]
name = "web answers"
http = {{ url = "{gateway}/", status = 200 }}
[[method]]
action = "delay"
service = "web"
percent = 10
duration = "10ms"
[[method]]
action = "wait"
for = "5m"
"#,
            gateway = up.url("gateway")
        ),
    );
    /// Killed whatever happens below, so that no run outlives the test.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(
        Command::new(CONWAY)
            .args(["chaos", "run"])
            .arg(&experiment)
            .args(["--server", &up.url("control_plane")])
            .env("CONWAY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start conway chaos run"),
    );
    wait_for("the delay in force", PATIENCE, || {
        run_time_faults(&up)["web"]["delay"]["duration"] == "10ms"
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut code = None;
    wait_for("conway chaos run to exit", PATIENCE, || {
        code = child.0.try_wait().expect("wait").map(|s| s.code());
        code.is_some()
    });
    let mut stdout = String::new();
    child
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    let code = code.flatten();
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("interrupted by a signal; rolled back"),
        "{stdout}"
    );
    assert_eq!(run_time_faults(&up), serde_json::json!({}), "{stdout}");
}

#[test]
fn a_malformed_experiment_exits_2_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "title = \"t\"\n[steady_state]\n[[steady_state.probes]]\nname = \"p\"\nhttp = { url = \"http://127.0.0.1:9/\", stauts = 200 }\n",
    )
    .expect("write");
    // No control plane is needed to refuse it: nothing answers at this address.
    let (code, stdout, stderr) = chaos_run(Some("http://127.0.0.1:9"), &file, &[]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let expected = format!("{}:5:39: unknown field `stauts`", file.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}
