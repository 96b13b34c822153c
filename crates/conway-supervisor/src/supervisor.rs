//! The supervisor: starts each service's replicas in dependency order, keeps them
//! running, scales them, and stops them all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use conway_client::Client;
use conway_core::Manifest;
use conway_core::api::CheckedBy;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::logs::{InstanceLog, LogLine, LogSink};
use crate::options::SupervisorOptions;
use crate::order::{StartOrder, start_order};
use crate::plan::{ServicePlan, plans};
use crate::process::Spawner;
use crate::scale::{MAX_REPLICAS, Scale, ScaleError, Scaled};
use crate::slot::{self, SlotContext};
use crate::status::{Event, ReplicaState, ReplicaStatus, ServiceStatus, Status};

/// Runs the services of a manifest that have a `run` command, as child processes of
/// this one. Cheap to clone: clones share everything.
///
/// It talks to the control plane only through the API [`Client`]: each replica is
/// registered there as `starting` and checked by the supervisor, which reports its
/// health as it changes.
#[derive(Debug, Clone)]
pub struct Supervisor {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) options: SupervisorOptions,
    plans: BTreeMap<String, Arc<ServicePlan>>,
    pub(crate) external: BTreeSet<String>,
    order: StartOrder,
    pub(crate) spawner: Spawner,
    pub(crate) status: watch::Sender<Status>,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    sinks: Arc<[Arc<dyn LogSink>]>,
    pub(crate) control: Mutex<Control>,
    generations: AtomicU64,
    /// Deploys by service ([`crate::deploy`]).
    pub(crate) deploys: crate::deploy::Deploys,
    /// What was done to the system (deploys, chaos kills), for `GET /v1/events`.
    pub(crate) history: Arc<crate::history::History>,
}

#[derive(Debug, Default)]
pub(crate) struct Control {
    pub(crate) stopping: bool,
    pub(crate) services: BTreeMap<String, ServiceControl>,
    starters: Vec<JoinHandle<()>>,
    /// Replicas being stopped after a scale down or a deploy, by service and slot.
    pub(crate) retiring: BTreeMap<(String, u32), JoinHandle<()>>,
}

#[derive(Debug, Default)]
pub(crate) struct ServiceControl {
    pub(crate) wanted: u32,
    pub(crate) started: bool,
    /// What new and restarted replicas run (a deploy changes it).
    pub(crate) plan: Option<Arc<ServicePlan>>,
    pub(crate) slots: BTreeMap<u32, SlotHandle>,
    /// A deploy's new replicas, not counted as the service's until they replace old
    /// ones (a canary's, or a rolling deploy's next one).
    pub(crate) surge: BTreeMap<u32, SlotHandle>,
    /// Each slot's captured output, kept across restarts and scaling.
    logs: BTreeMap<u32, Arc<InstanceLog>>,
}

impl ServiceControl {
    /// The captured output of slot `index`.
    pub(crate) fn log_of(&self, index: u32) -> Option<&Arc<InstanceLog>> {
        self.logs.get(&index)
    }
}

#[derive(Debug)]
pub(crate) struct SlotHandle {
    generation: u64,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) task: JoinHandle<()>,
}

/// Why the supervisor cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// A service's data folder cannot be created.
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The thread that spawns processes cannot start.
    #[error("cannot start the spawning thread: {0}")]
    Spawner(std::io::Error),
}

impl Scale for Supervisor {
    fn scale(&self, service: &str, replicas: u32) -> Result<Scaled, ScaleError> {
        Supervisor::scale(self, service, replicas)
    }
}

