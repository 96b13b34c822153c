//! What a file store keeps across a reopen.

use std::sync::Arc;

use super::{b, next};
use crate::store::{EmbeddedStore, Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_a_reopen() -> Result<(), StoreError> {
    const KEYS: i64 = 500;
    let dir = tempfile::tempdir()?;
    let before = {
        let store = Arc::new(EmbeddedStore::open(dir.path()).await?);
        let mut tasks = Vec::new();
        for i in 0..KEYS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .put(&format!("k/{i:04}"), b(&i.to_string()), None)
                    .await
            }));
        }
        for task in tasks {
            task.await.map_err(StoreError::backend)??;
        }
        store.delete("k/0000").await?;
        store.range("").await?
    };
    assert_eq!((before.kvs.len(), before.revision), (499, KEYS + 1));

    let store = EmbeddedStore::open(dir.path()).await?;
    assert_eq!(store.range("").await?, before);
    assert_eq!(store.get("k/0001").await?.map(|kv| kv.value), Some(b("1")));
    assert_eq!(store.put("k/new", b("x"), None).await?, KEYS + 2);
    let mut watch = store.watch("", Some(1)).await?;
    for revision in 1..=KEYS + 2 {
        assert_eq!(next(&mut watch).await?.revision, revision);
    }
    Ok(())
}

#[tokio::test]
async fn a_folder_that_does_not_exist_is_created() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let nested = dir.path().join("a").join("b");
    let store = EmbeddedStore::open(&nested).await?;
    store.put("k", b("v"), None).await?;
    assert!(nested.join(super::super::schema::DB_FILE).is_file());
    Ok(())
}

#[tokio::test]
async fn a_folder_in_use_is_refused_until_its_store_is_dropped() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let first = EmbeddedStore::open(dir.path()).await?;
    first.put("k", b("1"), None).await?;
    assert!(matches!(
        EmbeddedStore::open(dir.path()).await,
        Err(StoreError::FolderInUse(_))
    ));
    drop(first);
    let second = EmbeddedStore::open(dir.path()).await?;
    assert_eq!(second.put("k", b("2"), None).await?, 2);
    Ok(())
}
