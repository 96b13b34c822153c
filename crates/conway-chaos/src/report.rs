//! What an experiment found: each phase's checks, the method's steps, the rollback's,
//! and the verdict. The CLI prints it as tables, or whole as JSON.

use serde::Serialize;

/// The experiment's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check of every probe held, before, during and after.
    Held,
    /// A probe deviated (see [`Report::deviation`]).
    Deviated,
    /// An action could not be done (see [`Report::error`]); rolled back.
    Failed,
    /// Ctrl-C or SIGTERM cut the method short; rolled back.
    Interrupted,
}

/// When a check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before anything is injected: a deviation here aborts the experiment.
    Before,
    /// While the method runs, every `interval`, and once at its end.
    During,
    /// After the rollback: has the system recovered?
    After,
}

impl Phase {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Before => "before",
            Self::During => "during",
            Self::After => "after",
        }
    }
}

/// One probe's result in one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    /// The probe's name.
    pub probe: String,
    /// What the hypothesis says.
    pub expected: String,
    /// What was seen.
    pub observed: String,
    /// Whether it held.
    pub ok: bool,
}

/// One check of every probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Milliseconds since the experiment started.
    pub at_ms: u64,
    /// Each probe, in the file's order.
    pub results: Vec<ProbeResult>,
}

impl Check {
    /// The first probe that did not hold.
    pub fn deviation(&self) -> Option<&ProbeResult> {
        self.results.iter().find(|r| !r.ok)
    }
}

/// A phase's checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    /// Which phase.
    pub phase: Phase,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl PhaseReport {
    /// One row per probe: its first deviation in the phase if it had one, else its last
    /// result.
    pub fn summary(&self) -> Vec<ProbeResult> {
        let Some(last) = self.checks.last() else {
            return Vec::new();
        };
        last.results
            .iter()
            .enumerate()
            .map(|(i, latest)| {
                self.checks
                    .iter()
                    .filter_map(|c| c.results.get(i))
                    .find(|r| !r.ok)
                    .unwrap_or(latest)
                    .clone()
            })
            .collect()
    }
}

/// The deviation that decided the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deviation {
    /// In which phase.
    pub phase: Phase,
    /// Milliseconds since the experiment started.
    pub at_ms: u64,
    /// The probe, what it expected and what it saw.
    #[serde(flatten)]
    pub result: ProbeResult,
}

/// A step of the method or of the rollback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Milliseconds since the experiment started.
    pub at_ms: u64,
    /// What was done (`delay inventory 50% by 300ms for 10s`).
    pub what: String,
    /// Why it failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole report (`conway chaos run --output json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The experiment's title.
    pub title: String,
    /// The outcome.
    pub verdict: Verdict,
    /// The deviation, when the verdict is `deviated` (or the first one seen otherwise).
    pub deviation: Option<Deviation>,
    /// Why the experiment failed or stopped, if it did.
    pub error: Option<String>,
    /// The checks of each phase that ran.
    pub phases: Vec<PhaseReport>,
    /// The method's steps, as done.
    pub method: Vec<Step>,
    /// The rollback's steps.
    pub rollback: Vec<Step>,
    /// From the first check to the last, in milliseconds.
    pub elapsed_ms: u64,
}

impl Report {
    /// Whether the hypothesis held throughout (exit 0).
    pub fn held(&self) -> bool {
        self.verdict == Verdict::Held
    }
}
