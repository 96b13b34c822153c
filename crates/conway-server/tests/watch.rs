//! The watch over HTTP: live changes, replay from a revision, compaction, cut-off of
//! watchers that do not read, keep-alive lines.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use conway_registry::registry::Registry;
use conway_registry::store::{EmbeddedOptions, EmbeddedStore};
use conway_server::{ServerOptions, router};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn app(options: EmbeddedOptions, keepalive: Duration) -> (Router, Registry) {
    let store = EmbeddedStore::in_memory_with(options).await.expect("store");
    let registry = Registry::new(Arc::new(store));
    registry
        .put_service("catalog", &Default::default())
        .await
        .expect("define catalog");
    (
        router(
            registry.clone(),
            &ServerOptions {
                keepalive,
                ..ServerOptions::default()
            },
        ),
        registry,
    )
}

fn register(n: u16) -> conway_core::api::RegisterInstance {
    serde_json::from_value(
        json!({ "id": format!("catalog-{n}"), "address": "127.0.0.1", "port": 9000 + n }),
    )
    .expect("request")
}

/// Opens a watch and returns its status and a reader of its lines.
async fn watch(app: &Router, query: &str) -> (StatusCode, Lines) {
    let request = Request::builder()
        .uri(format!("/v1/watch{query}"))
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    (
        response.status(),
        Lines {
            body: response.into_body(),
            buffer: String::new(),
        },
    )
}

struct Lines {
    body: Body,
    buffer: String,
}

impl Lines {
    /// The next line as JSON, waiting at most 5 s.
    async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(end) = self.buffer.find('\n') {
                    let line: String = self.buffer.drain(..=end).collect();
                    return serde_json::from_str(&line).expect("a JSON line");
                }
                let frame = self
                    .body
                    .frame()
                    .await
                    .expect("the watch ended")
                    .expect("a frame");
                if let Ok(data) = frame.into_data() {
                    self.buffer
                        .push_str(std::str::from_utf8(&data).expect("UTF-8"));
                }
            }
        })
        .await
        .expect("a line within 5 s")
    }
}

#[tokio::test]
async fn a_watch_sees_registrations_and_expiries_live() {
    let (app, registry) = app(EmbeddedOptions::default(), Duration::from_secs(10)).await;
    let (status, mut lines) = watch(&app, "").await;
    assert_eq!(status, StatusCode::OK);
    let instance = registry
        .register("catalog", register(1))
        .await
        .expect("register");
    let event = lines.next().await;
    assert_eq!(
        (
            event["op"].as_str(),
            event["kind"].as_str(),
            event["key"].as_str()
        ),
        (Some("put"), Some("instance"), Some("catalog-1"))
    );
    assert_eq!(event["value"]["port"], 9001);
    registry.deregister(&instance.id).await.expect("deregister");
    let event = lines.next().await;
    assert_eq!(
        (event["op"].as_str(), event["key"].as_str()),
        (Some("delete"), Some("catalog-1"))
    );
    assert!(event.get("value").is_none());
}

#[tokio::test]
async fn a_watch_replays_changes_after_a_revision() {
    let (app, registry) = app(EmbeddedOptions::default(), Duration::from_secs(10)).await;
    let before = registry.revision().await.expect("revision");
    for n in 1..=3 {
        registry
            .register("catalog", register(n))
            .await
            .expect("register");
    }
    let (status, mut lines) = watch(&app, &format!("?since={before}")).await;
    assert_eq!(status, StatusCode::OK);
    let mut revisions = Vec::new();
    for n in 1..=3 {
        let event = lines.next().await;
        assert_eq!(event["key"], format!("catalog-{n}"));
        revisions.push(event["revision"].as_i64().expect("revision"));
    }
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]) && revisions[0] > before,
        "{revisions:?} after {before}"
    );
}

#[tokio::test]
async fn a_compacted_revision_answers_410() {
    let options = EmbeddedOptions {
        history_revisions: 5,
        ..EmbeddedOptions::default()
    };
    let (app, registry) = app(options, Duration::from_secs(10)).await;
    for n in 1..=20 {
        registry
            .register("catalog", register(n))
            .await
            .expect("register");
    }
    let (status, lines) = watch(&app, "?since=1").await;
    assert_eq!(status, StatusCode::GONE);
    let body = lines.body.collect().await.expect("body").to_bytes();
    let error: Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(error["error"]["code"], "compacted");
}

#[tokio::test]
async fn a_quiet_watch_gets_keepalive_lines() {
    let (app, registry) = app(EmbeddedOptions::default(), Duration::from_millis(50)).await;
    let (_, mut lines) = watch(&app, "").await;
    let line = lines.next().await;
    assert_eq!(line["keepalive"], true);
    assert_eq!(
        line["revision"],
        registry.revision().await.expect("revision")
    );
}

#[tokio::test]
async fn a_watcher_that_never_reads_is_cut_off_and_the_registry_goes_on() {
    let options = EmbeddedOptions {
        watch_buffer: 16,
        ..EmbeddedOptions::default()
    };
    let (app, registry) = app(options, Duration::from_secs(10)).await;
    let (_, mut stalled) = watch(&app, "").await;
    // Nobody reads `stalled` while 100 changes happen; the writes must not wait for it.
    for n in 1..=100 {
        tokio::time::timeout(
            Duration::from_secs(5),
            registry.register("catalog", register(n)),
        )
        .await
        .expect("a write is never held up by a slow watcher")
        .expect("register");
    }
    // It gets what fitted in its buffer, then the error that ends it.
    let mut last = Value::Null;
    for _ in 0..=16 {
        last = stalled.next().await;
        if last.get("error").is_some() {
            break;
        }
    }
    assert_eq!(last["error"]["code"], "watch_ended", "{last}");
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .expect("request");
    let metrics = app
        .clone()
        .oneshot(request)
        .await
        .expect("metrics")
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("conway_watchers_cut_off_total 1"),
        "{metrics}"
    );
    assert_eq!(
        registry
            .instances(Some("catalog"))
            .await
            .expect("list")
            .len(),
        100
    );
}
