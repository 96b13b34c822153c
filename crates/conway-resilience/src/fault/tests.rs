use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conway_core::manifest::{Abort, Delay, Faults};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

use super::*;
use crate::error::{BoxError, Error};

const SAMPLES: u32 = 100_000;

fn delay(percent: f64, millis: u64) -> Option<Delay> {
    Some(Delay {
        percent,
        duration: Duration::from_millis(millis).into(),
    })
}

fn abort(percent: f64, status: u16) -> Option<Abort> {
    Some(Abort { percent, status })
}

fn service_only(faults: &Faults) -> FaultInjector {
    FaultInjector::new(FaultSources {
        declared: Some(faults),
        ..FaultSources::default()
    })
}

/// The share of `SAMPLES` decisions for which `hit` holds, in percent.
fn share(injector: &FaultInjector, seed: u64, hit: impl Fn(FaultDecision) -> bool) -> f64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let hits = (0..SAMPLES)
        .filter(|_| hit(injector.decide(&mut rng)))
        .count();
    hits as f64 * 100.0 / f64::from(SAMPLES)
}

fn assert_near(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1.0,
        "{actual:.2}% is not within 1 point of {expected}%"
    );
}

#[test]
fn sampled_shares_are_within_statistical_bounds() {
    let faults = Faults {
        delay: delay(10.0, 200),
        abort: abort(5.0, 503),
    };
    let injector = service_only(&faults);
    for seed in [1, 2, 3] {
        assert_near(share(&injector, seed, |d| d.delay.is_some()), 10.0);
        assert_near(share(&injector, seed, |d| d.abort == Some(503)), 5.0);
        assert_near(share(&injector, seed, |d| d.is_none()), 90.0 * 95.0 / 100.0);
    }
}

#[test]
fn a_seeded_rng_decides_the_same_way_every_time() {
    let faults = Faults {
        delay: delay(50.0, 10),
        abort: abort(50.0, 500),
    };
    let injector = service_only(&faults);
    let run = |seed| {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..1000)
            .map(|_| injector.decide(&mut rng))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn percent_edges() {
    let always = service_only(&Faults {
        delay: delay(100.0, 5),
        abort: abort(100.0, 418),
    });
    assert_eq!(share(&always, 1, |d| d.abort == Some(418)), 100.0);
    assert_eq!(
        share(&always, 1, |d| d.delay == Some(Duration::from_millis(5))),
        100.0
    );

    let never = service_only(&Faults {
        delay: delay(0.0, 5),
        abort: abort(f64::NAN, 500),
    });
    assert!(never.is_empty());
    assert_eq!(share(&never, 1, |d| !d.is_none()), 0.0);

    assert!(FaultInjector::default().is_empty());
    assert!(!always.is_empty());
    let clamped = service_only(&Faults {
        delay: None,
        abort: abort(250.0, 500),
    });
    assert_eq!(share(&clamped, 1, |d| d.abort.is_some()), 100.0);
}

#[test]
fn run_time_faults_replace_declared_ones_per_kind() {
    let declared = Faults {
        delay: delay(100.0, 1000),
        abort: abort(100.0, 500),
    };
    let runtime = Faults {
        delay: delay(100.0, 2000),
        abort: None,
    };
    let merged = FaultInjector::new(FaultSources {
        declared: Some(&declared),
        runtime: Some(&runtime),
        route: None,
    });
    let decision = merged.decide(&mut fastrand::Rng::with_seed(1));
    assert_eq!(decision.delay, Some(Duration::from_secs(2)));
    assert_eq!(decision.abort, Some(500), "the declared abort stands");

    let off = Faults {
        delay: None,
        abort: abort(0.0, 503),
    };
    let merged = FaultInjector::new(FaultSources {
        declared: Some(&declared),
        runtime: Some(&off),
        route: None,
    });
    assert_eq!(
        share(&merged, 1, |d| d.abort.is_some()),
        0.0,
        "0% turns it off"
    );
    assert_eq!(share(&merged, 1, |d| d.delay.is_some()), 100.0);
}

#[test]
fn route_faults_come_on_top_of_the_services() {
    let route = Faults {
        delay: delay(50.0, 100),
        abort: abort(10.0, 429),
    };
    let service = Faults {
        delay: delay(50.0, 200),
        abort: abort(20.0, 503),
    };
    let injector = FaultInjector::new(FaultSources {
        route: Some(&route),
        declared: Some(&service),
        runtime: None,
    });
    let millis = |ms| Some(Duration::from_millis(ms));
    for (delay, expected) in [(None, 25.0), (millis(100), 25.0), (millis(200), 25.0)] {
        assert_near(share(&injector, 7, |d| d.delay == delay), expected);
    }
    assert_near(share(&injector, 7, |d| d.delay == millis(300)), 25.0);
    // The route's abort fires first; the service's only where it did not.
    assert_near(share(&injector, 7, |d| d.abort == Some(429)), 10.0);
    assert_near(share(&injector, 7, |d| d.abort == Some(503)), 90.0 * 0.2);
}

fn counting() -> (
    Arc<AtomicU32>,
    impl tower::Service<
        (),
        Response = u32,
        Error = BoxError,
        Future = impl Future<Output = Result<u32, BoxError>>,
    > + Clone,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let count = calls.clone();
    let service = service_fn(move |()| {
        let call = count.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, BoxError>(call) }
    });
    (calls, service)
}

#[tokio::test(start_paused = true)]
async fn service_delays_then_calls_through() {
    let faults = Faults {
        delay: delay(100.0, 250),
        abort: None,
    };
    let (calls, inner) = counting();
    let layer = InjectFaultsLayer::with_seed(Arc::new(service_only(&faults)), 1);
    let started = Instant::now();
    assert_eq!(layer.layer(inner).oneshot(()).await.unwrap(), 0);
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn service_aborts_without_calling_inner() {
    let (calls, inner) = counting();
    let aborting = Faults {
        delay: None,
        abort: abort(100.0, 503),
    };
    let service = InjectFaultsLayer::new(Arc::new(service_only(&aborting))).layer(inner.clone());
    let error = service.oneshot(()).await.unwrap_err();
    assert_eq!(
        Error::find(&*error),
        Some(&Error::FaultAbort { status: 503 })
    );

    let both = Faults {
        delay: delay(100.0, 100),
        abort: abort(100.0, 500),
    };
    let service = InjectFaultsLayer::new(Arc::new(service_only(&both))).layer(inner.clone());
    let started = Instant::now();
    let error = service.oneshot(()).await.unwrap_err();
    assert_eq!(
        Error::find(&*error),
        Some(&Error::FaultAbort { status: 500 })
    );
    assert_eq!(started.elapsed(), Duration::from_millis(100), "delay first");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // No faults: straight through.
    let service = InjectFaultsLayer::new(Arc::new(FaultInjector::default())).layer(inner);
    assert_eq!(service.oneshot(()).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn service_samples_within_bounds_with_a_seed() {
    let faults = Faults {
        delay: None,
        abort: abort(10.0, 503),
    };
    let (calls, inner) = counting();
    let mut service =
        InjectFaultsLayer::with_seed(Arc::new(service_only(&faults)), 99).layer(inner);
    let mut aborted = 0u32;
    for _ in 0..SAMPLES {
        if service.ready().await.unwrap().call(()).await.is_err() {
            aborted += 1;
        }
    }
    assert_near(f64::from(aborted) * 100.0 / f64::from(SAMPLES), 10.0);
    assert_eq!(calls.load(Ordering::SeqCst) + aborted, SAMPLES);
}
