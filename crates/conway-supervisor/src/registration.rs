//! One instance's registration with the control plane, through its API client only:
//! register as `starting` (checked by the registrant), renew the lease, report health,
//! deregister. A registration the control plane lost (its lease expired while the
//! control plane was away, say) is made again, with the last health reported.

use std::time::Duration;

use conway_client::{Client, ClientError};
use conway_core::api::{InstanceState, RegisterInstance, ReportHealth};
use parking_lot::Mutex;

/// An instance as registered by the supervisor.
#[derive(Debug)]
pub(crate) struct Registration {
    client: Client,
    service: String,
    request: RegisterInstance,
    /// The last report, repeated after a re-registration.
    health: Mutex<Option<ReportHealth>>,
}

impl Registration {
    pub(crate) fn new(client: Client, service: &str, request: RegisterInstance) -> Self {
        Self {
            client,
            service: service.to_owned(),
            request,
            health: Mutex::new(None),
        }
    }

    fn id(&self) -> &str {
        self.request.id.as_deref().unwrap_or_default()
    }

    /// Registers afresh: an earlier registration under the same id (a previous process
    /// of this slot, or of a supervisor that was killed) is removed first, so its state
    /// is not carried over.
    pub(crate) async fn register(&self) -> Result<(), ClientError> {
        self.deregister().await;
        self.client.register(&self.service, &self.request).await?;
        Ok(())
    }

    /// Renews the lease every `every`, registering again if the control plane no longer
    /// knows the instance. Runs until dropped.
    pub(crate) async fn keep_alive(&self, every: Duration) {
        let mut failing = false;
        loop {
            tokio::time::sleep(every).await;
            let renewed = match self.client.heartbeat(self.id()).await {
                Err(ClientError::Api { status: 404, .. }) => self.restore().await,
                other => other.map(drop),
            };
            match renewed {
                Ok(()) if failing => {
                    tracing::info!(instance = %self.id(), "registration renewed again");
                    failing = false;
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    tracing::warn!(instance = %self.id(), %error, "cannot renew the registration");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }

    /// Reports a change of health, remembering it for a later re-registration.
    pub(crate) async fn report(&self, state: InstanceState, reason: String) {
        let report = ReportHealth {
            state,
            reason: Some(reason),
        };
        *self.health.lock() = Some(report.clone());
        let reported = match self.client.report_health(self.id(), &report).await {
            Err(ClientError::Api { status: 404, .. }) => self.restore().await,
            other => other.map(drop),
        };
        if let Err(error) = reported {
            tracing::warn!(instance = %self.id(), %error, "cannot report health");
        }
    }

    /// Removes the registration; one that is already gone is not an error.
    pub(crate) async fn deregister(&self) {
        match self.client.deregister(self.id()).await {
            Ok(()) | Err(ClientError::Api { status: 404, .. }) => {}
            Err(error) => {
                tracing::warn!(instance = %self.id(), %error, "cannot deregister");
            }
        }
    }

    /// Registers again and repeats the last health report.
    async fn restore(&self) -> Result<(), ClientError> {
        self.client.register(&self.service, &self.request).await?;
        let last = self.health.lock().clone();
        if let Some(report) = last {
            self.client.report_health(self.id(), &report).await?;
        }
        Ok(())
    }
}
