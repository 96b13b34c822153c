//! The runner: checks many targets, each on its own schedule, in a background task of
//! its own, and reports every change of state on one channel.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conway_core::manifest::Health;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{self, MissedTickBehavior};

use super::HealthState;
use super::probe::{Probe, ProbeConfigError, ProbeError, probe_for};
use super::tracker::HealthTracker;

/// A target's change of state, as the checker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent<K> {
    /// The target (an instance id).
    pub id: K,
    /// The state it left.
    pub from: HealthState,
    /// The state it entered.
    pub to: HealthState,
    /// Why, for people: the last check's failure (`"HTTP 503"`, `"connect refused"`,
    /// `"timed out after 500ms"`), or that checks passed.
    pub reason: String,
}

/// Checks targets (instances, by id) in the background, each every `interval` of its
/// [`Health`] settings, and sends a [`HealthEvent`] whenever one changes state.
///
/// Each target is checked by its own task: the first check runs at once, the next ones
/// every `interval` after the previous one was due (a check that overruns delays the
/// next instead of causing a burst), each bounded by `timeout`. A target's task stops
/// when the target is removed or replaced, or when the checker is dropped; no event about
/// a target is sent after its removal returns. Events go on an unbounded channel: each
/// target sends at most one per check, and only on a change.
///
/// The checker must be used within a Tokio runtime.
pub struct Checker<K> {
    targets: Mutex<HashMap<K, Target>>,
    events: mpsc::UnboundedSender<HealthEvent<K>>,
}

/// A running target: its task, and the state it shares with the checker.
struct Target {
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

struct Shared {
    state: HealthState,
    stopped: bool,
}

impl Drop for Target {
    fn drop(&mut self) {
        // Under the lock the task reports under, so that no report follows.
        self.shared.lock().stopped = true;
        self.task.abort();
    }
}

/// The schedule and thresholds of one target, from its `Health` settings.
#[derive(Debug, Clone, Copy)]
struct Settings {
    interval: Duration,
    timeout: Duration,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

impl Settings {
    /// The shortest interval; a zero one would spin.
    const MIN_INTERVAL: Duration = Duration::from_millis(1);

    fn new(health: &Health) -> Self {
        Self {
            interval: health.interval.get().max(Self::MIN_INTERVAL),
            timeout: health.timeout().get(),
            healthy_threshold: health.healthy_threshold,
            unhealthy_threshold: health.unhealthy_threshold,
        }
    }
}

impl<K> Checker<K>
where
    K: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
{
    /// A checker with no targets, and the receiver of its events.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<HealthEvent<K>>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let checker = Self {
            targets: Mutex::new(HashMap::new()),
            events,
        };
        (checker, receiver)
    }

    /// Starts checking `target` as `health` says (an HTTP GET or a TCP connect), as
    /// `id`, in the `starting` state; replaces any target with the same id.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn add(&self, id: K, target: SocketAddr, health: &Health) -> Result<(), ProbeConfigError> {
        self.add_probe(id, probe_for(health, target)?, health);
        Ok(())
    }

    /// Starts checking with a probe of the caller's, on the schedule and thresholds of
    /// `health` (whose `http` and `tcp` are ignored); replaces any target with the same id.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn add_probe(&self, id: K, probe: Box<dyn Probe>, health: &Health) {
        let shared = Arc::new(Mutex::new(Shared {
            state: HealthState::Starting,
            stopped: false,
        }));
        let task = tokio::spawn(run(
            id.clone(),
            probe,
            Settings::new(health),
            Arc::clone(&shared),
            self.events.clone(),
        ));
        // The replaced target, if any, stops as it drops.
        let replaced = self.targets.lock().insert(id, Target { shared, task });
        drop(replaced);
    }

    /// Stops checking `id`; whether it was checked. No event about it follows.
    pub fn remove(&self, id: &K) -> bool {
        let removed = self.targets.lock().remove(id);
        removed.is_some()
    }

    /// The current state of `id`, if it is checked.
    pub fn state(&self, id: &K) -> Option<HealthState> {
        let targets = self.targets.lock();
        targets.get(id).map(|target| target.shared.lock().state)
    }

    /// Whether `id` is checked.
    pub fn contains(&self, id: &K) -> bool {
        self.targets.lock().contains_key(id)
    }

    /// How many targets are checked.
    pub fn len(&self) -> usize {
        self.targets.lock().len()
    }

    /// Whether no target is checked.
    pub fn is_empty(&self) -> bool {
        self.targets.lock().is_empty()
    }
}

impl<K> fmt::Debug for Checker<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checker")
            .field("targets", &self.targets.lock().len())
            .finish_non_exhaustive()
    }
}

/// One target's task: check, track, report; until aborted.
async fn run<K: Clone + fmt::Debug>(
    id: K,
    probe: Box<dyn Probe>,
    settings: Settings,
    shared: Arc<Mutex<Shared>>,
    events: mpsc::UnboundedSender<HealthEvent<K>>,
) {
    let mut tracker = HealthTracker::new(settings.healthy_threshold, settings.unhealthy_threshold);
    let mut ticks = time::interval(settings.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut event = HealthEvent {
        id,
        from: HealthState::Starting,
        to: HealthState::Starting,
        reason: String::new(),
    };
    loop {
        ticks.tick().await;
        let outcome = time::timeout(settings.timeout, probe.check())
            .await
            .unwrap_or(Err(ProbeError::TimedOut(settings.timeout)));
        tracing::trace!(target_id = ?event.id, ?outcome, "health check");
        let Some(transition) = tracker.observe(outcome.is_ok()) else {
            continue;
        };
        event.from = transition.from;
        event.to = transition.to;
        event.reason = match outcome {
            Err(error) => error.to_string(),
            Ok(()) if settings.healthy_threshold > 1 => {
                format!("{} consecutive checks passed", settings.healthy_threshold)
            }
            Ok(()) => "check passed".to_owned(),
        };
        let mut shared = shared.lock();
        if shared.stopped {
            return;
        }
        shared.state = transition.to;
        tracing::debug!(target_id = ?event.id, from = %event.from, to = %event.to, reason = %event.reason, "health changed");
        // A closed receiver only means nobody listens; `state` still answers.
        let _ = events.send(event.clone());
    }
}

#[cfg(test)]
mod tests;
