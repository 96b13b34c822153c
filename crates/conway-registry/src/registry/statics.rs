//! Instances declared in the manifest (`address`/`addresses` of an external service):
//! registered without a lease, since nobody heartbeats them, and checked by the
//! control plane like any external instance.

use std::collections::BTreeMap;

use conway_core::Manifest;
use conway_core::api::{CheckedBy, Instance, InstanceState};

use super::{Registry, RegistryError, decode, encode, keys};

/// The metadata key marking an instance that came from the manifest.
pub const DECLARED: &str = "conway.declared";

impl Registry {
    /// Registers each declared address as an instance `SERVICE-declared-N`, keeping the
    /// health of those that did not change, and removes declared instances that the
    /// manifest no longer lists.
    pub(super) async fn sync_declared_instances(
        &self,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        let mut wanted: BTreeMap<String, Instance> = BTreeMap::new();
        for (name, service) in &manifest.services {
            let addresses = service.address.iter().chain(&service.addresses);
            for (i, address) in addresses.enumerate() {
                let Some((host, port)) = split_host_port(address) else {
                    continue;
                };
                let id = format!("{name}-declared-{i}");
                let instance = Instance {
                    id: id.clone(),
                    service: name.clone(),
                    address: host,
                    port,
                    version: service.version.clone(),
                    zone: service.zone.clone(),
                    metadata: BTreeMap::from([(DECLARED.to_owned(), "true".to_owned())]),
                    ttl: conway_core::units::Duration::from_secs(0),
                    checked_by: CheckedBy::ControlPlane,
                    state: InstanceState::Starting,
                    reason: None,
                    registered_at_ms: super::instances::now_ms(),
                };
                wanted.insert(id, instance);
            }
        }
        let existing = self.store.range(keys::INSTANCES).await?;
        for kv in &existing.kvs {
            let current: Instance = decode(&kv.key, &kv.value)?;
            if !current.metadata.contains_key(DECLARED) {
                continue;
            }
            match wanted.get(&current.id) {
                Some(want)
                    if (&want.service, &want.address, want.port)
                        == (&current.service, &current.address, current.port) =>
                {
                    wanted.remove(&current.id);
                }
                Some(_) => {}
                None => {
                    self.store.delete(&kv.key).await?;
                }
            }
        }
        for (id, instance) in wanted {
            self.store
                .put(&keys::instance(&id), encode(&instance), None)
                .await?;
        }
        Ok(())
    }
}

/// `HOST:PORT` (or `[V6]:PORT`) into its parts; the manifest's validation already
/// refused anything else.
fn split_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}
