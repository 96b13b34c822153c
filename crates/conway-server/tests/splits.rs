//! Run-time splits (`PUT|DELETE /v1/services/{name}/split`) as the proxies see them in
//! `GET /v1/config`, and the operations a lone control plane cannot serve.

use axum::Router;
use axum::http::{Method, StatusCode};
use serde_json::json;

mod common;

use common::call;

async fn app() -> Router {
    common::app("[services.orders]\nrun = [\"orders\"]\nsplit = { \"1.0\" = \"100%\" }\n").await
}

#[tokio::test]
async fn a_run_time_split_replaces_the_declared_one_until_deleted() {
    let app = app().await;
    let (_, config) = call(&app, Method::GET, "/v1/config", None).await;
    assert_eq!(config["splits"], json!({}));
    let before = config["revision"].as_i64().expect("revision");

    let split = r#"{"1.0": "90%", "1.1": "10%"}"#;
    let (status, answer) = call(&app, Method::PUT, "/v1/services/orders/split", Some(split)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["split"], json!({"1.0": "90%", "1.1": "10%"}));
    assert!(answer["revision"].as_i64().unwrap() > before);
    let (_, config) = call(&app, Method::GET, "/v1/config", None).await;
    assert_eq!(
        config["splits"]["orders"],
        json!({"1.0": "90%", "1.1": "10%"})
    );
    // The declared split stays in the definition; the proxies prefer the run-time one.
    assert_eq!(
        config["services"]["orders"]["split"],
        json!({"1.0": "100%"})
    );

    let (status, _) = call(&app, Method::DELETE, "/v1/services/orders/split", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, config) = call(&app, Method::GET, "/v1/config", None).await;
    assert_eq!(config["splits"], json!({}));
    let (status, answer) = call(&app, Method::DELETE, "/v1/services/orders/split", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[tokio::test]
async fn bad_splits_are_refused() {
    let app = app().await;
    for (uri, body, status, says) in [
        (
            "/v1/services/orders/split",
            r#"{"1.0": "90%"}"#,
            StatusCode::BAD_REQUEST,
            "add up to 100%, not 90%",
        ),
        (
            "/v1/services/orders/split",
            r#"{}"#,
            StatusCode::BAD_REQUEST,
            "add up to 100%",
        ),
        (
            "/v1/services/orders/split",
            r#"{"1.0": "150%"}"#,
            StatusCode::BAD_REQUEST,
            "share",
        ),
        (
            "/v1/services/orders/split",
            r#"{"": "100%"}"#,
            StatusCode::BAD_REQUEST,
            "names versions",
        ),
        (
            "/v1/services/nope/split",
            r#"{"1.0": "100%"}"#,
            StatusCode::NOT_FOUND,
            "no service named \"nope\"",
        ),
    ] {
        let (got, answer) = call(&app, Method::PUT, uri, Some(body)).await;
        assert_eq!(got, status, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {message}");
    }
    let (_, config) = call(&app, Method::GET, "/v1/config", None).await;
    assert_eq!(config["splits"], json!({}), "nothing was written");
}

#[tokio::test]
async fn operations_that_need_the_supervisor_say_so() {
    let app = app().await;
    for (method, uri) in [
        (Method::POST, "/v1/services/orders/deploy"),
        (Method::GET, "/v1/services/orders/deploy"),
        (Method::POST, "/v1/apply"),
        (Method::POST, "/v1/chaos/kill"),
        (Method::GET, "/v1/chaos/jobs"),
        (Method::DELETE, "/v1/chaos/jobs/chaos-1"),
        (Method::GET, "/v1/events"),
    ] {
        let (status, answer) = call(&app, method.clone(), uri, Some("{}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}");
        assert_eq!(answer["error"]["code"], "unavailable");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("served by `conway up`"),
            "{answer}"
        );
    }
}
