//! Which faults apply to a request, and the dice that decide each request's fate.

use std::time::Duration;

use conway_core::manifest::Faults;

/// Where a request's faults come from.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultSources<'a> {
    /// The route's own faults (`[[gateway.routes]] faults`).
    pub route: Option<&'a Faults>,
    /// The service's declared faults (`[services.NAME] faults`).
    pub declared: Option<&'a Faults>,
    /// The service's run-time faults (`PUT /v1/services/NAME/faults`).
    pub runtime: Option<&'a Faults>,
}

/// The faults in force for one route and service, ready to sample.
///
/// They apply in two stages, route then service. The service's stage takes each kind
/// (delay, abort) from the run-time faults if they set it, else from the declared ones:
/// a chaos experiment's `PUT` decides exactly what it sets (`percent = 0` turns a
/// declared kind off) and leaves the other kind alone, and its `DELETE` brings the
/// declared faults back. The route's stage comes on top: each stage rolls its own dice,
/// delays add up, and the first abort that fires (the route's) gives the status.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultInjector {
    stages: [Stage; 2],
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Stage {
    /// Probability (0–1) and length.
    delay: Option<(f64, Duration)>,
    /// Probability (0–1) and status.
    abort: Option<(f64, u16)>,
}

/// What befalls one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultDecision {
    /// Hold the request this long before going on.
    pub delay: Option<Duration>,
    /// Then answer with this status instead of sending it.
    pub abort: Option<u16>,
}

impl FaultDecision {
    /// Whether nothing befalls the request.
    pub const fn is_none(&self) -> bool {
        self.delay.is_none() && self.abort.is_none()
    }
}

impl FaultInjector {
    /// The faults in force, merged as the type's docs say.
    pub fn new(sources: FaultSources<'_>) -> Self {
        let route = sources.route.map(Stage::from).unwrap_or_default();
        let declared = sources.declared.map(Stage::from).unwrap_or_default();
        let runtime = sources.runtime.map(Stage::from).unwrap_or_default();
        let service = Stage {
            delay: runtime.delay.or(declared.delay),
            abort: runtime.abort.or(declared.abort),
        };
        Self {
            stages: [route, service],
        }
    }

    /// Whether no fault can ever fire: the proxy may skip the dice.
    pub fn is_empty(&self) -> bool {
        self.stages.iter().all(|stage| {
            stage.delay.is_none_or(|(p, d)| p == 0.0 || d.is_zero())
                && stage.abort.is_none_or(|(p, _)| p == 0.0)
        })
    }

    /// Rolls the dice for one request with `rng`: seed it for deterministic tests, or
    /// keep one per worker (`fastrand::Rng::new()`) on the hot path.
    pub fn decide(&self, rng: &mut fastrand::Rng) -> FaultDecision {
        let mut decision = FaultDecision::default();
        for stage in &self.stages {
            // Each configured kind rolls its die on every request, fired or not, so a
            // seed gives the same sequence whatever the earlier stages decided.
            if let Some((p, delay)) = stage.delay
                && rng.f64() < p
                && !delay.is_zero()
            {
                let total = decision.delay.unwrap_or_default().saturating_add(delay);
                decision.delay = Some(total);
            }
            if let Some((p, status)) = stage.abort
                && rng.f64() < p
                && decision.abort.is_none()
            {
                decision.abort = Some(status);
            }
        }
        decision
    }
}

impl From<&Faults> for Stage {
    fn from(faults: &Faults) -> Self {
        Self {
            delay: faults
                .delay
                .as_ref()
                .map(|delay| (probability(delay.percent), delay.duration.get())),
            abort: faults
                .abort
                .as_ref()
                .map(|abort| (probability(abort.percent), abort.status)),
        }
    }
}

/// A percentage as a probability, clamped to 0–1; NaN never fires.
fn probability(percent: f64) -> f64 {
    if percent.is_nan() {
        0.0
    } else {
        (percent / 100.0).clamp(0.0, 1.0)
    }
}
