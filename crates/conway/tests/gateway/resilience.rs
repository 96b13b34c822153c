//! The resilience policies between the gateway and a service: deadlines, retries, the
//! circuit breaker, outlier ejection, the concurrency limit.

use std::time::{Duration, Instant};

use conway_test_support::upstream::{Reply, server};

use crate::fixture::{System, count, dead_port, error_code, eventually, external};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_instance_gets_a_504_at_the_deadline_and_sees_what_is_left() {
    let slow = server()
        .named("slow")
        .route("/slow", Reply::text("late").delay(Duration::from_secs(3)))
        .run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\ntimeout = \"400ms\"\n\n{}",
        external("web", &[&slow], ""),
    ))
    .await;
    let deadline_seen = |slow: &conway_test_support::upstream::Upstream| -> u64 {
        let last = slow.last().expect("a request upstream");
        last.header("x-conway-deadline-ms")
            .expect("the deadline goes upstream")
            .parse()
            .expect("milliseconds")
    };

    let response = system.get("/fast").await;
    assert_eq!(response.status(), 200);
    let left = deadline_seen(&slow);
    assert!((100..=400).contains(&left), "fast: {left} ms left");

    let started = Instant::now();
    let response = system.get("/slow").await;
    let took = started.elapsed();
    assert_eq!(response.status(), 504);
    assert_eq!(error_code(response).await, "timeout");
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(2500),
        "answered after {took:?}"
    );
    let left = deadline_seen(&slow);
    assert!((100..=400).contains(&left), "slow: {left} ms left");

    // A caller with less time left shortens the deadline; one with more cannot stretch it.
    let started = Instant::now();
    let response = system
        .http
        .get(system.url("/slow"))
        .header("x-conway-deadline-ms", "150")
        .send()
        .await
        .expect("an answer");
    let took = started.elapsed();
    assert_eq!(response.status(), 504);
    assert!(took < Duration::from_millis(350), "answered after {took:?}");
    assert!(deadline_seen(&slow) <= 150);
    let response = system
        .http
        .get(system.url("/fast"))
        .header("x-conway-deadline-ms", "60000")
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    assert!(deadline_seen(&slow) <= 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_5xx_land_on_another_instance() {
    let bad = server().named("bad").fallback(Reply::status(503)).run();
    let good = server().named("good").run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external(
            "web",
            &[&bad, &good],
            "[services.web.resilience]\nbalancer = \"round-robin\"\nretries = { attempts = 2, on = [\"5xx\"] }",
        ),
    ))
    .await;

    let served = system.spread("/", 40, 1).await;
    assert_eq!(count(&served, "good"), 40, "{served:?}");
    let tried_bad = bad.requests();
    assert!(
        tried_bad >= 10,
        "round robin sent {tried_bad} first tries to bad"
    );
    assert_eq!(good.requests(), 40);
    let metrics = system.metrics().await;
    assert!(
        metrics.contains(&format!(
            "conway_proxy_retries_total{{service=\"web\"}} {tried_bad}"
        )),
        "{metrics}"
    );

    // A POST is not idempotent: its 503 goes back to the client.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let response = system
            .http
            .post(system.url("/"))
            .body("x")
            .send()
            .await
            .expect("an answer");
        statuses.push(response.status().as_u16());
    }
    let refused = statuses.iter().filter(|s| **s == 503).count() as u64;
    assert_eq!(refused, bad.requests() - tried_bad, "{statuses:?}");
    assert!(refused >= 3, "{statuses:?}");
}

/// An instance reported healthy that refuses connections: every request that tries it
/// first is retried on the other one — a POST too, body and all, since nothing was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_are_retried_on_another_instance_even_for_a_post() {
    let alive = server().named("alive").run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external(
            "web",
            &[&alive],
            "[services.web.resilience]\nbalancer = \"round-robin\"",
        ),
    ))
    .await;
    system.register_healthy("web", dead_port()).await;
    system.wait_healthy("web", 2).await;

    let served = system.spread("/", 10, 1).await;
    assert_eq!(count(&served, "alive"), 10, "{served:?}");
    for n in 0..10 {
        let body = format!("order {n}");
        let response = system
            .http
            .post(system.url("/orders"))
            .body(body.clone())
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200, "POST {n}");
        let echo: serde_json::Value = response.json().await.expect("an echo");
        assert_eq!(echo["body"], body.as_str());
    }
    assert_eq!(alive.requests(), 20);
}

