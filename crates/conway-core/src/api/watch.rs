//! `GET /v1/watch?since=REVISION`: one JSON object a line.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One change: `{"revision": 42, "op": "put", "kind": "instance", "key": "...", "value": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchEvent {
    /// The registry revision of the change.
    pub revision: i64,
    /// Written or deleted.
    pub op: WatchOp,
    /// What changed.
    pub kind: WatchKind,
    /// The name of what changed: a service name, an instance id, or a config section
    /// (`manifest`, `faults/SERVICE`, `splits/SERVICE`).
    pub key: String,
    /// The new value (absent on delete): a service, an instance, or a config section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Written or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchOp {
    /// Created or changed.
    Put,
    /// Removed (for an instance: deregistered, or its lease expired).
    Delete,
}

/// What a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchKind {
    /// A service definition.
    Service,
    /// An instance.
    Instance,
    /// Routes, policies, consumers, faults or splits: refetch `GET /v1/config`.
    Config,
}

/// A line of the watch stream: a change, or a keep-alive
/// (`{"keepalive": true, "revision": 42}`, sent when nothing changed for a while).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WatchLine {
    /// A change.
    Event(WatchEvent),
    /// Nothing changed; the registry is at `revision`.
    KeepAlive {
        /// Always true.
        keepalive: bool,
        /// The registry's revision.
        revision: i64,
    },
}
