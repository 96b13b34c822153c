//! Choosing among candidates: power of two choices (by peak-EWMA cost or by requests in
//! flight) and round robin.
//!
//! Power of two choices (Mitzenmacher): draw two distinct candidates at random, take the
//! less loaded. Nearly as good as asking every endpoint, at the cost of two; and unlike
//! "least loaded of all" it does not send a burst to the same endpoint. Random numbers
//! come from `fastrand`'s thread-local generator: no lock, no shared state.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::candidates::Candidates;

/// Draws tried before falling back to a scan when filters reject candidates.
const DRAWS: usize = 8;

/// The less costly of two random candidates (a lone candidate is taken as it is).
pub(super) fn pick_by<C: PartialOrd>(
    candidates: &Candidates<'_>,
    cost: impl Fn(u32) -> C,
) -> Option<u32> {
    match pair(candidates)? {
        (a, None) => Some(a),
        (a, Some(b)) => Some(if cost(b) < cost(a) { b } else { a }),
    }
}

/// Each candidate in turn, by a counter shared by every pick from the set. Filtered-out
/// candidates are skipped to the next admitted one.
pub(super) fn round_robin(candidates: &Candidates<'_>, counter: &AtomicUsize) -> Option<u32> {
    let list = candidates.list;
    if list.is_empty() {
        return None;
    }
    let start = counter.fetch_add(1, Relaxed) % list.len();
    if !candidates.filtered() {
        return Some(list[start]);
    }
    let (after, before) = list.split_at(start);
    before
        .iter()
        .chain(after)
        .copied()
        .find(|&i| candidates.admits(i))
}

/// Two distinct admitted candidates drawn at random, or the only one.
pub(super) fn pair(candidates: &Candidates<'_>) -> Option<(u32, Option<u32>)> {
    let list = candidates.list;
    let n = list.len();
    if !candidates.filtered() {
        return match n {
            0 => None,
            1 => Some((list[0], None)),
            _ => {
                let a = fastrand::usize(..n);
                let b = (a + 1 + fastrand::usize(..n - 1)) % n;
                Some((list[a], Some(list[b])))
            }
        };
    }
    // Filters usually reject few: draw until two distinct admitted ones come up.
    let draw = |other: Option<u32>| {
        (0..DRAWS)
            .map(|_| list[fastrand::usize(..n)])
            .find(|&i| Some(i) != other && candidates.admits(i))
    };
    if n > 0
        && let Some(a) = draw(None)
        && let Some(b) = draw(Some(a))
    {
        return Some((a, Some(b)));
    }
    // Few admitted (or none): count them, and draw by rank.
    let admitted = candidates.admitted().count();
    let nth = |rank: usize| candidates.admitted().nth(rank);
    match admitted {
        0 => None,
        1 => Some((nth(0)?, None)),
        _ => {
            let a = fastrand::usize(..admitted);
            let b = (a + 1 + fastrand::usize(..admitted - 1)) % admitted;
            Some((nth(a)?, nth(b)))
        }
    }
}
