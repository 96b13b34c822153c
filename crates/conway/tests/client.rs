//! `conway-client` against the real `conway server`: its typed calls, and the mirror's
//! static stability — it keeps the last known state while the server is killed, and
//! resumes when the server is back, on the same port or another.

use std::path::Path;
use std::time::Duration;

use conway_client::{Client, ClientError, Mirror, MirrorOptions, MirrorSnapshot};
use conway_core::api::{
    InstanceState, RegisterInstance, ReportHealth, WatchKind, WatchLine, WatchOp,
};
use conway_core::manifest::{Abort, Faults, Service};
use conway_test_support::{ControlPlane, Process, temp_dir};
use futures_util::StreamExt;

/// The binary under test.
fn conway() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_conway"))
}

/// A loopback URL where nothing listens (a port bound, then released).
fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("http://{}", listener.local_addr().expect("bound"))
}

/// `conway server` on exactly `listen`, with its data in `data_dir`.
fn server_on(listen: &str, data_dir: &Path) -> Process {
    let data = data_dir.to_str().expect("a UTF-8 path");
    Process::start(
        conway(),
        &["server", "--listen", listen, "--data-dir", data],
    )
}

/// How long a condition may take to hold on a busy machine.
const PATIENCE: Duration = Duration::from_secs(30);

fn instance_at(port: u16) -> RegisterInstance {
    RegisterInstance {
        id: None,
        address: "127.0.0.1".to_owned(),
        port,
        version: Some("1.0.0".to_owned()),
        zone: None,
        metadata: Default::default(),
        ttl: Some(conway_core::units::Duration::from_secs(60)),
        checked_by: conway_core::api::CheckedBy::Registrant,
    }
}

