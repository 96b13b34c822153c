use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conway_core::manifest::{Retries, RetryCondition};
use conway_core::units::Share;
use http::{HeaderMap, Method, Request, Response};
use parking_lot::Mutex;
use tokio::time::advance;
use tower::{Layer, ServiceExt, service_fn};

use super::*;
use crate::deadline::{DEADLINE_HEADER, SetDeadlineLayer};
use crate::error::BoxError;
use crate::outcome::Outcome;

fn retries(attempts: u32, on: &[RetryCondition]) -> Retries {
    Retries {
        attempts,
        on: on.to_vec(),
        ..Retries::default()
    }
}

fn status(code: u16) -> Failure {
    Outcome::from_status(code).failure().unwrap()
}

fn attempt(failure: Failure, tries: u32) -> Attempt {
    Attempt {
        failure,
        idempotent: true,
        replayable: true,
        tries,
        remaining: Duration::from_secs(1),
    }
}

#[test]
fn idempotent_methods_and_the_idempotency_key() {
    let none = HeaderMap::new();
    for method in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] {
        assert!(is_idempotent(&method.parse().unwrap(), &none), "{method}");
    }
    for method in ["POST", "PATCH", "CONNECT", "PURGE"] {
        assert!(!is_idempotent(&method.parse().unwrap(), &none), "{method}");
    }
    let mut keyed = HeaderMap::new();
    keyed.insert(IDEMPOTENCY_KEY, "order-42".parse().unwrap());
    assert!(is_idempotent(&Method::POST, &keyed));
}

#[tokio::test(start_paused = true)]
async fn only_the_on_conditions_are_retried() {
    let policy = RetryPolicy::new(&retries(2, &[RetryCondition::GatewayError]));
    assert_eq!(policy.decide(&attempt(status(503), 1)), Decision::Retry);
    assert_eq!(
        policy.decide(&attempt(status(500), 1)),
        Decision::Stop(Stop::NotRetried)
    );
    assert_eq!(
        policy.decide(&attempt(Failure::Reset, 1)),
        Decision::Stop(Stop::NotRetried)
    );

    let defaults = RetryPolicy::new(&Retries::default());
    assert_eq!(
        defaults.decide(&attempt(Failure::ConnectError, 1)),
        Decision::Retry
    );
    assert_eq!(
        defaults.decide(&attempt(Failure::Reset, 1)),
        Decision::Retry
    );
    assert_eq!(
        defaults.decide(&attempt(Failure::Timeout, 1)),
        Decision::Stop(Stop::NotRetried)
    );
    assert_eq!(
        defaults.decide(&attempt(status(502), 1)),
        Decision::Stop(Stop::NotRetried)
    );
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_requests_are_retried_only_when_nothing_was_sent() {
    let policy = RetryPolicy::new(&retries(
        2,
        &[RetryCondition::ConnectError, RetryCondition::Reset],
    ));
    let post = |failure| Attempt {
        idempotent: false,
        ..attempt(failure, 1)
    };
    assert_eq!(
        policy.decide(&post(Failure::Reset)),
        Decision::Stop(Stop::NotIdempotent)
    );
    assert_eq!(policy.decide(&post(Failure::ConnectError)), Decision::Retry);

    let streamed = Attempt {
        replayable: false,
        ..attempt(Failure::Reset, 1)
    };
    assert_eq!(
        policy.decide(&streamed),
        Decision::Stop(Stop::NotReplayable)
    );
}

#[tokio::test(start_paused = true)]
async fn attempts_and_deadline_bound_retries() {
    let policy = RetryPolicy::new(&retries(2, &[RetryCondition::Reset]));
    assert_eq!(policy.decide(&attempt(Failure::Reset, 1)), Decision::Retry);
    assert_eq!(policy.decide(&attempt(Failure::Reset, 2)), Decision::Retry);
    assert_eq!(
        policy.decide(&attempt(Failure::Reset, 3)),
        Decision::Stop(Stop::AttemptsExhausted)
    );

    let late = Attempt {
        remaining: Duration::ZERO,
        ..attempt(Failure::Reset, 1)
    };
    let stop = Stop::DeadlineExhausted;
    assert_eq!(policy.decide(&late), Decision::Stop(stop));
    assert_eq!(stop.error(Failure::Reset), Some(Error::DeadlineExceeded));

    let off = RetryPolicy::new(&retries(0, &[RetryCondition::Reset]));
    assert_eq!(
        off.decide(&attempt(Failure::Reset, 1)),
        Decision::Stop(Stop::AttemptsExhausted)
    );
}

#[tokio::test(start_paused = true)]
async fn refused_retries_take_nothing_from_the_budget() {
    let policy = RetryPolicy::new(&retries(1, &[RetryCondition::Reset]));
    let before = policy.budget_remaining();
    assert_eq!(before, 100); // 10/s over 10 s
    for _ in 0..1000 {
        policy.on_request();
        policy.decide(&attempt(Failure::Timeout, 1)); // not an `on` condition
        policy.decide(&attempt(Failure::Reset, 2)); // no attempts left
    }
    assert_eq!(policy.budget_remaining(), before + 1000 / 5);
}

#[tokio::test(start_paused = true)]
async fn budget_runs_out_under_a_retry_storm_and_refills() {
    let policy = RetryPolicy::new(&retries(1, &[RetryCondition::GatewayError]));
    let storm = |requests: u32| {
        (0..requests)
            .filter(|_| {
                policy.on_request();
                policy.decide(&attempt(status(503), 1)) == Decision::Retry
            })
            .count()
    };

    // Fresh: a reserve of 10/s × 10 s = 100 retries, plus 20% of 1,000 requests.
    assert_eq!(storm(1000), 300);
    assert_eq!(policy.budget_remaining(), 0);
    let refused = policy.decide(&attempt(status(503), 1));
    assert_eq!(refused, Decision::Stop(Stop::BudgetExhausted));
    assert_eq!(
        Stop::BudgetExhausted.error(status(503)),
        Some(Error::BudgetExhausted { last: status(503) })
    );

    // Drained, only 20% of new requests may retry.
    assert_eq!(storm(100), 20);

    // Within the 10 s the spent retries still count; after it they have expired.
    advance(Duration::from_secs(9)).await;
    policy.on_request();
    assert_eq!(policy.budget_remaining(), 0);
    advance(Duration::from_secs(2)).await;
    policy.on_request();
    assert_eq!(policy.budget_remaining(), (500 + 2) / 5);
    assert_eq!(storm(1), 1);
}

#[tokio::test(start_paused = true)]
async fn budget_share_and_reserve_follow_the_config() {
    let zero = RetryBudget::new(Share::from_percent(0));
    assert_eq!(zero.remaining(), 100);
    for _ in 0..1000 {
        zero.deposit();
    }
    assert_eq!(zero.remaining(), 100, "0% adds nothing per request");

    let half = RetryBudget::with_params(Share::from_percent(50), 0, Duration::from_secs(1));
    assert!(!half.withdraw(), "no reserve without a minimum rate");
    half.deposit();
    half.deposit();
    assert_eq!(half.remaining(), 1);
    assert!(half.withdraw());
    assert!(!half.withdraw());
    assert_eq!(format!("{half:?}"), "RetryBudget { remaining: 0 }");
}

fn failing_then_ok(
    failures: u32,
    calls: Arc<AtomicU32>,
    seen: Arc<Mutex<Vec<String>>>,
) -> impl tower::Service<
    Request<&'static str>,
    Response = Response<()>,
    Error = BoxError,
    Future = impl Future<Output = Result<Response<()>, BoxError>>,
> + Clone {
    service_fn(move |request: Request<&'static str>| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        let header = request.headers().get(&DEADLINE_HEADER).cloned();
        seen.lock()
            .push(header.map_or(String::new(), |v| v.to_str().unwrap().to_owned()));
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let status = if call < failures { 503 } else { 200 };
            Ok(Response::builder().status(status).body(()).unwrap())
        }
    })
}

