//! Malformed and hostile requests: each gets its status, nothing reaches the instance it
//! should not, and the gateway keeps serving.

use std::time::Duration;

use conway_test_support::upstream::server;
use serde_json::Value;

use crate::fixture::{System, error_code, external, raw};

const PATIENCE: Duration = Duration::from_secs(5);

fn system_for(up: &conway_test_support::upstream::Upstream) -> String {
    format!(
        "[[gateway.routes]]\npath = \"/small\"\nservice = \"web\"\nmax_body = \"1KiB\"\n\n\
         [[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external("web", &[up], ""),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_countless_headers_get_431() {
    let up = server().named("up").run();
    let system = System::start(&system_for(&up)).await;
    let address = system.address();

    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let answer = raw(&address, big.as_bytes(), PATIENCE);
    assert_eq!(answer.status(), Some(431), "{}", answer.text);

    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..150 {
        many.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    let answer = raw(&address, many.as_bytes(), PATIENCE);
    assert_eq!(answer.status(), Some(431), "{}", answer.text);

    assert_eq!(up.requests(), 0);
    assert_eq!(system.get("/").await.status(), 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_max_body_get_413_declared_or_chunked() {
    let up = server().named("up").run();
    let system = System::start(&system_for(&up)).await;

    let response = system
        .http
        .post(system.url("/small"))
        .body(vec![b'x'; 512])
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.expect("an echo");
    assert_eq!(echo["body"].as_str().map(str::len), Some(512));

    let response = system
        .http
        .post(system.url("/small"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 413);
    assert_eq!(error_code(response).await, "body_too_large");
    assert_eq!(
        up.requests(),
        1,
        "a declared length over the limit goes nowhere"
    );

    let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 256]));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = system
        .http
        .post(system.url("/small"))
        .body(body)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.expect("a JSON error");
    assert_eq!(error["error"]["code"], "body_too_large");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("1024 bytes"),
        "the limit is named: {message}"
    );
    assert!(
        up.received()
            .iter()
            .all(|r| r.body_error || r.body.len() <= 1024),
        "no instance got a whole body over the limit"
    );
    assert_eq!(system.get("/").await.status(), 200, "still serving");
}

/// RFC 9112 §6.1: a request with both may be refused, or read by its
/// `Transfer-Encoding` alone with the connection closed after the answer. Either way
/// the instance must never see the `Content-Length`, which would desynchronize the
/// gateway's connection to it (request smuggling).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_cannot_smuggle() {
    let up = server().named("up").run();
    let system = System::start(&system_for(&up)).await;
    let request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\
        Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
        GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = raw(&system.address(), request, PATIENCE);
    match answer.status() {
        Some(400) => assert_eq!(up.requests(), 0),
        Some(200) => {
            let echo: Value = serde_json::from_str(answer.body()).expect("an echo");
            assert_eq!(echo["body"], "hello", "read by Transfer-Encoding");
            assert!(echo["headers"]["content-length"].is_null(), "{echo}");
            assert!(answer.closed, "the connection is closed after the answer");
        }
        other => panic!("answered {other:?}: {}", answer.text),
    }
    assert_eq!(up.hits("/smuggled"), 0);
    assert_eq!(system.get("/").await.status(), 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_are_refused() {
    let up = server().named("up").run();
    let system = System::start(&system_for(&up)).await;
    for path in ["/small/../admin", "/small/%2e%2E/admin", "/./x", "/a/.."] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = raw(&system.address(), request.as_bytes(), PATIENCE);
        assert_eq!(answer.status(), Some(400), "{path}: {}", answer.text);
        let error: Value = serde_json::from_str(answer.body()).expect("a JSON error");
        assert_eq!(error["error"]["code"], "bad_request", "{path}");
    }
    assert_eq!(up.requests(), 0);
}

/// An oversized body is the client's fault: however many a client streams, the
/// instance's circuit stays closed and it is not ejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_streamed_bodies_count_against_no_instance() {
    let up = server().named("up").run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\nmax_body = \"1KiB\"\n\n{}",
        external(
            "web",
            &[&up],
            "[services.web.resilience]\n\
             circuit_breaker = { failure_ratio = 0.5, min_requests = 3, open_for = \"30s\" }\n\
             outlier = { consecutive_errors = 2, max_ejected = \"100%\" }",
        ),
    ))
    .await;
    for _ in 0..6 {
        let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(vec![b'z'; 256]));
        let response = system
            .http
            .post(system.url("/upload"))
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 413);
    }
    let served = crate::fixture::count(&system.spread("/", 10, 1).await, "up");
    assert_eq!(served, 10, "the instance still takes requests");
}
