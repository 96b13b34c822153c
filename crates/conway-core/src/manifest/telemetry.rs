//! `[telemetry]`: retention, sampling and export of traces and logs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::string_or_table::table_only;

use crate::units::{ByteSize, Duration, Rate, Share};

/// Traces, logs and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Telemetry {
    /// Spans and log records older than this are deleted.
    #[serde(default = "Telemetry::default_retention")]
    pub retention: Duration,
    /// The most disk the telemetry store may use; the oldest records go first.
    #[serde(default = "Telemetry::default_max_size")]
    pub max_size: ByteSize,
    /// Which traces are kept.
    #[serde(default)]
    pub sampling: Sampling,
    /// Also forward spans and logs over OTLP/HTTP to this collector
    /// (`http://HOST:4318`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
}

impl Telemetry {
    fn default_retention() -> Duration {
        Duration::from_secs(24 * 3600)
    }

    fn default_max_size() -> ByteSize {
        ByteSize::mib(1024)
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            retention: Self::default_retention(),
            max_size: Self::default_max_size(),
            sampling: Sampling::default(),
            otlp_endpoint: None,
        }
    }
}

/// Head sampling: every trace up to a rate per service, then a share of the rest.
/// Traces with errors are always kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Sampling {
    /// Traces kept per service before sampling starts.
    #[serde(default = "Sampling::default_per_service")]
    pub per_service: Rate,
    /// The share kept beyond that rate.
    #[serde(default = "Sampling::default_share")]
    pub share: Share,
}

impl Sampling {
    fn default_per_service() -> Rate {
        Rate {
            count: 100,
            per: std::time::Duration::from_secs(1),
        }
    }

    fn default_share() -> Share {
        Share::from_percent(10)
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            per_service: Self::default_per_service(),
            share: Self::default_share(),
        }
    }
}

table_only!(Telemetry, Sampling);
