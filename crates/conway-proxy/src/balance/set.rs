//! The endpoints of one service and the pick among them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use conway_core::manifest::{Balancer, HashKey};
use conway_core::units::Share;
use tokio::time::Instant;

use super::candidates::{Candidates, Meta, Pool, build_pools, count_available};
use super::endpoint::{EjectionHint, Endpoint, EndpointStats};
use super::picked::PickedEndpoint;
use super::ring::{Ring, hash_key};
use super::{BalanceOptions, PickRequest, clock, p2c};

/// The endpoints of one service, built anew whenever the registry changes (with
/// [`update`](Self::update), which carries the live stats over) and shared by every
/// connection: [`pick`](Self::pick) takes `&self`, holds no lock and allocates nothing.
#[derive(Debug)]
pub struct EndpointSet {
    options: BalanceOptions,
    decay: f64,
    endpoints: Box<[Arc<Endpoint>]>,
    meta: Box<[Meta]>,
    zones: Box<[Box<str>]>,
    versions: Box<[Box<str>]>,
    /// Indexed by `zone slot × (versions + 1) + version slot`; slot 0 is "any".
    pools: Box<[Pool]>,
    /// Built for the hash balancer only.
    ring: Option<Ring>,
    /// Round robin's counter.
    next: AtomicUsize,
    ejections: Arc<EjectionHint>,
}

impl EndpointSet {
    /// A set with new stats for every endpoint; each starts at `options.default_rtt`.
    /// Endpoints with an id seen before in the list are dropped.
    pub fn new(options: BalanceOptions, endpoints: Vec<Endpoint>) -> Self {
        Self::build(options, endpoints, None, Arc::default(), 0)
    }

    /// The set after a registry change: endpoints that stay keep their stats (by instance
    /// id); new ones start at the service's current mean latency estimate, so they are
    /// neither shunned nor flooded.
    pub fn update(&self, endpoints: Vec<Endpoint>) -> Self {
        let (options, hint) = (self.options.clone(), self.ejections.clone());
        Self::build(
            options,
            endpoints,
            Some(self),
            hint,
            self.next.load(Relaxed),
        )
    }

    /// The same endpoints, stats and all, balanced with new options.
    pub fn reconfigure(&self, options: BalanceOptions) -> Self {
        let endpoints = self.endpoints.iter().map(|e| Endpoint::clone(e)).collect();
        let (hint, next) = (self.ejections.clone(), self.next.load(Relaxed));
        Self::build(options, endpoints, Some(self), hint, next)
    }

    fn build(
        options: BalanceOptions,
        endpoints: Vec<Endpoint>,
        previous: Option<&Self>,
        ejections: Arc<EjectionHint>,
        next: usize,
    ) -> Self {
        let decay = clock::float_nanos(options.decay).max(1.0);
        let kept: HashMap<&str, &Arc<EndpointStats>> = previous
            .map(|set| set.endpoints.iter().map(|e| (e.id(), &e.stats)).collect())
            .unwrap_or_default();
        let initial_rtt = previous
            .and_then(|set| set.mean_rtt(decay))
            .unwrap_or(options.default_rtt);

        let mut seen = HashSet::new();
        let mut endpoints: Vec<Endpoint> = endpoints
            .into_iter()
            .filter(|e| seen.insert(e.id().to_owned()))
            .collect();
        for endpoint in &mut endpoints {
            if !endpoint.stats.belongs_to(&ejections) {
                endpoint.stats = match kept.get(endpoint.id()) {
                    Some(stats) => Arc::clone(stats),
                    None => Arc::new(EndpointStats::new(initial_rtt, ejections.clone())),
                };
            }
        }

        let zones = distinct(endpoints.iter().filter_map(Endpoint::zone));
        let versions = distinct(endpoints.iter().filter_map(Endpoint::version));
        let slot = |names: &[Box<str>], name: Option<&str>| {
            name.and_then(|name| slot_of(names, name)).unwrap_or(0)
        };
        let meta: Box<[Meta]> = endpoints
            .iter()
            .map(|e| Meta {
                zone: slot(&zones, e.zone()),
                version: slot(&versions, e.version()),
                healthy: e.is_healthy(),
            })
            .collect();

        let pools = build_pools(&meta, zones.len(), versions.len());

        let ring = matches!(options.balancer, Balancer::Hash(_))
            .then(|| Ring::new(endpoints.iter().map(Endpoint::id), options.virtual_nodes));
        Self {
            options,
            decay,
            endpoints: endpoints.into_iter().map(Arc::new).collect(),
            meta,
            zones,
            versions,
            pools,
            ring,
            next: AtomicUsize::new(next),
            ejections,
        }
    }

    /// The mean latency estimate of the endpoints now, if there are any.
    fn mean_rtt(&self, decay: f64) -> Option<std::time::Duration> {
        let now = clock::nanos(Instant::now());
        let count = self.endpoints.len();
        let sum: f64 = self
            .endpoints
            .iter()
            .map(|e| e.stats.decayed_rtt(now, decay))
            .sum();
        (count > 0).then(|| std::time::Duration::from_nanos((sum / count as f64) as u64))
    }

