//! The decision, without I/O or clocks of its own: samples in, replica counts out.
//!
//! Knative's KPA, with a scale-down rule of its own:
//!
//! - Each sample is the service's requests in flight, averaged over a proxy report
//!   interval and summed over proxies. The **stable** average is the mean of the
//!   samples in the stable window, the **panic** average the mean of those in the panic
//!   window (each over the part of the window the decider has seen).
//! - Stable: `desired = ceil(stable average / target)`.
//! - Panic begins when the panic average asks for twice the ready replicas
//!   (`ceil(panic average / target) ≥ 2 × ready`: load at twice the target per ready
//!   replica, rounded up to whole replicas as Knative rounds it), and lasts until a whole
//!   stable window has passed without that. While panicking, `desired = max(stable, ceil(panic average /
//!   target))`, and never less than the most it asked for since panic began: panic never
//!   scales down.
//! - Scaling down waits for the stable window: the count goes down to `n` only once every
//!   sample of the last stable window needed at most `n` (`ceil(sample / target) ≤ n`),
//!   and the decider has watched for a whole stable window — so a replica is removed a
//!   stable window after the last second that needed it (the role of Knative's
//!   scale-down delay and of the HPA's stabilization window).
//! - Always within `[min, max]`.

use std::collections::VecDeque;
use std::time::Duration;

use conway_core::manifest::Autoscale;
use tokio::time::Instant;

/// What the decider needs of `autoscale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Never fewer replicas.
    pub min: u32,
    /// Never more replicas.
    pub max: u32,
    /// In-flight requests per replica.
    pub target: f64,
    /// The long window.
    pub stable_window: Duration,
    /// The short window.
    pub panic_window: Duration,
}

impl From<&Autoscale> for Policy {
    fn from(autoscale: &Autoscale) -> Self {
        Self {
            min: autoscale.min,
            max: autoscale.max.max(autoscale.min),
            target: f64::from(autoscale.target_inflight.max(1)),
            stable_window: autoscale.stable_window.get(),
            panic_window: autoscale.panic_window.get(),
        }
    }
}

/// The panic threshold: the panic window asks for this many times the ready replicas.
pub const PANIC_THRESHOLD: f64 = 2.0;

/// One decision and what it rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The replicas wanted from now.
    pub desired: u32,
    /// The mean of the stable window's samples.
    pub stable: f64,
    /// The mean of the panic window's samples.
    pub panic: f64,
    /// Whether the decider is in panic mode.
    pub panicking: bool,
}

/// One service's decider.
#[derive(Debug)]
pub struct Decider {
    policy: Policy,
    samples: VecDeque<(Instant, f64)>,
    /// When the decider first had a sample.
    since: Option<Instant>,
    /// The last time the panic threshold was crossed, while panicking.
    panic_at: Option<Instant>,
    /// The most replicas asked for since panic began.
    panic_peak: u32,
}

