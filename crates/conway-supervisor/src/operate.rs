//! What an operator does to a running supervisor besides scaling: deploy
//! ([`Deploy`]), apply a changed manifest ([`Supervisor::apply`]), kill an instance
//! ([`Supervisor::kill`], for chaos), and read what was done ([`Supervisor::history`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use conway_core::Manifest;
use conway_core::api::{DeployRequest, Deployment};
use nix::sys::signal::Signal;

use crate::chaos::ChaosError;
use crate::deploy::{Deploy, DeployError};
use crate::history::History;
use crate::plan::{ServicePlan, plans};
use crate::process::Group;
use crate::status::{ReplicaState, ServiceStatus};
use crate::supervisor::{Control, ServiceControl, Supervisor};

impl Deploy for Supervisor {
    fn deploy(&self, service: &str, request: DeployRequest) -> Result<Deployment, DeployError> {
        self.inner.deploy(service, request)
    }

    fn deployment(&self, service: &str) -> Result<Deployment, DeployError> {
        self.inner.deployment(service)
    }
}

/// What [`Supervisor::apply`] did to the supervised services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupervisedChanges {
    /// New services, started.
    pub started: Vec<String>,
    /// Services no longer run here: deregistered and stopped.
    pub removed: Vec<String>,
    /// Services rolled to a changed command, environment, version or health check.
    pub redeployed: Vec<String>,
    /// Services whose replicas changed.
    pub scaled: Vec<String>,
    /// What could not be done, for people.
    pub problems: Vec<String>,
}

impl Supervisor {
    /// What was done to the system: deploys, chaos kills (and what the caller records).
    pub fn history(&self) -> Arc<History> {
        self.inner.history.clone()
    }

    /// The ids of `service`'s instances whose process runs now (starting, healthy or
    /// unhealthy), or `None` if the supervisor does not run the service.
    pub fn running_instances(&self, service: &str) -> Option<Vec<String>> {
        let status = self.inner.status.borrow();
        let service = status.services.get(service)?;
        Some(
            service
                .instances
                .values()
                .filter(|r| running(r.state) && r.pid.is_some())
                .map(|r| r.id.clone())
                .collect(),
        )
    }

    /// Whether `service` has a replica `id` (running or not).
    pub fn knows(&self, service: &str, id: &str) -> bool {
        let status = self.inner.status.borrow();
        status
            .services
            .get(service)
            .is_some_and(|s| s.instances.values().any(|r| r.id == id))
    }

    /// Kills instance `id`'s processes with SIGKILL, as a crash would; the supervisor
    /// restarts it like any instance that exits. Answers its service.
    pub fn kill(&self, id: &str) -> Result<String, ChaosError> {
        let (service, pid) = {
            let status = self.inner.status.borrow();
            let found = status.services.values().find_map(|s: &ServiceStatus| {
                s.instances
                    .values()
                    .find(|r| r.id == id)
                    .map(|r| (s.name.clone(), r.clone()))
            });
            let (service, replica) = found.ok_or_else(|| ChaosError::NoInstance(id.to_owned()))?;
            match replica.pid {
                Some(pid) if running(replica.state) => (service, pid),
                _ => {
                    return Err(ChaosError::NotRunning(
                        id.to_owned(),
                        replica.shown_state().to_owned(),
                    ));
                }
            }
        };
        if !Group::new(Some(pid)).signal(Signal::SIGKILL) {
            return Err(ChaosError::NotRunning(id.to_owned(), "exited".into()));
        }
        Ok(service)
    }

    /// Brings the supervised services to `manifest` (`manifest_dir` is where relative
    /// `workdir`s start): new services start at once, removed ones are deregistered and
    /// stopped, changed ones — and those in `rebuilt`, whose build ran again — are rolled
    /// one replica at a time, and replica counts are scaled. Builds are the caller's,
    /// before.
    pub fn apply(
        &self,
        manifest: &Manifest,
        manifest_dir: &Path,
        rebuilt: &BTreeSet<String>,
    ) -> SupervisedChanges {
        let wanted = plans(manifest, manifest_dir);
        let mut changes = SupervisedChanges::default();
        let current: BTreeMap<String, Option<Arc<ServicePlan>>> = {
            let control = self.inner.control.lock();
            control
                .services
                .iter()
                .map(|(name, s)| (name.clone(), s.plan.clone()))
                .collect()
        };
        for name in current.keys() {
            if !wanted.contains_key(name) {
                self.remove_service(name);
                changes.removed.push(name.clone());
            }
        }
        for (name, plan) in wanted {
            let Some(before) = current.get(&name) else {
                match self.add_service(plan) {
                    Ok(()) => changes.started.push(name),
                    Err(problem) => changes.problems.push(problem),
                }
                continue;
            };
            let before = before.as_deref();
            if before.map(|b| b.replicas) != Some(plan.replicas) {
                match self.scale(&name, plan.replicas) {
                    Ok(_) => changes.scaled.push(name.clone()),
                    Err(error) => changes.problems.push(format!("{name}: {error}")),
                }
            }
            // Replicas are scaled, and dependencies change no process: neither needs a
            // new replica.
            let same = before.is_some_and(|b| {
                ServicePlan {
                    replicas: plan.replicas,
                    depends_on: plan.depends_on.clone(),
                    ..b.clone()
                } == plan
            });
            if !same || rebuilt.contains(&name) {
                match self.inner.redeploy(&name, plan) {
                    Ok(_) => changes.redeployed.push(name),
                    Err(error) => changes.problems.push(format!("{name}: {error}")),
                }
            }
        }
        changes
    }

    /// Starts a service that was not supervised.
    fn add_service(&self, plan: ServicePlan) -> Result<(), String> {
        let name = plan.name.clone();
        let dir = self.inner.options.service_dir(&name);
        std::fs::create_dir_all(&dir).map_err(|error| {
            format!(
                "{name}: cannot create the data folder {}: {error}",
                dir.display()
            )
        })?;
        {
            let mut control = self.inner.control.lock();
            if control.stopping {
                return Err(format!("{name}: the supervisor is stopping"));
            }
            self.inner.status.send_modify(|status| {
                status.services.insert(
                    name.clone(),
                    ServiceStatus {
                        name: name.clone(),
                        version: plan.version.clone(),
                        replicas: plan.replicas,
                        started: false,
                        instances: BTreeMap::new(),
                    },
                );
            });
            let mut service = ServiceControl::default();
            service.wanted = plan.replicas;
            service.plan = Some(Arc::new(plan));
            control.services.insert(name.clone(), service);
        }
        self.inner.launch(&name);
        Ok(())
    }

    /// Stops every replica of a service (deregistered first) and forgets it.
    fn remove_service(&self, name: &str) {
        let mut control = self.inner.control.lock();
        let Control {
            services, retiring, ..
        } = &mut *control;
        let Some(mut service) = services.remove(name) else {
            return;
        };
        let mut slots = std::mem::take(&mut service.slots);
        slots.append(&mut service.surge);
        for (index, slot) in slots {
            let _ = slot.stop.send(true);
            retiring.insert((name.to_owned(), index), slot.task);
        }
        self.inner.status.send_modify(|status| {
            status.services.remove(name);
        });
    }
}

fn running(state: ReplicaState) -> bool {
    matches!(
        state,
        ReplicaState::Starting | ReplicaState::Healthy | ReplicaState::Unhealthy
    )
}
