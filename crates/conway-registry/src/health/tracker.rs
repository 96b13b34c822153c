//! The health state machine: consecutive passes and failures against thresholds, as
//! Consul and Envoy count them. Pure: no clock, no I/O.

use super::HealthState;

/// A change of state that one observation caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before the observation.
    pub from: HealthState,
    /// The state after it.
    pub to: HealthState,
}

/// Tracks one target's health from the outcomes of its checks.
///
/// - A new target is [`HealthState::Starting`]. It becomes healthy after
///   `healthy_threshold` consecutive passes, and unhealthy after `unhealthy_threshold`
///   consecutive failures (an instance that never comes up is reported, not left
///   starting forever).
/// - A healthy target becomes unhealthy after `unhealthy_threshold` consecutive failures.
/// - An unhealthy target becomes healthy after `healthy_threshold` consecutive passes.
///
/// A pass resets the count of failures and a failure the count of passes. Thresholds
/// of zero count as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTracker {
    healthy_threshold: u32,
    unhealthy_threshold: u32,
    state: HealthState,
    passes: u32,
    failures: u32,
}

impl HealthTracker {
    /// A tracker in the `starting` state.
    pub fn new(healthy_threshold: u32, unhealthy_threshold: u32) -> Self {
        Self {
            healthy_threshold: healthy_threshold.max(1),
            unhealthy_threshold: unhealthy_threshold.max(1),
            state: HealthState::Starting,
            passes: 0,
            failures: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Consecutive passes since the last failure (or since the start).
    pub fn consecutive_passes(&self) -> u32 {
        self.passes
    }

    /// Consecutive failures since the last pass (or since the start).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Records the outcome of one check; returns the transition it caused, if any.
    pub fn observe(&mut self, pass: bool) -> Option<Transition> {
        let next = if pass {
            self.failures = 0;
            self.passes = self.passes.saturating_add(1);
            (self.state != HealthState::Healthy && self.passes >= self.healthy_threshold)
                .then_some(HealthState::Healthy)
        } else {
            self.passes = 0;
            self.failures = self.failures.saturating_add(1);
            (self.state != HealthState::Unhealthy && self.failures >= self.unhealthy_threshold)
                .then_some(HealthState::Unhealthy)
        }?;
        let transition = Transition {
            from: self.state,
            to: next,
        };
        self.state = next;
        Some(transition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthState::{Healthy, Starting, Unhealthy};

    /// Feeds `outcomes` ('P' pass, 'F' fail) and returns the state after each.
    fn run(tracker: &mut HealthTracker, outcomes: &str) -> Vec<HealthState> {
        outcomes
            .chars()
            .map(|c| {
                tracker.observe(c == 'P');
                tracker.state()
            })
            .collect()
    }

    fn healthy_tracker(healthy: u32, unhealthy: u32) -> HealthTracker {
        let mut tracker = HealthTracker::new(healthy, unhealthy);
        for _ in 0..healthy {
            tracker.observe(true);
        }
        assert_eq!(tracker.state(), Healthy);
        tracker
    }

    #[test]
    fn starts_starting_with_no_counts() {
        let tracker = HealthTracker::new(2, 3);
        assert_eq!(tracker.state(), Starting);
        assert_eq!(
            (tracker.consecutive_passes(), tracker.consecutive_failures()),
            (0, 0)
        );
    }

    #[test]
    fn first_pass_makes_healthy_with_threshold_one() {
        let mut tracker = HealthTracker::new(1, 2);
        let transition = tracker.observe(true);
        assert_eq!(
            transition,
            Some(Transition {
                from: Starting,
                to: Healthy
            })
        );
    }

    #[test]
    fn starting_needs_healthy_threshold_consecutive_passes() {
        let mut tracker = HealthTracker::new(3, 5);
        assert_eq!(run(&mut tracker, "PP"), [Starting, Starting]);
        assert_eq!(tracker.observe(true).map(|t| t.to), Some(Healthy));
    }

    #[test]
    fn a_failure_restarts_the_count_of_passes() {
        let mut tracker = HealthTracker::new(3, 5);
        assert_eq!(
            run(&mut tracker, "PPFPPP"),
            [Starting, Starting, Starting, Starting, Starting, Healthy]
        );
    }

    #[test]
    fn starting_becomes_unhealthy_after_unhealthy_threshold_failures() {
        let mut tracker = HealthTracker::new(1, 3);
        assert_eq!(run(&mut tracker, "FF"), [Starting, Starting]);
        assert_eq!(
            tracker.observe(false),
            Some(Transition {
                from: Starting,
                to: Unhealthy
            })
        );
    }

    #[test]
    fn healthy_becomes_unhealthy_after_unhealthy_threshold_failures() {
        let mut tracker = healthy_tracker(1, 3);
        assert_eq!(run(&mut tracker, "FF"), [Healthy, Healthy]);
        assert_eq!(
            tracker.observe(false),
            Some(Transition {
                from: Healthy,
                to: Unhealthy
            })
        );
    }

    #[test]
    fn a_pass_restarts_the_count_of_failures() {
        let mut tracker = healthy_tracker(1, 3);
        assert_eq!(
            run(&mut tracker, "FFPFFPFFF"),
            [
                Healthy, Healthy, Healthy, Healthy, Healthy, Healthy, Healthy, Healthy, Unhealthy
            ]
        );
    }

    #[test]
    fn unhealthy_becomes_healthy_after_healthy_threshold_passes() {
        let mut tracker = healthy_tracker(2, 1);
        assert_eq!(run(&mut tracker, "F"), [Unhealthy]);
        assert_eq!(run(&mut tracker, "PFP"), [Unhealthy, Unhealthy, Unhealthy]);
        assert_eq!(
            tracker.observe(true),
            Some(Transition {
                from: Unhealthy,
                to: Healthy
            })
        );
    }

    #[test]
    fn only_changes_are_reported() {
        let mut tracker = HealthTracker::new(1, 1);
        let transitions: Vec<_> = "PPPFFFPP"
            .chars()
            .map(|c| tracker.observe(c == 'P'))
            .collect();
        let reported: Vec<_> = transitions
            .iter()
            .flatten()
            .map(|t| (t.from, t.to))
            .collect();
        assert_eq!(
            reported,
            [
                (Starting, Healthy),
                (Healthy, Unhealthy),
                (Unhealthy, Healthy)
            ]
        );
        assert_eq!(transitions.iter().filter(|t| t.is_some()).count(), 3);
    }

    #[test]
    fn counts_are_consecutive() {
        let mut tracker = HealthTracker::new(5, 5);
        run(&mut tracker, "PPFFF");
        assert_eq!(
            (tracker.consecutive_passes(), tracker.consecutive_failures()),
            (0, 3)
        );
        run(&mut tracker, "PP");
        assert_eq!(
            (tracker.consecutive_passes(), tracker.consecutive_failures()),
            (2, 0)
        );
    }

    #[test]
    fn zero_thresholds_count_as_one() {
        let mut tracker = HealthTracker::new(0, 0);
        assert_eq!(run(&mut tracker, "PFP"), [Healthy, Unhealthy, Healthy]);
    }

    /// Every sequence of up to 10 outcomes for thresholds 1 to 3, against a model that
    /// counts the trailing run of equal outcomes.
    #[test]
    fn matches_a_model_on_every_short_sequence() {
        for healthy in 1..=3u32 {
            for unhealthy in 1..=3u32 {
                for len in 0..=10u32 {
                    for bits in 0..(1u32 << len) {
                        let outcomes: Vec<bool> = (0..len).map(|i| bits >> i & 1 == 1).collect();
                        let mut tracker = HealthTracker::new(healthy, unhealthy);
                        let mut expected = Starting;
                        for (i, &pass) in outcomes.iter().enumerate() {
                            let run = outcomes[..=i].iter().rev().take_while(|&&o| o == pass);
                            let run = u32::try_from(run.count()).unwrap_or(u32::MAX);
                            if pass && run >= healthy {
                                expected = Healthy;
                            } else if !pass && run >= unhealthy {
                                expected = Unhealthy;
                            }
                            let before = tracker.state();
                            let transition = tracker.observe(pass);
                            assert_eq!(tracker.state(), expected, "{outcomes:?} at {i}");
                            let changed = (before != expected).then_some(Transition {
                                from: before,
                                to: expected,
                            });
                            assert_eq!(transition, changed, "{outcomes:?} at {i}");
                        }
                    }
                }
            }
        }
    }
}