#[tokio::test(start_paused = true)]
async fn tower_retry_recovers_after_failures_and_passes_the_deadline_on() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let policy = Arc::new(RetryPolicy::new(&retries(
        2,
        &[RetryCondition::ServerError],
    )));
    let inner = failing_then_ok(2, calls.clone(), seen.clone());
    let service = SetDeadlineLayer::new(Duration::from_secs(1)).layer(layer(policy).layer(inner));

    let response = service.oneshot(Request::new("body")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(*seen.lock(), ["1000", "900", "800"]);
}

#[tokio::test(start_paused = true)]
async fn tower_retry_gives_up_with_the_last_answer() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let policy = Arc::new(RetryPolicy::new(&retries(
        1,
        &[RetryCondition::ServerError],
    )));
    let inner = failing_then_ok(5, calls.clone(), seen.clone());
    let response = layer(policy.clone())
        .layer(inner.clone())
        .oneshot(Request::new("body"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A POST without an Idempotency-Key is tried once.
    let post = Request::post("/orders").body("body").unwrap();
    let response = layer(policy).layer(inner).oneshot(post).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn tower_retry_deposits_once_per_request() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let budget = Arc::new(RetryBudget::with_params(
        Share::from_percent(50),
        0,
        Duration::from_secs(10),
    ));
    let config = retries(3, &[RetryCondition::ServerError]);
    let policy = Arc::new(RetryPolicy::with_budget(&config, budget.clone()));
    let service = layer(policy).layer(failing_then_ok(u32::MAX, calls.clone(), seen));
    for _ in 0..4 {
        let response = service.clone().oneshot(Request::new("")).await.unwrap();
        assert_eq!(response.status(), 503);
    }
    // 4 requests deposit 4, each retry costs 2: 2 retries in all, 6 calls.
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(budget.remaining(), 0);
}
