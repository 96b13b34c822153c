//! `conway deploy`: a rolling deploy gated on health, one that rolls itself back, a
//! canary promoted and one rolled back, and the requests refused.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use conway_test_support::wait_for;

use crate::support::{CONWAY, PATIENCE, Running, SERVICE, Up, header, http, service};

/// `conway ARGS --server CONTROL_PLANE`: exit code, stdout, stderr.
pub(crate) fn cli(up: &Running, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(CONWAY)
        .args(args)
        .args(["--server", &up.url("control_plane")])
        .env("CONWAY_LOG", "warn")
        .output()
        .expect("run conway");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A system of one service, `web`, version 1.0 with `replicas`, behind the gateway's `/`.
fn web(replicas: u32) -> String {
    format!(
        "{}[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}{}",
        header(),
        service(
            "web",
            &[],
            &format!("version = \"1.0\"\nreplicas = {replicas}")
        ),
        "[services.billing]\naddress = \"127.0.0.1:9\"\n",
    )
}

/// Instance id to version, of `service`'s instances in the registry.
fn versions(up: &Running, service: &str) -> BTreeMap<String, String> {
    up.instances(service)
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap_or_default().to_owned(),
                i["version"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The run-time split of `service` in `GET /v1/config`.
fn split(up: &Running, service: &str) -> Value {
    let (status, body) = http(
        "GET",
        &format!("{}/v1/config", up.url("control_plane")),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let config: Value = serde_json::from_str(&body).expect("config");
    config["splits"][service].clone()
}

/// Sends `n` requests through the gateway; how many each version answered.
fn served_by_version(up: &Running, n: usize) -> BTreeMap<String, usize> {
    let versions = versions(up, "web");
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let (status, body) = http("GET", &format!("{}/", up.url("gateway")), None);
        assert_eq!(status, 200, "{body}");
        let version = versions
            .get(body.trim())
            .cloned()
            .unwrap_or_else(|| format!("unknown instance {}", body.trim()));
        *counts.entry(version).or_default() += 1;
    }
    counts
}

/// `GET http://web/` through the mesh listener, as a service's `http_proxy` sends it:
/// the instance that answered.
fn through_mesh(up: &Running) -> String {
    use std::io::{Read, Write};
    let mesh = up.url("mesh");
    let address = mesh.strip_prefix("http://").expect("http URL");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the mesh");
    write!(
        stream,
        "GET http://web/ HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    body.trim().to_owned()
}

/// Requests through the gateway, one after the other, until stopped: how many were
/// sent, and the status and body of each that failed.
struct Load {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<(u16, String)>)>,
}

impl Load {
    fn start(up: &Running) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let gateway = up.url("gateway");
        let running = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut sent, mut failed) = (0, Vec::new());
            while !running.load(Ordering::Relaxed) {
                let (status, body) = http("GET", &format!("{gateway}/"), None);
                sent += 1;
                if status != 200 {
                    failed.push((status, body));
                }
            }
            (sent, failed)
        });
        Self { stop, thread }
    }

    fn finish(self) -> (usize, Vec<(u16, String)>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("load thread")
    }
}