    /// Picks an endpoint for one request, or `None` when there is none to pick (no
    /// endpoint passes its health checks, or none of the requested version may take
    /// traffic).
    ///
    /// Candidates, in order:
    /// 1. endpoints that are healthy and not ejected;
    /// 2. all endpoints instead, healthy or not, when fewer than
    ///    [`panic_threshold`](BalanceOptions::panic_threshold) of the service's endpoints
    ///    are healthy and not ejected (Envoy's panic mode: better to try them all than to
    ///    crush the few; zone preference is off then, as in Envoy);
    /// 3. with the caller's zone, the candidates in that zone while at least
    ///    [`zone_min_healthy`](BalanceOptions::zone_min_healthy) of the zone's endpoints
    ///    are healthy and not ejected; then, or when the zone has no candidate left after
    ///    the filters below, those of every zone;
    /// 4. with a version, only endpoints of that version (a pin is never relaxed);
    /// 5. with an endpoint to avoid, the others — unless it is the only candidate.
    pub fn pick(&self, request: &PickRequest<'_>) -> Option<PickedEndpoint> {
        let now = Instant::now();
        let now_nanos = clock::nanos(now);
        let version = match request.version {
            None => 0,
            Some(version) => slot_of(&self.versions, version)?,
        };
        let ejected_at = self.ejections.active(now_nanos).then_some(now_nanos);
        let service = &self.pools[0];
        if service.healthy.is_empty() {
            // Nothing passes its checks (all starting or failing): no traffic at all,
            // rather than requests to instances that are not ready.
            return None;
        }
        let available = count_available(&self.endpoints, &service.healthy, ejected_at);
        let panic = below(available, service.all.len(), self.options.panic_threshold);

        let global = self.candidates(0, version, !panic, ejected_at, request.avoid);
        let local = request
            .zone
            .filter(|_| !panic)
            .and_then(|zone| slot_of(&self.zones, zone))
            .filter(|&zone| {
                let pool = &self.pools[self.pool_index(zone, 0)];
                let available = count_available(&self.endpoints, &pool.healthy, ejected_at);
                !below(available, pool.all.len(), self.options.zone_min_healthy)
            })
            .map(|zone| self.candidates(zone, version, true, ejected_at, request.avoid));

        let chosen = local
            .and_then(|local| self.choose(&local, request, now_nanos))
            .or_else(|| self.choose(&global, request, now_nanos))
            .or_else(|| {
                let global = global.without_avoid();
                request
                    .avoid
                    .and_then(|_| self.choose(&global, request, now_nanos))
            })?;
        let endpoint = &self.endpoints[chosen as usize];
        Some(PickedEndpoint::new(endpoint, now, self.decay))
    }

    fn choose(
        &self,
        candidates: &Candidates<'_>,
        request: &PickRequest<'_>,
        now: u64,
    ) -> Option<u32> {
        let stats = |i: u32| &self.endpoints[i as usize].stats;
        let by_cost = |c: &Candidates<'_>| p2c::pick_by(c, |i| stats(i).cost(now, self.decay));
        match &self.options.balancer {
            Balancer::P2cEwma => by_cost(candidates),
            Balancer::LeastRequests => p2c::pick_by(candidates, |i| stats(i).in_flight()),
            Balancer::RoundRobin => p2c::round_robin(candidates, &self.next),
            Balancer::Hash(_) => match (request.hash_key, &self.ring) {
                (Some(key), Some(ring)) if !candidates.list.is_empty() => {
                    ring.pick(hash_key(key), |i| candidates.contains(i))
                }
                _ => by_cost(candidates),
            },
        }
    }

    fn candidates<'a>(
        &'a self,
        zone: u16,
        version: u16,
        healthy_only: bool,
        ejected_at: Option<u64>,
        avoid: Option<&'a str>,
    ) -> Candidates<'a> {
        let pool = &self.pools[self.pool_index(zone, version)];
        Candidates {
            endpoints: &self.endpoints,
            meta: &self.meta,
            list: if healthy_only {
                &pool.healthy
            } else {
                &pool.all
            },
            zone,
            version,
            healthy_only,
            ejected_at: ejected_at.filter(|_| healthy_only),
            avoid,
        }
    }

    fn pool_index(&self, zone: u16, version: u16) -> usize {
        usize::from(zone) * (self.versions.len() + 1) + usize::from(version)
    }

    /// The options it balances with.
    pub fn options(&self) -> &BalanceOptions {
        &self.options
    }

    /// What the hash balancer hashes, for the caller to extract from the request.
    pub fn hash_key(&self) -> Option<&HashKey> {
        match &self.options.balancer {
            Balancer::Hash(key) => Some(key),
            _ => None,
        }
    }

    /// The endpoints, in the order given.
    pub fn endpoints(&self) -> impl ExactSizeIterator<Item = &Endpoint> + '_ {
        self.endpoints.iter().map(|e| &**e)
    }

    /// The endpoint with this instance id.
    pub fn get(&self, id: &str) -> Option<&Endpoint> {
        self.endpoints().find(|e| e.id() == id)
    }

    /// How many endpoints it holds.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

/// The distinct names, in order of first appearance.
fn distinct<'a>(names: impl Iterator<Item = &'a str>) -> Box<[Box<str>]> {
    let mut out: Vec<Box<str>> = Vec::new();
    for name in names {
        if !out.iter().any(|n| &**n == name) {
            out.push(name.into());
        }
    }
    out.into()
}

/// The slot (1-based) of `name` among `names`. Zones and versions are few; past 65,535
/// of them the rest count as none.
fn slot_of(names: &[Box<str>], name: &str) -> Option<u16> {
    let index = names.iter().position(|n| &**n == name)?;
    u16::try_from(index + 1).ok()
}

/// Whether `part` of `whole` is less than `share` of it.
fn below(part: usize, whole: usize, share: Share) -> bool {
    (part as u64) * 10_000 < u64::from(share.basis_points()) * whole as u64
}
