//! What the mirror holds: the configuration and the instances at one watch position,
//! and how a change event moves it forward.

use std::collections::BTreeMap;

use conway_core::api::{ConfigSnapshot, Instance, WatchEvent, WatchKind, WatchOp};
use conway_core::manifest::Service;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Revision;

/// The registry as last known: readers get it whole, at one revision, without a lock.
/// It is serializable so a proxy can save it and serve from it after a restart, before
/// it reconnects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorSnapshot {
    /// The last revision applied: the watch resumes after it.
    pub revision: Revision,
    /// Whether this reflects a listing of the registry (false until the first contact).
    pub listed: bool,
    /// Routes, policies, consumers, service definitions, faults and splits. Its own
    /// `revision` is the one it was read at, which may be ahead of `revision` above.
    pub config: ConfigSnapshot,
    /// Every instance, by id.
    pub instances: BTreeMap<String, Instance>,
}

impl MirrorSnapshot {
    /// The instances of `service`.
    pub fn instances_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances
            .values()
            .filter(move |instance| instance.service == service)
    }

    /// The instances of `service` that may receive requests.
    pub fn routable<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances_of(service)
            .filter(|instance| instance.is_routable())
    }

    /// The snapshot a listing gives: the configuration and every instance.
    pub(crate) fn from_listing(config: ConfigSnapshot, instances: Vec<Instance>) -> Self {
        let instances = instances
            .into_iter()
            .map(|instance| (instance.id.clone(), instance))
            .collect();
        Self {
            revision: config.revision,
            listed: true,
            config,
            instances,
        }
    }

    /// Applies one change. Returns whether the configuration must be read again (a
    /// `config` change carries only its section, not the whole snapshot).
    pub(crate) fn apply(&mut self, event: WatchEvent) -> Applied {
        self.revision = self.revision.max(event.revision);
        match (event.kind, event.op) {
            (WatchKind::Instance, WatchOp::Put) => {
                if let Some(instance) = decode::<Instance>(&event) {
                    self.instances.insert(event.key, instance);
                }
                Applied::Done
            }
            (WatchKind::Instance, WatchOp::Delete) => {
                self.instances.remove(&event.key);
                Applied::Done
            }
            (WatchKind::Service, WatchOp::Put) => {
                if let Some(service) = decode::<Service>(&event) {
                    self.config.services.insert(event.key, service);
                }
                Applied::Done
            }
            (WatchKind::Service, WatchOp::Delete) => {
                self.config.services.remove(&event.key);
                self.instances
                    .retain(|_, instance| instance.service != event.key);
                Applied::Done
            }
            (WatchKind::Config, _) => Applied::RefetchConfig,
        }
    }
}

/// What applying a change leaves to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Nothing: the snapshot is up to date.
    Done,
    /// Read `GET /v1/config` again.
    RefetchConfig,
}

/// The event's value as `T`; a value this client cannot read is logged and skipped
/// rather than stopping the mirror (a newer server may write fields it does not know).
fn decode<T: DeserializeOwned>(event: &WatchEvent) -> Option<T> {
    let Some(value) = &event.value else {
        tracing::warn!(revision = event.revision, key = %event.key, "watch put without a value; skipped");
        return None;
    };
    match T::deserialize(value) {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            tracing::warn!(revision = event.revision, key = %event.key, %error, "unreadable watch value; skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use conway_core::api::{CheckedBy, InstanceState};
    use serde_json::json;

    use super::*;

    fn instance(id: &str, service: &str, state: InstanceState) -> Instance {
        Instance {
            id: id.to_owned(),
            service: service.to_owned(),
            address: "127.0.0.1".to_owned(),
            port: 9000,
            version: None,
            zone: None,
            metadata: BTreeMap::new(),
            ttl: conway_core::units::Duration::from_secs(30),
            checked_by: CheckedBy::ControlPlane,
            state,
            reason: None,
            registered_at_ms: 0,
        }
    }

    fn event(
        revision: Revision,
        op: WatchOp,
        kind: WatchKind,
        key: &str,
        value: Option<serde_json::Value>,
    ) -> WatchEvent {
        WatchEvent {
            revision,
            op,
            kind,
            key: key.to_owned(),
            value,
        }
    }

    #[test]
    fn instance_changes_are_applied_in_order() {
        let config = ConfigSnapshot {
            revision: 4,
            ..Default::default()
        };
        let mut snapshot = MirrorSnapshot::from_listing(
            config,
            vec![instance("a", "orders", InstanceState::Starting)],
        );
        assert_eq!((snapshot.revision, snapshot.listed), (4, true));
        let healthy = serde_json::to_value(instance("a", "orders", InstanceState::Healthy))
            .expect("serializable");
        assert_eq!(
            snapshot.apply(event(
                5,
                WatchOp::Put,
                WatchKind::Instance,
                "a",
                Some(healthy)
            )),
            Applied::Done
        );
        assert_eq!(snapshot.routable("orders").count(), 1);
        let other = serde_json::to_value(instance("b", "payments", InstanceState::Starting))
            .expect("serializable");
        snapshot.apply(event(
            6,
            WatchOp::Put,
            WatchKind::Instance,
            "b",
            Some(other),
        ));
        assert_eq!(snapshot.instances.len(), 2);
        assert_eq!(snapshot.instances_of("payments").count(), 1);
        snapshot.apply(event(7, WatchOp::Delete, WatchKind::Instance, "a", None));
        assert_eq!(snapshot.instances.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(snapshot.revision, 7);
    }

    #[test]
    fn service_changes_edit_the_definitions_and_config_changes_ask_for_a_refetch() {
        let mut snapshot = MirrorSnapshot::from_listing(
            ConfigSnapshot::default(),
            vec![instance("a", "orders", InstanceState::Healthy)],
        );
        snapshot.apply(event(
            1,
            WatchOp::Put,
            WatchKind::Service,
            "orders",
            Some(json!({ "version": "1.2.0" })),
        ));
        assert_eq!(
            snapshot.config.services["orders"].version.as_deref(),
            Some("1.2.0")
        );
        snapshot.apply(event(
            2,
            WatchOp::Delete,
            WatchKind::Service,
            "orders",
            None,
        ));
        assert!(snapshot.config.services.is_empty());
        assert!(
            snapshot.instances.is_empty(),
            "a deleted service's instances go with it"
        );
        let applied = snapshot.apply(event(
            3,
            WatchOp::Put,
            WatchKind::Config,
            "faults/orders",
            Some(json!({})),
        ));
        assert_eq!(applied, Applied::RefetchConfig);
        assert_eq!(snapshot.revision, 3);
    }

    #[test]
    fn a_service_as_the_server_writes_it_is_read() {
        let mut snapshot = MirrorSnapshot::default();
        let value = json!({"protocol":"auto","resilience":{"timeout":"15s","retries":{"attempts":2,"budget":"20%","on":["connect-error","reset"]},"balancer":"p2c-ewma"}});
        snapshot.apply(event(
            1,
            WatchOp::Put,
            WatchKind::Service,
            "payments",
            Some(value),
        ));
        assert!(snapshot.config.services.contains_key("payments"));
    }

    #[test]
    fn unreadable_values_are_skipped_but_the_revision_moves_on() {
        let mut snapshot = MirrorSnapshot::default();
        snapshot.apply(event(
            9,
            WatchOp::Put,
            WatchKind::Instance,
            "x",
            Some(json!({ "id": 1 })),
        ));
        snapshot.apply(event(10, WatchOp::Put, WatchKind::Instance, "y", None));
        assert!(snapshot.instances.is_empty());
        assert_eq!(snapshot.revision, 10);
    }
}
