//! Spreading requests over instances, and losing one of them under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use conway_test_support::upstream::server;

use crate::fixture::{System, count, eventually, external, served_by};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_gives_every_instance_traffic() {
    let servers = [
        server().named("a").run(),
        server().named("b").run(),
        server().named("c").run(),
    ];
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external("web", &servers.each_ref(), ""),
    ))
    .await;
    let served = system.spread("/", 300, 6).await;
    for name in ["a", "b", "c"] {
        let share = count(&served, name);
        assert!(share >= 30, "{name} served {share} of 300: {served:?}");
    }
    assert_eq!(served.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_takes_each_instance_in_turn() {
    let servers = [
        server().named("a").run(),
        server().named("b").run(),
        server().named("c").run(),
    ];
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external(
            "web",
            &servers.each_ref(),
            "[services.web.resilience]\nbalancer = \"round-robin\"",
        ),
    ))
    .await;
    let served = system.spread("/", 90, 1).await;
    for turn in served.chunks(3) {
        let mut turn = turn.to_vec();
        turn.sort();
        assert_eq!(turn, ["a", "b", "c"], "in turn: {served:?}");
    }
    for server in &servers {
        assert_eq!(server.requests(), 30, "{}", server.name());
    }
}

/// Kills one of three instances under a steady stream of requests: no client request
/// fails (connect errors and resets are retried on another instance), and once the
/// control plane has seen its health check fail, the gateway sends it nothing — checked
/// by a stand-in that takes over its port, failing its health checks, and must get no
/// request. Round robin keeps offering the dead instance its turn, where P2C would steer
/// away from it on latency alone; both must lose nothing.
async fn kill_one_of_three_under_load(balancer: &str) {
    let a = server().named("a").run();
    let b = server().named("b").run();
    let c = server().named("c").run();
    let system = Arc::new(
        System::start(&format!(
            "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
            external(
                "web",
                &[&a, &b, &c],
                &format!("[services.web.resilience]\nbalancer = \"{balancer}\""),
            ),
        ))
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = (0..4)
        .map(|_| {
            let (system, stop) = (system.clone(), stop.clone());
            tokio::spawn(async move {
                let mut served = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    served.push(served_by(&system.get("/").await));
                }
                served
            })
        })
        .collect();

    eventually("traffic on every instance", || async {
        a.requests() >= 20 && b.requests() >= 20 && c.requests() >= 20
    })
    .await;
    let port = b.port();
    b.stop();
    eventually("the control plane sees b fail", || async {
        system
            .states("web")
            .await
            .iter()
            .any(|(_, state)| state == "unhealthy")
    })
    .await;
    system.sync().await;
    let stand_in = server().named("stand-in").port(port).unhealthy().run();
    let (a_then, c_then) = (a.requests(), c.requests());
    eventually("100 more requests served", || async {
        a.requests() + c.requests() >= a_then + c_then + 100
    })
    .await;
    eventually("the control plane checks the stand-in", || async {
        stand_in.health_checks() > 0
    })
    .await;
    stop.store(true, Ordering::Relaxed);

    let mut served = Vec::new();
    for stream in streams {
        served.extend(stream.await.expect("a request stream"));
    }
    let failed: Vec<&String> = served
        .iter()
        .filter(|s| !["a", "b", "c"].contains(&s.as_str()))
        .collect();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert_eq!(
        stand_in.requests(),
        0,
        "requests reached the dead instance's port after its health check failed"
    );
    assert!(stand_in.health_checks() > 0, "the stand-in was checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_instances_fails_no_request_p2c() {
    kill_one_of_three_under_load("p2c-ewma").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_instances_fails_no_request_round_robin() {
    kill_one_of_three_under_load("round-robin").await;
}
