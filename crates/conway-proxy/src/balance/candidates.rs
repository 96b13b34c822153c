//! The endpoints a request may go to, as the balancers see them: a precomputed list of
//! indices (a pool, by zone, version and health) plus the per-pick filters (ejected
//! endpoints, the endpoint a retry avoids), applied only when they can matter.

use std::sync::Arc;

use super::endpoint::Endpoint;

/// Zone and version of an endpoint as slots: 0 is none (and, in a pool key, any); slot
/// `k` is the set's `k - 1`th zone or version.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    pub(super) zone: u16,
    pub(super) version: u16,
    pub(super) healthy: bool,
}

/// A pool: the endpoints of one zone (or all) and one version (or any), all of them and
/// the healthy ones.
#[derive(Debug, Default)]
pub(super) struct Pool {
    pub(super) all: Box<[u32]>,
    pub(super) healthy: Box<[u32]>,
}

/// The pools of a set whose endpoints are described by `meta`, indexed by
/// `zone slot × (versions + 1) + version slot`.
pub(super) fn build_pools(meta: &[Meta], zones: usize, versions: usize) -> Box<[Pool]> {
    let width = versions + 1;
    let mut all = vec![Vec::new(); (zones + 1) * width];
    let mut healthy = all.clone();
    for (index, m) in meta.iter().enumerate() {
        // Every endpoint is in the pools of any zone and of its own, crossed with those
        // of any version and of its own.
        let zones = if m.zone > 0 { &[0, m.zone][..] } else { &[0] };
        let versions = if m.version > 0 {
            &[0, m.version][..]
        } else {
            &[0]
        };
        for &zone in zones {
            for &version in versions {
                let pool = usize::from(zone) * width + usize::from(version);
                all[pool].push(index as u32);
                if m.healthy {
                    healthy[pool].push(index as u32);
                }
            }
        }
    }
    all.into_iter()
        .zip(healthy)
        .map(|(all, healthy)| Pool {
            all: all.into(),
            healthy: healthy.into(),
        })
        .collect()
}

/// The candidates of one pick.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidates<'a> {
    pub(super) endpoints: &'a [Arc<Endpoint>],
    pub(super) meta: &'a [Meta],
    /// The pool's endpoints; every admitted candidate is in it.
    pub(super) list: &'a [u32],
    /// The pool's key, to test membership of an endpoint met on the hash ring.
    pub(super) zone: u16,
    pub(super) version: u16,
    pub(super) healthy_only: bool,
    /// Skip endpoints ejected at this instant (clock nanos); `None` when no endpoint of
    /// the service can be ejected now, or in panic mode.
    pub(super) ejected_at: Option<u64>,
    /// Skip the endpoint with this id.
    pub(super) avoid: Option<&'a str>,
}

impl<'a> Candidates<'a> {
    /// Whether picks must check each endpoint (rather than take the list as it is).
    pub(super) fn filtered(&self) -> bool {
        self.ejected_at.is_some() || self.avoid.is_some()
    }

    /// Whether the per-pick filters let endpoint `index` (of the list) through.
    pub(super) fn admits(&self, index: u32) -> bool {
        let endpoint = &self.endpoints[index as usize];
        self.ejected_at
            .is_none_or(|now| !endpoint.stats.ejected_at(now))
            && self.avoid.is_none_or(|avoid| endpoint.id() != avoid)
    }

    /// Whether endpoint `index` (of the whole set) is a candidate.
    pub(super) fn contains(&self, index: u32) -> bool {
        let meta = self.meta[index as usize];
        (self.zone == 0 || meta.zone == self.zone)
            && (self.version == 0 || meta.version == self.version)
            && (!self.healthy_only || meta.healthy)
            && self.admits(index)
    }

    /// The same candidates without the retry's avoidance.
    pub(super) fn without_avoid(self) -> Self {
        Self {
            avoid: None,
            ..self
        }
    }

    /// The admitted candidates, in list order.
    pub(super) fn admitted(&self) -> impl Iterator<Item = u32> + '_ {
        self.list.iter().copied().filter(|&i| self.admits(i))
    }
}

/// How many of `list` are not ejected at `now` (all of them when `now` is `None`).
pub(super) fn count_available(
    endpoints: &[Arc<Endpoint>],
    list: &[u32],
    ejected_at: Option<u64>,
) -> usize {
    match ejected_at {
        None => list.len(),
        Some(now) => list
            .iter()
            .filter(|&&i| !endpoints[i as usize].stats.ejected_at(now))
            .count(),
    }
}