/// Waits until `condition` holds of the mirror's snapshot and connection state, woken
/// by the mirror's own notifications; panics after [`PATIENCE`].
async fn wait_for(mirror: &Mirror, what: &str, condition: impl Fn(&MirrorSnapshot, bool) -> bool) {
    let mut changed = mirror.changed();
    let mut connection = mirror.connection();
    let wait = async {
        while !condition(&mirror.snapshot(), mirror.connected()) {
            tokio::select! {
                _ = changed.changed() => {}
                _ = connection.changed() => {}
            }
        }
    };
    if tokio::time::timeout(PATIENCE, wait).await.is_err() {
        panic!(
            "timed out waiting for {what}; connected: {}, snapshot: {:#?}",
            mirror.connected(),
            mirror.snapshot()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_in_its_own_types() {
    let dir = temp_dir();
    let plane = ControlPlane::start(conway(), dir.path(), &[]);
    let client = Client::new(&plane.url).expect("valid URL");

    let start = client.ready().await.expect("ready");
    let mut watch = client.watch(Some(start)).await.expect("watch from now");
    let written = client
        .put_service(
            "orders",
            &Service {
                version: Some("2.0.0".to_owned()),
                ..Service::default()
            },
        )
        .await
        .expect("put");
    assert!(written > start);
    assert_eq!(
        client
            .service("orders")
            .await
            .expect("get")
            .definition
            .version
            .as_deref(),
        Some("2.0.0")
    );

    let instance = client
        .register("orders", &instance_at(9100))
        .await
        .expect("register");
    assert_eq!(
        (instance.service.as_str(), instance.port, instance.state),
        ("orders", 9100, InstanceState::Starting)
    );
    assert_eq!(
        client.heartbeat(&instance.id).await.expect("heartbeat").id,
        instance.id
    );
    let healthy = ReportHealth {
        state: InstanceState::Healthy,
        reason: None,
    };
    assert_eq!(
        client
            .report_health(&instance.id, &healthy)
            .await
            .expect("report")
            .state,
        InstanceState::Healthy
    );
    assert_eq!(
        client
            .instances(Some("orders"), true)
            .await
            .expect("healthy ones")
            .len(),
        1
    );
    assert_eq!(client.instances(None, false).await.expect("all").len(), 1);
    assert_eq!(
        client.instance(&instance.id).await.expect("get").id,
        instance.id
    );

    let faults = Faults {
        abort: Some(Abort {
            percent: 5.0,
            status: 503,
        }),
        delay: None,
    };
    client
        .put_faults("orders", &faults)
        .await
        .expect("put faults");
    assert_eq!(
        client.config().await.expect("config").faults["orders"],
        faults
    );
    client.delete_faults("orders").await.expect("delete faults");
    assert!(client.config().await.expect("config").faults.is_empty());
    client.deregister(&instance.id).await.expect("deregister");

    let missing = client
        .deregister(&instance.id)
        .await
        .expect_err("already gone");
    assert_eq!(
        (missing.status(), missing.code()),
        (Some(404), Some("not_found"))
    );
    let unknown = client
        .register("payments", &instance_at(1))
        .await
        .expect_err("no such service");
    assert!(
        matches!(&unknown, ClientError::Api { status: 404, message, .. } if message.contains("payments")),
        "{unknown:?}"
    );

    // The watch saw every change, in order, after the revision it started from (a
    // heartbeat renews the lease in memory and is no change).
    let (put, delete) = (WatchOp::Put, WatchOp::Delete);
    let (service, instance, config) = (WatchKind::Service, WatchKind::Instance, WatchKind::Config);
    let expected = [
        (service, put),
        (instance, put),
        (instance, put),
        (config, put),
        (config, delete),
        (instance, delete),
    ];
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        match tokio::time::timeout(PATIENCE, watch.next())
            .await
            .expect("a line in time")
        {
            Some(Ok(WatchLine::Event(event))) => {
                assert!(event.revision > start);
                seen.push((event.kind, event.op));
            }
            Some(Ok(WatchLine::KeepAlive { .. })) => {}
            other => panic!("the watch ended: {other:?}"),
        }
    }
    assert_eq!(seen, expected);
    let future = client
        .watch(Some(written + 1_000_000))
        .await
        .expect_err("a revision from the future");
    assert_eq!(future.code(), Some("future_revision"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_serves_its_last_state_while_the_server_is_down_and_resumes_after() {
    let dir = temp_dir();
    let mut plane = ControlPlane::start(conway(), dir.path(), &[]);
    let client = Client::new(&plane.url).expect("valid URL");
    client
        .put_service("orders", &Service::default())
        .await
        .expect("define orders");
    let options = MirrorOptions {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
    };
    let mirror = Mirror::start_from(client.clone(), options, MirrorSnapshot::default());

    let first = client
        .register("orders", &instance_at(9001))
        .await
        .expect("register");
    // Caught up: the listing may have raced the registration, so wait for its revision.
    let registered_at = client.ready().await.expect("ready");
    wait_for(&mirror, "the first registration", |s, connected| {
        connected && s.instances.contains_key(&first.id) && s.revision >= registered_at
    })
    .await;
    assert!(mirror.snapshot().config.services.contains_key("orders"));

    // Killed: the mirror says so, and keeps serving what it knew.
    let before = mirror.snapshot();
    plane.process.kill();
    wait_for(&mirror, "the disconnection", |_, connected| !connected).await;
    assert_eq!(
        *mirror.snapshot(),
        *before,
        "the last known state survives the outage"
    );
    // Refused, or (on a pooled connection the kill cut) broken.
    let down = client.services().await.expect_err("down");
    assert!(
        matches!(
            down,
            ClientError::Unreachable { .. } | ClientError::Disconnected { .. }
        ),
        "{down:?}"
    );

    // Back on the same port and data: the mirror resumes and sees new changes.
    let address = plane.url.trim_start_matches("http://").to_owned();
    let mut restarted = server_on(&address, dir.path());
    assert_eq!(restarted.url("control_plane"), plane.url, "the same port");
    wait_for(&mirror, "the reconnection", |_, connected| connected).await;
    let second = client
        .register("orders", &instance_at(9002))
        .await
        .expect("register after restart");
    client.deregister(&first.id).await.expect("deregister");
    wait_for(&mirror, "the changes after the restart", |s, _| {
        s.instances.contains_key(&second.id) && !s.instances.contains_key(&first.id)
    })
    .await;
    let healthy = ReportHealth {
        state: InstanceState::Healthy,
        reason: None,
    };
    client
        .report_health(&second.id, &healthy)
        .await
        .expect("report health");
    wait_for(&mirror, "the health change", |s, _| {
        s.routable("orders").any(|i| i.id == second.id)
    })
    .await;

    // Moved to another port: pointed there, the mirror lists it and follows it.
    restarted.kill();
    wait_for(&mirror, "the second disconnection", |_, connected| {
        !connected
    })
    .await;
    let plane = ControlPlane::start(conway(), dir.path(), &[]);
    let moved = Client::new(&plane.url).expect("valid URL");
    mirror.set_client(moved.clone());
    wait_for(&mirror, "the new address", |_, connected| connected).await;
    assert_eq!(mirror.client().base_url(), plane.url);
    let third = moved
        .register("orders", &instance_at(9003))
        .await
        .expect("register at the new address");
    wait_for(&mirror, "the registration at the new address", |s, _| {
        s.instances.contains_key(&third.id) && s.instances.contains_key(&second.id)
    })
    .await;
    assert!(mirror.revision() >= before.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_started_before_the_server_connects_when_it_comes() {
    let url = nowhere();
    let options = MirrorOptions {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
    };
    let mirror = Mirror::start_from(
        Client::new(&url).expect("valid URL"),
        options,
        MirrorSnapshot::default(),
    );
    assert!(!mirror.connected() && !mirror.snapshot().listed);

    let dir = temp_dir();
    let _plane = server_on(url.trim_start_matches("http://"), dir.path());
    let client = Client::new(&url).expect("valid URL");
    client
        .put_service("payments", &Service::default())
        .await
        .expect("define payments");
    wait_for(&mirror, "the first listing", |s, connected| {
        connected && s.listed && s.config.services.contains_key("payments")
    })
    .await;
}

/// Listing then watching is only sound if `GET /v1/config` holds every change up to
/// the revision it reports: a watch from that revision would never replay one it lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_holds_every_change_up_to_its_revision() {
    let dir = temp_dir();
    let plane = ControlPlane::start(conway(), dir.path(), &[]);
    let client = Client::new(&plane.url).expect("valid URL");
    let written = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let writer = {
        let (client, written) = (client.clone(), written.clone());
        tokio::spawn(async move {
            for n in 0..200 {
                let name = format!("s{n}");
                let revision = client
                    .put_service(&name, &Service::default())
                    .await
                    .expect("put");
                written.lock().push((name, revision));
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let config = client.config().await.expect("config");
        reads += 1;
        for (name, revision) in written.lock().iter() {
            assert!(
                *revision > config.revision || config.services.contains_key(name),
                "the configuration at revision {} lacks {name}, written at {revision}",
                config.revision
            );
        }
    }
    writer.await.expect("the writer finished");
}
