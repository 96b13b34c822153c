//! Replacing replicas: one new replica at a time, healthy before an old one is
//! deregistered and stopped; and what that needs — starting beside, stopping, waiting
//! for health (or saying why not), waiting for a drain.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use conway_core::api::DeployState;

use conway_core::api::Split;

use super::FAILED_STARTS;
use super::canary::{split, stale_split};
use crate::plan::ServicePlan;
use crate::status::ReplicaState;
use crate::supervisor::{Control, Inner, ServiceControl, free_index};

/// Output lines of a failed replica a deploy's reason shows.
const REASON_LINES: usize = 10;

/// How long a deploy waits for replicas it stops to leave the registry.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

impl Inner {
    pub(super) async fn rolling(self: &Arc<Self>, name: &str) {
        let Some((old, new, timeout)) = self.plans_of(name) else {
            return;
        };
        // Replicas a scale adds meanwhile start on the new version too.
        self.start_new_replicas_as(name, &new);
        // A split the manifest declares names the versions it expects; requests drawn
        // for a version with no replica would fail, so the deploy steers the split.
        let steered = match (&old.version, &new.version) {
            (Some(from), Some(to)) if from != to && !self.declared_split(name).await.is_empty() => {
                self.put_split(name, split(&[(Some(from.clone()), 100)]))
                    .await;
                Some((from.clone(), to.clone()))
            }
            _ => None,
        };
        match self.roll(name, &new, timeout, None, steered.as_ref()).await {
            Ok(_) => {
                if let Some((_, to)) = &steered {
                    self.put_split(name, split(&[(Some(to.clone()), 100)]))
                        .await;
                    self.step(name, stale_split(&new));
                }
                self.set_plan(name, new);
                self.finish(name, DeployState::Done, None);
            }
            Err((reason, replaced)) => {
                self.start_new_replicas_as(name, &old);
                self.step(name, format!("rolling back: {reason}"));
                if let Some((from, _)) = &steered {
                    self.put_split(name, split(&[(Some(from.clone()), 100)]))
                        .await;
                }
                if !replaced.is_empty()
                    && let Err((again, _)) =
                        self.roll(name, &old, timeout, Some(replaced), None).await
                {
                    self.step(name, format!("the old version did not come back: {again}"));
                }
                if steered.is_some()
                    && let Err(error) = self.client.delete_split(name).await
                {
                    tracing::warn!(service = name, %error, "cannot clear the split");
                }
                self.finish(name, DeployState::RolledBack, Some(reason));
            }
        }
    }

    /// Sets a run-time split, saying so if it cannot.
    pub(super) async fn put_split(&self, name: &str, split: Split) {
        if let Err(error) = self.client.put_split(name, &split).await {
            tracing::warn!(service = name, %error, "cannot set the split");
        }
    }

    /// Replaces the replicas of `name` (those in `only`, or all) with ones of `plan`,
    /// one at a time: the new one healthy, then the old one deregistered and stopped.
    /// The slots replaced so far, or why it stopped and the slots replaced before.
    pub(super) async fn roll(
        self: &Arc<Self>,
        name: &str,
        plan: &Arc<ServicePlan>,
        timeout: Duration,
        only: Option<Vec<u32>>,
        steered: Option<&(String, String)>,
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
        let total = targets.len().max(1) as u32;
        for (done, old) in (1..).zip(targets) {
            let Some(index) =
                self.start_surge(name, plan, |service| service.slots.contains_key(&old))
            else {
                if self.control.lock().stopping {
                    return Err(("the supervisor is stopping".into(), replaced));
                }
                // Scaled away meanwhile: nothing to replace.
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
            if let Some((from, to)) = steered {
                // Shares by replicas, before the old one goes: never a share for a
                // version without a replica.
                let moved = 100 * done / total;
                let shares = [(Some(from.clone()), 100 - moved), (Some(to.clone()), moved)];
                self.put_split(name, split(&shares)).await;
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
            // Out of the registry before the next step: a deploy that says done has
            // no old replica left to route to.
            self.wait_drained(name, &[old]).await;
            self.step(
                name,
                format!("{name}-{index} is healthy; {name}-{old} deregistered and stopping"),
            );
            replaced.push(index);
        }
        Ok(replaced)
    }

    /// Starts a replica of `plan` beside the service's, if `still` holds of it.
    pub(super) fn start_surge(
        self: &Arc<Self>,
        name: &str,
        plan: &Arc<ServicePlan>,
        still: impl FnOnce(&ServiceControl) -> bool,
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
    pub(super) fn retire(&self, name: &str, indices: &[u32], surge_only: bool) {
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
    pub(super) async fn wait_healthy(
        &self,
        name: &str,
        index: u32,
        timeout: Duration,
    ) -> Result<(), String> {
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
    pub(super) fn last_lines(&self, name: &str, index: u32) -> String {
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

    /// Waits (a while) until replicas `indices` of `name` are out of the registry.
    pub(super) async fn wait_drained(&self, name: &str, indices: &[u32]) {
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

    /// Replicas of `name` that scaling adds run `plan` from now on.
    pub(super) fn start_new_replicas_as(&self, name: &str, plan: &Arc<ServicePlan>) {
        if let Some(service) = self.control.lock().services.get_mut(name) {
            service.plan = Some(plan.clone());
        }
    }

    /// New replicas of `name` run `plan` from now on, and the service shows its version.
    pub(super) fn set_plan(&self, name: &str, plan: Arc<ServicePlan>) {
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
}
