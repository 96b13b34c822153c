//! Narrowing the candidates: health, ejection, panic threshold, zones, versions, avoid;
//! and the stats an update carries over.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

/// `n` endpoints, the first `healthy` of them healthy.
fn with_healthy(n: usize, healthy: usize) -> Vec<Endpoint> {
    (0..n)
        .map(|i| endpoint(i).with_health(i < healthy))
        .collect()
}

#[test]
fn an_empty_set_or_an_unknown_version_picks_nothing() {
    for balancer in [
        Balancer::P2cEwma,
        Balancer::RoundRobin,
        Balancer::LeastRequests,
    ] {
        assert!(
            set(balancer.clone(), vec![])
                .pick(&PickRequest::default())
                .is_none()
        );
        let set = set(balancer, endpoints(3));
        assert!(set.pick(&PickRequest::default().version("9.9")).is_none());
    }
}

#[test]
fn unhealthy_endpoints_are_skipped_at_half_healthy() {
    let set = set(Balancer::RoundRobin, with_healthy(10, 5));
    assert_eq!(picked_ids(&set, &PickRequest::default(), 100), ids(0..5));
}

// P2C's costs must stay equal between picks: a paused clock records no latency.
#[tokio::test(start_paused = true)]
async fn below_half_healthy_the_panic_threshold_balances_over_all() {
    let set = set(Balancer::RoundRobin, with_healthy(10, 4));
    assert_eq!(picked_ids(&set, &PickRequest::default(), 100), ids(0..10));
    // No healthy endpoint at all: none of them, since none is ready.
    let set = super::set(Balancer::P2cEwma, with_healthy(3, 0));
    assert!(set.pick(&PickRequest::default()).is_none());
}

#[tokio::test(start_paused = true)]
async fn ejected_endpoints_are_skipped_until_their_ejection_ends() {
    let set = set(Balancer::RoundRobin, endpoints(4));
    let until = Instant::now() + Duration::from_secs(30);
    set.get("e1").unwrap().stats().eject_until(until);
    assert_eq!(
        picked_ids(&set, &PickRequest::default(), 100),
        ids([0, 2, 3])
    );

    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(picked_ids(&set, &PickRequest::default(), 100), ids(0..4));
}

#[tokio::test(start_paused = true)]
async fn ejected_endpoints_count_as_unhealthy_for_the_panic_threshold() {
    let set = set(Balancer::P2cEwma, endpoints(10));
    let until = Instant::now() + Duration::from_secs(30);
    for i in 0..5 {
        set.get(&format!("e{i}"))
            .unwrap()
            .stats()
            .eject_until(until);
    }
    assert_eq!(picked_ids(&set, &PickRequest::default(), 500), ids(5..10));

    set.get("e5").unwrap().stats().eject_until(until);
    assert_eq!(picked_ids(&set, &PickRequest::default(), 1000), ids(0..10));
}

/// Zone a: `healthy_a` healthy of 10 (e0..e9); zone b: 10 healthy (e10..e19).
fn zoned(healthy_a: usize) -> EndpointSet {
    let endpoints = (0..20)
        .map(|i| {
            let zone = if i < 10 { "a" } else { "b" };
            endpoint(i)
                .with_zone(zone)
                .with_health(i >= 10 || i < healthy_a)
        })
        .collect();
    set(Balancer::RoundRobin, endpoints)
}

#[test]
fn zone_aware_stays_in_the_callers_zone_at_seventy_percent_healthy() {
    let set = zoned(7);
    let local = PickRequest::default().zone("a");
    assert_eq!(picked_ids(&set, &local, 100), ids(0..7));
    let other = PickRequest::default().zone("b");
    assert_eq!(picked_ids(&set, &other, 100), ids(10..20));
    // No zone, or one without endpoints: every healthy endpoint.
    let everywhere: Vec<String> = ids((0..7).chain(10..20));
    assert_eq!(picked_ids(&set, &PickRequest::default(), 200), everywhere);
    assert_eq!(
        picked_ids(&set, &PickRequest::default().zone("c"), 200),
        everywhere
    );
}

