//! The test upstream on its own, over raw HTTP/1.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Reply, server};

/// Sends one request with `Connection: close`; what came back (empty if the server
/// closed without answering).
fn exchange(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn get(port: u16, path: &str) -> String {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn routes_echo_and_health_answer_as_told_and_are_counted() {
    let up = server()
        .named("one")
        .route("/", "hello")
        .route("/gone", Reply::status(410).header("x-why", "moved"))
        .run();
    let answer = get(up.port(), "/");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-served-by: one\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
    let answer = get(up.port(), "/gone");
    assert!(answer.starts_with("HTTP/1.1 410") && answer.contains("x-why: moved"));

    let answer = exchange(
        up.port(),
        "POST /echo?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbody",
    );
    let echo: serde_json::Value =
        serde_json::from_str(answer.split_once("\r\n\r\n").expect("a body").1).expect("JSON");
    assert_eq!(echo["instance"], "one");
    assert_eq!(echo["method"], "POST");
    assert_eq!(
        (&echo["path"], &echo["query"]),
        (&"/echo".into(), &"x=1".into())
    );
    assert_eq!(echo["headers"]["content-length"], "4");
    assert_eq!(echo["body"], "body");
    assert_eq!(up.last().expect("recorded").header("host"), Some("x"));

    assert!(get(up.port(), "/health").starts_with("HTTP/1.1 200"));
    up.set_healthy(false);
    assert!(get(up.port(), "/health").starts_with("HTTP/1.1 503"));
    assert_eq!((up.requests(), up.health_checks()), (3, 2));
    assert_eq!(up.hits("/gone"), 1);
}

#[test]
fn a_reset_closes_the_connection_without_an_answer() {
    let up = server().route("/reset", Reply::reset()).run();
    assert_eq!(get(up.port(), "/reset"), "");
    assert_eq!(up.hits("/reset"), 1);
}

#[test]
fn dropping_it_frees_the_port_and_closes_connections() {
    let up = server().route("/hang", Reply::hang()).run();
    let port = up.port();
    let mut waiting = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    waiting
        .write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    waiting
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    crate::wait_for("the request read", Duration::from_secs(5), || {
        up.hits("/hang") == 1
    });
    drop(up);
    let mut rest = Vec::new();
    assert_eq!(
        waiting.read_to_end(&mut rest).ok(),
        Some(0),
        "closed, unanswered"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );
    let again = server().named("again").port(port).run();
    assert!(get(again.port(), "/").contains("\"instance\":\"again\""));
}