impl Supervisor {
    /// A supervisor of `manifest`'s services with a `run` command (`manifest_dir` is the
    /// folder relative `workdir`s start from), and the receiver of its events. Nothing
    /// starts before [`Supervisor::start`].
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn new(
        manifest: &Manifest,
        manifest_dir: &Path,
        client: Client,
        options: SupervisorOptions,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Event>), SupervisorError> {
        let plans: BTreeMap<String, Arc<ServicePlan>> = plans(manifest, manifest_dir)
            .into_iter()
            .map(|(name, plan)| (name, Arc::new(plan)))
            .collect();
        for name in plans.keys() {
            let path = options.service_dir(name);
            std::fs::create_dir_all(&path).map_err(|source| SupervisorError::DataDir {
                path: path.display().to_string(),
                source,
            })?;
        }
        let external = manifest
            .services
            .keys()
            .filter(|name| !plans.contains_key(*name))
            .cloned()
            .collect();
        let order = start_order(
            &plans
                .iter()
                .map(|(name, plan)| (name.clone(), plan.depends_on.clone()))
                .collect(),
        );
        let mut status = Status::default();
        let mut control = Control::default();
        for (name, plan) in &plans {
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
            control.services.insert(
                name.clone(),
                ServiceControl {
                    wanted: plan.replicas,
                    plan: Some(plan.clone()),
                    ..ServiceControl::default()
                },
            );
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let sinks: Arc<[Arc<dyn LogSink>]> = options.sinks.clone().into();
        let inner = Inner {
            client,
            plans,
            external,
            order,
            spawner: Spawner::new().map_err(SupervisorError::Spawner)?,
            status: watch::Sender::new(status),
            events,
            sinks,
            control: Mutex::new(control),
            generations: AtomicU64::new(0),
            deploys: crate::deploy::Deploys::default(),
            history: Arc::default(),
            options,
        };
        Ok((
            Self {
                inner: Arc::new(inner),
            },
            receiver,
        ))
    }

    /// The order services start in: groups of services, dependencies first.
    pub fn start_order(&self) -> &StartOrder {
        &self.inner.order
    }

    /// Starts every service once its dependencies have a healthy instance (or after
    /// the dependency timeout, saying which is not ready). Registrations that an
    /// earlier supervisor left (one killed before it could deregister) are removed
    /// first. Returns at once; [`Supervisor::wait_settled`] waits for the outcome.
    pub async fn start(&self) {
        for name in self.inner.plans.keys() {
            self.inner.remove_leftovers(name).await;
        }
        let mut control = self.inner.control.lock();
        if control.stopping {
            return;
        }
        for name in self.inner.plans.keys() {
            let inner = self.inner.clone();
            let name = name.clone();
            control.starters.push(tokio::spawn(
                async move { inner.start_when_ready(&name).await },
            ));
        }
    }

    /// The state of every service now.
    pub fn status(&self) -> Status {
        self.inner.status.borrow().clone()
    }

    /// A receiver that sees every change of [`Status`].
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.inner.status.subscribe()
    }

    /// Waits until every service's replicas are healthy or in a crash loop.
    pub async fn wait_settled(&self) {
        let mut status = self.subscribe();
        let _ = status.wait_for(Status::settled).await;
    }

    /// The last captured lines of an instance (`orders-1`), oldest first.
    pub fn logs(&self, instance: &str) -> Option<Vec<LogLine>> {
        let (service, index) = instance.rsplit_once('-')?;
        let index: u32 = index.parse().ok()?;
        let control = self.inner.control.lock();
        let log = control.services.get(service)?.logs.get(&index)?;
        Some(log.tail(usize::MAX))
    }

    /// Sets `service`'s replicas to `replicas`: new ones start at once (once the service
    /// has started); removed ones, the newest first, are deregistered, then stopped
    /// (SIGTERM, the grace period, SIGKILL) in the background.
    pub fn scale(&self, service: &str, replicas: u32) -> Result<Scaled, ScaleError> {
        self.inner.scale(service, replicas)
    }

    /// Tells whoever follows the events (`up` prints them).
    pub(crate) fn report(&self, event: Event) {
        let _ = self.inner.events.send(event);
    }

    /// Stops everything: pending starts are cancelled, and every replica is
    /// deregistered, then stopped (SIGTERM, the grace period, SIGKILL), all at once.
    /// Returns when every process has exited.
    pub async fn shutdown(&self) {
        let (starters, slots, retiring) = {
            let mut control = self.inner.control.lock();
            control.stopping = true;
            let slots: Vec<SlotHandle> = control
                .services
                .values_mut()
                .flat_map(|service| {
                    let mut slots = std::mem::take(&mut service.slots);
                    slots.append(&mut std::mem::take(&mut service.surge));
                    slots.into_values()
                })
                .collect();
            (
                std::mem::take(&mut control.starters),
                slots,
                std::mem::take(&mut control.retiring),
            )
        };
        for starter in starters {
            starter.abort();
        }
        for slot in &slots {
            let _ = slot.stop.send(true);
        }
        for slot in slots {
            let _ = slot.task.await;
        }
        for (_, task) in retiring {
            let _ = task.await;
        }
    }
}

