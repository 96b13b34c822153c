//! Load and scale: a proxy's load report, a service's load, and scaling a service.

use conway_core::api::{LoadReport, ScaleAnswer, ScaleRequest, ServiceLoad};
use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;

impl Client {
    /// `PUT /v1/proxies/{proxy}/load`: `proxy`'s latest in-flight requests and breaker
    /// states, per service.
    pub async fn report_load(&self, proxy: &str, report: &LoadReport) -> Result<(), ClientError> {
        let url = self.url(&["v1", "proxies", proxy, "load"]);
        self.send(Method::PUT, url, Some(report)).await.map(drop)
    }

    /// `GET /v1/services/{name}/load`: the service's in-flight requests and breaker, as
    /// every proxy last reported them.
    pub async fn service_load(&self, service: &str) -> Result<ServiceLoad, ClientError> {
        let url = self.url(&["v1", "services", service, "load"]);
        self.call(Method::GET, url, None::<&()>, "the service's load")
            .await
    }

    /// `POST /v1/services/{name}/scale`: sets the service's replicas (served where a
    /// supervisor runs, as in `conway up`).
    pub async fn scale(&self, service: &str, replicas: u32) -> Result<ScaleAnswer, ClientError> {
        let url = self.url(&["v1", "services", service, "scale"]);
        let body = ScaleRequest { replicas };
        self.call(Method::POST, url, Some(&body), "the scale answer")
            .await
    }
}
