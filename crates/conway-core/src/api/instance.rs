//! Instances: one running copy of a service, as registered and as listed.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::Duration;

/// Where an instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Registered; its checks have not passed yet. Not routable.
    Starting,
    /// Its checks pass. Routable.
    Healthy,
    /// Its checks fail. Not routable.
    Unhealthy,
}

impl InstanceState {
    /// The name used in JSON and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// Whether checks let traffic reach the target.
    pub fn is_healthy(self) -> bool {
        self == Self::Healthy
    }
}

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who checks an instance's health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckedBy {
    /// The control plane runs the service's checks against the instance.
    #[default]
    ControlPlane,
    /// Whoever registered it (the supervisor) checks it and reports with
    /// `PUT /v1/instances/{id}/health`.
    Registrant,
}

/// `POST /v1/services/{name}/instances`: only `address` and `port` are required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInstance {
    /// Makes re-registration idempotent: the same id with the same address and port
    /// renews the registration; with another, it is a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// An IP address (a host name is resolved by whoever connects).
    pub address: String,
    /// The port, 1 to 65535.
    pub port: u16,
    /// The version the instance runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its zone, for zone-aware balancing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// How long the registration lives without a heartbeat; default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Who checks its health.
    #[serde(default)]
    pub checked_by: CheckedBy,
}

impl RegisterInstance {
    /// The TTL when none is given.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
}

/// `PUT /v1/instances/{id}/health`: a registrant's report of its instance's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportHealth {
    /// The new state.
    pub state: InstanceState,
    /// Why, for people (`"HTTP 503"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An instance as the registry holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Unique among all instances.
    pub id: String,
    /// The service it belongs to.
    pub service: String,
    /// Its IP address.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// The version it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Its registration's lifetime without a heartbeat.
    pub ttl: Duration,
    /// Who checks its health.
    pub checked_by: CheckedBy,
    /// Where it stands.
    pub state: InstanceState,
    /// Why it is in that state, when known (`"HTTP 503"`, `"connect refused"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it registered, in milliseconds since the Unix epoch.
    pub registered_at_ms: u64,
}

impl Instance {
    /// `ADDRESS:PORT`, with brackets around an IPv6 address.
    pub fn endpoint(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }

    /// Whether a proxy may send it requests (its lease is alive while it is listed).
    pub fn is_routable(&self) -> bool {
        self.state == InstanceState::Healthy
    }
}

/// Whether `id` can name an instance: 1 to 128 of `A-Z a-z 0-9 . _ -`.
pub fn is_instance_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}
