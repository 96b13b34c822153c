//! Leases, on Tokio's paused clock: the store's writer runs on a blocking task, so time
//! moves only when a test advances it.

use std::time::Duration;

use tokio::time::advance;

use super::{b, memory, next, summary};
use crate::store::{EmbeddedStore, Lease, LeaseId, Store, StoreError};

const TTL: Duration = Duration::from_secs(10);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(start_paused = true)]
async fn keys_of_an_expired_lease_are_deleted_at_one_revision() -> Result<(), StoreError> {
    let store = memory().await?;
    let lease = store.grant_lease(TTL, None).await?;
    store.put("a", b("1"), Some(lease.id)).await?;
    store.put("b", b("1"), Some(lease.id)).await?;
    store.put("c", b("1"), None).await?;
    let mut watch = store.watch("", None).await?;
    advance(secs(9)).await;
    assert_eq!(store.range("").await?.kvs.len(), 3, "not expired yet");
    advance(secs(2)).await;
    assert_eq!(summary(&next(&mut watch).await?), (4, "a", false));
    assert_eq!(summary(&next(&mut watch).await?), (4, "b", false));
    let left: Vec<_> = store
        .range("")
        .await?
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(left, ["c"]);
    assert!(matches!(
        store.keep_alive(lease.id).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        store.put("d", b("1"), Some(lease.id)).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn keep_alive_extends_a_lease_by_its_full_ttl() -> Result<(), StoreError> {
    let store = memory().await?;
    let lease = store.grant_lease(TTL, None).await?;
    store.put("a", b("1"), Some(lease.id)).await?;
    let mut watch = store.watch("", None).await?;
    advance(secs(8)).await;
    assert_eq!(store.keep_alive(lease.id).await?, TTL);
    advance(secs(8)).await;
    assert!(
        store.get("a").await?.is_some(),
        "alive 16 s after the grant"
    );
    assert_eq!(store.keep_alive(lease.id).await?, TTL);
    advance(secs(11)).await;
    assert_eq!(summary(&next(&mut watch).await?), (2, "a", false));
    assert_eq!(store.get("a").await?, None);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn revoke_deletes_the_keys_of_a_lease_and_only_them() -> Result<(), StoreError> {
    let store = memory().await?;
    let lease = store.grant_lease(TTL, None).await?;
    let other = store.grant_lease(TTL, None).await?;
    store.put("a", b("1"), Some(lease.id)).await?;
    store.put("b", b("1"), Some(other.id)).await?;
    // A put without a lease detaches the key.
    store.put("c", b("1"), Some(lease.id)).await?;
    store.put("c", b("2"), None).await?;
    let mut watch = store.watch("", None).await?;
    assert_eq!(store.revoke_lease(lease.id).await?, 5);
    assert_eq!(summary(&next(&mut watch).await?), (5, "a", false));
    let left: Vec<_> = store
        .range("")
        .await?
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(left, ["b", "c"]);
    assert!(matches!(
        store.revoke_lease(lease.id).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    // A lease without keys is revoked without a new revision.
    let empty = store.grant_lease(TTL, None).await?;
    assert_eq!(store.revoke_lease(empty.id).await?, 5);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn lease_ids_are_chosen_or_checked_and_never_reused() -> Result<(), StoreError> {
    let store = memory().await?;
    let chosen = store.grant_lease(secs(5), Some(LeaseId(77))).await?;
    assert_eq!(
        chosen,
        Lease {
            id: LeaseId(77),
            ttl: secs(5)
        }
    );
    assert!(matches!(
        store.grant_lease(secs(5), Some(LeaseId(77))).await,
        Err(StoreError::LeaseExists(LeaseId(77)))
    ));
    let first = store.grant_lease(secs(5), None).await?;
    store.revoke_lease(first.id).await?;
    let second = store.grant_lease(secs(5), None).await?;
    assert_ne!(first.id, second.id);
    assert_ne!(second.id, LeaseId(77));
    for (ttl, id) in [
        (Duration::ZERO, None),
        (secs(9_000_000_001), None),
        (secs(5), Some(LeaseId(0))),
    ] {
        assert!(matches!(
            store.grant_lease(ttl, id).await,
            Err(StoreError::InvalidArgument(_))
        ));
    }
    // Sub-millisecond TTLs round up.
    let tiny = store.grant_lease(Duration::from_nanos(1), None).await?;
    assert_eq!(tiny.ttl, Duration::from_millis(1));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_leases_and_keys_survive_and_ttls_start_over() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let lease = {
        let store = EmbeddedStore::open(dir.path()).await?;
        let lease = store.grant_lease(secs(30), None).await?;
        store.put("instance", b("1"), Some(lease.id)).await?;
        advance(secs(20)).await;
        lease
    };
    let store = EmbeddedStore::open(dir.path()).await?;
    let kv = store.get("instance").await?.ok_or(StoreError::Closed)?;
    assert_eq!(kv.lease, Some(lease.id));
    advance(secs(20)).await;
    assert!(
        store.get("instance").await?.is_some(),
        "40 s after the grant, 20 s after the restart: still alive"
    );
    store.put("other", b("1"), Some(lease.id)).await?;
    let mut watch = store.watch("", None).await?;
    advance(secs(11)).await;
    assert_eq!(summary(&next(&mut watch).await?), (3, "instance", false));
    assert_eq!(summary(&next(&mut watch).await?), (3, "other", false));
    let second = store.grant_lease(secs(5), None).await?;
    assert_ne!(second.id, lease.id, "a restart does not reuse lease ids");
    Ok(())
}
