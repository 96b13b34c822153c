//! One method per endpoint of the control plane's API (ARCHITECTURE.md, "HTTP API").

use conway_core::api::{
    ConfigSnapshot, Heartbeat, Instance, RegisterInstance, ReportHealth, ServiceView,
};
use conway_core::manifest::{Faults, Service};
use reqwest::Method;
use serde::Deserialize;

use crate::Revision;
use crate::client::Client;
use crate::error::ClientError;

/// The answer to a write that reports the revision it made.
#[derive(Debug, Deserialize)]
struct Written {
    revision: Revision,
}

/// No request body.
const NO_BODY: Option<&()> = None;

impl Client {
    /// `GET /readyz`: the registry's current revision, once the store answers.
    pub async fn ready(&self) -> Result<Revision, ClientError> {
        let url = self.url(&["readyz"]);
        let written: Written = self
            .call(Method::GET, url, NO_BODY, "the readiness answer")
            .await?;
        Ok(written.revision)
    }

    /// `GET /v1/services`: every service with its instance counts.
    pub async fn services(&self) -> Result<Vec<ServiceView>, ClientError> {
        self.call(
            Method::GET,
            self.url(&["v1", "services"]),
            NO_BODY,
            "the service list",
        )
        .await
    }

    /// `GET /v1/services/{name}`.
    pub async fn service(&self, name: &str) -> Result<ServiceView, ClientError> {
        self.call(
            Method::GET,
            self.url(&["v1", "services", name]),
            NO_BODY,
            "a service",
        )
        .await
    }

    /// `PUT /v1/services/{name}`: defines or replaces a service; returns the revision written.
    pub async fn put_service(
        &self,
        name: &str,
        service: &Service,
    ) -> Result<Revision, ClientError> {
        let url = self.url(&["v1", "services", name]);
        let written: Written = self
            .call(Method::PUT, url, Some(service), "the written revision")
            .await?;
        Ok(written.revision)
    }

    /// The instances of one service (`GET /v1/services/{name}/instances`), or of every
    /// service (the service list, then each service's instances, in the list's order);
    /// with `healthy_only`, only the routable ones.
    pub async fn instances(
        &self,
        service: Option<&str>,
        healthy_only: bool,
    ) -> Result<Vec<Instance>, ClientError> {
        match service {
            Some(name) => self.instances_of(name, healthy_only).await,
            None => {
                let mut all = Vec::new();
                for service in self.services().await? {
                    match self.instances_of(&service.name, healthy_only).await {
                        Ok(instances) => all.extend(instances),
                        // Removed between the two requests: it has no instances now.
                        Err(ClientError::Api { status: 404, .. }) => {}
                        Err(error) => return Err(error),
                    }
                }
                Ok(all)
            }
        }
    }

    async fn instances_of(
        &self,
        service: &str,
        healthy_only: bool,
    ) -> Result<Vec<Instance>, ClientError> {
        let mut url = self.url(&["v1", "services", service, "instances"]);
        if healthy_only {
            url.query_pairs_mut().append_pair("healthy", "true");
        }
        self.call(Method::GET, url, NO_BODY, "the instance list")
            .await
    }

    /// `GET /v1/instances/{id}`.
    pub async fn instance(&self, id: &str) -> Result<Instance, ClientError> {
        self.call(
            Method::GET,
            self.url(&["v1", "instances", id]),
            NO_BODY,
            "an instance",
        )
        .await
    }

    /// `POST /v1/services/{name}/instances`: registers an instance; returns it with its id.
    pub async fn register(
        &self,
        service: &str,
        request: &RegisterInstance,
    ) -> Result<Instance, ClientError> {
        let url = self.url(&["v1", "services", service, "instances"]);
        self.call(Method::POST, url, Some(request), "the registered instance")
            .await
    }

    /// `POST /v1/instances/{id}/heartbeat`: renews the instance's lease to its full TTL.
    pub async fn heartbeat(&self, id: &str) -> Result<Heartbeat, ClientError> {
        let url = self.url(&["v1", "instances", id, "heartbeat"]);
        self.call(Method::POST, url, NO_BODY, "the heartbeat answer")
            .await
    }

    /// `DELETE /v1/instances/{id}`.
    pub async fn deregister(&self, id: &str) -> Result<(), ClientError> {
        self.send(Method::DELETE, self.url(&["v1", "instances", id]), NO_BODY)
            .await
            .map(drop)
    }

    /// `PUT /v1/instances/{id}/health`: a registrant's report; returns the instance as it
    /// now stands.
    pub async fn report_health(
        &self,
        id: &str,
        report: &ReportHealth,
    ) -> Result<Instance, ClientError> {
        let url = self.url(&["v1", "instances", id, "health"]);
        self.call(Method::PUT, url, Some(report), "the instance")
            .await
    }

    /// `PUT /v1/services/{name}/faults`: run-time fault injection; returns the revision written.
    pub async fn put_faults(
        &self,
        service: &str,
        faults: &Faults,
    ) -> Result<Revision, ClientError> {
        let url = self.url(&["v1", "services", service, "faults"]);
        let written: Written = self
            .call(Method::PUT, url, Some(faults), "the written revision")
            .await?;
        Ok(written.revision)
    }

    /// `DELETE /v1/services/{name}/faults`.
    pub async fn delete_faults(&self, service: &str) -> Result<(), ClientError> {
        self.send(
            Method::DELETE,
            self.url(&["v1", "services", service, "faults"]),
            NO_BODY,
        )
        .await
        .map(drop)
    }

    /// `GET /v1/config`: what proxies need, at one revision.
    pub async fn config(&self) -> Result<ConfigSnapshot, ClientError> {
        self.call(
            Method::GET,
            self.url(&["v1", "config"]),
            NO_BODY,
            "the configuration",
        )
        .await
    }
}
