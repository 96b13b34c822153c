//! Static stability: a mirror of the registry that lists, then watches, and keeps
//! serving its last known state while the control plane is away.
//!
//! A background task lists (`GET /v1/config` and every service's instances), then
//! watches from the listing's revision and applies each change. When the connection
//! breaks it retries with exponential backoff and jitter, resuming the watch after the
//! last revision it applied; when the registry answers that this history is compacted
//! (or the revision is unknown to it), it lists again. Readers load the snapshot through
//! an [`ArcSwap`], so they never wait on a lock, and may wait for changes with
//! [`Mirror::changed`].

mod snapshot;
mod task;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use snapshot::MirrorSnapshot;

use crate::Revision;
use crate::client::Client;

/// How the mirror retries.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// The first delay before reconnecting (default 100 ms).
    pub backoff_min: Duration,
    /// The longest delay between attempts (default 10 s).
    pub backoff_max: Duration,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        Self {
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// A live copy of the registry. Dropping it stops its background task.
#[derive(Debug)]
pub struct Mirror {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// What the mirror and its task share.
#[derive(Debug)]
struct Shared {
    snapshot: ArcSwap<MirrorSnapshot>,
    client: ArcSwap<Client>,
    /// Bumped at every published change, carrying the snapshot's revision.
    changed: watch::Sender<Revision>,
    /// Whether a watch is open now.
    connected: watch::Sender<bool>,
    /// Wakes the task when the client is replaced.
    retarget: Notify,
}

impl Mirror {
    /// Starts mirroring the registry behind `client` with the default options.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, as [`tokio::spawn`] does.
    pub fn start(client: Client) -> Self {
        Self::start_from(client, MirrorOptions::default(), MirrorSnapshot::default())
    }

    /// Starts from `initial` — a snapshot saved earlier, served at once — resuming the
    /// watch after its revision (or listing, if it was never listed or is too old).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, as [`tokio::spawn`] does.
    pub fn start_from(client: Client, options: MirrorOptions, initial: MirrorSnapshot) -> Self {
        let shared = Arc::new(Shared {
            changed: watch::Sender::new(initial.revision),
            snapshot: ArcSwap::from_pointee(initial),
            client: ArcSwap::from_pointee(client),
            connected: watch::Sender::new(false),
            retarget: Notify::new(),
        });
        let task = tokio::spawn(task::run(Arc::clone(&shared), options));
        Self { shared, task }
    }

    /// The registry as last known. Cheap (an atomic load and a reference count), never
    /// blocks, and stays valid however the mirror moves on.
    pub fn snapshot(&self) -> Arc<MirrorSnapshot> {
        self.shared.snapshot.load_full()
    }

    /// The last revision applied.
    pub fn revision(&self) -> Revision {
        self.shared.snapshot.load().revision
    }

    /// A receiver marked changed at every update of the snapshot; its value is the
    /// snapshot's revision. Wait with [`watch::Receiver::changed`].
    pub fn changed(&self) -> watch::Receiver<Revision> {
        self.shared.changed.subscribe()
    }

    /// Whether a watch to the control plane is open now.
    pub fn connected(&self) -> bool {
        *self.shared.connected.borrow()
    }

    /// A receiver of the connection state, to wait for it to change.
    pub fn connection(&self) -> watch::Receiver<bool> {
        self.shared.connected.subscribe()
    }

    /// The client the mirror uses now.
    pub fn client(&self) -> Arc<Client> {
        self.shared.client.load_full()
    }

    /// Points the mirror at another control plane address (the control plane moved, or
    /// restarted on another port). The mirror keeps serving its snapshot, drops its
    /// current watch and lists the registry at the new address.
    pub fn set_client(&self, client: Client) {
        self.shared.client.store(Arc::new(client));
        self.shared.retarget.notify_one();
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.task.abort();
    }
}