/// An instance that closes connections without answering, or never answers: each
/// idempotent request is retried on the other instance (within the try's own
/// deadline); a POST that met a reset is not, since the instance may have acted on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_silences_are_retried_elsewhere_when_idempotent() {
    let broken = server()
        .named("broken")
        .route("/reset", Reply::reset())
        .route("/hang", Reply::hang())
        .run();
    let fine = server().named("fine").run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external(
            "web",
            &[&broken, &fine],
            "[services.web.resilience]\nbalancer = \"round-robin\"\ntimeout = \"3s\"\n\
             retries = { attempts = 2, per_try_timeout = \"200ms\", on = [\"reset\", \"timeout\"] }",
        ),
    ))
    .await;

    let served = system.spread("/reset", 10, 1).await;
    assert_eq!(count(&served, "fine"), 10, "{served:?}");
    assert!(broken.hits("/reset") >= 4, "round robin tried broken");
    let started = Instant::now();
    let served = system.spread("/hang", 6, 1).await;
    assert_eq!(count(&served, "fine"), 6, "{served:?}");
    assert!(broken.hits("/hang") >= 2, "round robin tried broken");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "each silence cut at 200 ms: {:?}",
        started.elapsed()
    );

    let mut codes = Vec::new();
    for _ in 0..6 {
        let response = system
            .http
            .post(system.url("/reset"))
            .body("once")
            .send()
            .await
            .expect("an answer");
        if response.status() == 502 {
            codes.push(error_code(response).await);
        } else {
            assert_eq!(response.status(), 200);
        }
    }
    assert_eq!(codes, ["upstream_reset"; 3], "POSTs that met the reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_opens_after_failures_and_closes_after_a_good_probe() {
    let flaky = server()
        .named("flaky")
        .route("/x", Reply::status(500))
        .run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external(
            "web",
            &[&flaky],
            "[services.web.resilience]\nretries = { attempts = 0 }\n\
             circuit_breaker = { failure_ratio = 0.5, min_requests = 5, window = \"10s\", open_for = \"500ms\", half_open_probes = 1 }",
        ),
    ))
    .await;

    for _ in 0..5 {
        assert_eq!(system.get("/x").await.status(), 500);
    }
    let response = system.get("/x").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "circuit_open");
    let opened = Instant::now();
    for _ in 0..5 {
        assert_eq!(system.get("/x").await.status(), 503);
    }
    assert_eq!(flaky.requests(), 5, "an open circuit sends nothing");

    flaky.set_route("/x", "fixed");
    eventually("the circuit closes", || async {
        system.get("/x").await.status() == 200
    })
    .await;
    assert!(
        opened.elapsed() >= Duration::from_millis(400),
        "closed {:?} after opening",
        opened.elapsed()
    );
    let served = system.spread("/x", 20, 4).await;
    assert_eq!(count(&served, "flaky"), 20, "{served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_failing_in_a_row_is_ejected() {
    let sick = server().named("sick").fallback(Reply::status(503)).run();
    let well = server().named("well").run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external(
            "web",
            &[&sick, &well],
            "[services.web.resilience]\nbalancer = \"round-robin\"\nretries = { attempts = 0 }\n\
             outlier = { consecutive_errors = 3, base_ejection = \"30s\", max_ejected = \"50%\" }",
        ),
    ))
    .await;

    let served = system.spread("/", 30, 1).await;
    assert_eq!(
        sick.requests(),
        3,
        "ejected after 3 errors in a row: {served:?}"
    );
    assert_eq!(count(&served, "503"), 3, "{served:?}");
    assert_eq!(count(&served, "well"), 27, "{served:?}");
    assert!(
        served[6..].iter().all(|s| s == "well"),
        "nothing to sick after its third error: {served:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_concurrency_requests_are_shed_with_retry_after() {
    let slow = server()
        .named("slow")
        .route(
            "/slow",
            Reply::text("done").delay(Duration::from_millis(800)),
        )
        .run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external(
            "web",
            &[&slow],
            "[services.web.resilience]\nmax_concurrency = 2",
        ),
    ))
    .await;

    let first: Vec<_> = (0..2)
        .map(|_| {
            let request = system.http.get(system.url("/slow")).send();
            tokio::spawn(request)
        })
        .collect();
    eventually("two requests in flight", || async { slow.requests() == 2 }).await;
    let mut shed = 0;
    for _ in 0..4 {
        let response = system.get("/slow").await;
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(error_code(response).await, "overloaded");
        shed += 1;
    }
    for request in first {
        let response = request.await.expect("a task").expect("an answer");
        assert_eq!(response.status(), 200);
    }
    assert_eq!((shed, slow.requests()), (4, 2));
    let response = system.get("/slow").await;
    assert_eq!(response.status(), 200, "the slots are free again");
}