fn post(up: &Running, path: &str, body: &str) -> (u16, Value) {
    let (status, text) = http(
        "POST",
        &format!("{}{path}", up.url("control_plane")),
        Some(body),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn a_rolling_deploy_replaces_every_replica_without_failing_a_request() {
    let up = Up::start(&web(2), &[]);
    assert_eq!(
        versions(&up, "web"),
        BTreeMap::from([
            ("web-1".into(), "1.0".into()),
            ("web-2".into(), "1.0".into())
        ])
    );
    // Requests all along the deploy: not one may fail.
    let load = Load::start(&up);
    let started = Instant::now();
    let (code, stdout, stderr) = cli(&up, &["deploy", "web", "--version", "2.0"]);
    let took = started.elapsed();
    let (sent, failed) = load.finish();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("web runs 2.0"), "{stdout}");
    eprintln!(
        "rolling deploy of 2 replicas: {took:?}; {sent} requests, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:?}\n{stderr}");
    assert!(sent > 0);
    // Each new replica was healthy before an old one went: the steps say so, in order.
    let steps: Vec<&str> = stderr.lines().map(str::trim).collect();
    let started_3 = steps
        .iter()
        .position(|s| s.starts_with("started web-3 (2.0)"));
    let healthy_3 = steps
        .iter()
        .position(|s| s.starts_with("web-3 is healthy; web-1 deregistered"));
    assert!(started_3.is_some() && started_3 < healthy_3, "{stderr}");
    // Every replica runs 2.0, under new ids, and answers through the gateway.
    let now = versions(&up, "web");
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.values().all(|v| v == "2.0"), "{now:?}");
    assert!(!now.contains_key("web-1") && !now.contains_key("web-2"));
    up.wait_healthy("web", &now.keys().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        served_by_version(&up, 20),
        BTreeMap::from([("2.0".into(), 20)])
    );
    // The deploy, as the API keeps it.
    let (status, body) = http(
        "GET",
        &format!("{}/v1/services/web/deploy", up.url("control_plane")),
        None,
    );
    assert_eq!(status, 200);
    let deployment: Value = serde_json::from_str(&body).expect("deployment");
    assert_eq!(deployment["state"], "done");
    assert_eq!(deployment["from"], "1.0");
    assert_eq!(deployment["to"], "2.0");
    // Scaling after a deploy starts the deployed version, and removes the
    // highest-numbered replicas first, whatever numbers the deploy left.
    let scale = |n: u32| {
        let (status, body) = post(
            &up,
            "/v1/services/web/scale",
            &format!("{{\"replicas\": {n}}}"),
        );
        assert_eq!(status, 200, "{body}");
    };
    scale(3);
    wait_for("three healthy replicas", PATIENCE, || {
        up.healthy("web").len() == 3
    });
    let three = versions(&up, "web");
    assert!(three.values().all(|v| v == "2.0"), "{three:?}");
    scale(1);
    let lowest = three
        .keys()
        .min_by_key(|id| {
            id.trim_start_matches("web-")
                .parse::<u32>()
                .unwrap_or(u32::MAX)
        })
        .cloned()
        .expect("an instance");
    wait_for("one replica left", PATIENCE, || {
        versions(&up, "web").into_keys().collect::<Vec<_>>() == [lowest.clone()]
    });
}

