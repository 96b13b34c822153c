//! The registry's changes as API watch events.

use conway_core::api::{WatchEvent, WatchKind, WatchOp};
use futures_util::{Stream, StreamExt};

use super::{Registry, RegistryError, keys};
use crate::store::{Event, EventKind, Revision};

impl Registry {
    /// Every change to services, instances and configuration from revision `since`
    /// (inclusive), or from now; the stream ends after an error (the watcher lagged,
    /// history was compacted, the store closed).
    pub async fn watch(
        &self,
        since: Option<Revision>,
    ) -> Result<impl Stream<Item = Result<WatchEvent, RegistryError>> + Send + 'static, RegistryError>
    {
        let events = self.store.watch("", since).await?;
        Ok(events.filter_map(|event| async move {
            match event {
                Ok(event) => to_api(&event).transpose(),
                Err(error) => Some(Err(error.into())),
            }
        }))
    }

    /// The store's current revision.
    pub async fn revision(&self) -> Result<Revision, RegistryError> {
        Ok(self.store.range(keys::MANIFEST).await?.revision)
    }
}

/// The API event for a store event; `None` for keys outside the registry's layout.
fn to_api(event: &Event) -> Result<Option<WatchEvent>, RegistryError> {
    let key = event.key();
    let (kind, name) = if let Some(name) = key.strip_prefix(keys::SERVICES) {
        (WatchKind::Service, name)
    } else if let Some(id) = key.strip_prefix(keys::INSTANCES) {
        (WatchKind::Instance, id)
    } else if let Some(section) = key.strip_prefix(keys::CONFIG) {
        (WatchKind::Config, section)
    } else {
        return Ok(None);
    };
    let (op, value) = match &event.kind {
        EventKind::Put(kv) => {
            let value =
                serde_json::from_slice(&kv.value).map_err(|source| RegistryError::Corrupt {
                    key: key.to_owned(),
                    source,
                })?;
            (WatchOp::Put, Some(value))
        }
        EventKind::Delete { .. } => (WatchOp::Delete, None),
    };
    Ok(Some(WatchEvent {
        revision: event.revision,
        op,
        kind,
        key: name.to_owned(),
        value,
    }))
}
