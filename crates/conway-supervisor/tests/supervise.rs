//! The supervisor against a real control plane (in this process, on a loopback port)
//! and real processes: `conway_test_support::TEST_SERVICE`, and shell one-liners that misbehave.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use conway_client::Client;
use conway_core::api::{Instance, InstanceState};
use conway_supervisor::{Event, RestartPolicy, Supervisor, SupervisorOptions};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const SERVICE: &str = conway_test_support::TEST_SERVICE;

mod common;

use common::control_plane;

struct Harness {
    supervisor: Supervisor,
    events: mpsc::UnboundedReceiver<Event>,
    client: Client,
    _dir: tempfile::TempDir,
}

async fn start(toml: &str, tune: impl FnOnce(&mut SupervisorOptions)) -> Harness {
    let manifest = conway_core::parse(toml).expect("valid manifest").manifest;
    let client = control_plane(&manifest).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = SupervisorOptions::new(dir.path().join("data"));
    options.stop_grace = Duration::from_secs(2);
    tune(&mut options);
    let (supervisor, events) =
        Supervisor::new(&manifest, dir.path(), client.clone(), options).expect("supervisor");
    supervisor.start().await;
    Harness {
        supervisor,
        events,
        client,
        _dir: dir,
    }
}

/// Waits (up to 15 s) until `condition` holds of the registry's instances of `service`.
async fn wait_instances(
    client: &Client,
    service: &str,
    what: &str,
    condition: impl Fn(&[Instance]) -> bool,
) -> Vec<Instance> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let instances = client.instances(Some(service), false).await.expect("list");
        if condition(&instances) {
            return instances;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {instances:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn healthy_ids(instances: &[Instance]) -> Vec<String> {
    let mut ids: Vec<_> = instances
        .iter()
        .filter(|i| i.state == InstanceState::Healthy)
        .map(|i| i.id.clone())
        .collect();
    ids.sort();
    ids
}

/// A plain HTTP/1.0 GET; the body.
fn get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_get_their_environment_and_registration() {
    let toml = format!(
        r#"
[services.orders]
run = ["python3", "{SERVICE}", "--id=$CONWAY_INSTANCE", "${{PORT}}"]
version = "1.4.0"
env = {{ DATABASE_URL = "sqlite://$DATA_DIR/orders.db" }}
health = {{ http = "/health", interval = "200ms" }}
"#
    );
    let h = start(&toml, |o| o.mesh = Some("127.0.0.1:4140".parse().unwrap())).await;
    let instances = wait_instances(&h.client, "orders", "orders-1 healthy", |i| {
        healthy_ids(i) == ["orders-1"]
    })
    .await;
    let instance = &instances[0];
    assert_eq!(instance.version.as_deref(), Some("1.4.0"));
    assert_eq!(instance.checked_by, conway_core::api::CheckedBy::Registrant);
    assert_eq!(instance.ttl.get(), Duration::from_secs(10));
    let env: BTreeMap<String, String> =
        serde_json::from_str(&get(instance.port, "/env")).expect("env JSON");
    assert_eq!(env["PORT"], instance.port.to_string());
    assert_eq!(env["CONWAY_SERVICE"], "orders");
    assert_eq!(env["CONWAY_INSTANCE"], "orders-1");
    assert_eq!(env["CONWAY_URL"], h.client.base_url());
    assert_eq!(env["NO_PROXY"], "localhost,127.0.0.1,::1");
    assert_eq!(env["OTEL_SERVICE_NAME"], "orders");
    let data_dir = Path::new(&env["DATA_DIR"]);
    assert!(
        data_dir.is_dir() && data_dir.ends_with("services/orders"),
        "{data_dir:?}"
    );
    assert_eq!(
        env["DATABASE_URL"],
        format!("sqlite://{}/orders.db", env["DATA_DIR"])
    );
    // The proxy URL carries the token whose digest was registered.
    let proxy = &env["http_proxy"];
    assert_eq!(&env["HTTP_PROXY"], proxy);
    let token = proxy
        .strip_prefix("http://orders:")
        .and_then(|rest| rest.strip_suffix("@127.0.0.1:4140"))
        .expect("http://SERVICE:TOKEN@MESH");
    assert_eq!(token.len(), 32);
    assert_eq!(
        instance.metadata["conway.token_sha256"],
        conway_supervisor::token::digest(token)
    );
    let argv: Vec<String> = serde_json::from_str(&get(instance.port, "/argv")).expect("argv");
    assert_eq!(
        argv[1..],
        ["--id=orders-1".to_owned(), instance.port.to_string()]
    );
    let status = h.supervisor.status();
    assert_eq!(status.services["orders"].state(), "running");
    h.supervisor.shutdown().await;
    wait_instances(
        &h.client,
        "orders",
        "deregistration",
        <[Instance]>::is_empty,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_then_down_removes_the_newest() {
    let toml = format!(
        "[services.web]\nrun = [\"python3\", \"{SERVICE}\"]\nhealth = {{ tcp = true, interval = \"200ms\" }}\n"
    );
    let h = start(&toml, |_| {}).await;
    wait_instances(&h.client, "web", "web-1", |i| healthy_ids(i) == ["web-1"]).await;
    let scaled = h.supervisor.scale("web", 3).expect("scale up");
    assert_eq!((scaled.previous, scaled.replicas), (1, 3));
    wait_instances(&h.client, "web", "three healthy", |i| {
        healthy_ids(i) == ["web-1", "web-2", "web-3"]
    })
    .await;
    let pids: BTreeMap<u32, u32> = h.supervisor.status().services["web"]
        .instances
        .iter()
        .map(|(index, r)| (*index, r.pid.expect("running")))
        .collect();
    h.supervisor.scale("web", 1).expect("scale down");
    wait_instances(&h.client, "web", "only web-1", |i| {
        i.iter().map(|i| i.id.as_str()).collect::<Vec<_>>() == ["web-1"]
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pids[&2]) || alive(pids[&3]) {
        assert!(Instant::now() < deadline, "web-2 and web-3 still run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(alive(pids[&1]), "web-1 kept running");
    assert!(matches!(
        h.supervisor.scale("nope", 1),
        Err(conway_supervisor::ScaleError::Unknown(_))
    ));
    h.supervisor.shutdown().await;
    assert!(!alive(pids[&1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_is_reported_and_the_rest_keeps_running() {
    let toml = format!(
        r#"
[services.good]
run = ["python3", "{SERVICE}"]
health = {{ tcp = true, interval = "200ms" }}

[services.bad]
run = ["sh", "-c", "echo starting; echo boom >&2; exit 3"]
"#
    );
    let mut h = start(&toml, |o| {
        o.restart = RestartPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(30),
            crash_loop_exits: 3,
            ..RestartPolicy::default()
        }
    })
    .await;
    let report = timeout(Duration::from_secs(15), async {
        loop {
            match h.events.recv().await.expect("events") {
                event @ Event::CrashLoop { .. } => return event,
                Event::Exited {
                    instance, status, ..
                } => {
                    assert_eq!(
                        (instance.as_str(), status.as_str()),
                        ("bad-1", "exit status: 3")
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("a crash loop report");
    let Event::CrashLoop {
        instance,
        exits,
        last_status,
        last_lines,
        ..
    } = report
    else {
        unreachable!()
    };
    assert_eq!((instance.as_str(), exits), ("bad-1", 3));
    assert_eq!(last_status, "exit status: 3");
    let texts: Vec<_> = last_lines.iter().map(|l| l.text.as_str()).collect();
    assert!(
        texts.contains(&"boom") && texts.contains(&"starting"),
        "{texts:?}"
    );
    let status = h.supervisor.status();
    let bad = status.replica("bad", 1).expect("bad-1");
    assert!(bad.crash_loop);
    assert_eq!(bad.shown_state(), "crashloop");
    assert_eq!(bad.restarts, 3);
    // Not restarted at once any more: the next try waits for the longest backoff.
    assert!(
        timeout(Duration::from_millis(500), h.events.recv())
            .await
            .is_err(),
        "no restart right after the crash loop"
    );
    timeout(Duration::from_secs(15), h.supervisor.wait_settled())
        .await
        .expect("settled: good healthy, bad in a crash loop");
    assert_eq!(h.supervisor.status().services["good"].healthy(), 1);
    let logs = h.supervisor.logs("bad-1").expect("bad-1 logs");
    assert!(logs.iter().any(|l| l.text == "boom"));
    h.supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_comes_back_under_the_same_id() {
    let toml = format!(
        "[services.web]\nrun = [\"python3\", \"{SERVICE}\"]\nhealth = {{ tcp = true, interval = \"100ms\" }}\n"
    );
    let mut h = start(&toml, |_| {}).await;
    let first = wait_instances(&h.client, "web", "web-1", |i| healthy_ids(i) == ["web-1"]).await;
    let pid = h
        .supervisor
        .status()
        .replica("web", 1)
        .and_then(|r| r.pid)
        .expect("pid");
    let killed = Instant::now();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    let event = timeout(Duration::from_secs(10), h.events.recv())
        .await
        .expect("an event");
    match event {
        Some(Event::Exited {
            instance,
            status,
            crash_loop,
            ..
        }) => {
            assert_eq!(instance, "web-1");
            assert_eq!(status, "signal: 9 (SIGKILL)");
            assert!(!crash_loop);
        }
        other => panic!("{other:?}"),
    }
    let again = wait_instances(&h.client, "web", "web-1 back", |i| {
        healthy_ids(i) == ["web-1"] && i[0].port != first[0].port
    })
    .await;
    assert_eq!(again.len(), 1);
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "{:?}",
        killed.elapsed()
    );
    let replica = h
        .supervisor
        .status()
        .replica("web", 1)
        .cloned()
        .expect("web-1");
    assert_eq!(replica.restarts, 1);
    assert_ne!(replica.pid, Some(pid));
    h.supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_waits_for_its_dependency_to_be_healthy() {
    let toml = format!(
        r#"
[services.db]
run = ["python3", "{SERVICE}", "slow-start", "0.7"]
health = {{ tcp = true, interval = "100ms" }}

[services.api]
run = ["python3", "{SERVICE}"]
depends_on = ["db"]
health = {{ tcp = true, interval = "100ms" }}
"#
    );
    let h = start(&toml, |_| {}).await;
    let mut status = h.supervisor.subscribe();
    // api is started only once db is healthy: never before.
    let seen = timeout(
        Duration::from_secs(15),
        status.wait_for(|s| s.services["api"].started),
    )
    .await
    .expect("api starts")
    .expect("status")
    .clone();
    assert_eq!(
        seen.services["db"].healthy(),
        1,
        "db was healthy when api started"
    );
    drop(status);
    timeout(Duration::from_secs(15), h.supervisor.wait_settled())
        .await
        .expect("all healthy");
    h.supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_that_never_gets_healthy_is_named() {
    let toml = format!(
        r#"
[services.db]
run = ["sh", "-c", "exec sleep 30"]
health = {{ tcp = true, interval = "100ms" }}

[services.api]
run = ["python3", "{SERVICE}"]
depends_on = ["db"]
"#
    );
    let mut h = start(&toml, |o| o.dependency_timeout = Duration::from_millis(500)).await;
    let event = timeout(Duration::from_secs(10), h.events.recv())
        .await
        .expect("an event");
    match event {
        Some(Event::DependencyNotReady {
            service,
            dependency,
            waited,
            state,
        }) => {
            assert_eq!((service.as_str(), dependency.as_str()), ("api", "db"));
            assert!(waited >= Duration::from_millis(500), "{waited:?}");
            assert_eq!(state, "unhealthy");
        }
        other => panic!("{other:?}"),
    }
    wait_instances(&h.client, "api", "api-1 started anyway", |i| {
        healthy_ids(i) == ["api-1"]
    })
    .await;
    h.supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_is_capped_and_counted() {
    // 10 million short lines, then one 1 MiB line, then exit.
    let toml = r#"
[services.flood]
run = ["sh", "-c", "yes | head -c 20000000; head -c 1048576 /dev/zero | tr '\\0' x; echo; exit 0"]
"#;
    let mut h = start(toml, |o| {
        o.restart.initial_backoff = Duration::from_secs(30)
    })
    .await;
    let event = timeout(Duration::from_secs(30), h.events.recv())
        .await
        .expect("flood-1 exits");
    assert!(matches!(event, Some(Event::Exited { .. })), "{event:?}");
    let logs = h.supervisor.logs("flood-1").expect("logs");
    assert!(logs.len() <= conway_supervisor::LogOptions::default().ring_lines);
    // Lines pass at the sustained rate while the flood lasts, each after a report of
    // what was dropped before it; the ring keeps the last of them.
    let reports: Vec<u64> = logs
        .iter()
        .filter_map(|l| {
            l.text
                .strip_prefix("[conway] ")?
                .strip_suffix(" lines dropped (over 1000 lines/s)")?
                .parse()
                .ok()
        })
        .collect();
    assert!(!reports.is_empty(), "no drop report in {logs:#?}");
    let passed = logs.iter().filter(|l| l.text == "y").count();
    assert!(passed > 0);
    assert!(
        reports.iter().sum::<u64>() > passed as u64,
        "most lines are dropped: {reports:?}"
    );
    h.supervisor.shutdown().await;
}