#[test]
fn a_rolling_deploy_steers_a_declared_split_so_no_request_fails() {
    // The manifest's split names 1.0 only: a plain deploy to 2.0 must not leave the
    // gateway drawing a version with no replica.
    let manifest = web(2).replace(
        "version = \"1.0\"",
        "version = \"1.0\"\nsplit = { \"1.0\" = \"100%\" }",
    );
    let up = Up::start(&manifest, &[]);
    let load = Load::start(&up);
    let (code, stdout, stderr) = cli(&up, &["deploy", "web", "--version", "2.0"]);
    let (_, failed) = load.finish();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(failed.is_empty(), "{failed:?}\n{stderr}");
    assert!(stderr.contains("the manifest declares a split"), "{stderr}");
    assert_eq!(split(&up, "web"), serde_json::json!({"2.0": "100%"}));
    assert_eq!(
        served_by_version(&up, 20),
        BTreeMap::from([("2.0".into(), 20)])
    );
    // The manifest, brought up to date, replaces the deploy's split.
    let path = crate::support::in_dir(&up, "updated.toml");
    std::fs::write(
        &path,
        manifest
            .replace("version = \"1.0\"", "version = \"2.0\"")
            .replace("\"1.0\" = \"100%\"", "\"2.0\" = \"100%\""),
    )
    .expect("write");
    let (code, stdout, stderr) = cli(&up, &["apply", "-f", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(split(&up, "web"), Value::Null, "{stdout}");
    assert_eq!(
        served_by_version(&up, 20),
        BTreeMap::from([("2.0".into(), 20)])
    );
}

#[test]
fn a_deploy_whose_new_replica_never_gets_healthy_rolls_back_and_says_why() {
    let mut up = Up::start(&web(2), &[]);
    let before = (up.instance_pid("web-1"), up.instance_pid("web-2"));
    let (code, stdout, stderr) = cli(
        &up,
        &[
            "deploy",
            "web",
            "--version",
            "2.0",
            "--run",
            r#"["sh", "-c", "echo cannot open the database >&2; exit 3"]"#,
        ],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("the deploy of web 2.0 was rolled back to 1.0"),
        "{stderr}"
    );
    assert!(stderr.contains("exit status: 3"), "{stderr}");
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    // The old replicas never stopped, and are all there is.
    assert_eq!((up.instance_pid("web-1"), up.instance_pid("web-2")), before);
    up.wait_healthy("web", &["web-1", "web-2"]);
    assert!(versions(&up, "web").values().all(|v| v == "1.0"));
    // One that never listens: rolled back when its health timeout is up.
    let slow = format!(r#"["python3", "{SERVICE}", "slow-start", "60"]"#);
    let (code, stdout, stderr) = cli(
        &up,
        &[
            "deploy",
            "web",
            "--version",
            "3.0",
            "--run",
            &slow,
            "--health-timeout",
            "1s",
        ],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("did not become healthy within 1s"),
        "{stderr}"
    );
    assert_eq!((up.instance_pid("web-1"), up.instance_pid("web-2")), before);
    let (status, body) = http(
        "GET",
        &format!("{}/v1/events", up.url("control_plane")),
        None,
    );
    assert_eq!(status, 200);
    let events: Vec<Value> = serde_json::from_str(&body).expect("events");
    let last = events.last().expect("an event");
    assert_eq!(last["kind"], "deploy.rolled_back");
    assert_eq!(last["service"], "web");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("did not become healthy within 1s"),
        "{last}"
    );
}

#[test]
fn a_canary_takes_its_share_at_the_gateway_then_is_promoted() {
    let up = Up::start(&web(2), &[]);
    let (code, stdout, stderr) = cli(
        &up,
        &["deploy", "web", "--version", "2.0", "--canary", "50"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("canary: 2.0 takes 50% of web's requests"),
        "{stdout}"
    );
    assert_eq!(
        split(&up, "web"),
        serde_json::json!({"1.0": "50%", "2.0": "50%"})
    );
    // The old replicas stay; one canary replica runs beside them.
    let running = versions(&up, "web");
    assert_eq!(running.len(), 3, "{running:?}");
    assert_eq!(running["web-1"], "1.0");
    assert_eq!(running["web-2"], "1.0");
    assert_eq!(running.values().filter(|v| *v == "2.0").count(), 1);
    up.wait_healthy(
        "web",
        &running.keys().map(String::as_str).collect::<Vec<_>>(),
    );
    // Half the requests each way (the gateway draws per request): 200 draws land
    // between 60 and 140 with overwhelming probability.
    let counts = served_by_version(&up, 200);
    assert_eq!(counts.values().sum::<usize>(), 200, "{counts:?}");
    for version in ["1.0", "2.0"] {
        let n = counts.get(version).copied().unwrap_or(0);
        assert!((60..=140).contains(&n), "{counts:?}");
    }

    // The mesh applies the same split to calls between services.
    let versions_now = versions(&up, "web");
    let mut through = BTreeMap::<String, usize>::new();
    for _ in 0..200 {
        let instance = through_mesh(&up);
        *through
            .entry(versions_now.get(&instance).cloned().unwrap_or(instance))
            .or_default() += 1;
    }
    for version in ["1.0", "2.0"] {
        let n = through.get(version).copied().unwrap_or(0);
        assert!((60..=140).contains(&n), "through the mesh: {through:?}");
    }

    let (code, stdout, stderr) = cli(&up, &["deploy", "web", "--promote"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("web runs 2.0"), "{stdout}");
    assert_eq!(split(&up, "web"), Value::Null, "the split is cleared");
    let running = versions(&up, "web");
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(running.values().all(|v| v == "2.0"), "{running:?}");
    assert_eq!(
        served_by_version(&up, 20),
        BTreeMap::from([("2.0".into(), 20)])
    );
    // Nothing left to promote.
    let (code, _, stderr) = cli(&up, &["deploy", "web", "--promote"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no canary of web in progress to promote"),
        "{stderr}"
    );
}

#[test]
fn a_canary_rolled_back_leaves_the_old_replicas_untouched() {
    let mut up = Up::start(&web(2), &[]);
    let before = (up.instance_pid("web-1"), up.instance_pid("web-2"));
    let (code, stdout, stderr) = cli(
        &up,
        &["deploy", "web", "--version", "2.0", "--canary", "10"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        split(&up, "web"),
        serde_json::json!({"1.0": "90%", "2.0": "10%"})
    );
    let canary: Vec<String> = versions(&up, "web")
        .into_iter()
        .filter(|(_, v)| v == "2.0")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(canary.len(), 1, "{canary:?}");
    let canary_pid = up.instance_pid(&canary[0]).expect("the canary runs");

    let (code, stdout, stderr) = cli(&up, &["deploy", "web", "--rollback"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("web rolled back to 1.0"), "{stdout}");
    assert_eq!(split(&up, "web"), Value::Null, "the split is cleared");
    assert_eq!(
        versions(&up, "web"),
        BTreeMap::from([
            ("web-1".into(), "1.0".into()),
            ("web-2".into(), "1.0".into())
        ])
    );
    crate::support::wait_gone(&[canary_pid], Duration::from_secs(15));
    assert_eq!(
        (up.instance_pid("web-1"), up.instance_pid("web-2")),
        before,
        "the old replicas were not restarted"
    );
    assert_eq!(
        served_by_version(&up, 20),
        BTreeMap::from([("1.0".into(), 20)])
    );
}

#[test]
fn deploy_requests_that_cannot_be_are_refused_and_change_nothing() {
    let manifest = format!("{}{}", web(1), service("spare", &[], "version = \"1.0\""));
    let up = Up::start(&manifest, &[]);
    let refused = |path: &str, body: &str, status: u16, code: &str, says: &str| {
        let (got, answer) = post(&up, path, body);
        assert_eq!(got, status, "{path} {body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{message}");
    };
    let deploy = "/v1/services/web/deploy";
    refused(
        "/v1/services/nope/deploy",
        r#"{"version": "2"}"#,
        404,
        "not_found",
        "no service named \"nope\"",
    );
    refused(
        "/v1/services/billing/deploy",
        r#"{"version": "2"}"#,
        409,
        "conflict",
        "no `run` command",
    );
    refused(
        deploy,
        r#"{"version": "1.0"}"#,
        409,
        "conflict",
        "web already runs version 1.0",
    );
    refused(
        deploy,
        r#"{"version": "2", "canary": 0}"#,
        400,
        "invalid_request",
        "from 1 to 99 percent, not 0",
    );
    refused(
        deploy,
        r#"{"version": "2", "canary": 100}"#,
        400,
        "invalid_request",
        "not 100",
    );
    refused(
        deploy,
        r#"{"promote": true}"#,
        409,
        "conflict",
        "no canary of web in progress",
    );
    refused(
        deploy,
        r#"{"rollback": true}"#,
        409,
        "conflict",
        "no canary of web in progress",
    );
    refused(
        deploy,
        r#"{}"#,
        400,
        "invalid_request",
        "needs the new version",
    );
    refused(
        deploy,
        r#"{"version": "2", "replicas": 3}"#,
        400,
        "invalid_request",
        "unknown field",
    );
    // A canary needs replicas of the old version to share requests with.
    let (status, body) = post(&up, "/v1/services/spare/scale", r#"{"replicas": 0}"#);
    assert_eq!(status, 200, "{body}");
    refused(
        "/v1/services/spare/deploy",
        r#"{"version": "2", "canary": 10}"#,
        409,
        "conflict",
        "no replica for a canary",
    );
    // A canary in progress: another deploy must wait for its verdict.
    let (status, answer) = post(&up, deploy, r#"{"version": "2.0", "canary": 50}"#);
    assert_eq!(status, 202, "{answer}");
    refused(
        deploy,
        r#"{"version": "3.0"}"#,
        409,
        "conflict",
        "in progress",
    );
    // The CLI says the same, and exits 1.
    let (code, _, stderr) = cli(&up, &["deploy", "web", "--version", "3.0"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("in progress"), "{stderr}");
    let (code, _, stderr) = cli(&up, &["deploy", "web"]);
    assert_eq!(code, 2, "no version is a usage error");
    assert!(stderr.contains("needs --version"), "{stderr}");
    let (code, _, stderr) = cli(&up, &["deploy", "web", "--version", "4", "--canary", "101"]);
    assert_eq!(code, 1, "{stderr}");
    // Nothing was lost: web-1 still serves at 1.0.
    assert_eq!(versions(&up, "web")["web-1"], "1.0");
}
