use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conway_core::manifest::CircuitBreaker as Config;
use http::{Request, Response};
use tokio::time::advance;
use tower::{Layer, ServiceExt, service_fn};

use super::*;
use crate::error::{BoxError, Error};
use crate::outcome::{Failure, Outcome};

fn breaker(failure_ratio: f64, min_requests: u32, probes: u32) -> Arc<CircuitBreaker> {
    Arc::new(CircuitBreaker::new(&Config {
        failure_ratio,
        min_requests,
        window: Duration::from_secs(10).into(),
        open_for: Duration::from_secs(5).into(),
        half_open_probes: probes,
    }))
}

const FAIL: Outcome = Outcome::Failure(Failure::Reset);

fn send(breaker: &Arc<CircuitBreaker>, outcome: Outcome) -> Option<Transition> {
    breaker.try_acquire().expect("closed").record(outcome)
}

#[tokio::test(start_paused = true)]
async fn full_cycle_closed_open_half_open_closed() {
    let breaker = breaker(0.5, 10, 3);
    assert_eq!(breaker.state(), State::Closed);
    for _ in 0..9 {
        assert_eq!(send(&breaker, FAIL), None);
    }
    assert_eq!(send(&breaker, FAIL), Some(Transition::Opened));
    assert_eq!((breaker.state(), breaker.state().gauge()), (State::Open, 2));

    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.retry_after(), Duration::from_secs(5));
    advance(Duration::from_millis(4999)).await;
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.retry_after(), Duration::from_millis(1));
    advance(Duration::from_millis(1)).await;

    let probes: Vec<Permit> = (0..3).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(probes.iter().all(Permit::is_probe));
    assert_eq!(
        (breaker.state(), breaker.state().gauge()),
        (State::HalfOpen, 1)
    );
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.retry_after(), Duration::from_secs(1));

    let transitions: Vec<_> = probes
        .into_iter()
        .map(|probe| probe.record(Outcome::Success))
        .collect();
    assert_eq!(transitions, [None, None, Some(Transition::Closed)]);
    assert_eq!(
        (breaker.state(), breaker.state().gauge()),
        (State::Closed, 0)
    );
    assert_eq!(
        breaker.transitions(),
        Transitions {
            opened: 1,
            half_opened: 1,
            closed: 1,
            rejected: 3,
        }
    );

    // Closed again with an empty window: the old failures are forgotten.
    for _ in 0..9 {
        assert_eq!(send(&breaker, FAIL), None);
    }
    assert_eq!(send(&breaker, FAIL), Some(Transition::Opened));
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_opens_it_again_for_the_full_period() {
    let breaker = breaker(0.5, 1, 2);
    assert_eq!(send(&breaker, FAIL), Some(Transition::Opened));
    advance(Duration::from_secs(5)).await;

    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert_eq!(first.record(Outcome::Success), None);
    assert_eq!(second.record(FAIL), Some(Transition::Opened));
    assert_eq!(breaker.state(), State::Open);
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.retry_after(), Duration::from_secs(5));

    // It probes again after another period, and recovers.
    advance(Duration::from_secs(5)).await;
    let probes = [
        breaker.try_acquire().unwrap(),
        breaker.try_acquire().unwrap(),
    ];
    let last = probes.map(|probe| probe.record(Outcome::from_status(200)));
    assert_eq!(last, [None, Some(Transition::Closed)]);
    assert_eq!(breaker.transitions().opened, 2);
    assert_eq!(breaker.transitions().half_opened, 2);
}

