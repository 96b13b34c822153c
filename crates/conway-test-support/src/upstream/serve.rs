//! The test upstream's serving side: its own thread and runtime, HTTP/1.1 and h2c on one
//! listener, and the answer to each request.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::reply::{Kind, Reply};
use super::{Received, State};

/// Serves `listener` until `stopped` fires (or its sender is dropped). Returning drops
/// the runtime, and with it every connection.
pub(super) fn run(
    listener: std::net::TcpListener,
    state: Arc<State>,
    stopped: oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the upstream server");
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener).expect("a tokio listener");
        tokio::pin!(stopped);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
                _ = &mut stopped => break,
            };
            let _ = stream.set_nodelay(true);
            state.connections.fetch_add(1, Ordering::Relaxed);
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(state.clone(), request));
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder.http1().timer(TokioTimer::new());
                builder.http2().timer(TokioTimer::new());
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// The error that makes hyper close the connection (or reset the HTTP/2 stream) without
/// an answer.
#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reset on purpose")
    }
}

impl std::error::Error for Reset {}

async fn answer(
    state: Arc<State>,
    mut request: Request<Incoming>,
) -> Result<Response<ReplyBody>, Reset> {
    let path = request.uri().path().to_owned();
    if path == "/health" {
        state.health_checks.fetch_add(1, Ordering::Relaxed);
        let healthy = state.healthy.load(Ordering::Relaxed);
        let status = if healthy { 200 } else { 503 };
        let body = if healthy { "ok" } else { "failing" };
        return Ok(respond(&state, status, &[], Bytes::from(body), &[]));
    }
    let reply = state.reply_for(&path);
    let upgrade = matches!(reply.kind, Kind::WebSocket).then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let (body, body_error) = match body.collect().await {
        Ok(collected) => (collected.to_bytes().to_vec(), false),
        Err(_) => (Vec::new(), true),
    };
    let received = Received {
        method: parts.method.to_string(),
        path,
        query: parts.uri.query().map(str::to_owned),
        version: format!("{:?}", parts.version),
        headers: parts.headers,
        body,
        body_error,
    };
    state.record(received.clone());
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let Reply {
        kind,
        status,
        headers,
        trailers,
        ..
    } = reply;
    match kind {
        Kind::Body(bytes) => Ok(respond(&state, status, &headers, bytes, &trailers)),
        Kind::Echo => {
            let mut headers = headers;
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
            let body = echo(&state.name, &received).to_string();
            Ok(respond(&state, status, &headers, body.into(), &trailers))
        }
        Kind::Reset => Err(Reset),
        Kind::Hang => std::future::pending().await,
        Kind::WebSocket => Ok(websocket(&state, &received.headers, upgrade)),
    }
}

/// The request as JSON.
fn echo(instance: &str, received: &Received) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for name in received.headers.keys() {
        let values: Vec<&str> = received
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("<binary>"))
            .collect();
        headers.insert(name.to_string(), values.join(", ").into());
    }
    serde_json::json!({
        "instance": instance,
        "method": received.method,
        "path": received.path,
        "query": received.query,
        "version": received.version,
        "headers": headers,
        "body": String::from_utf8_lossy(&received.body),
        "body_error": received.body_error,
    })
}

/// Completes a WebSocket handshake and echoes messages on the upgraded connection.
fn websocket(
    state: &State,
    headers: &HeaderMap,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ReplyBody> {
    let (Some(key), Some(upgrade)) = (headers.get("sec-websocket-key"), upgrade) else {
        return respond(state, 400, &[], "not a WebSocket handshake".into(), &[]);
    };
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (mut sink, mut stream) = socket.split();
        while let Some(Ok(message)) = stream.next().await {
            if message.is_close() {
                let _ = sink.close().await;
                break;
            }
            if (message.is_text() || message.is_binary()) && sink.send(message).await.is_err() {
                break;
            }
        }
    });
    let headers = [
        ("upgrade".to_owned(), "websocket".to_owned()),
        ("connection".to_owned(), "upgrade".to_owned()),
        ("sec-websocket-accept".to_owned(), accept),
    ];
    respond(state, 101, &headers, Bytes::new(), &[])
}

fn respond(
    state: &State,
    status: u16,
    headers: &[(String, String)],
    body: Bytes,
    trailers: &[(String, String)],
) -> Response<ReplyBody> {
    let trailers = (!trailers.is_empty()).then(|| header_map(trailers));
    let mut response = Response::new(ReplyBody {
        data: Some(body),
        trailers,
    });
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    let map = response.headers_mut();
    map.extend(header_map(headers));
    if let Ok(name) = HeaderValue::from_str(&state.name) {
        map.insert("x-served-by", name);
    }
    response
}

fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
                HeaderValue::from_str(value).expect("a valid header value"),
            )
        })
        .collect()
}

/// A body sent in one frame, then its trailers, if any.
#[derive(Debug)]
pub(super) struct ReplyBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take().filter(|d| !d.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.as_ref().is_none_or(Bytes::is_empty) && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.data, &self.trailers) {
            // With trailers, the length stays unknown so HTTP/1.1 goes chunked.
            (_, Some(_)) => SizeHint::default(),
            (data, None) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}
