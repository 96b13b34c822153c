//! Tests of the pick: each balancer's distribution, and the narrowing of candidates.

mod distribution;
mod selection;

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{BalanceOptions, Balancer, Endpoint, EndpointSet, PickRequest};

fn endpoint(i: usize) -> Endpoint {
    let port = 9000 + u16::try_from(i).expect("a port");
    Endpoint::new(format!("e{i}"), SocketAddr::from(([127, 0, 0, 1], port)))
}

fn endpoints(n: usize) -> Vec<Endpoint> {
    (0..n).map(endpoint).collect()
}

fn set(balancer: Balancer, endpoints: Vec<Endpoint>) -> EndpointSet {
    EndpointSet::new(BalanceOptions::new(balancer), endpoints)
}

/// How many of `picks` picks went to each endpoint id (each pick dropped at once).
fn counts(set: &EndpointSet, request: &PickRequest<'_>, picks: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..picks {
        let picked = set.pick(request).expect("an endpoint");
        *counts.entry(picked.id().to_owned()).or_default() += 1;
    }
    counts
}

/// The ids picked in `picks` picks, as a set, sorted.
fn picked_ids(set: &EndpointSet, request: &PickRequest<'_>, picks: usize) -> Vec<String> {
    let mut ids: Vec<String> = counts(set, request, picks).into_keys().collect();
    ids.sort();
    ids
}

fn ids(range: impl IntoIterator<Item = usize>) -> Vec<String> {
    let mut ids: Vec<String> = range.into_iter().map(|i| format!("e{i}")).collect();
    ids.sort();
    ids
}
