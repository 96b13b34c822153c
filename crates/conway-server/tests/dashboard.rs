//! The dashboard's files as the control plane serves them: types, caching, the page's
//! content security policy, and revalidation with `If-None-Match`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use conway_registry::registry::Registry;
use conway_registry::store::EmbeddedStore;
use conway_server::{ServerOptions, router};
use tower::ServiceExt;

async fn app() -> Router {
    let store = EmbeddedStore::in_memory().await.expect("in-memory store");
    router(Registry::new(Arc::new(store)), &ServerOptions::default())
}

async fn get(app: &Router, uri: &str, etag: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::builder().uri(uri);
    if let Some(etag) = etag {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test]
async fn the_page_is_html_that_loads_only_this_origin() {
    let app = app().await;
    let (status, headers, body) = get(&app, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header(&headers, header::CACHE_CONTROL), "no-cache");
    let policy = header(&headers, header::CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(body.contains(r#"<script type="module" src="/ui/app.js">"#));
}

#[tokio::test]
async fn files_have_their_types_and_revalidate_with_their_etag() {
    let app = app().await;
    for (file, kind) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/base.css", "text/css; charset=utf-8"),
    ] {
        let (status, headers, body) = get(&app, file, None).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert_eq!(header(&headers, header::CONTENT_TYPE), kind);
        assert_eq!(header(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(!body.is_empty());
        let etag = header(&headers, header::ETAG).to_owned();

        let (status, headers, body) = get(&app, file, Some(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{file} unchanged");
        assert_eq!(header(&headers, header::ETAG), etag);
        assert!(body.is_empty());

        let (status, _, _) = get(&app, file, Some("\"another\"")).await;
        assert_eq!(status, StatusCode::OK, "{file} changed");
    }
    let (status, _, body) = get(&app, "/ui/nothing.js", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("not_found"), "{body}");
}
