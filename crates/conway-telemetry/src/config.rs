//! How much telemetry is kept, sampled and accepted: the manifest's `[telemetry]` plus
//! the receiver's limits, with every default in one place.

use std::time::Duration;

/// Telemetry's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Spans and logs older than this are deleted.
    pub retention: Duration,
    /// The most disk the store may use (its pages in use); the oldest records go first.
    pub max_size: u64,
    /// Head sampling.
    pub sampling: SamplingConfig,
    /// Forward kept spans and logs over OTLP/HTTP to this collector (`http://HOST:4318`).
    pub otlp_endpoint: Option<String>,
    /// What one request may carry.
    pub limits: Limits,
    /// The most caller → callee pairs the request counters keep (each costs up to about
    /// 29 KB for an hour of 10-second buckets); calls of further pairs are counted as
    /// dropped.
    pub max_series: usize,
    /// How often retention runs.
    pub maintenance_interval: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self::from_manifest(&conway_core::manifest::Telemetry::default())
    }
}

impl TelemetryConfig {
    /// The settings of the manifest's `[telemetry]` table, with the receiver's defaults.
    pub fn from_manifest(telemetry: &conway_core::manifest::Telemetry) -> Self {
        let rate = telemetry.sampling.per_service;
        Self {
            retention: telemetry.retention.get(),
            max_size: telemetry.max_size.get(),
            sampling: SamplingConfig {
                per_service: Some((rate.count, rate.per)),
                share: telemetry.sampling.share.fraction(),
            },
            otlp_endpoint: telemetry.otlp_endpoint.clone(),
            limits: Limits::default(),
            max_series: 2_000,
            maintenance_interval: Duration::from_secs(30),
        }
    }
}

/// Head sampling: every trace up to a rate per service, then a share; errors always.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingConfig {
    /// Traces kept per service per period before the share applies; `None` keeps by
    /// share alone.
    pub per_service: Option<(u64, Duration)>,
    /// The share of the remaining traces kept, from 0.0 to 1.0.
    pub share: f64,
}

impl SamplingConfig {
    /// Keeps every trace.
    pub fn keep_all() -> Self {
        Self {
            per_service: None,
            share: 1.0,
        }
    }
}

/// What the receiver accepts in one request; anything beyond is refused or cut, and
/// counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// The largest request body, after gzip is undone (413 beyond).
    pub max_body_bytes: usize,
    /// The longest string attribute value (and span, service or operation name); longer
    /// ones are cut at a character boundary and counted.
    pub max_value_bytes: usize,
    /// The longest log body.
    pub max_log_body_bytes: usize,
    /// The most attributes per span or log record; the rest are dropped and counted.
    pub max_attributes: usize,
    /// The most spans, log records or metric data points per request; the rest are
    /// rejected (reported in `partial_success`).
    pub max_items: usize,
    /// How many requests are decoded and stored at once; others wait for a turn.
    pub max_concurrent_requests: usize,
    /// How long a request waits for a turn before 503 (with `Retry-After`).
    pub admission_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            max_value_bytes: 4 * 1024,
            max_log_body_bytes: 16 * 1024,
            max_attributes: 128,
            max_items: 20_000,
            max_concurrent_requests: 8,
            admission_wait: Duration::from_secs(5),
        }
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary; true if it was cut.
pub(crate) fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_characters() {
        let mut text = "héllo".to_owned();
        assert!(truncate(&mut text, 2));
        assert_eq!(text, "h");
        let mut short = "ok".to_owned();
        assert!(!truncate(&mut short, 2));
        assert_eq!(short, "ok");
    }

    #[test]
    fn the_manifest_defaults_carry_over() {
        let config = TelemetryConfig::default();
        assert_eq!(config.retention, Duration::from_secs(24 * 3600));
        assert_eq!(config.max_size, 1024 * 1024 * 1024);
        assert_eq!(
            config.sampling.per_service,
            Some((100, Duration::from_secs(1)))
        );
        assert!((config.sampling.share - 0.1).abs() < 1e-9);
    }
}