impl Inner {
    /// Removes registrations of `service` checked by a registrant: none is ours yet, so
    /// they are what a supervisor killed before it could deregister left behind.
    async fn remove_leftovers(&self, service: &str) {
        let Ok(instances) = self.client.instances(Some(service), false).await else {
            return;
        };
        for instance in instances {
            if instance.checked_by == CheckedBy::Registrant {
                tracing::info!(instance = %instance.id, "removing a registration left by an earlier run");
                let _ = self.client.deregister(&instance.id).await;
            }
        }
    }

    async fn start_when_ready(self: &Arc<Self>, name: &str) {
        let gates = self.order.gates.get(name).cloned().unwrap_or_default();
        if !gates.is_empty() {
            let started = tokio::time::Instant::now();
            let mut status = self.status.subscribe();
            let ready = |status: &Status| {
                gates.iter().all(|gate| {
                    status
                        .services
                        .get(gate)
                        .is_none_or(|s| s.healthy() > 0 || s.failed())
                })
            };
            let waited =
                tokio::time::timeout(self.options.dependency_timeout, status.wait_for(ready)).await;
            drop(waited);
            let now = self.status.borrow().clone();
            for gate in &gates {
                let Some(dependency) = now.services.get(gate) else {
                    continue;
                };
                if dependency.healthy() == 0 {
                    let _ = self.events.send(Event::DependencyNotReady {
                        service: name.to_owned(),
                        dependency: gate.clone(),
                        waited: started.elapsed(),
                        state: dependency.state().to_owned(),
                    });
                }
            }
        }
        self.launch(name);
    }

    pub(crate) fn launch(self: &Arc<Self>, name: &str) {
        let mut control = self.control.lock();
        if control.stopping {
            return;
        }
        let Control {
            services, retiring, ..
        } = &mut *control;
        let Some(service) = services.get_mut(name) else {
            return;
        };
        service.started = true;
        self.status.send_modify(|status| {
            if let Some(s) = status.services.get_mut(name) {
                s.started = true;
            }
        });
        for index in 1..=service.wanted {
            self.spawn_slot(name, service, index, retiring);
        }
    }

    fn scale(self: &Arc<Self>, name: &str, replicas: u32) -> Result<Scaled, ScaleError> {
        if self.external.contains(name) {
            return Err(ScaleError::External(name.to_owned()));
        }
        if replicas > MAX_REPLICAS {
            return Err(ScaleError::TooMany(replicas));
        }
        let mut control = self.control.lock();
        if control.stopping {
            return Err(ScaleError::Stopping);
        }
        let Control {
            services, retiring, ..
        } = &mut *control;
        let service = services
            .get_mut(name)
            .ok_or_else(|| ScaleError::Unknown(name.to_owned()))?;
        let previous = std::mem::replace(&mut service.wanted, replicas);
        self.status.send_modify(|status| {
            if let Some(s) = status.services.get_mut(name) {
                s.replicas = replicas;
            }
        });
        if service.started {
            // Slots are numbered from 1, but a deploy may leave gaps: count them.
            while service.slots.len() < replicas as usize {
                let index = free_index(name, service, retiring, false);
                self.spawn_slot(name, service, index, retiring);
            }
            let removed: Vec<u32> = service
                .slots
                .keys()
                .skip(replicas as usize)
                .copied()
                .collect();
            for index in removed.into_iter().rev() {
                if let Some(slot) = service.slots.remove(&index) {
                    let _ = slot.stop.send(true);
                    retiring.insert((name.to_owned(), index), slot.task);
                }
            }
        }
        tracing::info!(service = name, replicas, previous, "scaled");
        Ok(Scaled {
            service: name.to_owned(),
            replicas,
            previous,
        })
    }

