//! Each balancer's distribution over many picks.

use std::time::Duration;

use super::*;

#[test]
fn round_robin_visits_each_endpoint_in_turn_exactly() {
    let set = set(Balancer::RoundRobin, endpoints(4));
    let order: Vec<String> = (0..8)
        .map(|_| set.pick(&PickRequest::default()).unwrap().id().to_owned())
        .collect();
    assert_eq!(order[..4], order[4..]);
    assert_eq!(ids(0..4), {
        let mut first = order[..4].to_vec();
        first.sort();
        first
    });

    let counts = counts(&set, &PickRequest::default(), 400);
    assert!(counts.values().all(|&n| n == 100), "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn p2c_ewma_prefers_the_fast_endpoint_but_still_probes_the_slow_ones() {
    fastrand::seed(7);
    let set = set(Balancer::P2cEwma, endpoints(3));
    let mut counts = [0usize; 3];
    for _ in 0..3000 {
        let picked = set.pick(&PickRequest::default()).unwrap();
        let fast = picked.id() == "e0";
        counts[usize::from(picked.id().as_bytes()[1] - b'0')] += 1;
        picked.complete(Duration::from_millis(if fast { 1 } else { 50 }));
    }
    // P2C takes the fast one whenever it is drawn: in 2 pairs out of 3.
    assert!(counts[0] > 1800, "{counts:?}");
    assert!(counts[1] > 300 && counts[2] > 300, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn p2c_ewma_weighs_requests_in_flight() {
    fastrand::seed(7);
    let set = set(Balancer::P2cEwma, endpoints(2));
    // Same latency; e0 holds three requests, so costs four times as much.
    let held: Vec<_> = std::iter::repeat_with(|| set.pick(&PickRequest::default().avoid("e1")))
        .take(3)
        .collect();
    assert!(held.iter().all(|p| p.as_ref().unwrap().id() == "e0"));
    let counts = counts(&set, &PickRequest::default(), 100);
    assert_eq!(counts.get("e0"), None, "{counts:?}");
}

#[test]
fn least_requests_avoids_a_busy_endpoint() {
    fastrand::seed(11);
    // Ten requests go to e0 while it is alone; then two idle endpoints join.
    let alone = set(Balancer::LeastRequests, endpoints(1));
    let busy: Vec<_> = (0..10)
        .map(|_| alone.pick(&PickRequest::default()))
        .collect();
    let set = alone.update(endpoints(3));
    assert_eq!(set.get("e0").unwrap().stats().in_flight(), 10);

    let counts = counts(&set, &PickRequest::default(), 600);
    assert_eq!(counts.get("e0"), None, "{counts:?}");
    assert!(counts["e1"] > 200 && counts["e2"] > 200, "{counts:?}");
    drop(busy);
    assert_eq!(set.get("e0").unwrap().stats().in_flight(), 0);
}

fn hashed() -> Balancer {
    Balancer::Hash("header:x-user".parse().unwrap())
}

fn owner(set: &EndpointSet, key: &str) -> String {
    let request = PickRequest::default().hash_key(key.as_bytes());
    set.pick(&request).unwrap().id().to_owned()
}

#[test]
fn hash_sends_a_key_to_the_same_endpoint_every_time() {
    let set = set(hashed(), endpoints(10));
    for k in 0..200 {
        let key = format!("user-{k}");
        let first = owner(&set, &key);
        assert!((0..5).all(|_| owner(&set, &key) == first));
    }
    let owners: std::collections::HashSet<String> = (0..200)
        .map(|k| owner(&set, &format!("user-{k}")))
        .collect();
    assert_eq!(owners.len(), 10, "200 keys reach every endpoint");
}

#[test]
fn removing_one_of_ten_endpoints_moves_only_its_keys() {
    let before = set(hashed(), endpoints(10));
    let after = before.update(
        endpoints(10)
            .into_iter()
            .filter(|e| e.id() != "e3")
            .collect(),
    );
    let mut moved = 0;
    for k in 0..10_000 {
        let key = format!("user-{k}");
        let (was, is) = (owner(&before, &key), owner(&after, &key));
        if was != is {
            assert_eq!(was, "e3", "{key} moved from {was}, which stayed");
            moved += 1;
        }
    }
    assert!((600..=1400).contains(&moved), "{moved} of 10000 keys moved");
}

#[tokio::test(start_paused = true)]
async fn hash_without_a_key_falls_back_to_p2c() {
    fastrand::seed(3);
    let set = set(hashed(), endpoints(3));
    assert_eq!(picked_ids(&set, &PickRequest::default(), 300), ids(0..3));
}

#[test]
fn a_retry_with_the_same_key_goes_to_the_next_endpoint_on_the_ring() {
    let set = set(hashed(), endpoints(5));
    let first = owner(&set, "user-1");
    let request = PickRequest::default().hash_key(b"user-1").avoid(&first);
    let retry = set.pick(&request).unwrap().id().to_owned();
    assert_ne!(retry, first);
    assert!((0..5).all(|_| set.pick(&request).unwrap().id() == retry));
}
