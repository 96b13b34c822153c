//! What the API tests share: the router over an in-memory registry loaded with a
//! manifest, and one request through it without sockets.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use conway_registry::registry::Registry;
use conway_registry::store::EmbeddedStore;
use conway_server::{ServerOptions, router};
use serde_json::Value;
use tower::ServiceExt;

/// The API with `manifest`'s declared state, on an in-memory store.
pub(crate) async fn app(manifest: &str) -> Router {
    let store = EmbeddedStore::in_memory().await.expect("in-memory store");
    let registry = Registry::new(Arc::new(store));
    let manifest = conway_core::parse(manifest)
        .expect("valid manifest")
        .manifest;
    registry
        .load_manifest(&manifest)
        .await
        .expect("load manifest");
    router(registry, &ServerOptions::default())
}

/// One request with a JSON `body`: the status, and the answer as JSON (or as a JSON
/// string when it is not JSON).
pub(crate) async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}
