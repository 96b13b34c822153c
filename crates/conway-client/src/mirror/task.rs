//! The mirror's background task: list, watch, apply, publish; on a broken connection,
//! back off and resume; on compaction, list again.

use std::sync::Arc;

use conway_core::api::WatchLine;
use futures_util::{FutureExt, StreamExt};

use super::{MirrorOptions, MirrorSnapshot, Shared, snapshot::Applied};
use crate::backoff::Backoff;
use crate::client::Client;
use crate::error::ClientError;
use crate::watch::WatchStream;

/// The most watch lines applied before the snapshot is published.
const MAX_BATCH: usize = 1024;

/// Runs until the mirror is dropped (which aborts it).
pub(super) async fn run(shared: Arc<Shared>, options: MirrorOptions) {
    let working = MirrorSnapshot::clone(&shared.snapshot.load());
    let mut sync = Sync {
        must_list: !working.listed,
        working,
        config_stale: false,
        backoff: Backoff::new(options.backoff_min, options.backoff_max),
    };
    loop {
        let client = shared.client.load_full();
        let ended = tokio::select! {
            ended = sync.session(&shared, &client) => Some(ended),
            () = shared.retarget.notified() => None,
        };
        let was_connected = shared.connected.send_replace(false);
        match ended {
            None => {
                tracing::info!(
                    url = client.base_url(),
                    "control plane address changed; listing again"
                );
                sync.must_list = true;
                continue;
            }
            Some(Ok(())) if was_connected => {
                tracing::info!(url = client.base_url(), "control plane closed the watch")
            }
            Some(Ok(())) => {}
            Some(Err(error)) => {
                if needs_relist(&error) {
                    sync.must_list = true;
                }
                if was_connected {
                    tracing::warn!(url = client.base_url(), %error, revision = sync.working.revision, "lost the control plane; serving the last known state");
                } else {
                    tracing::debug!(url = client.base_url(), %error, "control plane still away");
                }
            }
        }
        let delay = sync.backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.retarget.notified() => sync.must_list = true,
        }
    }
}

/// Whether the registry cannot resume from this client's revision: compacted history,
/// or a revision it never reached (another registry, or one restored from a backup).
fn needs_relist(error: &ClientError) -> bool {
    error.is_compacted() || error.code() == Some("future_revision")
}

/// The task's own state: the working copy it applies changes to, and what it owes.
struct Sync {
    working: MirrorSnapshot,
    /// List before watching.
    must_list: bool,
    /// A config change was applied but `GET /v1/config` not yet read after it.
    config_stale: bool,
    backoff: Backoff,
}

impl Sync {
    /// One connection: catch up, then apply changes until the watch ends. `Ok` when the
    /// server closed the watch cleanly.
    async fn session(&mut self, shared: &Shared, client: &Client) -> Result<(), ClientError> {
        let mut stream = self.open(shared, client).await?;
        shared.connected.send_replace(true);
        self.backoff.reset();
        tracing::debug!(
            url = client.base_url(),
            revision = self.working.revision,
            "watching the control plane"
        );
        loop {
            let (changed, end) = self.apply_batch(&mut stream).await;
            // A configuration change is published only with the configuration it
            // brought, never as a revision ahead of what readers can see.
            if end.is_none() && self.config_stale {
                self.refetch_config(client).await?;
                self.publish(shared);
            } else if changed && !self.config_stale {
                self.publish(shared);
            }
            if let Some(end) = end {
                return end;
            }
        }
    }

    /// Lists if it must (or if the registry says so), reads the configuration if a
    /// change to it is pending, then opens the watch after the working revision.
    async fn open(&mut self, shared: &Shared, client: &Client) -> Result<WatchStream, ClientError> {
        let mut listed_now = false;
        loop {
            if self.must_list {
                self.list(client).await?;
                listed_now = true;
                self.publish(shared);
            } else if self.config_stale {
                self.refetch_config(client).await?;
                self.publish(shared);
            }
            match client.watch(Some(self.working.revision)).await {
                Ok(stream) => return Ok(stream),
                Err(error) if needs_relist(&error) => {
                    tracing::info!(%error, revision = self.working.revision, "cannot resume the watch; listing again");
                    self.must_list = true;
                    if listed_now {
                        return Err(error);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// `GET /v1/config`, then each service's instances; the watch resumes after the
    /// configuration's revision, so no change between the two reads is missed.
    async fn list(&mut self, client: &Client) -> Result<(), ClientError> {
        let config = client.config().await?;
        let mut instances = Vec::new();
        for service in config.services.keys() {
            instances.extend(client.instances(Some(service), false).await?);
        }
        tracing::debug!(
            revision = config.revision,
            instances = instances.len(),
            "listed the registry"
        );
        self.working = MirrorSnapshot::from_listing(config, instances);
        self.must_list = false;
        self.config_stale = false;
        Ok(())
    }

    async fn refetch_config(&mut self, client: &Client) -> Result<(), ClientError> {
        self.working.config = client.config().await?;
        self.config_stale = false;
        Ok(())
    }

    /// Applies the next line and every line already received after it (up to
    /// [`MAX_BATCH`]). Returns whether anything changed, and how the watch ended if it did.
    async fn apply_batch(
        &mut self,
        stream: &mut WatchStream,
    ) -> (bool, Option<Result<(), ClientError>>) {
        let mut changed = false;
        let mut next = Some(stream.next().await);
        let mut applied = 0;
        while let Some(line) = next.take() {
            match line {
                None => return (changed, Some(Ok(()))),
                Some(Err(error)) => return (changed, Some(Err(error))),
                Some(Ok(WatchLine::KeepAlive { .. })) => {}
                Some(Ok(WatchLine::Event(event))) => {
                    changed = true;
                    if self.working.apply(event) == Applied::RefetchConfig {
                        self.config_stale = true;
                    }
                }
            }
            applied += 1;
            if applied < MAX_BATCH {
                next = stream.next().now_or_never();
            }
        }
        (changed, None)
    }

    /// Makes the working copy what readers see.
    fn publish(&self, shared: &Shared) {
        shared.snapshot.store(Arc::new(self.working.clone()));
        shared.changed.send_replace(self.working.revision);
    }
}
