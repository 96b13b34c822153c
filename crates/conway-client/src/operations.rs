//! Operations on a running system: run-time splits, deploys, `apply`, chaos kills and
//! the events they record. All but the split are served where the supervisor runs
//! (`conway up`); a lone `conway server` answers them with 503 `unavailable`.

use conway_core::api::{
    Applied, ApplyRequest, ChaosJob, ChaosKillRequest, DeployRequest, Deployment, Split,
    SystemEvent,
};
use reqwest::Method;
use serde::Deserialize;

use crate::Revision;
use crate::client::Client;
use crate::error::ClientError;

/// No request body.
const NO_BODY: Option<&()> = None;

/// The answer to a write that reports the revision it made.
#[derive(Debug, Deserialize)]
struct Written {
    revision: Revision,
}

impl Client {
    /// `PUT /v1/services/{name}/split`: a run-time split, replacing the declared one.
    pub async fn put_split(&self, service: &str, split: &Split) -> Result<Revision, ClientError> {
        let url = self.url(&["v1", "services", service, "split"]);
        let written: Written = self
            .call(Method::PUT, url, Some(split), "the written revision")
            .await?;
        Ok(written.revision)
    }

    /// `DELETE /v1/services/{name}/split`: the declared split applies again.
    pub async fn delete_split(&self, service: &str) -> Result<(), ClientError> {
        self.send(
            Method::DELETE,
            self.url(&["v1", "services", service, "split"]),
            NO_BODY,
        )
        .await
        .map(drop)
    }

    /// `POST /v1/services/{name}/deploy`: starts a deploy, a promote or a rollback;
    /// answers at once with where it stands.
    pub async fn deploy(
        &self,
        service: &str,
        request: &DeployRequest,
    ) -> Result<Deployment, ClientError> {
        let url = self.url(&["v1", "services", service, "deploy"]);
        self.call(Method::POST, url, Some(request), "the deployment")
            .await
    }

    /// `GET /v1/services/{name}/deploy`: the service's last deploy.
    pub async fn deployment(&self, service: &str) -> Result<Deployment, ClientError> {
        let url = self.url(&["v1", "services", service, "deploy"]);
        self.call(Method::GET, url, NO_BODY, "the deployment").await
    }

    /// `POST /v1/apply`: brings the running system to a manifest.
    pub async fn apply(&self, request: &ApplyRequest) -> Result<Applied, ClientError> {
        let url = self.url(&["v1", "apply"]);
        self.call(Method::POST, url, Some(request), "what was applied")
            .await
    }

    /// `POST /v1/chaos/kill`: starts a chaos job.
    pub async fn chaos_kill(&self, request: &ChaosKillRequest) -> Result<ChaosJob, ClientError> {
        let url = self.url(&["v1", "chaos", "kill"]);
        self.call(Method::POST, url, Some(request), "the chaos job")
            .await
    }

    /// `GET /v1/chaos/jobs`: every chaos job, the newest last.
    pub async fn chaos_jobs(&self) -> Result<Vec<ChaosJob>, ClientError> {
        let url = self.url(&["v1", "chaos", "jobs"]);
        self.call(Method::GET, url, NO_BODY, "the chaos jobs").await
    }

    /// `DELETE /v1/chaos/jobs/{id}`: stops a chaos job; answers it as it ended.
    pub async fn stop_chaos_job(&self, id: &str) -> Result<ChaosJob, ClientError> {
        let url = self.url(&["v1", "chaos", "jobs", id]);
        self.call(Method::DELETE, url, NO_BODY, "the chaos job")
            .await
    }

    /// `GET /v1/events`: what was done to the system, oldest first.
    pub async fn events(&self) -> Result<Vec<SystemEvent>, ClientError> {
        let url = self.url(&["v1", "events"]);
        self.call(Method::GET, url, NO_BODY, "the events").await
    }
}
