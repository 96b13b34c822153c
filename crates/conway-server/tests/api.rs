//! The API without sockets: every route, and bad input on each, through `oneshot`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use conway_registry::registry::Registry;
use conway_registry::store::EmbeddedStore;
use conway_server::{MAX_BODY_BYTES, PATHS, ServerOptions, router};
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;

use common::call;

const SYSTEM: &str =
    "[services.catalog]\nrun = [\"catalog\"]\n[services.billing]\naddress = \"127.0.0.1:9300\"\n";

async fn app() -> Router {
    common::app(SYSTEM).await
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test]
async fn register_list_heartbeat_deregister() {
    let app = app().await;
    let (status, instance) = call(
        &app,
        Method::POST,
        "/v1/services/catalog/instances",
        Some(r#"{"address": "127.0.0.1", "port": 9000, "version": "1.2.0", "zone": "a", "ttl": "10s"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{instance}");
    assert_eq!(instance["state"], "starting");
    let id = instance["id"].as_str().expect("id").to_owned();

    let (status, list) = call(&app, Method::GET, "/v1/services/catalog/instances", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (_, healthy) = call(
        &app,
        Method::GET,
        "/v1/services/catalog/instances?healthy=true",
        None,
    )
    .await;
    assert_eq!(healthy, json!([]), "a starting instance is not routable");

    let (status, beat) = call(
        &app,
        Method::POST,
        &format!("/v1/instances/{id}/heartbeat"),
        None,
    )
    .await;
    assert_eq!(
        (status, beat["ttl"].as_str()),
        (StatusCode::OK, Some("10s"))
    );

    let (status, _) = call(
        &app,
        Method::PUT,
        &format!("/v1/instances/{id}/health"),
        Some(r#"{"state": "healthy"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, healthy) = call(
        &app,
        Method::GET,
        "/v1/services/catalog/instances?healthy=true",
        None,
    )
    .await;
    assert_eq!(healthy.as_array().map(Vec::len), Some(1));

    let (status, _) = call(&app, Method::DELETE, &format!("/v1/instances/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/v1/instances/{id}/heartbeat"),
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn reregistering_an_id_is_idempotent_and_conflicts_elsewhere() {
    let app = app().await;
    let body = r#"{"id": "catalog-1", "address": "127.0.0.1", "port": 9000}"#;
    let (first, one) = call(
        &app,
        Method::POST,
        "/v1/services/catalog/instances",
        Some(body),
    )
    .await;
    let (second, two) = call(
        &app,
        Method::POST,
        "/v1/services/catalog/instances",
        Some(body),
    )
    .await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(
        one["registered_at_ms"], two["registered_at_ms"],
        "the same registration, renewed"
    );
    let (_, list) = call(&app, Method::GET, "/v1/services/catalog/instances", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    let moved = r#"{"id": "catalog-1", "address": "127.0.0.1", "port": 9001}"#;
    let (status, error) = call(
        &app,
        Method::POST,
        "/v1/services/catalog/instances",
        Some(moved),
    )
    .await;
    assert_eq!(
        (status, error_code(&error)),
        (StatusCode::CONFLICT, "conflict")
    );
    let (status, error) = call(
        &app,
        Method::POST,
        "/v1/services/billing/instances",
        Some(body),
    )
    .await;
    assert_eq!(
        (status, error_code(&error)),
        (StatusCode::CONFLICT, "conflict")
    );
}

#[tokio::test]
async fn bad_registrations_are_refused_with_a_reason() {
    let app = app().await;
    let cases: &[(&str, &str, StatusCode, &str)] = &[
        (
            "/v1/services/nope/instances",
            r#"{"address": "127.0.0.1", "port": 1}"#,
            StatusCode::NOT_FOUND,
            "no service",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"address": "127.0.0.1", "port": 1"#,
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"address": "127.0.0.1", "port": "x"}"#,
            StatusCode::BAD_REQUEST,
            "invalid type",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"address": "127.0.0.1", "port": 70000}"#,
            StatusCode::BAD_REQUEST,
            "invalid value",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"address": "127.0.0.1", "port": 0}"#,
            StatusCode::BAD_REQUEST,
            "port 0",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"address": "not an address!", "port": 1}"#,
            StatusCode::BAD_REQUEST,
            "invalid address",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"address": "127.0.0.1", "port": 1, "colour": "red"}"#,
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"port": 1}"#,
            StatusCode::BAD_REQUEST,
            "missing field",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"address": "127.0.0.1", "port": 1, "ttl": "forever"}"#,
            StatusCode::BAD_REQUEST,
            "invalid duration",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"address": "127.0.0.1", "port": 1, "ttl": "2d"}"#,
            StatusCode::BAD_REQUEST,
            "invalid duration",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"address": "127.0.0.1", "port": 1, "ttl": "100h"}"#,
            StatusCode::BAD_REQUEST,
            "invalid ttl",
        ),
        (
            "/v1/services/catalog/instances",
            r#"{"id": "a/b", "address": "127.0.0.1", "port": 1}"#,
            StatusCode::BAD_REQUEST,
            "invalid instance id",
        ),
        (
            "/v1/services/catalog/instances",
            "",
            StatusCode::BAD_REQUEST,
            "needs a JSON body",
        ),
        (
            "/v1/services/catalog/instances",
            "[]",
            StatusCode::BAD_REQUEST,
            "expected struct RegisterInstance",
        ),
    ];
    for (uri, body, status, words) in cases {
        let (got, error) = call(&app, Method::POST, uri, Some(body)).await;
        assert_eq!(got, *status, "{body}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(words),
            "{body}: {message:?} should say {words:?}"
        );
    }
    let (_, list) = call(&app, Method::GET, "/v1/services/catalog/instances", None).await;
    assert_eq!(list, json!([]), "no bad request left anything behind");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = app().await;
    let huge = format!(
        r#"{{"address": "127.0.0.1", "port": 1, "metadata": {{"x": "{}"}}}}"#,
        "a".repeat(MAX_BODY_BYTES)
    );
    let (status, error) = call(
        &app,
        Method::POST,
        "/v1/services/catalog/instances",
        Some(&huge),
    )
    .await;
    assert_eq!(
        (status, error_code(&error)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
}

#[tokio::test]
async fn services_can_be_defined_and_faults_set() {
    let app = app().await;
    let (status, _) = call(
        &app,
        Method::PUT,
        "/v1/services/search",
        Some(r#"{"owner": "team-search", "depends_on": ["catalog"]}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, service) = call(&app, Method::GET, "/v1/services/search", None).await;
    assert_eq!(
        (status, service["owner"].as_str()),
        (StatusCode::OK, Some("team-search"))
    );
    let (status, error) = call(&app, Method::PUT, "/v1/services/Bad_Name", Some("{}")).await;
    assert_eq!(
        (status, error_code(&error)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let (status, _) = call(
        &app,
        Method::PUT,
        "/v1/services/search",
        Some(r#"{"replicas": "many"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let faults = r#"{"delay": {"percent": 10, "duration": "200ms"}, "abort": {"percent": 5, "status": 503}}"#;
    let (status, _) = call(
        &app,
        Method::PUT,
        "/v1/services/search/faults",
        Some(faults),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, config) = call(&app, Method::GET, "/v1/config", None).await;
    assert_eq!(config["faults"]["search"]["abort"]["status"], 503);
    assert!(config["revision"].as_i64().is_some_and(|r| r > 0));
    for bad in [
        r#"{"abort": {"percent": 500, "status": 503}}"#,
        r#"{"abort": {"percent": 5, "status": 200}}"#,
        "{}",
    ] {
        let (status, _) = call(&app, Method::PUT, "/v1/services/search/faults", Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _) = call(&app, Method::DELETE, "/v1/services/search/faults", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&app, Method::DELETE, "/v1/services/search/faults", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&app, Method::PUT, "/v1/services/ghost/faults", Some(faults)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn watch_refuses_future_and_negative_revisions() {
    let app = app().await;
    let (status, error) = call(&app, Method::GET, "/v1/watch?since=1000000", None).await;
    assert_eq!(
        (status, error_code(&error)),
        (StatusCode::BAD_REQUEST, "future_revision")
    );
    let (status, _) = call(&app, Method::GET, "/v1/watch?since=-1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&app, Method::GET, "/v1/watch?since=abc", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_served_routes() {
    let app = app().await;
    let (status, document) = call(&app, Method::GET, "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().expect("paths");
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    let mut served: Vec<&str> = PATHS.to_vec();
    documented.sort_unstable();
    served.sort_unstable();
    assert_eq!(documented, served);
    for (path, operations) in paths {
        let uri = path.replace("{name}", "catalog").replace("{id}", "x");
        // A method no route takes: the router answers 405 with the methods it serves.
        let request = Request::builder()
            .method(Method::TRACE)
            .uri(&uri)
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let allow = response
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut served: Vec<String> = allow
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| m != "head")
            .collect();
        let mut documented: Vec<String> = operations
            .as_object()
            .expect("operations")
            .keys()
            .cloned()
            .collect();
        served.sort();
        documented.sort();
        assert_eq!(served, documented, "methods of {path}");
    }
    let (status, error) = call(&app, Method::GET, "/v1/nothing-here", None).await;
    assert_eq!(
        (status, error_code(&error)),
        (StatusCode::NOT_FOUND, "no_route")
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = app().await;
    call(&app, Method::GET, "/v1/services", None).await;
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.contains("version=0.0.4"), "{content_type}");
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec(),
    )
    .expect("utf-8");
    assert!(text.contains("conway_registry_services 2"), "{text}");
    assert!(
        text.contains(
            r#"conway_api_requests_total{method="GET",route="/v1/services",status="2xx"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn with_an_admin_token_changes_need_it_and_reads_do_not() {
    let store = EmbeddedStore::in_memory().await.expect("in-memory store");
    let registry = Registry::new(Arc::new(store));
    registry
        .put_service("catalog", &Default::default())
        .await
        .expect("define");
    let options = ServerOptions {
        admin_token: Some("a-long-admin-token-for-tests".to_owned()),
        ..ServerOptions::default()
    };
    let app = router(registry, &options);
    let register = |token: Option<&'static str>| {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/services/catalog/instances");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request
            .body(Body::from(r#"{"address": "127.0.0.1", "port": 9000}"#))
            .expect("request")
    };
    let status_and_code = |response: axum::response::Response| async move {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (
            status,
            value["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let missing =
        status_and_code(app.clone().oneshot(register(None)).await.expect("response")).await;
    assert_eq!(
        missing,
        (StatusCode::UNAUTHORIZED, "token_required".to_owned())
    );
    let wrong = status_and_code(
        app.clone()
            .oneshot(register(Some("a-long-admin-token-for-tesTS")))
            .await
            .expect("response"),
    )
    .await;
    assert_eq!(
        wrong,
        (StatusCode::UNAUTHORIZED, "invalid_token".to_owned())
    );
    let right = app
        .clone()
        .oneshot(register(Some("a-long-admin-token-for-tests")))
        .await
        .expect("response");
    assert_eq!(right.status(), StatusCode::CREATED);
    let (status, list) = call(&app, Method::GET, "/v1/services/catalog/instances", None).await;
    assert_eq!(
        (status, list.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1)),
        "reads stay open"
    );
}
