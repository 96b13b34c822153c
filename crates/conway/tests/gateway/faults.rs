//! Fault injection: declared on a route, and set on a service at run time.
//!
//! A run-time change is waited for by its effect: the gateway's table revision moves
//! before the configuration it stands for has been read again, so it proves nothing
//! about faults.

use std::time::{Duration, Instant};

use conway_test_support::upstream::server;
use reqwest::Method;
use serde_json::json;

use crate::fixture::{System, count, error_code, eventually, external};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_answer_for_the_instance_all_or_a_share() {
    let (up, probe) = (server().named("up").run(), server().named("probe").run());
    let system = System::start(&format!(
        r#"
[[gateway.routes]]
path = "/teapot"
service = "web"
faults = {{ abort = {{ percent = 100, status = 418 }} }}

[[gateway.routes]]
path = "/probe"
service = "probe"

[[gateway.routes]]
path = "/"
service = "web"

{}{}"#,
        external("web", &[&up], ""),
        external("probe", &[&probe], ""),
    ))
    .await;

    for _ in 0..10 {
        let response = system.get("/teapot").await;
        assert_eq!(response.status(), 418);
        assert_eq!(error_code(response).await, "fault_injected");
    }
    assert_eq!(up.requests(), 0, "an aborted request never goes upstream");

    let faults = json!({ "abort": { "percent": 30, "status": 503 } });
    let status = system
        .plane_send(Method::PUT, "/v1/services/web/faults", faults)
        .await;
    assert_eq!(status, 200, "PUT faults");
    eventually("the first abort", || async {
        system.get("/").await.status() == 503
    })
    .await;
    let before = up.requests() as usize;
    // 600 draws at 30%: mean 180, standard deviation 11.2; ±5 deviations.
    let served = system.spread("/", 600, 20).await;
    let aborted = count(&served, "503");
    assert!((124..=236).contains(&aborted), "{aborted} of 600 aborted");
    assert_eq!(count(&served, "up") + aborted, 600);
    assert_eq!(up.requests() as usize - before, 600 - aborted);

    let status = system
        .plane_send(Method::DELETE, "/v1/services/web/faults", json!({}))
        .await;
    assert!((200..300).contains(&status), "DELETE faults: {status}");
    // A barrier: once a later fault is in force, so is the removal.
    let faults = json!({ "abort": { "percent": 100, "status": 418 } });
    system
        .plane_send(Method::PUT, "/v1/services/probe/faults", faults)
        .await;
    eventually("the probe's fault", || async {
        system.get("/probe").await.status() == 418
    })
    .await;
    let served = system.spread("/", 50, 10).await;
    assert_eq!(count(&served, "up"), 50, "{served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_hold_requests_but_never_past_the_deadline() {
    let up = server().named("up").run();
    let system = System::start(&format!(
        r#"
[[gateway.routes]]
path = "/held"
service = "web"
faults = {{ delay = {{ percent = 100, duration = "300ms" }} }}

[[gateway.routes]]
path = "/rushed"
service = "web"
timeout = "100ms"
faults = {{ delay = {{ percent = 100, duration = "2s" }} }}

[[gateway.routes]]
path = "/"
service = "web"

{}"#,
        external("web", &[&up], ""),
    ))
    .await;
    let timed = |path: &'static str| {
        let system = &system;
        async move {
            let started = Instant::now();
            let status = system.get(path).await.status().as_u16();
            (status, started.elapsed())
        }
    };

    let (status, took) = timed("/held").await;
    assert_eq!(status, 200);
    assert!(took >= Duration::from_millis(300), "held {took:?}");
    let (status, took) = timed("/rushed").await;
    assert_eq!(status, 504);
    assert!(
        took < Duration::from_millis(1500),
        "held {took:?} past the deadline"
    );
    assert_eq!(up.requests(), 1, "the rushed request never went upstream");

    let (status, took) = timed("/").await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(250), "undelayed took {took:?}");
    let faults = json!({ "delay": { "percent": 100, "duration": "250ms" } });
    let status = system
        .plane_send(Method::PUT, "/v1/services/web/faults", faults)
        .await;
    assert_eq!(status, 200, "PUT faults");
    eventually("the run-time delay", || async {
        timed("/").await.1 >= Duration::from_millis(250)
    })
    .await;
    for _ in 0..3 {
        let (status, took) = timed("/").await;
        assert_eq!(status, 200);
        assert!(
            took >= Duration::from_millis(250),
            "run-time delay: {took:?}"
        );
    }
}
