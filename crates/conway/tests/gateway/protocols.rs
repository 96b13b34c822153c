//! What travels with a request: trace context, forwarding and hop-by-hop headers, the
//! consumer header; WebSocket upgrades, HTTP/2 with trailers; the metrics it leaves.

use std::time::Duration;

use bytes::Bytes;
use conway_test_support::upstream::{Reply, server};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::fixture::{System, external, raw};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// `(trace id, span id)` of a `traceparent` or `traceresponse` value.
fn ids(value: &str) -> (String, String) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16));
    (parts[1].to_owned(), parts[2].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_is_continued_upstream_and_answered() {
    let up = server().named("up").run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external("web", &[&up], ""),
    ))
    .await;

    let response = system
        .http
        .get(system.url("/"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .send()
        .await
        .expect("an answer");
    let answered = ids(response.headers()["traceresponse"].to_str().unwrap());
    let upstream = ids(up
        .last()
        .unwrap()
        .header("traceparent")
        .expect("sent upstream"));
    assert_eq!(upstream.0, CALLER_TRACE, "the same trace upstream");
    assert_ne!(upstream.1, CALLER_SPAN, "with the gateway's span as parent");
    assert_eq!(answered, upstream, "traceresponse names the gateway's span");

    let response = system.get("/").await;
    let answered = ids(response.headers()["traceresponse"].to_str().unwrap());
    let upstream = ids(up
        .last()
        .unwrap()
        .header("traceparent")
        .expect("sent upstream"));
    assert_eq!(answered, upstream, "a new trace, the same both ways");
    assert_ne!(answered.0, CALLER_TRACE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_are_set_and_hop_by_hop_ones_removed() {
    let up = server()
        .named("up")
        .route(
            "/hop",
            Reply::text("ok")
                .header("keep-alive", "timeout=5")
                .header("x-upstream-private", "1")
                .header("connection", "x-upstream-private"),
        )
        .run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external("web", &[&up], ""),
    ))
    .await;
    let request = "GET /echo HTTP/1.1\r\nHost: shop.example\r\n\
        Connection: close, x-private\r\nx-private: 1\r\nKeep-Alive: timeout=5\r\n\
        Proxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\n\
        X-Forwarded-For: 10.1.2.3\r\nx-conway-consumer: mallory\r\nx-kept: yes\r\n\r\n";
    let answer = raw(
        &system.address(),
        request.as_bytes(),
        Duration::from_secs(5),
    );
    assert_eq!(answer.status(), Some(200), "{}", answer.text);
    let echo: Value = serde_json::from_str(answer.body()).expect("an echo");
    let headers = &echo["headers"];
    assert_eq!(headers["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "shop.example");
    assert_eq!(headers["x-kept"], "yes");
    assert_eq!(headers["te"], "trailers", "TE: trailers survives for gRPC");
    for gone in [
        "connection",
        "x-private",
        "keep-alive",
        "proxy-authorization",
        "x-conway-consumer",
    ] {
        assert!(
            headers[gone].is_null(),
            "{gone} reached the instance: {echo}"
        );
    }

    let response = system.get("/hop").await;
    assert_eq!(response.status(), 200);
    for gone in ["keep-alive", "x-upstream-private"] {
        assert!(
            !response.headers().contains_key(gone),
            "{gone} reached the client: {:?}",
            response.headers()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_echo_through_the_gateway() {
    let up = server().named("up").route("/ws", Reply::websocket()).run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external("web", &[&up], ""),
    ))
    .await;
    let url = format!("ws://{}/ws", system.address());
    let (mut socket, handshake) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket through the gateway");
    assert_eq!(handshake.status(), 101);
    assert_eq!(handshake.headers()["x-served-by"], "up");
    for text in ["hello", "again"] {
        socket.send(Message::text(text)).await.expect("sent");
        let echoed = socket.next().await.expect("a message").expect("read");
        assert_eq!(echoed, Message::text(text));
    }
    socket
        .send(Message::binary(vec![0_u8, 1, 2, 255]))
        .await
        .expect("sent");
    let echoed = socket.next().await.expect("a message").expect("read");
    assert_eq!(echoed, Message::binary(vec![0_u8, 1, 2, 255]));
    socket.close(None).await.expect("closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_reaches_an_h2c_instance_with_its_trailers() {
    let up = server()
        .named("up")
        .route(
            "/grpc",
            Reply::text("payload")
                .header("content-type", "application/grpc")
                .trailer("grpc-status", "0")
                .trailer("grpc-message", "fine"),
        )
        .run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external("web", &[&up], "protocol = \"http2\""),
    ))
    .await;

    // Prior knowledge: HTTP/2 from the first byte, no upgrade.
    let stream = tokio::net::TcpStream::connect(system.address())
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 connection");
    tokio::spawn(connection);
    let request = hyper::Request::get("http://shop.example:8443/grpc")
        .header("te", "trailers")
        .body(Empty::<Bytes>::new())
        .expect("a request");
    let response = sender.send_request(request).await.expect("an answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let body = response.into_body().collect().await.expect("a body");
    let trailers = body.trailers().cloned().expect("trailers passed through");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "fine");
    assert_eq!(body.to_bytes(), "payload");
    let upstream = up.last().expect("a request upstream");
    assert_eq!(upstream.version, "HTTP/2.0");
    assert_eq!(upstream.header("te"), Some("trailers"));
    assert_eq!(
        upstream.header("x-forwarded-host"),
        Some("shop.example:8443"),
        "HTTP/2 names the host in :authority"
    );

    // An HTTP/1.1 client still reaches it over HTTP/2: the service asks for it.
    let echo: Value = system.get("/echo").await.json().await.expect("an echo");
    assert_eq!(echo["version"], "HTTP/2.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_name_never_by_path() {
    let up = server().named("up").run();
    let system = System::start(&format!(
        "[[gateway.routes]]\nname = \"orders-api\"\npath = \"/api/orders\"\nservice = \"orders\"\n\n{}",
        external("orders", &[&up], ""),
    ))
    .await;
    for id in 1..=3 {
        let path = format!("/api/orders/{id}-secret");
        assert_eq!(system.get(&path).await.status(), 200);
    }
    assert_eq!(system.get("/nowhere-secret").await.status(), 404);

    let metrics = system.metrics().await;
    for line in [
        "conway_proxy_requests_total{route=\"orders-api\",service=\"orders\",class=\"2xx\"} 3",
        "conway_proxy_requests_total{route=\"none\",service=\"none\",class=\"4xx\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line} in:\n{metrics}");
    }
    assert!(
        metrics.contains("# TYPE conway_proxy_requests_total counter"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("secret"),
        "a raw path in a label:\n{metrics}"
    );
}
