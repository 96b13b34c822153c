//! Picking an endpoint for each request: the balancer of one service.
//!
//! An [`EndpointSet`] holds a service's endpoints, built from the registry whenever it
//! changes ([`EndpointSet::update`] carries each endpoint's live [`EndpointStats`] over,
//! by instance id) and published in the route table behind `arc-swap`. Every connection
//! picks from it concurrently through `&self`: no lock, no allocation, nothing held
//! across an `.await`. [`EndpointSet::pick`] narrows the candidates (health and outlier
//! ejection, Envoy's panic threshold, zone preference, a version pin, the endpoint a
//! retry avoids; see its docs for the order) and lets the service's [`Balancer`] choose:
//!
//! - [`Balancer::P2cEwma`] (the default): power of two choices over peak-EWMA cost
//!   (latency estimate × (requests in flight + 1)), as linkerd2-proxy and Finagle;
//! - [`Balancer::RoundRobin`]: each candidate in turn, by one atomic counter;
//! - [`Balancer::LeastRequests`]: power of two choices by requests in flight, as Envoy's
//!   `least_request`;
//! - [`Balancer::Hash`]: consistent hashing of a header or cookie value the caller
//!   extracts ([`EndpointSet::hash_key`] says which) on a ring of virtual nodes; without
//!   a key, P2C.
//!
//! The pick returns a [`PickedEndpoint`], which counts the request in flight until it is
//! completed (recording its latency) or dropped.
//!
//! Tower's `balance::p2c::Balance` over `load::PeakEwma` does the same P2C, but needs
//! `&mut self` (one balancer per task, or a `Buffer` in front) and takes a mutex per
//! load reading; `benches/balance.rs` compares the two.

mod candidates;
mod clock;
mod endpoint;
mod p2c;
mod picked;
mod ring;
mod set;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use conway_core::manifest::{Balancer, HashKey};
use conway_core::units::Share;

pub use endpoint::{Endpoint, EndpointStats};
pub use picked::PickedEndpoint;
pub use set::EndpointSet;

/// How a service's endpoints are balanced: the manifest's balancer, and the thresholds
/// and constants around it.
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceOptions {
    /// The algorithm (`[services.NAME.resilience] balancer`).
    pub balancer: Balancer,
    /// Below this share of healthy, non-ejected endpoints, balance over all of them
    /// (Envoy's panic threshold). Default 50%.
    pub panic_threshold: Share,
    /// Stay in the caller's zone while at least this share of the zone's endpoints are
    /// healthy and not ejected. Default 70%.
    pub zone_min_healthy: Share,
    /// The peak-EWMA decay time constant (tau). Default 10 s, as linkerd2-proxy.
    pub decay: Duration,
    /// The latency estimate endpoints start with when the service has no other yet (later
    /// additions start at the service's mean). Default 1 ms.
    pub default_rtt: Duration,
    /// Points per endpoint on the consistent-hash ring. Default 100.
    pub virtual_nodes: u32,
}

impl BalanceOptions {
    /// The defaults, with this balancer.
    pub fn new(balancer: Balancer) -> Self {
        Self {
            balancer,
            panic_threshold: Share::from_percent(50),
            zone_min_healthy: Share::from_percent(70),
            decay: Duration::from_secs(10),
            default_rtt: Duration::from_millis(1),
            virtual_nodes: 100,
        }
    }
}

impl Default for BalanceOptions {
    fn default() -> Self {
        Self::new(Balancer::default())
    }
}

/// What a request asks of the pick. All optional; `PickRequest::default()` picks any
/// healthy endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickRequest<'a> {
    /// The caller's zone, for zone-aware balancing.
    pub zone: Option<&'a str>,
    /// Only endpoints of this version (the version split's choice, or a route's pin).
    pub version: Option<&'a str>,
    /// The id of an endpoint not to pick unless it is the only one (a retry's last).
    pub avoid: Option<&'a str>,
    /// The consistent-hash balancer's key: the value of the header or cookie that
    /// [`EndpointSet::hash_key`] names.
    pub hash_key: Option<&'a [u8]>,
}

impl<'a> PickRequest<'a> {
    /// The caller is in `zone`.
    #[must_use]
    pub fn zone(self, zone: &'a str) -> Self {
        Self {
            zone: Some(zone),
            ..self
        }
    }

    /// Only endpoints of `version`.
    #[must_use]
    pub fn version(self, version: &'a str) -> Self {
        Self {
            version: Some(version),
            ..self
        }
    }

    /// Not the endpoint with this id, unless it is the only one.
    #[must_use]
    pub fn avoid(self, id: &'a str) -> Self {
        Self {
            avoid: Some(id),
            ..self
        }
    }

    /// Hash this key.
    #[must_use]
    pub fn hash_key(self, key: &'a [u8]) -> Self {
        Self {
            hash_key: Some(key),
            ..self
        }
    }
}