    /// Starts slot `index` of `name` (after the replica that held the slot before, if
    /// it is still stopping).
    fn spawn_slot(
        self: &Arc<Self>,
        name: &str,
        service: &mut ServiceControl,
        index: u32,
        retiring: &mut BTreeMap<(String, u32), JoinHandle<()>>,
    ) {
        let Some(plan) = service.plan.clone() else {
            return;
        };
        let slot = self.start_slot(name, service, index, plan, retiring);
        service.slots.insert(index, slot);
    }

    /// Starts a replica of `plan` in slot `index` of `name` (after the replica that
    /// held the slot before, if it is still stopping); the caller keeps its handle.
    pub(crate) fn start_slot(
        self: &Arc<Self>,
        name: &str,
        service: &mut ServiceControl,
        index: u32,
        plan: Arc<ServicePlan>,
        retiring: &mut BTreeMap<(String, u32), JoinHandle<()>>,
    ) -> SlotHandle {
        let id = format!("{name}-{index}");
        let log = service
            .logs
            .entry(index)
            .or_insert_with(|| {
                Arc::new(InstanceLog::new(
                    name,
                    &id,
                    self.options.logs,
                    self.sinks.clone(),
                ))
            })
            .clone();
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        self.status.send_modify(|status| {
            if let Some(s) = status.services.get_mut(name) {
                s.instances.insert(
                    index,
                    ReplicaStatus {
                        id: id.clone(),
                        index,
                        state: ReplicaState::Starting,
                        crash_loop: false,
                        pid: None,
                        port: None,
                        restarts: 0,
                        last_exit: None,
                    },
                );
            }
        });
        let (stop, stopped) = watch::channel(false);
        let before = retiring.remove(&(name.to_owned(), index));
        let context = SlotContext {
            inner: self.clone(),
            plan,
            index,
            id,
            log,
        };
        let inner = self.clone();
        let task = tokio::spawn(async move {
            if let Some(before) = before {
                let _ = before.await;
            }
            let service = context.plan.name.clone();
            slot::run(context, stopped).await;
            inner.slot_ended(&service, index, generation);
        });
        SlotHandle {
            generation,
            stop,
            task,
        }
    }

    /// A slot's task ended: its replica is shown stopped while the slot is still
    /// wanted, and disappears once it was scaled away.
    fn slot_ended(&self, name: &str, index: u32, generation: u64) {
        let control = self.control.lock();
        let current = control
            .services
            .get(name)
            .and_then(|s| s.slots.get(&index).or_else(|| s.surge.get(&index)))
            .map(|slot| slot.generation);
        self.status.send_modify(|status| {
            let Some(service) = status.services.get_mut(name) else {
                return;
            };
            match current {
                Some(g) if g == generation => {
                    if let Some(replica) = service.instances.get_mut(&index) {
                        replica.state = ReplicaState::Stopped;
                        replica.pid = None;
                    }
                }
                Some(_) => {}
                None if control.stopping => {
                    if let Some(replica) = service.instances.get_mut(&index) {
                        replica.state = ReplicaState::Stopped;
                        replica.pid = None;
                    }
                }
                None => {
                    service.instances.remove(&index);
                }
            }
        });
    }

    /// Changes one replica's status.
    pub(crate) fn update(
        &self,
        service: &str,
        index: u32,
        change: impl FnOnce(&mut ReplicaStatus),
    ) {
        self.status.send_modify(|status| {
            if let Some(replica) = status
                .services
                .get_mut(service)
                .and_then(|s| s.instances.get_mut(&index))
            {
                change(replica);
            }
        });
    }
}

/// The lowest slot number of `name` that no replica holds (nor, with `avoid_retiring`,
/// one still stopping: a deploy must not wait for it).
pub(crate) fn free_index(
    name: &str,
    service: &ServiceControl,
    retiring: &BTreeMap<(String, u32), JoinHandle<()>>,
    avoid_retiring: bool,
) -> u32 {
    (1..)
        .find(|index| {
            let taken = service.slots.contains_key(index) || service.surge.contains_key(index);
            let stopping = avoid_retiring && retiring.contains_key(&(name.to_owned(), *index));
            !taken && !stopping
        })
        .unwrap_or(u32::MAX)
}
