//! Head sampling: every trace up to a rate per service, then a share; errors always.
//!
//! The share is decided by the trace id alone (a hash of it against the share), so
//! every service — and every batch — decides the same for the same trace without
//! talking to the others. Traces kept by the rate, and traces with errors, are
//! remembered for a while (a bounded table of recent trace ids), so later spans of the
//! same trace, from other services, are kept with them. A trace is decided whole within
//! a batch: one error span keeps every span of its trace in that batch.
//!
//! Head sampling decides before the trace is complete: spans of a trace dropped before
//! its error arrived stay dropped.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::clock::SharedClock;
use crate::config::SamplingConfig;
use crate::model::{SpanRecord, SpanStatus, TraceId};

/// How many recent decisions are remembered.
const REMEMBERED: usize = 100_000;
/// How many services get their own rate; spans of others are kept by share alone.
const MAX_SERVICES: usize = 10_000;

/// Why a trace was kept, or that it was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Decision {
    KeptRate,
    KeptShare,
    KeptError,
    Dropped,
}

impl Decision {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::KeptRate => "kept_rate",
            Self::KeptShare => "kept_share",
            Self::KeptError => "kept_error",
            Self::Dropped => "dropped",
        }
    }

    fn kept(self) -> bool {
        self != Self::Dropped
    }
}

/// What sampling made of a batch.
#[derive(Debug, Default)]
pub(crate) struct Sampled {
    /// The spans kept, in their original order.
    pub(crate) kept: Vec<SpanRecord>,
    /// Spans dropped.
    pub(crate) dropped_spans: u64,
    /// New decisions by trace: (decision, traces).
    pub(crate) decisions: Vec<(Decision, u64)>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    remembered: HashMap<TraceId, bool>,
    order: VecDeque<TraceId>,
}

impl State {
    /// Records (or replaces) the decision for `trace`, forgetting the oldest beyond
    /// the table's size.
    fn remember(&mut self, trace: TraceId, keep: bool) {
        if self.remembered.insert(trace, keep).is_none() {
            self.order.push_back(trace);
            if self.order.len() > REMEMBERED
                && let Some(oldest) = self.order.pop_front()
            {
                self.remembered.remove(&oldest);
            }
        }
    }
}

/// The sampler. Shared by every ingest path.
#[derive(Debug)]
pub(crate) struct Sampler {
    config: SamplingConfig,
    /// Traces whose hash is below this are kept by share.
    threshold: u64,
    clock: SharedClock,
    state: Mutex<State>,
}