#[tokio::test(start_paused = true)]
async fn min_requests_and_ratio_are_respected() {
    let breaker = breaker(0.5, 20, 1);
    for _ in 0..19 {
        assert_eq!(send(&breaker, FAIL), None, "below min_requests");
    }
    assert_eq!(send(&breaker, FAIL), Some(Transition::Opened));

    let breaker = self::breaker(0.5, 20, 1);
    for _ in 0..11 {
        send(&breaker, Outcome::Success);
    }
    for _ in 0..9 {
        send(&breaker, FAIL);
    }
    assert_eq!(breaker.state(), State::Closed, "9 of 20 is under half");
    assert_eq!(send(&breaker, FAIL), None, "10 of 21 is still under half");
    assert_eq!(send(&breaker, FAIL), Some(Transition::Opened), "11 of 22");
}

#[tokio::test(start_paused = true)]
async fn client_errors_never_count() {
    let breaker = breaker(0.001, 1, 1);
    for status in [400, 401, 403, 404, 409, 429, 499] {
        for _ in 0..100 {
            assert_eq!(send(&breaker, Outcome::from_status(status)), None);
        }
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(
        send(&breaker, Outcome::from_status(500)),
        Some(Transition::Opened)
    );
}

#[tokio::test(start_paused = true)]
async fn failures_slide_out_of_the_window() {
    let breaker = breaker(0.5, 10, 1);
    for _ in 0..9 {
        send(&breaker, FAIL);
    }
    advance(Duration::from_secs(11)).await;
    assert_eq!(send(&breaker, FAIL), None, "the 9 old failures are gone");
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn unrecorded_permits_count_as_neither() {
    let breaker = breaker(0.5, 2, 1);
    for _ in 0..100 {
        drop(breaker.try_acquire().unwrap());
    }
    assert_eq!(send(&breaker, Outcome::Success), None);
    assert_eq!(
        send(&breaker, FAIL),
        Some(Transition::Opened),
        "1 of 2 failed"
    );

    // A dropped probe gives its slot back.
    advance(Duration::from_secs(5)).await;
    let probe = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    drop(probe);
    let probe = breaker.try_acquire().expect("the slot came back");
    assert_eq!(probe.record(Outcome::Success), Some(Transition::Closed));
}

#[tokio::test(start_paused = true)]
async fn results_from_an_earlier_phase_are_ignored() {
    let breaker = breaker(0.5, 1, 1);
    let stale = breaker.try_acquire().unwrap();
    assert_eq!(send(&breaker, FAIL), Some(Transition::Opened));
    advance(Duration::from_secs(5)).await;
    let probe = breaker.try_acquire().unwrap();
    assert_eq!(stale.record(FAIL), None);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(probe.record(Outcome::Success), Some(Transition::Closed));
}

#[test]
fn concurrent_use_keeps_counts_consistent() {
    let breaker = breaker(0.5, 1_000_000, 1);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let breaker = Arc::clone(&breaker);
            std::thread::spawn(move || {
                for i in 0..10_000 {
                    let outcome = if i % 2 == 0 { FAIL } else { Outcome::Success };
                    let _ = breaker.try_acquire().unwrap().record(outcome);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(breaker.state(), State::Closed, "40,000 < min_requests");
}

#[tokio::test(start_paused = true)]
async fn service_fails_fast_while_open_and_recovers() {
    let calls = Arc::new(AtomicU32::new(0));
    let count = calls.clone();
    let inner = service_fn(move |_: Request<()>| {
        let call = count.fetch_add(1, Ordering::SeqCst);
        let status = if call < 4 { 503 } else { 404 };
        async move { Ok::<_, BoxError>(Response::builder().status(status).body(()).unwrap()) }
    });
    let breaker = breaker(0.5, 4, 1);
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(inner);

    for _ in 0..4 {
        let response = service.clone().oneshot(Request::new(())).await.unwrap();
        assert_eq!(response.status(), 503);
    }
    let error = service.clone().oneshot(Request::new(())).await.unwrap_err();
    assert_eq!(
        Error::find(&*error),
        Some(&Error::CircuitOpen {
            retry_after: Duration::from_secs(5)
        })
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4, "refused without a call");

    advance(Duration::from_secs(5)).await;
    let response = service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(breaker.state(), State::Closed, "a 404 probe is a success");
}
