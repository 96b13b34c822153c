//! The load routes without sockets: proxies' reports in, a service's sum out.

use axum::Router;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

mod common;

async fn app() -> Router {
    common::app("[services.orders]\nrun = [\"orders\"]\n").await
}

/// One request with `body` as its JSON.
async fn call(app: &Router, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    common::call(app, method, uri, body.map(|b| b.to_string()).as_deref()).await
}

fn report(inflight: f64, breaker: &str) -> Value {
    json!({"interval_ms": 1000, "services": [
        {"service": "orders", "inflight": inflight, "current": 3, "breaker": breaker},
        {"service": "elsewhere", "inflight": 9.0, "current": 9}
    ]})
}

#[tokio::test]
async fn reports_are_summed_per_service_in_the_documented_shape() {
    let app = app().await;
    let (status, idle) = call(&app, Method::GET, "/v1/services/orders/load", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        idle,
        json!({"service": "orders", "inflight": 0.0, "current": 0, "breaker": "closed", "proxies": []})
    );
    for (proxy, inflight, breaker) in [("gateway-h-1", 2.5, "closed"), ("mesh-h-2", 1.0, "open")] {
        let uri = format!("/v1/proxies/{proxy}/load");
        let (status, _) = call(&app, Method::PUT, &uri, Some(report(inflight, breaker))).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{proxy}");
    }
    let (status, load) = call(&app, Method::GET, "/v1/services/orders/load", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(load["inflight"], 3.5);
    assert_eq!(load["current"], 6);
    assert_eq!(load["breaker"], "open", "the worst state");
    let proxies = load["proxies"].as_array().expect("proxies");
    assert_eq!(proxies.len(), 2);
    assert_eq!(proxies[0]["proxy"], "gateway-h-1");
    assert_eq!(proxies[0]["breaker"], "closed");
    assert!(proxies[0]["reported_at_ms"].as_u64().is_some_and(|t| t > 0));
}

#[tokio::test]
async fn bad_reports_and_unknown_services_are_refused() {
    let app = app().await;
    let (status, body) = call(&app, Method::GET, "/v1/services/nope/load", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    for bad in [
        json!({"interval_ms": 0, "services": []}),
        json!({"interval_ms": 1000, "services": [{"service": "orders", "inflight": -1.0, "current": 0}]}),
        json!({"interval_ms": 1000, "services": [], "extra": true}),
        json!({"services": []}),
    ] {
        let (status, body) = call(&app, Method::PUT, "/v1/proxies/p/load", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["code"], "invalid_request", "{bad}");
    }
    let (status, load) = call(&app, Method::GET, "/v1/services/orders/load", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        load["proxies"].as_array().expect("proxies").is_empty(),
        "nothing taken"
    );
}
