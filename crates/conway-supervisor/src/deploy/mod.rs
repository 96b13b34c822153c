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
//! trait. Here: the requests and their checks; the replacement of replicas is in
//! [`rolling`], the canary's life in [`canary`]. Replicas a deploy starts take the lowest free slot numbers, so after a
//! deploy of `orders-1` and `orders-2` the service runs `orders-3` and `orders-1`.

mod canary;
mod rolling;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use conway_core::api::{DEFAULT_HEALTH_TIMEOUT, DeployRequest, DeployState, Deployment};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::history::now_us;
use crate::plan::ServicePlan;
use crate::supervisor::Inner;

/// Exits of a new replica before it was ever healthy that fail a deploy.
pub const FAILED_STARTS: u32 = 3;

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
        let replicas = {
            let control = self.control.lock();
            control.services.get(name).map_or(0, |s| s.slots.len())
        };
        if request.canary.is_some() && replicas == 0 {
            return Err(DeployError::Conflict(format!(
                "{name} has no replica for a canary to share requests with: scale it up, or deploy without --canary"
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
    pub(super) fn plans_of(
        &self,
        name: &str,
    ) -> Option<(Arc<ServicePlan>, Arc<ServicePlan>, Duration)> {
        let deploys = self.deploys.by_service.lock();
        let record = deploys.get(name)?;
        Some((
            record.old.clone(),
            record.new.clone(),
            record.health_timeout,
        ))
    }

    /// The split the service's definition declares (empty if none, or unknown).
    pub(super) async fn declared_split(&self, name: &str) -> conway_core::api::Split {
        match self.client.service(name).await {
            Ok(view) => view.definition.split,
            Err(error) => {
                tracing::warn!(service = name, %error, "cannot read the service's definition");
                conway_core::api::Split::new()
            }
        }
    }

    pub(super) fn step(&self, name: &str, message: String) {
        tracing::info!(service = name, "{message}");
        if let Some(record) = self.deploys.by_service.lock().get_mut(name) {
            record.deployment.steps.push(message);
        }
    }

    pub(super) fn finish(&self, name: &str, state: DeployState, reason: Option<String>) {
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

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
