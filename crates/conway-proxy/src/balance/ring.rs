//! Consistent hashing: a ring of virtual nodes (Karger et al.; Envoy's `ring_hash`).
//!
//! Each endpoint owns `virtual_nodes` points on a 64-bit ring, placed by hashing its
//! instance id, so every proxy builds the same ring from the same endpoints whatever
//! their order. A key goes to the owner of the first point at or after its hash. When
//! an endpoint leaves, only the keys it owned move (to the next points' owners); when
//! one joins, it takes about `1/n` of the keys. A key whose owner is not a candidate
//! (unhealthy, another zone or version, ejected, avoided) walks on to the next one.

/// Ring points, sorted, with the endpoint (index into the set) owning each.
#[derive(Debug)]
pub(super) struct Ring {
    points: Box<[u64]>,
    owners: Box<[u32]>,
}

impl Ring {
    /// The ring of endpoints with these ids, in set order.
    pub(super) fn new<'a>(ids: impl Iterator<Item = &'a str>, virtual_nodes: u32) -> Self {
        let mut entries: Vec<(u64, u32)> = Vec::new();
        for (index, id) in ids.enumerate() {
            let owner = u32::try_from(index).expect("endpoint count fits u32");
            entries.extend((0..virtual_nodes).map(|node| {
                let point = Hasher::new()
                    .write(id.as_bytes())
                    .write(b"#")
                    .write(&node.to_le_bytes())
                    .finish();
                (point, owner)
            }));
        }
        entries.sort_unstable();
        let (points, owners) = entries.into_iter().unzip::<_, _, Vec<_>, Vec<_>>();
        Self {
            points: points.into(),
            owners: owners.into(),
        }
    }

    /// The first owner at or after `hash`, clockwise, that `admits` accepts. The walk
    /// ends after one full turn; a rejected endpoint met again on the way is asked again
    /// (a cheap check).
    pub(super) fn pick(&self, hash: u64, admits: impl Fn(u32) -> bool) -> Option<u32> {
        let len = self.points.len();
        let start = self.points.partition_point(|&point| point < hash);
        let (after, before) = (&self.owners[start..], &self.owners[..start]);
        after
            .iter()
            .chain(before)
            .copied()
            .take(len)
            .find(|&owner| admits(owner))
    }
}

/// The hash of a balancing key (a header or cookie value).
pub(super) fn hash_key(key: &[u8]) -> u64 {
    Hasher::new().write(key).finish()
}

/// FNV-1a with MurmurHash3's 64-bit finalizer: stable across builds and platforms (the
/// ring must be the same in every proxy), fast on short keys, and well mixed.
struct Hasher(u64);

impl Hasher {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(Self::OFFSET)
    }

    fn write(mut self, bytes: &[u8]) -> Self {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Self::PRIME);
        }
        self
    }

    fn finish(self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("instance-{i}")).collect()
    }

    fn owner_ids(ring: &Ring, ids: &[String], keys: u32) -> Vec<String> {
        (0..keys)
            .map(|k| {
                let hash = hash_key(format!("user-{k}").as_bytes());
                ids[ring.pick(hash, |_| true).unwrap() as usize].clone()
            })
            .collect()
    }

    #[test]
    fn the_ring_does_not_depend_on_endpoint_order() {
        let forward = ids(10);
        let mut backward = forward.clone();
        backward.reverse();
        let a = Ring::new(forward.iter().map(String::as_str), 100);
        let b = Ring::new(backward.iter().map(String::as_str), 100);
        assert_eq!(
            owner_ids(&a, &forward, 1000),
            owner_ids(&b, &backward, 1000)
        );
    }

    #[test]
    fn keys_spread_evenly_over_endpoints() {
        let ids = ids(10);
        let ring = Ring::new(ids.iter().map(String::as_str), 100);
        let owners = owner_ids(&ring, &ids, 10_000);
        for id in &ids {
            let share = owners.iter().filter(|owner| *owner == id).count();
            assert!((600..=1400).contains(&share), "{id}: {share} of 10000");
        }
    }

    #[test]
    fn a_rejected_owner_passes_the_key_to_the_next_point() {
        let ids = ids(3);
        let ring = Ring::new(ids.iter().map(String::as_str), 100);
        let hash = hash_key(b"k");
        let first = ring.pick(hash, |_| true).unwrap();
        let next = ring.pick(hash, |owner| owner != first).unwrap();
        assert_ne!(first, next);
        assert_eq!(ring.pick(hash, |_| false), None);
        assert_eq!(
            Ring::new(std::iter::empty(), 100).pick(hash, |_| true),
            None
        );
    }
}
