//! Operations on a running system, served where the supervisor runs (`conway up`):
//! deploys (`/v1/services/{name}/deploy`), `conway apply` (`/v1/apply`), chaos kills
//! (`/v1/chaos/...`) and the events they record (`/v1/events`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::units::{Duration, Share};

/// `PUT /v1/services/{name}/split`: version to share of requests, replacing the
/// manifest's `split` until `DELETE`d. The shares add up to 100%.
pub type Split = BTreeMap<String, Share>;

/// `POST /v1/services/{name}/deploy`: one of a new version (rolling, or a canary with
/// `canary`), `promote`, or `rollback`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The new version's command (argv), if it differs from the running one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Vec<String>>,
    /// The share of requests (1–99 percent) the new version gets until promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<u8>,
    /// Make the canary in progress the only version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promote: bool,
    /// Remove the canary in progress.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// How long each new instance may take to become healthy (default 60s) before the
    /// deploy rolls itself back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_timeout: Option<Duration>,
}

/// Where a deploy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployState {
    /// Replacing instances one at a time.
    Rolling,
    /// Starting the canary's instances.
    StartingCanary,
    /// The canary runs and gets its share; waiting for promote or rollback.
    Canary,
    /// Rolling every instance to the canary's version.
    Promoting,
    /// Going back to the old version.
    RollingBack,
    /// Every instance runs the new version.
    Done,
    /// Back on the old version (asked for, or because the new one never got healthy).
    RolledBack,
}

impl DeployState {
    /// Its name in JSON: `rolling`, `canary`, `rolled_back`…
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rolling => "rolling",
            Self::StartingCanary => "starting_canary",
            Self::Canary => "canary",
            Self::Promoting => "promoting",
            Self::RollingBack => "rolling_back",
            Self::Done => "done",
            Self::RolledBack => "rolled_back",
        }
    }

    /// The deploy is over (done or rolled back).
    pub fn finished(self) -> bool {
        matches!(self, Self::Done | Self::RolledBack)
    }

    /// The deploy waits for someone (finished, or a canary waiting for its verdict).
    pub fn settled(self) -> bool {
        self.finished() || self == Self::Canary
    }
}

/// A deploy, as `GET|POST /v1/services/{name}/deploy` answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// The service.
    pub service: String,
    /// The version it ran before.
    pub from: Option<String>,
    /// The version it goes to.
    pub to: Option<String>,
    /// Where it stands.
    pub state: DeployState,
    /// The canary's share, in percent, while it has one.
    pub canary: Option<u8>,
    /// Why it was rolled back, when it rolled itself back (the new instance's last exit
    /// and output lines).
    pub reason: Option<String>,
    /// What happened, step by step, for people.
    pub steps: Vec<String>,
    /// When it started, in microseconds since the Unix epoch.
    pub started_us: i64,
    /// How long it took, once finished (or until the canary ran), in milliseconds.
    pub elapsed_ms: u64,
}

/// `POST /v1/apply`: a manifest's text, and the path its errors are reported against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// The manifest (TOML).
    pub manifest: String,
    /// Its file name, for `FILE:LINE:COLUMN` in errors (default `conway.toml`). Relative
    /// `workdir`s still start from the running manifest's folder.
    #[serde(default)]
    pub path: Option<String>,
}

/// What `POST /v1/apply` changed, by service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applied {
    /// New services, started.
    pub started: Vec<String>,
    /// Services no longer declared: drained, stopped and removed.
    pub removed: Vec<String>,
    /// Services whose command, build, environment, version or health changed: rolled
    /// to the new definition, one instance at a time.
    pub redeployed: Vec<String>,
    /// Services whose replicas changed.
    pub scaled: Vec<String>,
    /// Services whose policies alone changed (resilience, split, faults…), and
    /// `routes`, `mesh`, `consumers`, `jwt` when they did: applied without a restart.
    pub updated: Vec<String>,
    /// What cannot change without restarting `conway up` (the gateway's address…).
    pub notes: Vec<String>,
}

/// `POST /v1/chaos/kill`: kill instances of a service with SIGKILL, once, or every
/// `every` for `for`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosKillRequest {
    /// The service.
    pub service: String,
    /// Only this instance (else a random running one each time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Kill again at this interval (else once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// Stop after this long (default with `every`: until stopped).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

/// Where a chaos job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChaosJobState {
    /// It kills.
    Running,
    /// Its time ran out (or it killed once, as asked).
    Finished,
    /// `conway chaos stop` ended it.
    Stopped,
}

/// A chaos job (`GET /v1/chaos/jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosJob {
    /// Its id (`chaos-1`).
    pub id: String,
    /// What it was asked to do.
    pub request: ChaosKillRequest,
    /// Where it stands.
    pub state: ChaosJobState,
    /// Instances it killed so far.
    pub kills: u32,
    /// Why its last attempt killed nothing (no running instance…).
    pub last_error: Option<String>,
    /// When it started, in microseconds since the Unix epoch.
    pub started_us: i64,
}

/// Something that was done to the system (`GET /v1/events`): a chaos kill, a deploy's
/// step, an apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemEvent {
    /// When, in microseconds since the Unix epoch.
    pub time_us: i64,
    /// What: `chaos.kill`, `deploy.started`, `deploy.done`, `deploy.rolled_back`,
    /// `apply`…
    pub kind: String,
    /// The service it concerns.
    pub service: Option<String>,
    /// The instance it concerns.
    pub instance: Option<String>,
    /// For people.
    pub message: String,
}

/// `DeployRequest`'s health timeout when it names none.
pub const DEFAULT_HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_states_in_json_and_when_they_wait() {
        for state in [
            DeployState::Rolling,
            DeployState::StartingCanary,
            DeployState::Canary,
            DeployState::Promoting,
            DeployState::RollingBack,
            DeployState::Done,
            DeployState::RolledBack,
        ] {
            let json = serde_json::to_string(&state).expect("JSON");
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(
                state.settled(),
                matches!(
                    state,
                    DeployState::Canary | DeployState::Done | DeployState::RolledBack
                )
            );
        }
    }

    #[test]
    fn a_chaos_request_reads_for_and_refuses_unknown_fields() {
        let request: ChaosKillRequest =
            serde_json::from_str(r#"{"service": "web", "every": "10s", "for": "2m"}"#)
                .expect("valid");
        assert_eq!(request.duration, Some(Duration::from_secs(120)));
        assert!(
            serde_json::from_str::<ChaosKillRequest>(r#"{"service": "web", "count": 2}"#).is_err()
        );
        assert!(
            serde_json::from_str::<DeployRequest>(r#"{"version": "2", "replicas": 2}"#).is_err()
        );
    }
}
