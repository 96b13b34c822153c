//! The registry: service definitions, instances with leases and health, and run-time
//! configuration, kept in a [`Store`] and followed through its watch.

mod error;
mod instances;
mod keys;
mod statics;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use conway_core::Manifest;
use conway_core::api::{ConfigSnapshot, ServiceView};
use conway_core::manifest::{Consumer, Faults, GatewayTls, JwtIssuer, Mesh, Route, Service};
use conway_core::units::Share;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use error::RegistryError;
pub use statics::DECLARED;

use crate::store::{Revision, Store};

/// The registry over a store. Cheap to clone; every clone sees the same state.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
}

/// The declared state besides services, kept under one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Declared {
    routes: Vec<Route>,
    #[serde(default)]
    tls: Option<GatewayTls>,
    mesh: Mesh,
    consumers: BTreeMap<String, Consumer>,
    jwt: BTreeMap<String, JwtIssuer>,
}

impl Registry {
    /// A registry keeping its state in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Writes a manifest's declared state: each service, and the routes, mesh policy,
    /// consumers and issuers. Values that did not change are not written again, so a
    /// restart on the same manifest produces no events.
    pub async fn load_manifest(&self, manifest: &Manifest) -> Result<(), RegistryError> {
        for (name, service) in &manifest.services {
            self.put_if_changed(&keys::service(name), service).await?;
        }
        let declared = Declared {
            routes: manifest.gateway.routes.clone(),
            tls: manifest.gateway.tls.clone(),
            mesh: manifest.mesh.clone(),
            consumers: manifest.consumers.clone(),
            jwt: manifest.jwt.clone(),
        };
        self.put_if_changed(keys::MANIFEST, &declared).await?;
        self.sync_declared_instances(manifest).await
    }

    /// Defines or redefines a service.
    pub async fn put_service(
        &self,
        name: &str,
        service: &Service,
    ) -> Result<Revision, RegistryError> {
        if !conway_core::manifest::is_service_name(name) {
            return Err(RegistryError::Invalid(format!(
                "invalid service name {name:?}: use lower-case letters, digits and '-', starting with a letter (at most 63)"
            )));
        }
        Ok(self
            .store
            .put(&keys::service(name), encode(service), None)
            .await?)
    }

    /// Removes a service's definition and its run-time faults and split (`conway apply`
    /// of a manifest without it); `false` if it was not defined. Its instances stay
    /// until they are deregistered or their leases end.
    pub async fn delete_service(&self, name: &str) -> Result<bool, RegistryError> {
        self.store.delete(&keys::faults(name)).await?;
        self.store.delete(&keys::splits(name)).await?;
        Ok(self.store.delete(&keys::service(name)).await?.is_some())
    }

    /// A service's definition.
    pub async fn service(&self, name: &str) -> Result<Option<Service>, RegistryError> {
        self.read(&keys::service(name)).await
    }

    /// Every service with its instance counts, by name.
    pub async fn services(&self) -> Result<Vec<ServiceView>, RegistryError> {
        let definitions = self.store.range(keys::SERVICES).await?;
        let instances = self.instances(None).await?;
        definitions
            .kvs
            .iter()
            .map(|kv| {
                let name = kv.key[keys::SERVICES.len()..].to_owned();
                let of_service = instances.iter().filter(|i| i.service == name);
                let healthy = of_service.clone().filter(|i| i.is_routable()).count();
                Ok(ServiceView {
                    instances: of_service.count(),
                    healthy,
                    definition: decode(&kv.key, &kv.value)?,
                    name,
                })
            })
            .collect()
    }

    /// Sets a service's run-time faults.
    pub async fn put_faults(
        &self,
        service: &str,
        faults: &Faults,
    ) -> Result<Revision, RegistryError> {
        self.require_service(service).await?;
        Ok(self
            .store
            .put(&keys::faults(service), encode(faults), None)
            .await?)
    }

    /// Removes a service's run-time faults; `false` if it had none.
    pub async fn delete_faults(&self, service: &str) -> Result<bool, RegistryError> {
        self.require_service(service).await?;
        Ok(self.store.delete(&keys::faults(service)).await?.is_some())
    }

    /// Sets a service's run-time split (a canary deploy's), replacing the declared one:
    /// version to share of requests.
    pub async fn put_split(
        &self,
        service: &str,
        split: &BTreeMap<String, Share>,
    ) -> Result<Revision, RegistryError> {
        self.require_service(service).await?;
        Ok(self
            .store
            .put(&keys::splits(service), encode(split), None)
            .await?)
    }

    /// Removes a service's run-time split (the declared one applies again); `false` if
    /// it had none.
    pub async fn delete_split(&self, service: &str) -> Result<bool, RegistryError> {
        self.require_service(service).await?;
        Ok(self.store.delete(&keys::splits(service)).await?.is_some())
    }

    /// Everything a proxy needs. The two ranges are read one after the other, so the
    /// snapshot's revision is the earlier read's: it holds every change up to that
    /// revision, and a watch from it replays whatever the later read already saw (the
    /// later one would skip a service written between the reads).
    pub async fn config(&self) -> Result<ConfigSnapshot, RegistryError> {
        let services = self.store.range(keys::SERVICES).await?;
        let config = self.store.range(keys::CONFIG).await?;
        let mut snapshot = ConfigSnapshot {
            revision: services.revision.min(config.revision),
            ..Default::default()
        };
        for kv in &services.kvs {
            snapshot.services.insert(
                kv.key[keys::SERVICES.len()..].to_owned(),
                decode(&kv.key, &kv.value)?,
            );
        }
        for kv in &config.kvs {
            if kv.key == keys::MANIFEST {
                let declared: Declared = decode(&kv.key, &kv.value)?;
                snapshot.routes = declared.routes;
                snapshot.tls = declared.tls;
                snapshot.mesh = declared.mesh;
                snapshot.consumers = declared.consumers;
                snapshot.jwt = declared.jwt;
            } else if let Some(service) = kv.key.strip_prefix(keys::FAULTS) {
                snapshot
                    .faults
                    .insert(service.to_owned(), decode(&kv.key, &kv.value)?);
            } else if let Some(service) = kv.key.strip_prefix(keys::SPLITS) {
                snapshot
                    .splits
                    .insert(service.to_owned(), decode(&kv.key, &kv.value)?);
            }
        }
        Ok(snapshot)
    }

    async fn require_service(&self, name: &str) -> Result<Service, RegistryError> {
        self.service(name)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("no service named {name:?}; define it in the manifest or with PUT /v1/services/{name}")))
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RegistryError> {
        match self.store.get(key).await? {
            Some(kv) => decode(key, &kv.value).map(Some),
            None => Ok(None),
        }
    }

    async fn put_if_changed<T: Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), RegistryError> {
        let bytes = encode(value);
        if self
            .store
            .get(key)
            .await?
            .is_none_or(|kv| kv.value != bytes)
        {
            self.store.put(key, bytes, None).await?;
        }
        Ok(())
    }
}

fn encode<T: Serialize>(value: &T) -> Bytes {
    // Registry values are plain data (strings, numbers, maps with string keys): they
    // always serialize.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(value).map_err(|source| RegistryError::Corrupt {
        key: key.to_owned(),
        source,
    })
}
