//! The HTTP probe against tiny real servers on `127.0.0.1:0`.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const PATIENCE: Duration = Duration::from_secs(10);

/// What the server does with each connection once it has read the request head.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Writes these bytes, then closes.
    Answer(&'static str),
    /// Writes these bytes, then keeps the connection open without another byte.
    AnswerAndStall(&'static [u8]),
    /// Never writes anything.
    Silent,
}

/// A one-behaviour HTTP server; records every request head it reads.
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    recorded
                        .lock()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    match behaviour {
                        Behaviour::Answer(bytes) => {
                            let _ = stream.write_all(bytes.as_bytes()).await;
                            let _ = stream.shutdown().await;
                        }
                        Behaviour::AnswerAndStall(bytes) => {
                            let _ = stream.write_all(bytes).await;
                            std::future::pending::<()>().await;
                        }
                        Behaviour::Silent => std::future::pending::<()>().await,
                    }
                });
            }
        });
        Self { addr, requests }
    }

    fn probe(&self, path: &str, timeout: Duration) -> HttpProbe {
        HttpProbe::new(self.addr, path, timeout).unwrap()
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().clone()
    }
}

#[tokio::test]
async fn a_200_passes_and_the_request_is_a_plain_get() {
    let server = Server::start(Behaviour::Answer(
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    ))
    .await;
    assert_eq!(
        server.probe("/health?full=1", PATIENCE).check().await,
        Ok(())
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let head = requests[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get /health?full=1 http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nhost: {}\r\n", server.addr)),
        "{head}"
    );
    let user_agent = format!(
        "\r\nuser-agent: conway-health/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(head.contains(&user_agent), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
}

#[tokio::test]
async fn any_2xx_passes() {
    let server = Server::start(Behaviour::Answer("HTTP/1.1 204 No Content\r\n\r\n")).await;
    assert_eq!(server.probe("/", PATIENCE).check().await, Ok(()));
}

#[tokio::test]
async fn a_503_fails_with_its_status() {
    let server = Server::start(Behaviour::Answer(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\ndown",
    ))
    .await;
    let error = server.probe("/health", PATIENCE).check().await.unwrap_err();
    assert_eq!(error, ProbeError::Status(503));
    assert_eq!(error.to_string(), "HTTP 503");
}

#[tokio::test]
async fn a_redirect_fails_and_is_not_followed() {
    let server = Server::start(Behaviour::Answer(
        "HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n",
    ))
    .await;
    let error = server.probe("/health", PATIENCE).check().await.unwrap_err();
    assert_eq!(error, ProbeError::Status(302));
    assert_eq!(server.requests().len(), 1, "the redirect was followed");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start(Behaviour::Silent).await;
    let timeout = Duration::from_millis(200);
    let started = tokio::time::Instant::now();
    let error = server.probe("/health", timeout).check().await.unwrap_err();
    assert_eq!(error, ProbeError::TimedOut(timeout));
    assert_eq!(error.to_string(), "timed out after 200ms");
    assert!(started.elapsed() >= timeout);
    assert!(started.elapsed() < PATIENCE);
}

#[tokio::test]
async fn a_closed_port_fails_to_connect() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let probe = HttpProbe::new(closed, "/health", PATIENCE).unwrap();
    assert_eq!(probe.check().await, Err(ProbeError::ConnectRefused));
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_fails() {
    let server = Server::start(Behaviour::Answer("")).await;
    let error = server.probe("/health", PATIENCE).check().await.unwrap_err();
    assert!(matches!(error, ProbeError::Http(_)), "{error:?}");
}

#[tokio::test]
async fn a_malformed_answer_fails() {
    let server = Server::start(Behaviour::Answer("SMTP ready\r\n\r\n")).await;
    let error = server.probe("/health", PATIENCE).check().await.unwrap_err();
    assert!(matches!(error, ProbeError::Http(_)), "{error:?}");
}

/// A 200 whose body never ends: the probe reads a bounded prefix and passes instead of
/// waiting for the rest until it times out.
#[tokio::test]
async fn only_a_bounded_body_is_read() {
    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2000\r\n";
    static BODY: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let mut bytes = ANSWER.to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 0x2000));
        bytes.extend_from_slice(b"\r\n");
        bytes
    });
    let server = Server::start(Behaviour::AnswerAndStall(&BODY)).await;
    assert_eq!(server.probe("/health", PATIENCE).check().await, Ok(()));
}
