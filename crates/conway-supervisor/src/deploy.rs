//! Deploys: a new version replaces a service's replicas one at a time, each new one
//! healthy before an old one is deregistered and stopped; or a canary — a few new
//! replicas beside the old ones, given a share of requests through a run-time split
//! (`PUT /v1/services/{name}/split`, which the gateway and the mesh apply) — until it is
//! promoted (every replica rolled to it, the split cleared) or rolled back (its
//! replicas stopped, the split cleared). A new replica that does not become healthy in
//! time, or exits [`FAILED_STARTS`] times first, rolls the deploy back; the deployment
//! says why, with its last exit and output lines.
//!
//! The control plane's `POST /v1/services/{name}/deploy` needs exactly the [`Deploy`]
//! trait. Replicas a deploy starts take the lowest free slot numbers, so after a
//! deploy of `orders-1` and `orders-2` the service runs `orders-3` and `orders-1`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use conway_core::api::{DEFAULT_HEALTH_TIMEOUT, DeployRequest, DeployState, Deployment, Split};
use conway_core::units::Share;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::history::now_us;
use crate::plan::ServicePlan;
use crate::status::ReplicaState;
use crate::supervisor::{Control, Inner, free_index};

/// Exits of a new replica before it was ever healthy that fail a deploy.
pub const FAILED_STARTS: u32 = 3;

/// Output lines of a failed replica a deploy's reason shows.
const REASON_LINES: usize = 10;

/// How long a deploy waits for replicas it stops to leave the registry.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// Why a deploy request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeployError {
    /// No such supervised service.
    #[error("no service named {0:?}")]
    Unknown(String),
    /// The service runs elsewhere.
    #[error(
        "service {0:?} has no `run` command: its instances run elsewhere and are not deployed here"
    )]
    External(String),
    /// The service was never deployed.
    #[error("{0:?} has not been deployed since `conway up` started")]
    NoDeploy(String),
    /// A malformed request (no version, a canary share out of range…).
    #[error("{0}")]
    Invalid(String),
    /// Not now: a deploy in progress, the version already running, no canary to promote.
    #[error("{0}")]
    Conflict(String),
    /// The supervisor is stopping.
    #[error("the supervisor is stopping")]
    Stopping,
}

/// Deploys, as the control plane's `/v1/services/{name}/deploy` needs them, without
/// knowing the supervisor.
pub trait Deploy: Send + Sync {
    /// Starts a deploy (or a promote, or a rollback) and answers where it stands; it
    /// goes on in the background.
    fn deploy(&self, service: &str, request: DeployRequest) -> Result<Deployment, DeployError>;

    /// The service's last deploy.
    fn deployment(&self, service: &str) -> Result<Deployment, DeployError>;
}

/// The deploys of every service: the last one of each.
#[derive(Debug, Default)]
pub(crate) struct Deploys {
    by_service: Mutex<BTreeMap<String, Record>>,
}

#[derive(Debug)]
struct Record {
    deployment: Deployment,
    started: Instant,
    /// What the service ran before.
    old: Arc<ServicePlan>,
    /// What it goes to.
    new: Arc<ServicePlan>,
    health_timeout: Duration,
}

/// What a deploy task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Rolling,
    Canary(u8),
    Promote,
    Rollback,
}

