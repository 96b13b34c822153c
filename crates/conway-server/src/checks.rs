//! The control plane's health checks of the instances nobody else checks: external
//! instances (registered through the API, or declared by address in the manifest). The
//! supervisor checks the instances it runs and reports their health itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use conway_core::api::{CheckedBy, Instance, WatchKind, WatchOp};
use conway_core::manifest::{Health, Service};
use conway_registry::health::{Checker, HealthEvent};
use conway_registry::registry::{Registry, RegistryError};
use futures_util::StreamExt;

/// How long to wait before listing again after the watch failed.
const RETRY: Duration = Duration::from_millis(500);

/// Checks external instances until the task is dropped, writing each change of health
/// to the registry.
pub(crate) async fn run(registry: Registry) {
    loop {
        if let Err(error) = follow(&registry).await {
            tracing::warn!(%error, "health checks lost the registry's watch; listing again");
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// What one instance is checked against.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    address: SocketAddr,
    health: Health,
}

/// Lists the instances, checks those the control plane owns, and follows the watch.
async fn follow(registry: &Registry) -> Result<(), RegistryError> {
    let (checker, mut results) = Checker::<String>::new();
    let mut targets: HashMap<String, Target> = HashMap::new();
    let mut services: HashMap<String, Service> = registry
        .services()
        .await?
        .into_iter()
        .map(|view| (view.name, view.definition))
        .collect();
    let revision = registry.revision().await?;
    for instance in registry.instances(None).await? {
        update(&checker, &mut targets, &services, &instance);
    }
    let mut changes = Box::pin(registry.watch(Some(revision + 1)).await?);
    loop {
        tokio::select! {
            change = changes.next() => {
                let Some(change) = change else { return Ok(()) };
                let change = change?;
                match (change.kind, change.op, change.value) {
                    (WatchKind::Instance, WatchOp::Put, Some(value)) => {
                        if let Ok(instance) = serde_json::from_value::<Instance>(value) {
                            update(&checker, &mut targets, &services, &instance);
                        }
                    }
                    (WatchKind::Instance, WatchOp::Delete, _) => {
                        targets.remove(&change.key);
                        checker.remove(&change.key);
                    }
                    (WatchKind::Service, WatchOp::Put, Some(value)) => {
                        if let Ok(service) = serde_json::from_value::<Service>(value) {
                            services.insert(change.key.clone(), service);
                            for instance in registry.instances(Some(&change.key)).await? {
                                update(&checker, &mut targets, &services, &instance);
                            }
                        }
                    }
                    _ => {}
                }
            }
            // A result that was queued before its instance went away is stale.
            Some(result) = results.recv() => if targets.contains_key(&result.id) {
                record(registry, result).await;
            },
        }
    }
}

/// Starts, changes or stops the checks of one instance.
fn update(
    checker: &Checker<String>,
    targets: &mut HashMap<String, Target>,
    services: &HashMap<String, Service>,
    instance: &Instance,
) {
    let wanted = match (instance.checked_by, services.get(&instance.service)) {
        (CheckedBy::ControlPlane, Some(service)) => resolve(instance).map(|address| Target {
            address,
            health: service.health(),
        }),
        _ => None,
    };
    match wanted {
        Some(target) if targets.get(&instance.id) != Some(&target) => {
            if let Err(error) = checker.add(instance.id.clone(), target.address, &target.health) {
                tracing::warn!(instance = %instance.id, %error, "cannot check this instance");
                return;
            }
            targets.insert(instance.id.clone(), target);
        }
        Some(_) => {}
        None => {
            if targets.remove(&instance.id).is_some() {
                checker.remove(&instance.id);
            }
        }
    }
}

/// The instance's socket address; host names are not resolved here yet.
fn resolve(instance: &Instance) -> Option<SocketAddr> {
    let address = instance.address.parse().ok();
    if address.is_none() {
        tracing::warn!(instance = %instance.id, address = %instance.address, "not checked: the control plane checks IP addresses only, not host names");
    }
    address.map(|ip| SocketAddr::new(ip, instance.port))
}

async fn record(registry: &Registry, result: HealthEvent<String>) {
    tracing::info!(instance = %result.id, from = %result.from, to = %result.to, reason = %result.reason, "health changed");
    match registry
        .set_health(&result.id, result.to, Some(result.reason))
        .await
    {
        Ok(_) | Err(RegistryError::NotFound(_)) => {}
        Err(error) => tracing::warn!(instance = %result.id, %error, "cannot record health"),
    }
}
