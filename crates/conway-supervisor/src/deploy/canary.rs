//! A canary's life: its replicas beside the old ones and a run-time split giving it
//! its share of requests; then promoted (every replica rolled to it, the split
//! cleared) or rolled back (its replicas stopped, the split cleared).

use std::sync::Arc;

use conway_core::api::{DeployState, Split};
use conway_core::units::Share;

use crate::plan::ServicePlan;
use crate::supervisor::Inner;

impl Inner {
    pub(super) async fn canary(self: &Arc<Self>, name: &str, percent: u8) {
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

    pub(super) async fn promote(self: &Arc<Self>, name: &str) {
        let Some((old, new, timeout)) = self.plans_of(name) else {
            return;
        };
        self.start_new_replicas_as(name, &new);
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
                self.start_new_replicas_as(name, &old);
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
        if self.declared_split(name).await.is_empty() {
            if let Err(error) = self.client.delete_split(name).await {
                tracing::warn!(service = name, %error, "cannot clear the split");
            }
        } else {
            self.step(name, stale_split(&new));
        }
        self.set_plan(name, new);
        self.finish(name, DeployState::Done, None);
    }

    pub(super) async fn rollback(self: &Arc<Self>, name: &str) {
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
}

/// `{"1.0": "90%", "1.1": "10%"}`, versions without a name and empty shares left out.
pub(super) fn split(shares: &[(Option<String>, u32)]) -> Split {
    shares
        .iter()
        .filter(|(_, percent)| *percent > 0)
        .filter_map(|(version, percent)| Some((version.clone()?, Share::from_percent(*percent))))
        .collect()
}

fn version(plan: &ServicePlan) -> &str {
    plan.version.as_deref().unwrap_or("no version")
}

/// The step that says why a run-time split stays after a deploy.
pub(super) fn stale_split(new: &ServicePlan) -> String {
    format!(
        "the manifest declares a split: a run-time split sends every request to {} until the manifest's split is changed (conway apply) or DELETE /v1/services/{{name}}/split",
        version(new)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_leaves_out_empty_shares_and_unnamed_versions() {
        let shares = split(&[
            (Some("1.0".into()), 90),
            (Some("2.0".into()), 10),
            (Some("3.0".into()), 0),
            (None, 100),
        ]);
        assert_eq!(serde_json_like(&shares), [("1.0", 9_000), ("2.0", 1_000)]);
        let total: u32 = shares.values().map(|s| s.basis_points()).sum();
        assert_eq!(total, Share::FULL.basis_points());
    }

    fn serde_json_like(split: &Split) -> Vec<(&str, u32)> {
        split
            .iter()
            .map(|(v, s)| (v.as_str(), s.basis_points()))
            .collect()
    }
}