impl Inner {
    /// Checks `request` against the service's state and starts its task.
    pub(crate) fn deploy(
        self: &Arc<Self>,
        name: &str,
        request: DeployRequest,
    ) -> Result<Deployment, DeployError> {
        if request.promote && request.rollback {
            return Err(DeployError::Invalid(
                "--promote and --rollback cannot go together".into(),
            ));
        }
        let verdict = request.promote || request.rollback;
        if verdict
            && (request.version.is_some() || request.run.is_some() || request.canary.is_some())
        {
            return Err(DeployError::Invalid(
                "--promote and --rollback act on the canary in progress; they take no --version, --run or --canary".into(),
            ));
        }
        let current = self.current_plan(name)?;
        if verdict {
            let mut deploys = self.deploys.by_service.lock();
            let record = deploys
                .get_mut(name)
                .filter(|r| r.deployment.state == DeployState::Canary)
                .ok_or_else(|| {
                    DeployError::Conflict(format!(
                        "no canary of {name} in progress to {}; start one with `conway deploy {name} --version V --canary PERCENT`",
                        if request.promote { "promote" } else { "roll back" }
                    ))
                })?;
            // Timed from the verdict: the canary may have run for days.
            record.started = Instant::now();
            let task = if request.promote {
                record.deployment.state = DeployState::Promoting;
                Task::Promote
            } else {
                record.deployment.state = DeployState::RollingBack;
                Task::Rollback
            };
            let answer = record.deployment.clone();
            drop(deploys);
            self.spawn_task(name, task);
            return Ok(answer);
        }
        let version = request
            .version
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                DeployError::Invalid(format!(
                    "a deploy needs the new version: `conway deploy {name} --version V`"
                ))
            })?;
        if let Some(percent) = request.canary
            && !(1..=99).contains(&percent)
        {
            return Err(DeployError::Invalid(format!(
                "--canary is the new version's share of requests, from 1 to 99 percent, not {percent}"
            )));
        }
        if request.run.as_ref().is_some_and(Vec::is_empty) {
            return Err(DeployError::Invalid("--run needs a command".into()));
        }
        let run = request.run.unwrap_or_else(|| current.run.clone());
        if current.version.as_deref() == Some(&version) && run == current.run {
            return Err(DeployError::Conflict(format!(
                "{name} already runs version {version}"
            )));
        }
        if request.canary.is_some() && current.version.is_none() {
            return Err(DeployError::Invalid(format!(
                "a canary splits requests by version, and {name} has none: give it a `version` in the manifest (or deploy without --canary)"
            )));
        }
        let new = ServicePlan {
            version: Some(version),
            run,
            ..(*current).clone()
        };
        let task = match request.canary {
            Some(percent) => Task::Canary(percent),
            None => Task::Rolling,
        };
        let timeout = request
            .health_timeout
            .map_or(DEFAULT_HEALTH_TIMEOUT, |t| t.get());
        self.begin(name, current, Arc::new(new), timeout, task)
    }

    /// Rolls `name` to `plan` (a changed manifest's), whatever its version.
    pub(crate) fn redeploy(
        self: &Arc<Self>,
        name: &str,
        plan: ServicePlan,
    ) -> Result<Deployment, DeployError> {
        let current = self.current_plan(name)?;
        self.begin(
            name,
            current,
            Arc::new(plan),
            DEFAULT_HEALTH_TIMEOUT,
            Task::Rolling,
        )
    }

    /// The plan `name` runs now, if it is supervised, started, and not stopping.
    fn current_plan(&self, name: &str) -> Result<Arc<ServicePlan>, DeployError> {
        let control = self.control.lock();
        if control.stopping {
            return Err(DeployError::Stopping);
        }
        let Some(service) = control.services.get(name) else {
            return Err(if self.external.contains(name) {
                DeployError::External(name.to_owned())
            } else {
                DeployError::Unknown(name.to_owned())
            });
        };
        if !service.started {
            return Err(DeployError::Conflict(format!(
                "{name} has not started yet (it waits for its dependencies)"
            )));
        }
        service
            .plan
            .clone()
            .ok_or_else(|| DeployError::Unknown(name.to_owned()))
    }

    /// Records a new deploy, unless one is in progress, and starts its task.
    fn begin(
        self: &Arc<Self>,
        name: &str,
        old: Arc<ServicePlan>,
        new: Arc<ServicePlan>,
        health_timeout: Duration,
        task: Task,
    ) -> Result<Deployment, DeployError> {
        let mut deploys = self.deploys.by_service.lock();
        if let Some(running) = deploys.get(name).filter(|r| !r.deployment.state.finished()) {
            let state = running.deployment.state;
            return Err(DeployError::Conflict(match state {
                DeployState::Canary => format!(
                    "a canary of {name} ({}) is in progress: `conway deploy {name} --promote` or `--rollback` first",
                    running.deployment.to.as_deref().unwrap_or("?")
                ),
                _ => format!(
                    "a deploy of {name} is in progress ({}); wait for it to finish",
                    state.as_str()
                ),
            }));
        }
        let deployment = Deployment {
            service: name.to_owned(),
            from: old.version.clone(),
            to: new.version.clone(),
            state: match task {
                Task::Canary(_) => DeployState::StartingCanary,
                _ => DeployState::Rolling,
            },
            canary: match task {
                Task::Canary(percent) => Some(percent),
                _ => None,
            },
            reason: None,
            steps: Vec::new(),
            started_us: now_us(),
            elapsed_ms: 0,
        };
        deploys.insert(
            name.to_owned(),
            Record {
                deployment: deployment.clone(),
                started: Instant::now(),
                old,
                new,
                health_timeout,
            },
        );
        drop(deploys);
        self.history.record(
            "deploy.started",
            Some(name),
            None,
            format!(
                "deploy of {name} from {} to {}{}",
                deployment.from.as_deref().unwrap_or("(none)"),
                deployment.to.as_deref().unwrap_or("(none)"),
                deployment
                    .canary
                    .map(|p| format!(" as a {p}% canary"))
                    .unwrap_or_default()
            ),
        );
        self.spawn_task(name, task);
        Ok(deployment)
    }

    pub(crate) fn deployment(&self, name: &str) -> Result<Deployment, DeployError> {
        let deploys = self.deploys.by_service.lock();
        match deploys.get(name) {
            Some(record) => {
                let mut deployment = record.deployment.clone();
                if !deployment.state.settled() {
                    deployment.elapsed_ms = millis(record.started.elapsed());
                }
                Ok(deployment)
            }
            None if self.control.lock().services.contains_key(name) => {
                Err(DeployError::NoDeploy(name.to_owned()))
            }
            None if self.external.contains(name) => Err(DeployError::External(name.to_owned())),
            None => Err(DeployError::Unknown(name.to_owned())),
        }
    }

    fn spawn_task(self: &Arc<Self>, name: &str, task: Task) {
        let inner = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            match task {
                Task::Rolling => inner.rolling(&name).await,
                Task::Canary(percent) => inner.canary(&name, percent).await,
                Task::Promote => inner.promote(&name).await,
                Task::Rollback => inner.rollback(&name).await,
            }
        });
    }

    /// The plans and health timeout of `name`'s deploy.
    fn plans_of(&self, name: &str) -> Option<(Arc<ServicePlan>, Arc<ServicePlan>, Duration)> {
        let deploys = self.deploys.by_service.lock();
        let record = deploys.get(name)?;
        Some((
            record.old.clone(),
            record.new.clone(),
            record.health_timeout,
        ))
    }

    async fn rolling(self: &Arc<Self>, name: &str) {
        let Some((old, new, timeout)) = self.plans_of(name) else {
            return;
        };
        match self.roll(name, &new, timeout, None).await {
            Ok(_) => {
                self.set_plan(name, new);
                self.finish(name, DeployState::Done, None);
            }
            Err((reason, replaced)) => {
                self.step(name, format!("rolling back: {reason}"));
                if !replaced.is_empty()
                    && let Err((again, _)) = self.roll(name, &old, timeout, Some(replaced)).await
                {
                    self.step(name, format!("the old version did not come back: {again}"));
                }
                self.finish(name, DeployState::RolledBack, Some(reason));
            }
        }
    }

    /// Replaces the replicas of `name` (those in `only`, or all) with ones of `plan`,
    /// one at a time: the new one healthy, then the old one deregistered and stopped.
    /// The slots replaced so far, or why it stopped and the slots replaced before.
    async fn roll(
        self: &Arc<Self>,
        name: &str,
        plan: &Arc<ServicePlan>,
        timeout: Duration,
        only: Option<Vec<u32>>,
    ) -> Result<Vec<u32>, (String, Vec<u32>)> {
        let targets: Vec<u32> = {
            let control = self.control.lock();
            let Some(service) = control.services.get(name) else {
                return Err(("the service is gone".into(), Vec::new()));
            };
            service
                .slots
                .keys()
                .filter(|i| only.as_ref().is_none_or(|only| only.contains(i)))
                .copied()
                .collect()
        };
        let mut replaced = Vec::new();
        for old in targets {
            let Some(index) =
                self.start_surge(name, plan, |service| service.slots.contains_key(&old))
            else {
                continue;
            };
            self.step(
                name,
                format!(
                    "started {name}-{index} ({}) to replace {name}-{old}",
                    plan.version.as_deref().unwrap_or("no version")
                ),
            );
            if let Err(reason) = self.wait_healthy(name, index, timeout).await {
                self.retire(name, &[index], true);
                return Err((reason, replaced));
            }
            {
                let mut control = self.control.lock();
                let Control {
                    services, retiring, ..
                } = &mut *control;
                if let Some(service) = services.get_mut(name) {
                    if let Some(slot) = service.surge.remove(&index) {
                        service.slots.insert(index, slot);
                    }
                    if let Some(slot) = service.slots.remove(&old) {
                        let _ = slot.stop.send(true);
                        retiring.insert((name.to_owned(), old), slot.task);
                    }
                }
            }
            self.step(
                name,
                format!("{name}-{index} is healthy; {name}-{old} deregistered and stopping"),
            );
            replaced.push(index);
        }
        Ok(replaced)
    }

    /// Starts a replica of `plan` beside the service's, if `still` holds of it.
    fn start_surge(
        self: &Arc<Self>,
        name: &str,
        plan: &Arc<ServicePlan>,
        still: impl FnOnce(&crate::supervisor::ServiceControl) -> bool,
    ) -> Option<u32> {
        let mut control = self.control.lock();
        if control.stopping {
            return None;
        }
        let Control {
            services, retiring, ..
        } = &mut *control;
        let service = services.get_mut(name)?;
        if !still(service) {
            return None;
        }
        let index = free_index(name, service, retiring, true);
        let slot = self.start_slot(name, service, index, plan.clone(), retiring);
        service.surge.insert(index, slot);
        Some(index)
    }

    /// Stops replicas (deregistered first) of `name`, from its surge or, unless
    /// `surge_only`, its own.
    fn retire(&self, name: &str, indices: &[u32], surge_only: bool) {
        let mut control = self.control.lock();
        let Control {
            services, retiring, ..
        } = &mut *control;
        let Some(service) = services.get_mut(name) else {
            return;
        };
        for index in indices {
            let slot = match service.surge.remove(index) {
                Some(slot) => Some(slot),
                None if !surge_only => service.slots.remove(index),
                None => None,
            };
            if let Some(slot) = slot {
                let _ = slot.stop.send(true);
                retiring.insert((name.to_owned(), *index), slot.task);
            }
        }
    }

    /// Waits until replica `index` of `name` is healthy; else why not.
    async fn wait_healthy(&self, name: &str, index: u32, timeout: Duration) -> Result<(), String> {
        let id = format!("{name}-{index}");
        let mut status = self.status.subscribe();
        let waited = tokio::time::timeout(
            timeout,
            status.wait_for(|status| {
                status.replica(name, index).is_none_or(|r| {
                    r.state == ReplicaState::Healthy || r.restarts >= FAILED_STARTS || r.crash_loop
                })
            }),
        )
        .await;
        let replica = match waited {
            Err(_) => {
                return Err(format!(
                    "{id} did not become healthy within {}{}",
                    conway_core::units::Duration::from(timeout),
                    self.last_lines(name, index)
                ));
            }
            Ok(Err(_)) => return Err("the supervisor stopped".into()),
            Ok(Ok(status)) => status.replica(name, index).cloned(),
        };
        match replica {
            Some(r) if r.state == ReplicaState::Healthy => Ok(()),
            Some(r) => Err(format!(
                "{id} exited {} times before it became healthy (last: {}){}",
                r.restarts,
                r.last_exit.as_deref().unwrap_or("unknown"),
                self.last_lines(name, index)
            )),
            None => Err(format!("{id} was stopped before it became healthy")),
        }
    }

    /// `; its last output:` and the last lines of replica `index`, if it printed any.
    fn last_lines(&self, name: &str, index: u32) -> String {
        let lines = {
            let control = self.control.lock();
            control
                .services
                .get(name)
                .and_then(|s| s.log_of(index))
                .map(|log| log.tail(REASON_LINES))
                .unwrap_or_default()
        };
        let mut out = String::new();
        if !lines.is_empty() {
            out.push_str("; its last output:");
            for line in lines {
                let _ = write!(out, "\n  {}", line.text);
            }
        }
        out
    }

    async fn canary(self: &Arc<Self>, name: &str, percent: u8) {
        let Some((old, new, timeout)) = self.plans_of(name) else {
            return;
        };
        let wanted = {
            let control = self.control.lock();
            control.services.get(name).map_or(1, |s| s.wanted)
        };
        let count = (wanted * u32::from(percent)).div_ceil(100).max(1);
        let mut started = Vec::new();
        for _ in 0..count {
            if let Some(index) = self.start_surge(name, &new, |_| true) {
                self.step(
                    name,
                    format!(
                        "started canary {name}-{index} ({})",
                        new.version.as_deref().unwrap_or_default()
                    ),
                );
                started.push(index);
            }
        }
        for index in &started {
            if let Err(reason) = self.wait_healthy(name, *index, timeout).await {
                self.retire(name, &started, true);
                self.finish(name, DeployState::RolledBack, Some(reason));
                return;
            }
        }
        let split = split(&[
            (old.version.clone(), 100 - u32::from(percent)),
            (new.version.clone(), u32::from(percent)),
        ]);
        if let Err(error) = self.client.put_split(name, &split).await {
            self.retire(name, &started, true);
            self.finish(
                name,
                DeployState::RolledBack,
                Some(format!("cannot set the split: {error}")),
            );
            return;
        }
        self.step(
            name,
            format!(
                "split set: {} {}%, {} {percent}%",
                old.version.as_deref().unwrap_or_default(),
                100 - u32::from(percent),
                new.version.as_deref().unwrap_or_default()
            ),
        );
        self.finish(name, DeployState::Canary, None);
    }

    async fn promote(self: &Arc<Self>, name: &str) {
        let Some((_, new, timeout)) = self.plans_of(name) else {
            return;
        };
        let (wanted, canaries) = {
            let control = self.control.lock();
            control
                .services
                .get(name)
                .map_or((0, 0), |s| (s.wanted as usize, s.surge.len()))
        };
        let mut started = Vec::new();
        for _ in canaries..wanted {
            let Some(index) = self.start_surge(name, &new, |_| true) else {
                break;
            };
            self.step(name, format!("started {name}-{index} ({})", version(&new)));
            started.push(index);
        }
        for index in &started {
            if let Err(reason) = self.wait_healthy(name, *index, timeout).await {
                self.retire(name, &started, true);
                self.step(
                    name,
                    format!("promote failed, the canary still runs: {reason}"),
                );
                self.finish(name, DeployState::Canary, Some(reason));
                return;
            }
        }
        let all_new = split(&[(new.version.clone(), 100)]);
        if let Err(error) = self.client.put_split(name, &all_new).await {
            tracing::warn!(service = name, %error, "cannot send every request to the new version");
        }
        let old: Vec<u32> = {
            let mut control = self.control.lock();
            let Some(service) = control.services.get_mut(name) else {
                return;
            };
            let old: Vec<u32> = service.slots.keys().copied().collect();
            let surge = std::mem::take(&mut service.surge);
            drop(control);
            self.retire(name, &old, false);
            let mut control = self.control.lock();
            if let Some(service) = control.services.get_mut(name) {
                service.slots.extend(surge);
            }
            old
        };
        self.step(
            name,
            format!(
                "every request goes to {}; old replicas stopping",
                version(&new)
            ),
        );
        self.wait_drained(name, &old).await;
        if let Err(error) = self.client.delete_split(name).await {
            tracing::warn!(service = name, %error, "cannot clear the split");
        }
        self.set_plan(name, new);
        self.finish(name, DeployState::Done, None);
    }

    async fn rollback(self: &Arc<Self>, name: &str) {
        let Some((old, _, _)) = self.plans_of(name) else {
            return;
        };
        let all_old = split(&[(old.version.clone(), 100)]);
        if let Err(error) = self.client.put_split(name, &all_old).await {
            tracing::warn!(service = name, %error, "cannot send every request to the old version");
        }
        let canaries: Vec<u32> = {
            let control = self.control.lock();
            control
                .services
                .get(name)
                .map(|s| s.surge.keys().copied().collect())
                .unwrap_or_default()
        };
        self.retire(name, &canaries, true);
        self.step(name, "canary replicas stopping".to_owned());
        self.wait_drained(name, &canaries).await;
        if let Err(error) = self.client.delete_split(name).await {
            tracing::warn!(service = name, %error, "cannot clear the split");
        }
        self.finish(name, DeployState::RolledBack, None);
    }

    /// Waits (a while) until replicas `indices` of `name` are out of the registry.
    async fn wait_drained(&self, name: &str, indices: &[u32]) {
        let mut status = self.status.subscribe();
        let _ = tokio::time::timeout(
            DRAIN_WAIT,
            status.wait_for(|status| {
                indices.iter().all(|i| {
                    status.replica(name, *i).is_none_or(|r| {
                        matches!(r.state, ReplicaState::Stopping | ReplicaState::Stopped)
                    })
                })
            }),
        )
        .await;
    }

    /// New and restarted replicas of `name` run `plan` from now on.
    fn set_plan(&self, name: &str, plan: Arc<ServicePlan>) {
        let mut control = self.control.lock();
        if let Some(service) = control.services.get_mut(name) {
            service.plan = Some(plan.clone());
        }
        self.status.send_modify(|status| {
            if let Some(s) = status.services.get_mut(name) {
                s.version = plan.version.clone();
            }
        });
    }

    fn step(&self, name: &str, message: String) {
        tracing::info!(service = name, "{message}");
        if let Some(record) = self.deploys.by_service.lock().get_mut(name) {
            record.deployment.steps.push(message);
        }
    }

    fn finish(&self, name: &str, state: DeployState, reason: Option<String>) {
        let message = {
            let mut deploys = self.deploys.by_service.lock();
            let Some(record) = deploys.get_mut(name) else {
                return;
            };
            let d = &mut record.deployment;
            d.state = state;
            d.elapsed_ms = millis(record.started.elapsed());
            if reason.is_some() {
                d.reason = reason;
            }
            if state != DeployState::Canary {
                d.canary = None;
            }
            let to = d.to.as_deref().unwrap_or("(none)");
            match state {
                DeployState::Done => format!("{name} runs {to} ({} ms)", d.elapsed_ms),
                DeployState::Canary => format!(
                    "canary of {name} {to} takes {}% of requests",
                    d.canary.unwrap_or_default()
                ),
                _ => format!(
                    "{name} rolled back to {}{}",
                    d.from.as_deref().unwrap_or("(none)"),
                    d.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            }
        };
        let kind = match state {
            DeployState::Done => "deploy.done",
            DeployState::Canary => "deploy.canary",
            _ => "deploy.rolled_back",
        };
        self.history.record(kind, Some(name), None, message);
    }
}

/// `{"1.0": "90%", "1.1": "10%"}`, versions without a name left out.
fn split(shares: &[(Option<String>, u32)]) -> Split {
    shares
        .iter()
        .filter_map(|(version, percent)| Some((version.clone()?, Share::from_percent(*percent))))
        .collect()
}

fn version(plan: &ServicePlan) -> &str {
    plan.version.as_deref().unwrap_or("no version")
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
