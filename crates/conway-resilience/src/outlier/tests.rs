use std::time::Duration;

use conway_core::manifest::Outlier;
use conway_core::units::Share;
use tokio::time::Instant;

use super::*;
use crate::outcome::Failure;

const SECOND: Duration = Duration::from_secs(1);
const GATEWAY: Outcome = Outcome::Failure(Failure::ConnectError);

fn detector(consecutive_errors: u32, max_ejected: u32) -> OutlierDetector<u32> {
    OutlierDetector::new(&Outlier {
        consecutive_errors,
        base_ejection: Duration::from_secs(30).into(),
        max_ejected: Share::from_percent(max_ejected),
    })
}

/// Records `n` gateway failures on `id`; the ejection the last one caused, if any.
fn fail(detector: &OutlierDetector<u32>, id: u32, n: u32, now: Instant) -> Option<Ejection> {
    (0..n)
        .map(|_| detector.record(&id, GATEWAY, 10, now))
        .last()
        .flatten()
}

#[test]
fn consecutive_gateway_failures_eject_for_the_base_time() {
    let detector = detector(5, 50);
    let now = Instant::now();
    assert_eq!(fail(&detector, 7, 4, now), None);
    assert!(!detector.is_ejected(&7, now));
    let ejection = fail(&detector, 7, 1, now).expect("the fifth ejects");
    assert_eq!((ejection.duration, ejection.multiplier), (30 * SECOND, 1));
    assert_eq!(ejection.until, now + 30 * SECOND);
    assert!(detector.is_ejected(&7, now));
    assert!(detector.is_ejected(&7, now + 30 * SECOND - Duration::from_nanos(1)));
    assert!(!detector.is_ejected(&7, now + 30 * SECOND), "back on time");
    assert!(!detector.is_ejected(&8, now), "only the failing endpoint");
    assert_eq!(detector.ejected(now), 1);
}

#[test]
fn anything_but_a_gateway_failure_starts_the_count_again() {
    let detector = detector(3, 50);
    let now = Instant::now();
    let gateway = [502, 503, 504].map(Outcome::from_status);
    let connection = [Failure::ConnectError, Failure::Reset, Failure::Timeout];
    for failure in gateway.into_iter().chain(connection.map(Outcome::Failure)) {
        detector.record(&1, failure, 10, now);
        detector.record(&1, failure, 10, now);
        assert!(
            detector.record(&1, failure, 10, now).is_some(),
            "{failure:?}"
        );
        detector.retain(|_| false);
    }
    for breaker in [200, 404, 429, 500, 501].map(Outcome::from_status) {
        fail(&detector, 2, 2, now);
        detector.record(&2, breaker, 10, now);
        assert_eq!(fail(&detector, 2, 2, now), None, "{breaker:?} reset it");
        detector.record(&2, Outcome::Success, 10, now);
    }
    assert!(!detector.is_ejected(&2, now));
}

#[test]
fn repeated_ejections_last_longer_up_to_ten_times() {
    let detector = detector(1, 50);
    let mut now = Instant::now();
    let mut durations = Vec::new();
    for _ in 0..12 {
        let ejection = fail(&detector, 1, 1, now).unwrap();
        durations.push(ejection.duration.as_secs());
        now = ejection.until; // fails again the moment it is back
    }
    assert_eq!(
        durations,
        [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]
    );
}

#[test]
fn time_spent_healthy_shortens_the_next_ejection() {
    let detector = detector(1, 50);
    let now = Instant::now();
    let first = fail(&detector, 1, 1, now).unwrap();
    let second = fail(&detector, 1, 1, first.until).unwrap();
    let third = fail(&detector, 1, 1, second.until).unwrap();
    assert_eq!(third.multiplier, 3);

    // 60 s healthy: two periods forgiven, so 3 - 2 + 1 = 2.
    let fourth = fail(&detector, 1, 1, third.until + 60 * SECOND).unwrap();
    assert_eq!((fourth.multiplier, fourth.duration), (2, 60 * SECOND));

    // A long healthy spell forgives everything.
    let fifth = fail(&detector, 1, 1, fourth.until + 3600 * SECOND).unwrap();
    assert_eq!((fifth.multiplier, fifth.duration), (1, 30 * SECOND));
}

#[test]
fn never_more_than_max_ejected_at_once() {
    let detector = detector(1, 50);
    let now = Instant::now();
    let record = |id, now| detector.record(&id, GATEWAY, 4, now);
    assert!(record(0, now).is_some());
    assert!(record(1, now).is_some());
    assert_eq!(record(2, now), None, "2 of 4 is the most");
    assert_eq!(record(2, now), None);
    assert!(!detector.is_ejected(&2, now));
    assert_eq!(detector.ejected(now), 2);

    // Once one is back, the next failure of the third ejects it.
    let later = now + 30 * SECOND;
    assert_eq!(detector.ejected(later), 0);
    assert!(record(2, later).is_some());
    assert!(detector.is_ejected(&2, later));

    // A lone endpoint, or 0%, is never ejected.
    let lone = self::detector(1, 50);
    assert_eq!(lone.record(&0, GATEWAY, 1, now), None);
    let none = self::detector(1, 0);
    assert_eq!(none.record(&0, GATEWAY, 100, now), None);
    let all = self::detector(1, 100);
    assert!(all.record(&0, GATEWAY, 1, now).is_some());
}

#[test]
fn failures_while_ejected_do_not_count() {
    let detector = detector(3, 50);
    let now = Instant::now();
    let ejection = fail(&detector, 1, 3, now).unwrap();
    assert_eq!(fail(&detector, 1, 10, now + SECOND), None);
    assert_eq!(
        fail(&detector, 1, 2, ejection.until),
        None,
        "count restarted"
    );
    assert!(fail(&detector, 1, 1, ejection.until).is_some());
}

#[test]
fn memory_follows_the_endpoint_set() {
    let detector = detector(2, 50);
    let now = Instant::now();
    for id in 0..1000 {
        detector.record(&id, Outcome::Success, 1000, now);
    }
    assert_eq!(detector.tracked(), 0, "successes leave nothing behind");
    for id in 0..1000 {
        detector.record(&id, GATEWAY, 1000, now);
    }
    assert_eq!(detector.tracked(), 1000);
    fail(&detector, 5, 1, now);
    assert!(detector.is_ejected(&5, now));
    detector.retain(|id| *id < 10 && *id != 5);
    assert_eq!(detector.tracked(), 9);
    assert!(!detector.is_ejected(&5, now), "gone with its endpoint");
}
