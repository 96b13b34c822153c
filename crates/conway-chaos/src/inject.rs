//! What the method changed — run-time faults per service, kill jobs — kept so that
//! the rollback can put everything back as it was.

use std::collections::{BTreeMap, BTreeSet};

use conway_client::Client;
use conway_core::api::{ChaosJobState, ChaosKillRequest};
use conway_core::manifest::{Abort, Delay, Faults};

use crate::experiment::{Action, ActionKind};
use crate::report::Step;
use crate::run::{seconds, service_of};

/// What the method changed, so that the rollback can put it back.
pub(crate) struct Injected<'a> {
    client: &'a Client,
    /// The run-time faults of every service before the experiment.
    baseline: BTreeMap<String, Faults>,
    /// The faults the method set, per service.
    active: BTreeMap<String, Faults>,
    /// The kill jobs it started.
    jobs: Vec<String>,
}

impl<'a> Injected<'a> {
    pub(crate) fn new(client: &'a Client, baseline: BTreeMap<String, Faults>) -> Self {
        Self {
            client,
            baseline,
            active: BTreeMap::new(),
            jobs: Vec::new(),
        }
    }

    pub(crate) async fn inject(&mut self, service: &str, action: &Action) -> Result<(), String> {
        let percent = action.percent.as_ref().map_or(0.0, |p| *p.get_ref());
        // Marked before the request: a request cut short may still have landed.
        let active = self.active.entry(service.to_owned()).or_default();
        match action.action {
            ActionKind::Delay => {
                active.delay = action.duration.as_ref().map(|d| Delay {
                    percent,
                    duration: *d.get_ref(),
                });
            }
            _ => {
                active.abort = action.status.as_ref().map(|s| Abort {
                    percent,
                    status: *s.get_ref(),
                });
            }
        }
        self.write(service).await
    }

    pub(crate) async fn lift(&mut self, service: &str, kind: ActionKind) -> Result<(), String> {
        if let Some(active) = self.active.get_mut(service) {
            match kind {
                ActionKind::Delay => active.delay = None,
                _ => active.abort = None,
            }
        }
        self.write(service).await
    }

    /// Puts a service's faults in force: the method's over those from before.
    async fn write(&self, service: &str) -> Result<(), String> {
        let before = self.baseline.get(service).cloned().unwrap_or_default();
        let active = self.active.get(service).cloned().unwrap_or_default();
        let faults = Faults {
            delay: active.delay.or(before.delay),
            abort: active.abort.or(before.abort),
        };
        let result = if faults.delay.is_none() && faults.abort.is_none() {
            match self.client.delete_faults(service).await {
                Err(error) if error.status() == Some(404) => Ok(()),
                other => other,
            }
        } else {
            self.client.put_faults(service, &faults).await.map(drop)
        };
        result.map_err(|error| format!("faults of {service}: {error}"))
    }

    pub(crate) async fn kill(&mut self, action: &Action) -> Result<(), String> {
        let request = ChaosKillRequest {
            service: service_of(action),
            instance: action.instance.as_ref().map(|i| i.get_ref().clone()),
            every: action.every.as_ref().map(|e| *e.get_ref()),
            duration: action.duration_for.as_ref().map(|d| *d.get_ref()),
        };
        let job = self
            .client
            .chaos_kill(&request)
            .await
            .map_err(|error| format!("kill {}: {error}", request.service))?;
        self.jobs.push(job.id);
        Ok(())
    }

    /// Removes every fault the method set (what was there before comes back) and stops
    /// every kill job it started that still runs.
    pub(crate) async fn roll_back(
        &mut self,
        steps: &mut Vec<Step>,
        since: impl Fn() -> u64,
        progress: &(dyn Fn(&str) + Sync),
    ) {
        let services: Vec<String> = self.active.keys().cloned().collect();
        for service in services {
            self.active.remove(&service);
            let result = self.write(&service).await;
            let what = match self.baseline.contains_key(&service) {
                true => format!("faults of {service} back to those from before"),
                false => format!("faults of {service} removed"),
            };
            say_step(steps, progress, since(), what, result);
        }
        let running: BTreeSet<String> = match self.client.chaos_jobs().await {
            Ok(jobs) => jobs
                .into_iter()
                .filter(|j| j.state == ChaosJobState::Running)
                .map(|j| j.id)
                .collect(),
            // Unknown: stop them all.
            Err(_) => self.jobs.iter().cloned().collect(),
        };
        for id in std::mem::take(&mut self.jobs) {
            if running.contains(&id) {
                let result = self
                    .client
                    .stop_chaos_job(&id)
                    .await
                    .map(drop)
                    .map_err(|error| format!("stop {id}: {error}"));
                say_step(
                    steps,
                    progress,
                    since(),
                    format!("kill job {id} stopped"),
                    result,
                );
            }
        }
    }
}

fn say_step(
    steps: &mut Vec<Step>,
    progress: &(dyn Fn(&str) + Sync),
    at_ms: u64,
    what: String,
    result: Result<(), String>,
) {
    match &result {
        Ok(()) => progress(&format!("rollback +{}: {what}", seconds(at_ms))),
        Err(error) => progress(&format!(
            "rollback +{}: {what} FAILED: {error}",
            seconds(at_ms)
        )),
    }
    steps.push(Step {
        at_ms,
        what,
        error: result.err(),
    });
}
