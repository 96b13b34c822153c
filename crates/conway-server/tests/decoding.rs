//! Request decoding never panics and never answers 5xx, whatever the body.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use conway_registry::registry::Registry;
use conway_registry::store::EmbeddedStore;
use conway_server::{ServerOptions, router};
use proptest::prelude::*;
use tower::ServiceExt;

/// Bodies that look like JSON more often than random bytes would.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "\\{(\"[a-z_]{1,12}\": ?(\"[ -~]{0,20}\"|-?[0-9]{1,12}|true|null|\\[\\]|\\{\\}),? ?){0,6}\\}".prop_map(String::into_bytes),
        any::<String>().prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_body_makes_the_api_fail_or_panic(body in bodies(), target in 0usize..5) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let store = EmbeddedStore::in_memory().await.expect("store");
            let registry = Registry::new(Arc::new(store));
            registry.put_service("catalog", &Default::default()).await.expect("define");
            let app = router(registry, &ServerOptions::default());
            let (method, uri) = [
                (Method::POST, "/v1/services/catalog/instances"),
                (Method::PUT, "/v1/services/catalog"),
                (Method::PUT, "/v1/services/catalog/faults"),
                (Method::PUT, "/v1/instances/x/health"),
                (Method::POST, "/v1/services/%FF%00/instances"),
            ][target].clone();
            let request = Request::builder().method(method).uri(uri).body(Body::from(body)).expect("request");
            let response = app.oneshot(request).await.expect("response");
            prop_assert!(response.status().as_u16() < 500, "status {}", response.status());
            Ok(())
        })?;
    }
}
