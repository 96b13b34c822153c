//! The circuit breaker's state machine.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use conway_core::manifest::CircuitBreaker as Config;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::error::Open;
use super::window::Window;
use crate::outcome::Outcome;

/// What a caller hears while half-open with every probe out: the probes decide soon,
/// so one second (HTTP's finest `retry-after`).
const HALF_OPEN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A service's circuit breaker. Share it in an `Arc`; every method takes `&self` and
/// holds a lock for a few field updates at most.
pub struct CircuitBreaker {
    failure_ratio: f64,
    min_requests: u64,
    open_for: Duration,
    probes: u32,
    origin: Instant,
    inner: Mutex<Inner>,
    /// [`State`] as a `u8`, for lock-free reads.
    state: AtomicU8,
    opened: AtomicU64,
    half_opened: AtomicU64,
    closed: AtomicU64,
    rejected: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Bumped on every transition: a permit counts only in the phase that issued it.
    generation: u64,
    window: Window,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { issued: u32, succeeded: u32 },
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Requests flow; failures are counted.
    Closed,
    /// Requests fail fast until `open_for` has passed.
    Open,
    /// A few probe requests are let through to test the service.
    HalfOpen,
}

impl State {
    /// A gauge value for metrics, growing with severity: closed 0, half-open 1, open 2.
    pub const fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }

    /// `"closed"`, `"open"` or `"half-open"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        }
    }

    const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::HalfOpen,
            2 => Self::Open,
            _ => Self::Closed,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of state, returned by [`Permit::record`] so the caller can log it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// Closed or half-open → open.
    Opened,
    /// Open → half-open.
    HalfOpened,
    /// Half-open → closed.
    Closed,
}

/// How many transitions of each kind a breaker has made, and how many requests it
/// refused, for counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transitions {
    /// Into open.
    pub opened: u64,
    /// Into half-open.
    pub half_opened: u64,
    /// Into closed (from half-open).
    pub closed: u64,
    /// Requests refused while open or half-open.
    pub rejected: u64,
}

impl CircuitBreaker {
    /// A closed breaker as the manifest configures it. Out-of-range values are
    /// clamped: the ratio to 0–1 (NaN to 1), probes to at least 1.
    pub fn new(config: &Config) -> Self {
        let failure_ratio = if config.failure_ratio.is_nan() {
            1.0
        } else {
            config.failure_ratio.clamp(0.0, 1.0)
        };
        Self {
            failure_ratio,
            min_requests: u64::from(config.min_requests),
            open_for: config.open_for.get(),
            probes: config.half_open_probes.max(1),
            origin: Instant::now(),
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                generation: 0,
                window: Window::new(config.window.get()),
            }),
            state: AtomicU8::new(0),
            opened: AtomicU64::new(0),
            half_opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Asks to send a request. Closed: a permit. Open: [`Open`] with the time left,
    /// until `open_for` has passed; then the breaker turns half-open and lets
    /// `half_open_probes` requests through as probes, refusing others until they are
    /// recorded.
    pub fn try_acquire(self: &Arc<Self>) -> Result<Permit, Open> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let probe = match inner.phase {
            Phase::Closed => false,
            Phase::Open { until } if now < until => {
                drop(inner);
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Open::new(until - now));
            }
            Phase::Open { .. } => {
                self.enter(
                    &mut inner,
                    Phase::HalfOpen {
                        issued: 1,
                        succeeded: 0,
                    },
                );
                true
            }
            Phase::HalfOpen { issued, succeeded } if issued < self.probes => {
                inner.phase = Phase::HalfOpen {
                    issued: issued + 1,
                    succeeded,
                };
                true
            }
            Phase::HalfOpen { .. } => {
                drop(inner);
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(Open::new(HALF_OPEN_RETRY_AFTER));
            }
        };
        Ok(Permit {
            breaker: Arc::clone(self),
            generation: inner.generation,
            probe,
            recorded: false,
        })
    }

    /// The state now, without locking. An open breaker whose `open_for` has passed
    /// reads as open until the next request turns it half-open.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Transitions made and requests refused so far.
    pub fn transitions(&self) -> Transitions {
        Transitions {
            opened: self.opened.load(Ordering::Relaxed),
            half_opened: self.half_opened.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    fn record(&self, generation: u64, probe: bool, outcome: Outcome) -> Option<Transition> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        if inner.generation != generation {
            return None; // issued before the last transition: its phase is over
        }
        let failed = outcome.is_failure();
        match inner.phase {
            Phase::Closed => {
                let tick = inner
                    .window
                    .tick(now.saturating_duration_since(self.origin));
                inner.window.record(tick, failed);
                let (requests, failures) = inner.window.totals();
                let tripped = failed
                    && requests >= self.min_requests
                    && failures as f64 >= self.failure_ratio * requests as f64;
                tripped.then(|| self.open(&mut inner, now))
            }
            Phase::HalfOpen { .. } if failed && probe => Some(self.open(&mut inner, now)),
            Phase::HalfOpen { issued, succeeded } if probe => {
                if succeeded + 1 >= self.probes {
                    inner.window.reset();
                    self.enter(&mut inner, Phase::Closed);
                    Some(Transition::Closed)
                } else {
                    inner.phase = Phase::HalfOpen {
                        issued,
                        succeeded: succeeded + 1,
                    };
                    None
                }
            }
            Phase::HalfOpen { .. } | Phase::Open { .. } => None,
        }
    }

    /// A probe dropped unrecorded gives its slot back, so the breaker cannot be left
    /// half-open with probes that will never report.
    fn release(&self, generation: u64) {
        let mut inner = self.inner.lock();
        if let (true, Phase::HalfOpen { issued, succeeded }) =
            (inner.generation == generation, inner.phase)
        {
            inner.phase = Phase::HalfOpen {
                issued: issued.saturating_sub(1),
                succeeded,
            };
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) -> Transition {
        let until = now.checked_add(self.open_for).unwrap_or(now);
        self.enter(inner, Phase::Open { until });
        Transition::Opened
    }

    fn enter(&self, inner: &mut Inner, phase: Phase) {
        inner.phase = phase;
        inner.generation += 1;
        let (state, counter) = match phase {
            Phase::Closed => (State::Closed, &self.closed),
            Phase::Open { .. } => (State::Open, &self.opened),
            Phase::HalfOpen { .. } => (State::HalfOpen, &self.half_opened),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.state.store(state.gauge() as u8, Ordering::Relaxed);
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .field("failure_ratio", &self.failure_ratio)
            .field("min_requests", &self.min_requests)
            .field("open_for", &self.open_for)
            .field("probes", &self.probes)
            .finish_non_exhaustive()
    }
}

/// Leave to send one request through a breaker; record what became of it.
///
/// A permit dropped without [`record`](Permit::record) (the caller went away, or a
/// policy outside refused) counts as neither success nor failure; a dropped probe
/// gives its slot to the next request. A permit counts only in the phase that issued
/// it: results of requests let through before the breaker last changed state are
/// ignored.
#[derive(Debug)]
#[must_use = "record the outcome, or the request counts as neither success nor failure"]
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    generation: u64,
    probe: bool,
    recorded: bool,
}

impl Permit {
    /// Whether this request is a half-open probe.
    pub const fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records what became of the request (a `4xx` is a [`Outcome::Success`]); returns
    /// the transition it caused, if any.
    pub fn record(mut self, outcome: Outcome) -> Option<Transition> {
        self.recorded = true;
        self.breaker.record(self.generation, self.probe, outcome)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.recorded && self.probe {
            self.breaker.release(self.generation);
        }
    }
}