impl Sampler {
    pub(crate) fn new(config: SamplingConfig, clock: SharedClock) -> Self {
        let share = config.share.clamp(0.0, 1.0);
        let threshold = if share >= 1.0 {
            u64::MAX
        } else {
            (share * u64::MAX as f64) as u64
        };
        Self {
            config,
            threshold,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether the share alone keeps `trace`: the same answer everywhere, every time.
    pub(crate) fn in_share(&self, trace: &TraceId) -> bool {
        self.threshold == u64::MAX || hash(trace) < self.threshold
    }

    /// Keeps or drops each trace of `spans` whole.
    pub(crate) fn sample(&self, spans: Vec<SpanRecord>) -> Sampled {
        // Group by trace, in first-seen order.
        let mut groups: Vec<(TraceId, Vec<usize>)> = Vec::new();
        let mut index: HashMap<TraceId, usize> = HashMap::new();
        for (i, span) in spans.iter().enumerate() {
            let group = *index.entry(span.trace_id).or_insert_with(|| {
                groups.push((span.trace_id, Vec::new()));
                groups.len() - 1
            });
            groups[group].1.push(i);
        }
        let now = self.clock.now();
        let mut keep = vec![false; spans.len()];
        let mut counts: HashMap<Decision, u64> = HashMap::new();
        {
            let mut state = self.state.lock();
            for (trace, members) in &groups {
                let decision = self.decide(&mut state, trace, members, &spans, now);
                if let Some(decision) = decision {
                    *counts.entry(decision).or_default() += 1;
                }
                let kept = decision.map_or_else(|| state.remembered[trace], Decision::kept);
                for &i in members {
                    keep[i] = kept;
                }
            }
        }
        let mut sampled = Sampled {
            decisions: counts.into_iter().collect(),
            ..Sampled::default()
        };
        for (span, kept) in spans.into_iter().zip(keep) {
            if kept {
                sampled.kept.push(span);
            } else {
                sampled.dropped_spans += 1;
            }
        }
        sampled
    }

    /// A new decision for the trace, or `None` when a remembered one stands.
    fn decide(
        &self,
        state: &mut State,
        trace: &TraceId,
        members: &[usize],
        spans: &[SpanRecord],
        now: SystemTime,
    ) -> Option<Decision> {
        let error = members
            .iter()
            .any(|&i| spans[i].status == SpanStatus::Error);
        let remembered = state.remembered.get(trace).copied();
        if error {
            if remembered == Some(true) {
                return None;
            }
            // Overrides a remembered drop: the trace's later spans are kept.
            state.remember(*trace, true);
            return Some(Decision::KeptError);
        }
        if remembered.is_some() {
            return None;
        }
        if self.in_share(trace) {
            return Some(Decision::KeptShare);
        }
        // The service that started the trace, if its root is here; else the first seen.
        let service = members
            .iter()
            .map(|&i| &spans[i])
            .find(|s| s.parent_span_id.is_none())
            .unwrap_or(&spans[members[0]])
            .service
            .as_str();
        let kept = self.take_token(state, service, now);
        state.remember(*trace, kept);
        Some(if kept {
            Decision::KeptRate
        } else {
            Decision::Dropped
        })
    }

    fn take_token(&self, state: &mut State, service: &str, now: SystemTime) -> bool {
        let Some((count, per)) = self.config.per_service else {
            return false;
        };
        if per.is_zero() || count == 0 {
            return false;
        }
        let capacity = count as f64;
        if !state.buckets.contains_key(service) {
            if state.buckets.len() >= MAX_SERVICES {
                return false;
            }
            state.buckets.insert(
                service.to_owned(),
                Bucket {
                    tokens: capacity,
                    refilled: now,
                },
            );
        }
        let Some(bucket) = state.buckets.get_mut(service) else {
            return false;
        };
        let elapsed = now
            .duration_since(bucket.refilled)
            .unwrap_or(Duration::ZERO);
        bucket.tokens =
            (bucket.tokens + elapsed.as_secs_f64() * capacity / per.as_secs_f64()).min(capacity);
        bucket.refilled = now.max(bucket.refilled);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A well-mixed 64-bit hash of a trace id (SplitMix64's finalizer over both halves), so
/// that ids that are not random still spread evenly.
fn hash(trace: &TraceId) -> u64 {
    let (high, low) = trace.0.split_at(8);
    let mut x = u64::from_be_bytes(high.try_into().unwrap_or_default())
        ^ u64::from_be_bytes(low.try_into().unwrap_or_default()).rotate_left(29);
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::model::{SpanId, SpanKind};

    fn span(trace: u128, service: &str, status: SpanStatus) -> SpanRecord {
        SpanRecord {
            trace_id: TraceId(trace.to_be_bytes()),
            span_id: SpanId::random(),
            parent_span_id: None,
            service: service.to_owned(),
            operation: "GET /".to_owned(),
            kind: SpanKind::Server,
            start: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(1),
            status,
            status_message: None,
            attributes: serde_json::Map::new(),
        }
    }

    fn sampler(per_service: Option<(u64, Duration)>, share: f64) -> (Sampler, ManualClock) {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
        let sampler = Sampler::new(
            SamplingConfig { per_service, share },
            Arc::new(clock.clone()),
        );
        (sampler, clock)
    }

    #[test]
    fn the_rate_keeps_every_trace_until_it_is_spent_then_the_share_decides() {
        let (sampler, clock) = sampler(Some((10, Duration::from_secs(1))), 0.0);
        let spans: Vec<_> = (1..=30)
            .map(|t| span(t, "orders", SpanStatus::Ok))
            .collect();
        let sampled = sampler.sample(spans);
        assert_eq!(sampled.kept.len(), 10, "the rate's burst");
        assert_eq!(sampled.dropped_spans, 20);
        clock.advance(Duration::from_secs(1));
        let more: Vec<_> = (31..=60)
            .map(|t| span(t, "orders", SpanStatus::Ok))
            .collect();
        assert_eq!(
            sampler.sample(more).kept.len(),
            10,
            "refilled after a period"
        );
        let other: Vec<_> = (61..=65)
            .map(|t| span(t, "billing", SpanStatus::Ok))
            .collect();
        assert_eq!(
            sampler.sample(other).kept.len(),
            5,
            "each service has its own rate"
        );
    }

    #[test]
    fn errors_are_always_kept_with_their_whole_trace() {
        let (sampler, _) = sampler(None, 0.0);
        let batch = vec![
            span(7, "orders", SpanStatus::Ok),
            span(7, "payments", SpanStatus::Error),
            span(8, "orders", SpanStatus::Ok),
        ];
        let sampled = sampler.sample(batch);
        assert_eq!(sampled.kept.len(), 2);
        assert!(
            sampled
                .kept
                .iter()
                .all(|s| s.trace_id == TraceId(7u128.to_be_bytes()))
        );
        // A later span of the same trace, without an error, is kept too.
        let later = sampler.sample(vec![span(7, "inventory", SpanStatus::Ok)]);
        assert_eq!(later.kept.len(), 1);
        let dropped = sampler.sample(vec![span(8, "inventory", SpanStatus::Ok)]);
        assert_eq!(dropped.kept.len(), 0, "a dropped trace stays dropped");
    }

    #[test]
    fn the_share_is_decided_by_trace_id_alone_and_close_to_the_share() {
        let (first, _) = sampler(None, 0.25);
        let (second, _) = sampler(None, 0.25);
        let ids: Vec<TraceId> = (0..20_000u128)
            .map(|n| TraceId((n * 7919 + 1).to_be_bytes()))
            .collect();
        let kept = ids.iter().filter(|id| first.in_share(id)).count();
        assert!(
            (4_400..=5_600).contains(&kept),
            "kept {kept} of 20,000 at 25%"
        );
        assert!(
            ids.iter()
                .all(|id| first.in_share(id) == second.in_share(id))
        );
        let (all, _) = sampler(None, 1.0);
        assert!(ids.iter().all(|id| all.in_share(id)));
    }

    #[test]
    fn a_trace_kept_by_rate_keeps_its_later_spans_from_other_services() {
        let (sampler, _) = sampler(Some((1, Duration::from_secs(3600))), 0.0);
        assert_eq!(
            sampler
                .sample(vec![span(1, "gateway", SpanStatus::Ok)])
                .kept
                .len(),
            1
        );
        assert_eq!(
            sampler
                .sample(vec![span(2, "gateway", SpanStatus::Ok)])
                .kept
                .len(),
            0
        );
        // `orders` has its own untouched rate, but the remembered decision wins.
        assert_eq!(
            sampler
                .sample(vec![span(1, "orders", SpanStatus::Ok)])
                .kept
                .len(),
            1
        );
        assert_eq!(
            sampler
                .sample(vec![span(2, "orders", SpanStatus::Ok)])
                .kept
                .len(),
            0
        );
    }
}
