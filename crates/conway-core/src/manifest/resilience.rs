//! `[services.NAME.resilience]`: the policies between a caller and a service's instances.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::string_or_table::table_only;

use crate::units::{Duration, Share, string_unit};

/// Timeouts, retries, circuit breaking, outlier ejection, concurrency and balancing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Resilience {
    /// The whole deadline of a request, retries included. A caller's
    /// `x-conway-deadline-ms` may shorten it, never lengthen it.
    #[serde(default = "Resilience::default_timeout")]
    pub timeout: Duration,
    /// Retries of failed tries, within a budget.
    #[serde(default)]
    pub retries: Retries,
    /// Stop calling the service for a while when too many calls fail; off unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Take instances that keep failing out of the balancer for a while; off unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<Outlier>,
    /// The most requests in flight to the service from one proxy; more are shed with 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// How an instance is picked for each request.
    #[serde(default)]
    pub balancer: Balancer,
}

impl Resilience {
    fn default_timeout() -> Duration {
        Duration::from_secs(15)
    }
}

impl Default for Resilience {
    fn default() -> Self {
        Self {
            timeout: Self::default_timeout(),
            retries: Retries::default(),
            circuit_breaker: None,
            outlier: None,
            max_concurrency: None,
            balancer: Balancer::default(),
        }
    }
}

/// Retries: of idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE) and of any request
/// with an `Idempotency-Key` header; each retry picks another instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Retries {
    /// Retries after the first try (0 turns retries off).
    #[serde(default = "Retries::default_attempts")]
    pub attempts: u32,
    /// Retries may add at most this share to the requests sent (plus 10 a second), so
    /// retries never multiply an overload.
    #[serde(default = "Retries::default_budget")]
    pub budget: Share,
    /// A deadline for each try; default: none but the whole deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    /// Which failures are retried.
    #[serde(default = "Retries::default_on")]
    pub on: Vec<RetryCondition>,
}

impl Retries {
    fn default_attempts() -> u32 {
        2
    }

    fn default_budget() -> Share {
        Share::from_percent(20)
    }

    fn default_on() -> Vec<RetryCondition> {
        vec![RetryCondition::ConnectError, RetryCondition::Reset]
    }
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            attempts: Self::default_attempts(),
            budget: Self::default_budget(),
            per_try_timeout: None,
            on: Self::default_on(),
        }
    }
}

/// A failure a retry may follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RetryCondition {
    /// The connection to the instance could not be made.
    ConnectError,
    /// The connection was reset before a response came.
    Reset,
    /// Any 5xx answer.
    #[serde(rename = "5xx")]
    ServerError,
    /// 502, 503 or 504.
    GatewayError,
    /// The try's own deadline (`per_try_timeout`) passed.
    Timeout,
}

/// A circuit breaker per service: the failure ratio over a sliding window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct CircuitBreaker {
    /// The share of failed requests (5xx, resets, timeouts; never 4xx) that opens it,
    /// from 0.0 to 1.0.
    #[serde(default = "CircuitBreaker::default_failure_ratio")]
    pub failure_ratio: f64,
    /// The fewest requests in the window before the ratio counts.
    #[serde(default = "CircuitBreaker::default_min_requests")]
    pub min_requests: u32,
    /// The sliding window the ratio is taken over.
    #[serde(default = "CircuitBreaker::default_window")]
    pub window: Duration,
    /// How long it stays open (failing fast) before probing.
    #[serde(default = "CircuitBreaker::default_open_for")]
    pub open_for: Duration,
    /// Probe requests let through while half-open; all must pass to close it.
    #[serde(default = "CircuitBreaker::default_half_open_probes")]
    pub half_open_probes: u32,
}

impl CircuitBreaker {
    fn default_failure_ratio() -> f64 {
        0.5
    }

    fn default_min_requests() -> u32 {
        20
    }

    fn default_window() -> Duration {
        Duration::from_secs(10)
    }

    fn default_open_for() -> Duration {
        Duration::from_secs(5)
    }

    fn default_half_open_probes() -> u32 {
        3
    }
}

/// Outlier ejection per instance, as Envoy does it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Outlier {
    /// Consecutive gateway errors (502, 503, 504, connect errors) that eject an instance.
    #[serde(default = "Outlier::default_consecutive_errors")]
    pub consecutive_errors: u32,
    /// The first ejection's length; each repeated ejection lasts longer by as much.
    #[serde(default = "Outlier::default_base_ejection")]
    pub base_ejection: Duration,
    /// The largest share of a service's instances ejected at once.
    #[serde(default = "Outlier::default_max_ejected")]
    pub max_ejected: Share,
}

impl Outlier {
    fn default_consecutive_errors() -> u32 {
        5
    }

    fn default_base_ejection() -> Duration {
        Duration::from_secs(30)
    }

    fn default_max_ejected() -> Share {
        Share::from_percent(50)
    }
}

/// How an instance is picked for a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Balancer {
    /// Power of two choices over peak-EWMA latency.
    #[default]
    P2cEwma,
    /// Each instance in turn.
    RoundRobin,
    /// The instance with the fewest requests in flight (of two picked at random).
    LeastRequests,
    /// Consistent hashing on a request header or cookie: `{ hash = "header:x-user" }`
    /// or `{ hash = "cookie:session" }`.
    Hash(HashKey),
}

/// What a consistent-hash balancer hashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// A request header, by name (lower case).
    Header(String),
    /// A cookie, by name.
    Cookie(String),
}

impl FromStr for HashKey {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let valid = |name: &str| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        match input.split_once(':') {
            Some(("header", name)) if valid(name) => Ok(Self::Header(name.to_ascii_lowercase())),
            Some(("cookie", name)) if valid(name) => Ok(Self::Cookie(name.to_owned())),
            _ => Err(format!(
                "invalid hash key {input:?}: expected \"header:NAME\" or \"cookie:NAME\""
            )),
        }
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(name) => write!(f, "header:{name}"),
            Self::Cookie(name) => write!(f, "cookie:{name}"),
        }
    }
}

string_unit!(
    HashKey,
    "HashKey",
    "^(header|cookie):[A-Za-z0-9._-]+$",
    "header:x-user"
);

table_only!(Resilience, Retries, CircuitBreaker, Outlier);