impl Decider {
    /// A decider with no samples yet.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            samples: VecDeque::new(),
            since: None,
            panic_at: None,
            panic_peak: 0,
        }
    }

    /// The policy it follows.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Records the load seen at `at` (in-flight requests, summed over proxies).
    pub fn record(&mut self, at: Instant, inflight: f64) {
        let inflight = if inflight.is_finite() {
            inflight.max(0.0)
        } else {
            0.0
        };
        self.since.get_or_insert(at);
        self.samples.push_back((at, inflight));
        let keep = at.checked_sub(self.policy.stable_window);
        while let (Some(keep), Some(&(t, _))) = (keep, self.samples.front()) {
            if t > keep {
                break;
            }
            self.samples.pop_front();
        }
    }

    /// Decides at `now`, with `current` replicas wanted and `ready` of them healthy;
    /// `None` when the stable window holds no sample (none yet, or the load stopped
    /// being reported): the count stays as it is.
    pub fn decide(&mut self, now: Instant, current: u32, ready: u32) -> Option<Decision> {
        let since = self.since?;
        let policy = self.policy;
        let stable = self.mean(now, policy.stable_window)?;
        let panic = self.mean(now, policy.panic_window).unwrap_or(stable);
        let replicas = |load: f64| (load / policy.target).ceil().min(f64::from(u32::MAX)) as u32;
        let stable_wanted = replicas(stable);
        let panic_wanted = replicas(panic);

        let over = f64::from(panic_wanted) >= PANIC_THRESHOLD * f64::from(ready.max(1));
        if over {
            self.panic_at = Some(now);
        } else if self
            .panic_at
            .is_some_and(|at| now.duration_since(at) >= policy.stable_window)
        {
            self.panic_at = None;
            self.panic_peak = 0;
        }
        let panicking = self.panic_at.is_some();
        let mut desired = stable_wanted;
        if panicking {
            desired = desired.max(panic_wanted).max(self.panic_peak);
            self.panic_peak = desired;
        }
        if desired < current {
            // Down only as far as every sample of the last stable window allows, and
            // only once the decider has seen a whole stable window.
            let watched = now.duration_since(since) >= policy.stable_window;
            let needed = self
                .window(now, policy.stable_window)
                .map(|(_, v)| replicas(v))
                .max()
                .unwrap_or(0);
            desired = if watched {
                desired.max(needed).min(current)
            } else {
                current
            };
        }
        Some(Decision {
            desired: desired.clamp(policy.min, policy.max),
            stable,
            panic,
            panicking,
        })
    }

    fn window(&self, now: Instant, window: Duration) -> impl Iterator<Item = (Instant, f64)> + '_ {
        let from = now.checked_sub(window);
        self.samples
            .iter()
            .copied()
            .filter(move |(t, _)| from.is_none_or(|from| *t > from) && *t <= now)
    }

    fn mean(&self, now: Instant, window: Duration) -> Option<f64> {
        let (sum, n) = self
            .window(now, window)
            .fold((0.0, 0u32), |(sum, n), (_, v)| (sum + v, n + 1));
        (n > 0).then(|| sum / f64::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn policy() -> Policy {
        Policy {
            min: 1,
            max: 5,
            target: 2.0,
            stable_window: Duration::from_secs(60),
            panic_window: Duration::from_secs(6),
        }
    }

    /// A decider fed one sample a second from `start`, each `load(second)`.
    struct Run {
        decider: Decider,
        start: Instant,
        second: u64,
    }

    impl Run {
        fn new(policy: Policy) -> Self {
            Self {
                decider: Decider::new(policy),
                start: Instant::now(),
                second: 0,
            }
        }

        fn now(&self) -> Instant {
            self.start + SECOND * u32::try_from(self.second).expect("small")
        }

        /// `seconds` samples of `load`.
        fn feed(&mut self, seconds: u64, load: f64) {
            for _ in 0..seconds {
                self.second += 1;
                let now = self.now();
                self.decider.record(now, load);
            }
        }

        fn decide(&mut self, current: u32, ready: u32) -> Decision {
            let now = self.now();
            self.decider
                .decide(now, current, ready)
                .expect("a decision")
        }
    }

    #[test]
    fn no_samples_no_decision() {
        let mut decider = Decider::new(policy());
        assert_eq!(decider.decide(Instant::now(), 1, 1), None);
    }

    #[test]
    fn stable_load_asks_for_load_over_target_within_bounds() {
        let mut run = Run::new(policy());
        run.feed(60, 5.0);
        let decision = run.decide(2, 2);
        assert_eq!(decision.desired, 3, "ceil(5 / 2)");
        assert!(
            !decision.panicking,
            "5 < 2 × 2 × 2 is no panic with 2 ready"
        );
        assert_eq!(run.decide(3, 3).desired, 3);
        run.feed(60, 40.0);
        assert_eq!(run.decide(3, 3).desired, 5, "clamped to max");
        let mut idle = Run::new(Policy { min: 2, ..policy() });
        idle.feed(120, 0.0);
        assert_eq!(idle.decide(2, 2).desired, 2, "never below min");
    }

    #[test]
    fn a_jump_to_twice_the_target_panics_and_scales_up_at_once() {
        let mut run = Run::new(policy());
        run.feed(60, 1.5);
        assert_eq!(run.decide(1, 1).desired, 1);
        // Load jumps to 8 in flight on one replica (target 2): after 1 s the panic
        // window's mean is (5 × 1.5 + 8) / 6 ≈ 2.6, which asks for ceil(2.6 / 2) = 2
        // replicas: twice the one ready.
        run.feed(1, 8.0);
        let panic = run.decide(1, 1);
        assert!(panic.panicking, "{panic:?}");
        assert_eq!(panic.desired, 2, "ceil(2.58 / 2)");
        run.feed(2, 8.0);
        let more = run.decide(2, 1);
        assert_eq!(
            more.desired, 3,
            "ceil((3 × 1.5 + 3 × 8) / 6 / 2) = ceil(2.4)"
        );
        run.feed(3, 8.0);
        assert_eq!(run.decide(3, 1).desired, 4, "ceil(8 / 2)");
        // With three ready, eight in flight asks for four: not twice three, no panic
        // of its own, but panic holds until a stable window after the last crossing.
        let held = run.decide(4, 3);
        assert!(held.panicking);
        assert_eq!(held.desired, 4);
    }

    #[test]
    fn panic_never_scales_down_and_ends_a_stable_window_after_the_surge() {
        let mut run = Run::new(policy());
        run.feed(6, 0.0);
        run.feed(6, 10.0);
        let surge = run.decide(1, 1);
        assert!(surge.panicking);
        assert_eq!(surge.desired, 5);
        // The surge ends; the panic window empties, but panic holds the peak.
        run.feed(10, 0.0);
        let after = run.decide(5, 5);
        assert!(after.panicking, "{after:?}");
        assert_eq!(after.desired, 5, "no scale-down in panic");
        // A stable window after the last crossing, panic ends...
        run.feed(50, 0.0);
        let calm = run.decide(5, 5);
        assert!(!calm.panicking, "{calm:?}");
        // ...and the last second that needed 5 replicas is more than a window ago.
        assert_eq!(calm.desired, 1);
    }

    #[test]
    fn scaling_down_waits_a_stable_window_after_the_last_second_that_needed_it() {
        let mut run = Run::new(policy());
        run.feed(60, 5.5);
        assert_eq!(run.decide(3, 3).desired, 3);
        run.feed(1, 3.5);
        run.feed(1, 0.0);
        // From now on nothing needs more than one replica; the mean falls quickly, but
        // the last 5.5 and the 3.5 hold 3, then 2, each for a stable window.
        for _ in 0..57 {
            run.feed(1, 0.0);
            assert_eq!(run.decide(3, 3).desired, 3, "second {}", run.second);
        }
        run.feed(1, 0.0);
        assert_eq!(run.decide(3, 3).desired, 2, "the 3.5 still needs 2");
        run.feed(1, 0.0);
        assert_eq!(run.decide(2, 2).desired, 1);
    }

    #[test]
    fn a_new_decider_does_not_scale_down_before_it_has_watched_a_stable_window() {
        let mut run = Run::new(policy());
        run.feed(30, 0.0);
        assert_eq!(run.decide(4, 4).desired, 4);
        run.feed(30, 0.0);
        assert_eq!(run.decide(4, 4).desired, 4, "59 s watched");
        run.feed(1, 0.0);
        assert_eq!(run.decide(4, 4).desired, 1);
    }

    #[test]
    fn without_samples_for_a_stable_window_nothing_is_decided() {
        let mut run = Run::new(policy());
        run.feed(60, 6.0);
        assert_eq!(run.decide(1, 1).desired, 3);
        run.second += 60;
        assert_eq!(
            run.decider.decide(run.now(), 3, 3),
            None,
            "no reports: hold"
        );
    }

    #[test]
    fn samples_older_than_the_stable_window_are_forgotten() {
        let mut run = Run::new(Policy {
            stable_window: Duration::from_secs(10),
            panic_window: Duration::from_secs(2),
            ..policy()
        });
        run.feed(100, 3.0);
        assert_eq!(run.decider.samples.len(), 10);
        let decision = run.decide(2, 2);
        assert_eq!((decision.stable, decision.panic), (3.0, 3.0));
    }
}
