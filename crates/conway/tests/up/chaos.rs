//! `conway chaos kill`: a job in `conway up` that goes on after the CLI returns, kills
//! with SIGKILL, is recorded as events, and ends on `conway chaos stop`.

use std::time::{Duration, Instant};

use conway_test_support::wait_for;
use serde_json::Value;

use crate::deploy::cli;
use crate::support::{PATIENCE, Running, Up, alive, header, http, service};

fn kills(up: &Running) -> Vec<Value> {
    let (status, body) = http(
        "GET",
        &format!("{}/v1/events", up.url("control_plane")),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let events: Vec<Value> = serde_json::from_str(&body).expect("events");
    events
        .into_iter()
        .filter(|e| e["kind"] == "chaos.kill")
        .collect()
}

#[test]
fn a_chaos_job_kills_on_schedule_after_the_cli_returns_until_stopped() {
    let manifest = format!(
        "{}{}{}",
        header(),
        service("web", &[], "replicas = 2"),
        service("idle", &[], ""),
    );
    let mut up = Up::start(&manifest, &[]);
    let (web1, web2) = (
        up.instance_pid("web-1").expect("web-1"),
        up.instance_pid("web-2").expect("web-2"),
    );
    let started = Instant::now();
    let (code, stdout, stderr) = cli(&up, &["chaos", "kill", "web", "--every", "300ms"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("chaos-1: web (a random instance)"),
        "{stdout}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the CLI returns while the job runs"
    );
    // The job goes on without the CLI: three kills or more, each recorded.
    wait_for("three chaos kills", PATIENCE, || kills(&up).len() >= 3);
    for event in kills(&up) {
        assert_eq!(event["service"], "web", "{event}");
        assert!(
            ["web-1", "web-2"].contains(&event["instance"].as_str().unwrap_or_default()),
            "{event}"
        );
        assert!(event["time_us"].as_i64().unwrap_or_default() > 1_700_000_000_000_000);
    }
    // SIGKILL for real: at least one of the first processes is gone.
    assert!(!alive(web1) || !alive(web2));
    let (code, stdout, _) = cli(&up, &["chaos", "jobs", "--output", "json"]);
    assert_eq!(code, 0);
    let jobs: Vec<Value> = serde_json::from_str(&stdout).expect("jobs");
    assert_eq!(jobs[0]["id"], "chaos-1");
    assert_eq!(jobs[0]["state"], "running");

    let (code, stdout, stderr) = cli(&up, &["chaos", "stop"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("stopped chaos-1 after"), "{stdout}");
    let after_stop = kills(&up).len();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(kills(&up).len(), after_stop, "no kill after the stop");
    // The supervisor brings the killed instances back.
    up.wait_healthy("web", &["web-1", "web-2"]);

    // One named instance, once.
    let before = up.instance_pid("web-2").expect("web-2 runs");
    let (code, stdout, stderr) = cli(&up, &["chaos", "kill", "web", "--instance", "web-2"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let last = kills(&up).pop().expect("a kill");
    assert_eq!(last["instance"], "web-2");
    wait_for("web-2 restarted", PATIENCE, || {
        up.instance_pid("web-2").is_some_and(|pid| pid != before)
    });

    // A job with a deadline ends by itself.
    let (code, _, stderr) = cli(
        &up,
        &["chaos", "kill", "web", "--every", "200ms", "--for", "1s"],
    );
    assert_eq!(code, 0, "{stderr}");
    wait_for("chaos-3 finished", PATIENCE, || {
        let (_, stdout, _) = cli(&up, &["chaos", "jobs", "--output", "json"]);
        let jobs: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_default();
        jobs.get(2).is_some_and(|j| j["state"] == "finished")
    });

    // What cannot be killed is refused.
    let (code, _, stderr) = cli(&up, &["chaos", "kill", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no service named \"nope\""), "{stderr}");
    let (code, _, stderr) = cli(&up, &["chaos", "kill", "web", "--instance", "web-9"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no instance \"web-9\""), "{stderr}");
    let (status, body) = http(
        "POST",
        &format!("{}/v1/services/idle/scale", up.url("control_plane")),
        Some(r#"{"replicas": 0}"#),
    );
    assert_eq!(status, 200, "{body}");
    wait_for("idle has no instance", PATIENCE, || {
        up.instances("idle").is_empty()
    });
    wait_for("idle's process gone", PATIENCE, || {
        cli(&up, &["chaos", "kill", "idle"])
            .2
            .contains("idle has no running instance to kill")
    });
    let (code, _, stderr) = cli(&up, &["chaos", "stop", "chaos-99"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no chaos job \"chaos-99\""), "{stderr}");
}
