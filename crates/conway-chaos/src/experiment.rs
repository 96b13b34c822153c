//! An experiment file's types: the steady-state hypothesis, the method, the rollback.
//! Every key is checked (unknown keys are refused); [`crate::parse`] adds the rules
//! serde cannot say, each at its position.

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use conway_core::units::{Duration, Share};

/// A chaos experiment (`EXPERIMENT.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// What the experiment shows, in a sentence.
    pub title: String,
    /// Why it is run, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// The hypothesis: what "working" means, checked before, during and after.
    pub steady_state: SteadyState,
    /// The actions, in order.
    #[serde(default)]
    pub method: Vec<Spanned<Action>>,
    /// How the system is put back; it always runs.
    #[serde(default)]
    pub rollback: Rollback,
}

/// The steady-state hypothesis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteadyState {
    /// Time between checks while the method runs.
    #[serde(default = "SteadyState::default_interval")]
    pub interval: Spanned<Duration>,
    /// The probes; every one must hold.
    pub probes: Spanned<Vec<Spanned<Probe>>>,
}

impl SteadyState {
    /// The interval when none is given.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

    fn default_interval() -> Spanned<Duration> {
        Spanned::new(0..0, Self::DEFAULT_INTERVAL)
    }
}

/// One probe: an HTTP request, or a service's figures from the control plane's counters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// How the report names it.
    pub name: String,
    /// An HTTP GET that must answer a status in time.
    #[serde(default)]
    pub http: Option<HttpProbe>,
    /// A service whose requests (all of them, from every caller) are checked.
    #[serde(default)]
    pub service: Option<String>,
    /// The most 5xx answers the service may give, as a share of its requests.
    #[serde(default)]
    pub max_error_rate: Option<Share>,
    /// The slowest the service's 99th percentile may be.
    #[serde(default)]
    pub max_p99: Option<Duration>,
}

/// An HTTP probe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// An `http://` URL.
    pub url: Spanned<String>,
    /// The status the answer must have.
    #[serde(default = "HttpProbe::default_status")]
    pub status: Spanned<u16>,
    /// How long the whole answer may take.
    #[serde(default = "HttpProbe::default_timeout")]
    pub timeout: Duration,
}

impl HttpProbe {
    fn default_status() -> Spanned<u16> {
        Spanned::new(0..0, 200)
    }

    fn default_timeout() -> Duration {
        Duration::from_secs(1)
    }
}

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Hold a share of a service's requests (`percent`, `duration`).
    Delay,
    /// Answer a share of a service's requests with an error (`percent`, `status`).
    Abort,
    /// SIGKILL an instance (`instance`, `every`, `for`), as `conway chaos kill`.
    Kill,
    /// Pause the method for `for`.
    Wait,
}

impl ActionKind {
    /// Its name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Delay => "delay",
            Self::Abort => "abort",
            Self::Kill => "kill",
            Self::Wait => "wait",
        }
    }

    /// Its name with an article ("an abort").
    pub fn a_name(self) -> &'static str {
        match self {
            Self::Delay => "a delay",
            Self::Abort => "an abort",
            Self::Kill => "a kill",
            Self::Wait => "a wait",
        }
    }
}

/// One step of the method. Which keys apply depends on `action`; [`crate::parse`]
/// refuses the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// `delay`, `abort`, `kill` or `wait`.
    pub action: ActionKind,
    /// The service it acts on (all but `wait`).
    #[serde(default)]
    pub service: Option<Spanned<String>>,
    /// The share of requests a fault hits, above 0 and at most 100.
    #[serde(default)]
    pub percent: Option<Spanned<f64>>,
    /// How long a delay holds each request.
    #[serde(default)]
    pub duration: Option<Spanned<Duration>>,
    /// The status an abort answers with (400 to 599).
    #[serde(default)]
    pub status: Option<Spanned<u16>>,
    /// How long the fault or kill job lasts (a fault without it stays until the
    /// rollback); how long a `wait` pauses.
    #[serde(default, rename = "for")]
    pub duration_for: Option<Spanned<Duration>>,
    /// A kill's instance (else a random running one).
    #[serde(default)]
    pub instance: Option<Spanned<String>>,
    /// Kill again at this interval.
    #[serde(default)]
    pub every: Option<Spanned<Duration>>,
}

/// The rollback: every fault the method set is removed (a service's run-time faults
/// from before the experiment are put back), every kill job it started is stopped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// How long the steady state may take to come back after the rollback: the probes
    /// are checked every `interval` until all hold, for at most this long. Default:
    /// one check, at once.
    #[serde(default)]
    pub recover_within: Option<Spanned<Duration>>,
}
