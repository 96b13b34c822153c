//! Watches: from now, from history, compacted, in the future, filtered, cut off.

use std::sync::Arc;
use std::time::Duration;

use super::{b, memory, next, options, summary};
use crate::store::{EmbeddedStore, EventKind, Store, StoreError};

#[tokio::test]
async fn a_watch_from_now_sees_only_later_changes() -> Result<(), StoreError> {
    let store = memory().await?;
    store.put("a", b("old"), None).await?;
    let mut watch = store.watch("", None).await?;
    store.put("a", b("new"), None).await?;
    store.delete("a").await?;
    let put = next(&mut watch).await?;
    assert_eq!(summary(&put), (2, "a", true));
    match put.kind {
        EventKind::Put(kv) => assert_eq!((kv.value, kv.version), (b("new"), 2)),
        EventKind::Delete { .. } => panic!("expected a put"),
    }
    assert_eq!(summary(&next(&mut watch).await?), (3, "a", false));
    Ok(())
}

#[tokio::test]
async fn a_watch_from_the_past_replays_then_follows() -> Result<(), StoreError> {
    let store = memory().await?;
    for i in 1..=5 {
        store.put(&format!("k{i}"), b("v"), None).await?;
    }
    let mut watch = store.watch("", Some(3)).await?;
    store.put("k6", b("v"), None).await?;
    for revision in 3..=6 {
        let event = next(&mut watch).await?;
        assert_eq!(
            summary(&event),
            (revision, format!("k{revision}").as_str(), true)
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_watch_sees_only_its_prefix() -> Result<(), StoreError> {
    let store = memory().await?;
    store.put("apps/a", b("1"), None).await?;
    store.put("other", b("1"), None).await?;
    let mut watch = store.watch("apps/", Some(1)).await?;
    store.put("apps0", b("1"), None).await?;
    store.delete("apps/a").await?;
    assert_eq!(summary(&next(&mut watch).await?), (1, "apps/a", true));
    assert_eq!(summary(&next(&mut watch).await?), (4, "apps/a", false));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_live_have_no_gap_and_no_duplicate_under_concurrent_writes()
-> Result<(), StoreError> {
    const WRITES: i64 = 3_000;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(EmbeddedStore::open_with(dir.path(), options(10_000, 4_096)).await?);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for i in 0..WRITES {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    store.put(&format!("k/{}", i % 50), b("v"), None).await
                }));
            }
            for task in tasks {
                task.await.map_err(StoreError::backend)??;
            }
            Ok::<_, StoreError>(())
        })
    };
    // Start watching from the beginning while the writes go on.
    while store.range("k/").await?.revision < WRITES / 3 {
        tokio::task::yield_now().await;
    }
    let mut watch = store.watch("k/", Some(1)).await?;
    for revision in 1..=WRITES {
        let event = next(&mut watch).await?;
        assert_eq!(event.revision, revision, "gap or duplicate");
    }
    writer.await.map_err(StoreError::backend)??;
    store.put("k/last", b("v"), None).await?;
    assert_eq!(next(&mut watch).await?.revision, WRITES + 1);
    Ok(())
}

#[tokio::test]
async fn a_watch_older_than_history_fails_with_compacted() -> Result<(), StoreError> {
    let store = EmbeddedStore::in_memory_with(options(5, 64)).await?;
    for i in 1..=20 {
        store.put("k", b(&i.to_string()), None).await?;
    }
    match store.watch("", Some(10)).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (10, 15)),
        other => panic!("expected Compacted, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        store.watch("", Some(15)).await,
        Err(StoreError::Compacted { .. })
    ));
    let mut watch = store.watch("", Some(16)).await?;
    for revision in 16..=20 {
        assert_eq!(next(&mut watch).await?.revision, revision);
    }
    Ok(())
}

#[tokio::test]
async fn a_replay_overtaken_by_compaction_ends_with_compacted() -> Result<(), StoreError> {
    let store = EmbeddedStore::in_memory_with(options(300, 4_096)).await?;
    for _ in 0..300 {
        store.put("k", b("v"), None).await?;
    }
    let mut watch = store.watch("", Some(1)).await?;
    for _ in 0..600 {
        store.put("k", b("v"), None).await?;
    }
    assert!(matches!(
        next(&mut watch).await,
        Err(StoreError::Compacted {
            requested: 1,
            compacted: 600
        })
    ));
    assert!(next(&mut watch).await.is_err(), "the stream ended");
    Ok(())
}

#[tokio::test]
async fn a_watch_beyond_the_next_revision_fails() -> Result<(), StoreError> {
    let store = memory().await?;
    store.put("k", b("1"), None).await?;
    store.put("k", b("2"), None).await?;
    match store.watch("", Some(4)).await {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (4, 2));
        }
        other => panic!("expected FutureRevision, got {:?}", other.map(|_| ())),
    }
    let mut watch = store.watch("", Some(3)).await?;
    store.put("k", b("3"), None).await?;
    assert_eq!(next(&mut watch).await?.revision, 3);
    Ok(())
}

#[tokio::test]
async fn a_slow_watcher_is_cut_off_while_writers_go_on() -> Result<(), StoreError> {
    let store = EmbeddedStore::in_memory_with(options(10_000, 4)).await?;
    let mut slow = store.watch("", None).await?;
    let mut fast = store.watch("", None).await?;
    let reader = tokio::spawn(async move {
        let mut revisions = Vec::new();
        while revisions.len() < 50 {
            revisions.push(next(&mut fast).await?.revision);
        }
        Ok::<_, StoreError>(revisions)
    });
    for i in 0..50 {
        let put = store.put("k", b(&i.to_string()), None);
        tokio::time::timeout(Duration::from_secs(10), put)
            .await
            .map_err(StoreError::backend)??;
        // Let the fast reader keep up; the slow one never reads.
        tokio::task::yield_now().await;
    }
    let revisions = reader.await.map_err(StoreError::backend)??;
    assert_eq!(revisions, (1..=50).collect::<Vec<_>>());
    for revision in 1..=4 {
        assert_eq!(next(&mut slow).await?.revision, revision);
    }
    assert!(matches!(
        next(&mut slow).await,
        Err(StoreError::WatcherLagged)
    ));
    Ok(())
}

#[tokio::test]
async fn dropping_the_store_ends_its_watches() -> Result<(), StoreError> {
    let store = memory().await?;
    let mut watch = store.watch("", None).await?;
    drop(store);
    assert!(matches!(next(&mut watch).await, Err(StoreError::Closed)));
    Ok(())
}
