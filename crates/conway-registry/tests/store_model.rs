//! Random sequences of operations on the embedded store behave as a plain ordered map
//! with a revision counter, whatever the keys and values (empty, huge, unicode, NUL),
//! and a watch from the first revision replays exactly the model's changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use conway_registry::store::{
    CasOutcome, EmbeddedStore, Event, EventKind, KeyValue, Revision, Snapshot, Store, StoreError,
};
use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[derive(Debug, Clone)]
enum Op {
    Put(String, Vec<u8>),
    Get(String),
    Delete(String),
    Range(String),
    /// Compare-and-set expecting the key's current revision, or one off it.
    Cas(String, bool, Vec<u8>),
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "a/b", "a/c", "b", "", "\0", "a\0b", "é/ü", "🦀"])
            .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => prop::collection::vec(any::<u8>(), 0..24),
        1 => Just(vec![0xA5; 1 << 20]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => key().prop_map(Op::Get),
        2 => key().prop_map(Op::Delete),
        1 => key().prop_map(Op::Range),
        2 => (key(), any::<bool>(), value()).prop_map(|(k, exact, v)| Op::Cas(k, exact, v)),
    ]
}

/// The store as it should be.
#[derive(Debug, Default)]
struct Model {
    revision: Revision,
    kvs: BTreeMap<String, KeyValue>,
    /// Every change, as a watch from revision 1 should see it.
    events: Vec<Event>,
}

impl Model {
    fn put(&mut self, key: &str, value: &[u8]) -> Revision {
        self.revision += 1;
        let revision = self.revision;
        let (create_revision, version) = match self.kvs.get(key) {
            Some(kv) => (kv.create_revision, kv.version + 1),
            None => (revision, 1),
        };
        let kv = KeyValue {
            key: key.to_owned(),
            value: Bytes::copy_from_slice(value),
            create_revision,
            mod_revision: revision,
            version,
            lease: None,
        };
        self.kvs.insert(key.to_owned(), kv.clone());
        self.events.push(Event {
            revision,
            kind: EventKind::Put(kv),
        });
        revision
    }

    fn delete(&mut self, key: &str) -> Option<Revision> {
        self.kvs.remove(key)?;
        self.revision += 1;
        self.events.push(Event {
            revision: self.revision,
            kind: EventKind::Delete {
                key: key.to_owned(),
            },
        });
        Some(self.revision)
    }

    fn range(&self, prefix: &str) -> Snapshot {
        Snapshot {
            kvs: self
                .kvs
                .values()
                .filter(|kv| kv.key.starts_with(prefix))
                .cloned()
                .collect(),
            revision: self.revision,
        }
    }
}

fn invalid<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(result, Err(StoreError::InvalidArgument(_))),
        "an empty key must be refused: {result:?}"
    );
    Ok(())
}

async fn check(store: Arc<dyn Store>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let fail = |e: StoreError| TestCaseError::fail(e.to_string());
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Put(key, value) if key.is_empty() => {
                invalid(store.put(&key, value.into(), None).await)?;
            }
            Op::Put(key, value) => {
                let got = store.put(&key, Bytes::from(value.clone()), None).await;
                prop_assert_eq!(got.map_err(fail)?, model.put(&key, &value));
            }
            Op::Get(key) if key.is_empty() => invalid(store.get(&key).await)?,
            Op::Get(key) => {
                prop_assert_eq!(
                    store.get(&key).await.map_err(fail)?,
                    model.kvs.get(&key).cloned()
                );
            }
            Op::Delete(key) if key.is_empty() => invalid(store.delete(&key).await)?,
            Op::Delete(key) => {
                prop_assert_eq!(store.delete(&key).await.map_err(fail)?, model.delete(&key));
            }
            Op::Range(prefix) => {
                prop_assert_eq!(
                    store.range(&prefix).await.map_err(fail)?,
                    model.range(&prefix)
                );
            }
            Op::Cas(key, _, value) if key.is_empty() => {
                invalid(store.compare_and_set(&key, 0, value.into(), None).await)?;
            }
            Op::Cas(key, exact, value) => {
                let current = model.kvs.get(&key).cloned();
                let actual = current.as_ref().map_or(0, |kv| kv.mod_revision);
                let expected = if exact { actual } else { actual + 1 };
                let got = store
                    .compare_and_set(&key, expected, Bytes::from(value.clone()), None)
                    .await
                    .map_err(fail)?;
                let want = if exact {
                    CasOutcome::Written(model.put(&key, &value))
                } else {
                    CasOutcome::Conflict { current }
                };
                prop_assert_eq!(got, want);
            }
        }
    }
    let mut watch = store.watch("", Some(1)).await.map_err(fail)?;
    for want in &model.events {
        let got = watch.next().await;
        prop_assert_eq!(got.as_ref().map(|e| e.as_ref().ok()), Some(Some(want)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_store_behaves_as_the_model(
        ops in prop::collection::vec(op(), 1..40),
        durable in prop::bool::weighted(0.2),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        runtime.block_on(async {
            let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let store = if durable {
                EmbeddedStore::open(dir.path()).await
            } else {
                EmbeddedStore::in_memory().await
            };
            let store = store.map_err(|e| TestCaseError::fail(e.to_string()))?;
            check(Arc::new(store), ops).await
        })?;
    }
}
