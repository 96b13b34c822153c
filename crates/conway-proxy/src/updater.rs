//! Keeping the proxy's table current: every change the registry mirror sees becomes a
//! new table, swapped in atomically; the last known state is saved in the data folder
//! so a restarted proxy serves before it reconnects (static stability).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use conway_client::{Mirror, MirrorSnapshot};
use tokio::sync::watch;

use crate::table::Table;

/// The file a proxy keeps its last known state in.
pub const STATE_FILE: &str = "proxy-state.json";

/// Reads the state a previous run saved, if any (a damaged file is ignored, with a log).
pub fn load_saved(data_dir: &Path) -> Option<MirrorSnapshot> {
    let path = data_dir.join(STATE_FILE);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(snapshot) => Some(snapshot),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "ignoring a damaged saved state");
            None
        }
    }
}

/// Rebuilds `table` from `mirror` on every change until the task is dropped, saving each
/// state to `data_dir`; `built` is marked at each table swapped in.
pub async fn follow(
    mirror: Mirror,
    table: Arc<ArcSwap<Table>>,
    data_dir: Option<PathBuf>,
    built: watch::Sender<i64>,
) {
    let mut changes = mirror.changed();
    loop {
        let snapshot = mirror.snapshot();
        if snapshot.listed {
            let next = Table::build(&snapshot, &table.load());
            let revision = next.revision;
            table.store(Arc::new(next));
            built.send_replace(revision);
            if let Some(dir) = &data_dir {
                save(dir, &snapshot).await;
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

async fn save(dir: &Path, snapshot: &MirrorSnapshot) {
    let Ok(bytes) = serde_json::to_vec(snapshot) else {
        return;
    };
    let (path, temporary) = (dir.join(STATE_FILE), dir.join(format!("{STATE_FILE}.tmp")));
    let written = async {
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::write(&temporary, &bytes).await?;
        tokio::fs::rename(&temporary, &path).await
    };
    if let Err(error) = written.await {
        tracing::warn!(path = %path.display(), %error, "cannot save the proxy's state");
    }
}
