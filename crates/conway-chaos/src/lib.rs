//! Chaos experiments, as Chaos Toolkit and Gremlin users know them: a steady-state
//! hypothesis (probes that must hold), a method (delay, abort, kill, wait), a rollback
//! that always runs, and a report.
//!
//! [`load_file`] reads an experiment file with `FILE:LINE:COLUMN` errors; [`run`] runs
//! it against a control plane through its API client only — faults with
//! `PUT|DELETE /v1/services/{name}/faults`, kills with `POST /v1/chaos/kill` (served by
//! `conway up`), figures from `GET /v1/services/{name}/series` — and returns the
//! [`Report`].

mod experiment;
mod inject;
mod parse;
mod probe;
mod report;
mod run;

pub use experiment::{Action, ActionKind, Experiment, HttpProbe, Probe, Rollback, SteadyState};
pub use parse::{MAX_EXPERIMENT_BYTES, MIN_INTERVAL, ParseError, load_file, parse};
pub use report::{Check, Deviation, Phase, PhaseReport, ProbeResult, Report, Step, Verdict};
pub use run::{RunError, run};
