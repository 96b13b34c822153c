//! Behaviour of the embedded store through the [`Store`] trait.

mod durability;
mod kv;
mod lease;
mod watch;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::{EmbeddedOptions, EmbeddedStore};
use crate::store::{Event, EventKind, Revision, StoreError, WatchStream};

/// A value from text.
fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

async fn memory() -> Result<EmbeddedStore, StoreError> {
    EmbeddedStore::in_memory().await
}

fn options(history_revisions: u64, watch_buffer: usize) -> EmbeddedOptions {
    EmbeddedOptions {
        history_revisions,
        watch_buffer,
        ..EmbeddedOptions::default()
    }
}

/// The next item of a watch; an error if it ended, or (on the real clock) if nothing
/// came for 10 seconds.
async fn next(stream: &mut WatchStream) -> Result<Event, StoreError> {
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => Err(StoreError::InvalidArgument("the watch ended".into())),
        Err(_) => Err(StoreError::InvalidArgument("no event within 10 s".into())),
    }
}

/// The revision and key of an event, and whether it is a put.
fn summary(event: &Event) -> (Revision, &str, bool) {
    (
        event.revision,
        event.key(),
        matches!(event.kind, EventKind::Put(_)),
    )
}
