use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tower::{Layer, Service, ServiceExt, service_fn};

use super::*;
use crate::error::{BoxError, Error};

#[test]
fn sheds_beyond_the_limit_and_recovers_when_places_free() {
    let bulkhead = Arc::new(Bulkhead::new(2));
    let first = bulkhead.try_acquire().unwrap();
    let second = bulkhead.try_acquire().unwrap();
    assert_eq!(bulkhead.in_flight(), 2);
    let shed = bulkhead.try_acquire().unwrap_err();
    assert_eq!(shed.retry_after(), Bulkhead::DEFAULT_RETRY_AFTER);
    let error = Error::from(shed);
    assert_eq!((error.status(), error.retry_after_secs()), (503, Some(1)));
    assert_eq!(bulkhead.shed(), 1);

    drop(first);
    assert_eq!(bulkhead.in_flight(), 1);
    let third = bulkhead.try_acquire().expect("a place came free");
    drop((second, third));
    assert_eq!(bulkhead.in_flight(), 0);

    let closed = Arc::new(Bulkhead::with_retry_after(0, Duration::from_secs(7)));
    let shed = closed.try_acquire().unwrap_err();
    assert_eq!(shed.retry_after(), Duration::from_secs(7));
}

#[test]
fn never_more_than_max_in_flight_under_contention() {
    let bulkhead = Arc::new(Bulkhead::new(3));
    let peak = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (bulkhead, peak) = (Arc::clone(&bulkhead), Arc::clone(&peak));
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    if let Ok(permit) = bulkhead.try_acquire() {
                        let now = bulkhead.in_flight();
                        peak.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                        drop(permit);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(peak.load(std::sync::atomic::Ordering::Relaxed) <= 3);
    assert_eq!(bulkhead.in_flight(), 0, "every place was given back");
}

#[tokio::test(start_paused = true)]
async fn service_sheds_at_once_without_calling_inner_and_recovers() {
    let (release, wait) = oneshot::channel::<()>();
    let wait = Arc::new(parking_lot::Mutex::new(Some(wait)));
    let inner = service_fn(move |request: u32| {
        let wait = wait.lock().take();
        async move {
            if let Some(wait) = wait {
                wait.await.ok();
            }
            Ok::<_, BoxError>(request)
        }
    });
    let layer = ConcurrencyLimitLayer::new(1);
    let mut service = layer.layer(inner);

    let held = service.ready().await.unwrap().call(1);
    let held = tokio::spawn(held);
    tokio::task::yield_now().await;

    let started = tokio::time::Instant::now();
    let error = service.ready().await.unwrap().call(2).await.unwrap_err();
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "shed at once, not queued"
    );
    let retry_after = Bulkhead::DEFAULT_RETRY_AFTER;
    assert_eq!(Error::find(&*error), Some(&Error::Shed { retry_after }));

    release.send(()).unwrap();
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(service.bulkhead().in_flight(), 0);
    assert_eq!(service.ready().await.unwrap().call(3).await.unwrap(), 3);
}