#[test]
fn zone_aware_spills_to_every_zone_below_seventy_percent() {
    let set = zoned(6);
    let local = PickRequest::default().zone("a");
    assert_eq!(picked_ids(&set, &local, 200), ids((0..6).chain(10..20)));
}

// P2C's costs must stay equal between picks: a paused clock records no latency.
#[tokio::test(start_paused = true)]
async fn a_version_filter_keeps_only_that_version_even_across_zones() {
    let endpoints = (0..6)
        .map(|i| {
            let version = if i == 5 { "2.0" } else { "1.0" };
            let zone = if i < 3 { "a" } else { "b" };
            endpoint(i).with_version(version).with_zone(zone)
        })
        .collect();
    let set = set(Balancer::P2cEwma, endpoints);
    let v1 = PickRequest::default().version("1.0");
    assert_eq!(picked_ids(&set, &v1, 300), ids(0..5));
    assert_eq!(picked_ids(&set, &v1.zone("a"), 300), ids(0..3));
    // Version 2.0 lives only in zone b: a caller in zone a still reaches it.
    let v2 = PickRequest::default().version("2.0").zone("a");
    assert_eq!(picked_ids(&set, &v2, 50), ids([5]));
}

// P2C's costs must stay equal between picks: a paused clock records no latency.
#[tokio::test(start_paused = true)]
async fn a_retry_avoids_the_endpoint_that_failed_unless_it_is_the_only_one() {
    for balancer in [
        Balancer::P2cEwma,
        Balancer::RoundRobin,
        Balancer::LeastRequests,
    ] {
        let set = set(balancer.clone(), endpoints(3));
        let retry = PickRequest::default().avoid("e1");
        assert_eq!(picked_ids(&set, &retry, 300), ids([0, 2]), "{balancer:?}");

        let alone = super::set(balancer.clone(), endpoints(1));
        assert_eq!(
            picked_ids(&alone, &PickRequest::default().avoid("e0"), 10),
            ids([0])
        );
    }
    // The only other endpoint in the caller's zone failed: try another zone first.
    let set = set(
        Balancer::P2cEwma,
        vec![endpoint(0).with_zone("a"), endpoint(1).with_zone("b")],
    );
    let retry = PickRequest::default().zone("a").avoid("e0");
    assert_eq!(picked_ids(&set, &retry, 50), ids([1]));
}

#[tokio::test(start_paused = true)]
async fn stats_survive_an_update_of_the_set() {
    let first = set(Balancer::P2cEwma, endpoints(2));
    let held = first.pick(&PickRequest::default().avoid("e1")).unwrap();
    assert_eq!(held.id(), "e0");
    let slow = first.pick(&PickRequest::default().avoid("e0")).unwrap();
    slow.complete(Duration::from_millis(9));

    // e1 stays, e0 leaves, e2 joins; the registry hands over fresh endpoints.
    let second = first.update(vec![endpoint(1), endpoint(2), endpoint(0)]);
    let e0 = second.get("e0").unwrap().stats();
    assert!(Arc::ptr_eq(e0, first.get("e0").unwrap().stats()));
    assert_eq!(e0.in_flight(), 1);
    drop(held);
    assert_eq!(e0.in_flight(), 0);

    let now = Instant::now();
    let decay = second.options().decay;
    let e1 = second.get("e1").unwrap().stats();
    assert_eq!(e1.rtt_estimate(now, decay), Duration::from_millis(9));
    // A newcomer starts at the service's mean: (1 ms + 9 ms) / 2.
    let e2 = second.get("e2").unwrap().stats();
    assert_eq!(e2.rtt_estimate(now, decay), Duration::from_millis(5));

    // A new balancer keeps them too.
    let third = second.reconfigure(BalanceOptions::new(Balancer::RoundRobin));
    assert!(Arc::ptr_eq(third.get("e1").unwrap().stats(), e1));
}

#[test]
fn many_threads_pick_from_one_set_and_leave_nothing_in_flight() {
    let set = Arc::new(set(Balancer::P2cEwma, endpoints(8)));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let set = Arc::clone(&set);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    let picked = set.pick(&PickRequest::default()).unwrap();
                    picked.complete(Duration::from_micros(300));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(set.endpoints().all(|e| e.stats().in_flight() == 0));
}
