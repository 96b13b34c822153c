//! Instances: register, renew, report health, deregister, list.

use std::net::IpAddr;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use conway_core::api::{Instance, InstanceState, RegisterInstance, is_instance_id};

use super::{Registry, RegistryError, decode, encode, keys};
use crate::store::{CasOutcome, Revision, StoreError};

/// The shortest and longest TTL an instance may ask for.
const TTL_BOUNDS: (StdDuration, StdDuration) =
    (StdDuration::from_secs(1), StdDuration::from_secs(24 * 3600));

impl Registry {
    /// Registers an instance of a defined service, as `starting`. Re-registering the
    /// same id with the same address and port renews it; with another, it is a conflict.
    pub async fn register(
        &self,
        service: &str,
        request: RegisterInstance,
    ) -> Result<Instance, RegistryError> {
        self.require_service(service).await?;
        check_request(&request)?;
        let ttl = request.ttl.unwrap_or(RegisterInstance::DEFAULT_TTL);
        let id = match &request.id {
            Some(id) => id.clone(),
            None => generated_id(service),
        };
        let key = keys::instance(&id);
        let existing = self.store.get(&key).await?;
        let (expected, lease, registered_at_ms, state, reason) = match &existing {
            Some(kv) => {
                let current: Instance = decode(&key, &kv.value)?;
                if current.service != service
                    || current.address != request.address
                    || current.port != request.port
                {
                    return Err(RegistryError::Conflict(format!(
                        "instance id {id:?} is taken by {} at {}; deregister it first or choose another id",
                        current.service,
                        current.endpoint()
                    )));
                }
                let lease = match kv.lease {
                    Some(lease) if self.store.keep_alive(lease).await.is_ok() => lease,
                    _ => self.store.grant_lease(ttl.get(), None).await?.id,
                };
                (
                    kv.mod_revision,
                    lease,
                    current.registered_at_ms,
                    current.state,
                    current.reason,
                )
            }
            None => (
                0,
                self.store.grant_lease(ttl.get(), None).await?.id,
                now_ms(),
                InstanceState::Starting,
                None,
            ),
        };
        let instance = Instance {
            id: id.clone(),
            service: service.to_owned(),
            address: request.address,
            port: request.port,
            version: request.version,
            zone: request.zone,
            metadata: request.metadata,
            ttl,
            checked_by: request.checked_by,
            state,
            reason,
            registered_at_ms,
        };
        match self
            .store
            .compare_and_set(&key, expected, encode(&instance), Some(lease))
            .await?
        {
            CasOutcome::Written(_) => Ok(instance),
            CasOutcome::Conflict { .. } => {
                if existing.is_none() {
                    // The lease was granted for nothing: give it back.
                    let _ = self.store.revoke_lease(lease).await;
                }
                Err(RegistryError::Conflict(format!(
                    "instance {id:?} changed during registration; try again"
                )))
            }
        }
    }

    /// Renews an instance's lease for its full TTL, which it returns.
    pub async fn heartbeat(&self, id: &str) -> Result<StdDuration, RegistryError> {
        let kv = self
            .store
            .get(&keys::instance(id))
            .await?
            .ok_or_else(|| no_instance(id))?;
        let lease = kv.lease.ok_or_else(|| no_instance(id))?;
        self.store.keep_alive(lease).await.map_err(|e| match e {
            StoreError::LeaseNotFound(_) => no_instance(id),
            other => other.into(),
        })
    }

    /// Removes an instance (revoking its lease).
    pub async fn deregister(&self, id: &str) -> Result<Revision, RegistryError> {
        let kv = self
            .store
            .get(&keys::instance(id))
            .await?
            .ok_or_else(|| no_instance(id))?;
        match kv.lease {
            Some(lease) => Ok(self.store.revoke_lease(lease).await?),
            None => self
                .store
                .delete(&kv.key)
                .await?
                .ok_or_else(|| no_instance(id)),
        }
    }

    /// Records an instance's health; returns `false` if nothing changed. An instance
    /// that vanished meanwhile is not an error for the checker: it is `NotFound`.
    pub async fn set_health(
        &self,
        id: &str,
        state: InstanceState,
        reason: Option<String>,
    ) -> Result<bool, RegistryError> {
        let key = keys::instance(id);
        loop {
            let kv = self.store.get(&key).await?.ok_or_else(|| no_instance(id))?;
            let mut instance: Instance = decode(&key, &kv.value)?;
            if instance.state == state && instance.reason == reason {
                return Ok(false);
            }
            instance.state = state;
            instance.reason = reason.clone();
            match self
                .store
                .compare_and_set(&key, kv.mod_revision, encode(&instance), kv.lease)
                .await
            {
                Ok(CasOutcome::Written(_)) => return Ok(true),
                Ok(CasOutcome::Conflict { .. }) => continue,
                Err(StoreError::LeaseNotFound(_)) => return Err(no_instance(id)),
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// One instance.
    pub async fn instance(&self, id: &str) -> Result<Option<Instance>, RegistryError> {
        self.read(&keys::instance(id)).await
    }

    /// The instances of one service (which must exist), or of all, by id.
    pub async fn instances(&self, service: Option<&str>) -> Result<Vec<Instance>, RegistryError> {
        if let Some(service) = service {
            self.require_service(service).await?;
        }
        let snapshot = self.store.range(keys::INSTANCES).await?;
        let mut found = Vec::new();
        for kv in &snapshot.kvs {
            let instance: Instance = decode(&kv.key, &kv.value)?;
            if service.is_none_or(|s| s == instance.service) {
                found.push(instance);
            }
        }
        Ok(found)
    }
}

fn check_request(request: &RegisterInstance) -> Result<(), RegistryError> {
    if let Some(id) = &request.id
        && !is_instance_id(id)
    {
        return Err(RegistryError::Invalid(format!(
            "invalid instance id {:?}: use 1 to 128 letters, digits, '.', '_' or '-'",
            id.chars().take(140).collect::<String>()
        )));
    }
    if request.address.parse::<IpAddr>().is_err() && !is_host_name(&request.address) {
        return Err(RegistryError::Invalid(format!(
            "invalid address {:?}: expected an IP address such as \"127.0.0.1\" or a host name",
            request.address.chars().take(260).collect::<String>()
        )));
    }
    if request.port == 0 {
        return Err(RegistryError::Invalid(
            "invalid port 0: expected 1 to 65535".to_owned(),
        ));
    }
    if let Some(ttl) = request.ttl
        && (ttl.get() < TTL_BOUNDS.0 || ttl.get() > TTL_BOUNDS.1)
    {
        return Err(RegistryError::Invalid(format!(
            "invalid ttl {ttl}: expected 1s to 24h"
        )));
    }
    Ok(())
}

fn is_host_name(host: &str) -> bool {
    (1..=253).contains(&host.len())
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn no_instance(id: &str) -> RegistryError {
    RegistryError::NotFound(format!(
        "no instance {id:?}: it was deregistered, its lease expired, or it never existed"
    ))
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `SERVICE-` and 12 random hex digits.
fn generated_id(service: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{service}-{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}
