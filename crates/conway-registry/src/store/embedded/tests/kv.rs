//! put, get, range, delete and compare-and-set.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{b, memory};
use crate::store::{CasOutcome, EmbeddedStore, LeaseId, Store, StoreError};

#[tokio::test]
async fn puts_count_revisions_and_versions() -> Result<(), StoreError> {
    let store = memory().await?;
    assert_eq!(store.get("a").await?, None);
    assert_eq!(store.put("a", b("1"), None).await?, 1);
    assert_eq!(store.put("b", b("x"), None).await?, 2);
    assert_eq!(store.put("a", b("2"), None).await?, 3);
    let a = store.get("a").await?.ok_or(StoreError::Closed)?;
    assert_eq!(a.value, b("2"));
    assert_eq!((a.create_revision, a.mod_revision, a.version), (1, 3, 2));
    assert_eq!(a.lease, None);
    Ok(())
}

#[tokio::test]
async fn delete_bumps_the_revision_only_when_the_key_existed() -> Result<(), StoreError> {
    let store = memory().await?;
    store.put("a", b("1"), None).await?;
    store.put("a", b("2"), None).await?;
    assert_eq!(store.delete("missing").await?, None);
    assert_eq!(store.delete("a").await?, Some(3));
    assert_eq!(store.get("a").await?, None);
    assert_eq!(store.delete("a").await?, None);
    assert_eq!(store.put("a", b("3"), None).await?, 4);
    let a = store.get("a").await?.ok_or(StoreError::Closed)?;
    assert_eq!(
        (a.create_revision, a.version),
        (4, 1),
        "a recreated key starts over"
    );
    Ok(())
}

#[tokio::test]
async fn range_lists_a_prefix_in_key_order_at_one_revision() -> Result<(), StoreError> {
    let store = memory().await?;
    for key in ["b", "a/2", "ab", "a/1", "a0"] {
        store.put(key, b(key), None).await?;
    }
    let apps = store.range("a/").await?;
    let keys: Vec<_> = apps.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["a/1", "a/2"]);
    assert_eq!(apps.revision, 5);
    let all = store.range("").await?;
    let keys: Vec<_> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["a/1", "a/2", "a0", "ab", "b"]);
    assert_eq!(store.range("c").await?.kvs, []);
    Ok(())
}

#[tokio::test]
async fn compare_and_set_writes_only_on_the_expected_revision() -> Result<(), StoreError> {
    let store = memory().await?;
    assert_eq!(
        store.compare_and_set("k", 0, b("1"), None).await?,
        CasOutcome::Written(1)
    );
    let current = store.get("k").await?;
    assert_eq!(
        store.compare_and_set("k", 0, b("2"), None).await?,
        CasOutcome::Conflict {
            current: current.clone()
        },
        "0 means the key must not exist"
    );
    assert_eq!(
        store.compare_and_set("k", 7, b("2"), None).await?,
        CasOutcome::Conflict { current }
    );
    assert_eq!(
        store.compare_and_set("k", 1, b("2"), None).await?,
        CasOutcome::Written(2)
    );
    assert_eq!(
        store.get("k").await?.map(|kv| (kv.value, kv.version)),
        Some((b("2"), 2))
    );
    assert_eq!(
        store.compare_and_set("missing", 2, b("x"), None).await?,
        CasOutcome::Conflict { current: None }
    );
    Ok(())
}

#[tokio::test]
async fn invalid_writes_are_refused_without_a_revision() -> Result<(), StoreError> {
    let store = memory().await?;
    assert!(matches!(
        store.put("", b("x"), None).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.get("").await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.put("k", b("x"), Some(LeaseId(42))).await,
        Err(StoreError::LeaseNotFound(LeaseId(42)))
    ));
    assert!(matches!(
        store
            .compare_and_set("k", 0, b("x"), Some(LeaseId(42)))
            .await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert_eq!(store.put("k", b("x"), None).await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_get_consecutive_revisions_and_failures_leave_no_hole()
-> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(EmbeddedStore::open(dir.path()).await?);
    let mut tasks = Vec::new();
    for i in 0..300 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every third write names a lease that does not exist, and fails alone.
            let lease = (i % 3 == 0).then_some(LeaseId(999));
            store.put(&format!("k/{i}"), super::b("v"), lease).await
        }));
    }
    let mut revisions = BTreeSet::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.map_err(StoreError::backend)? {
            Ok(revision) => assert!(revisions.insert(revision), "revision {revision} twice"),
            Err(StoreError::LeaseNotFound(_)) => refused += 1,
            Err(other) => return Err(other),
        }
    }
    assert_eq!(refused, 100);
    assert_eq!(revisions, (1..=200).collect::<BTreeSet<_>>());
    let all = store.range("k/").await?;
    assert_eq!((all.kvs.len(), all.revision), (200, 200));
    Ok(())
}
