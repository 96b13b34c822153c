//! Connections to instances, pooled per endpoint on hyper's `client::conn` directly:
//! HTTP/1.1 keep-alive connections (one request at a time each, most recently used
//! first), and one multiplexed HTTP/2 (h2c) connection per endpoint for gRPC and the
//! services that ask for it.
//!
//! hyper-util's pooled client costs about 5 µs of CPU per request more (a task spawned
//! per request to watch the connection become ready again, its pool keys and locks);
//! here an HTTP/1.1 connection goes back to its pool when the response body has been
//! read to its end ([`ProxyBody`] carries the [`Release`]), and a request whose
//! connection closed before it was written goes out on another one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::ProxyBody;

/// How long an idle pooled connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The most idle HTTP/1.1 connections kept per endpoint.
const MAX_IDLE_PER_ENDPOINT: usize = 256;
/// How often idle connections past [`IDLE_TIMEOUT`] are closed.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Why a try could not get a response. The display names the step; the cause follows
/// in the source chain (the proxy's error messages print the chain).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TCP connection could not be made (refused, unreachable, ...).
    #[error("tcp connect failed")]
    Connect(#[source] std::io::Error),
    /// The TCP connection was not made within [`CONNECT_TIMEOUT`].
    #[error("no connection within {CONNECT_TIMEOUT:?}")]
    ConnectTimeout,
    /// The HTTP/2 handshake failed.
    #[error("HTTP/2 handshake failed")]
    Handshake(#[source] hyper::Error),
    /// The exchange failed once the request was handed to a connection.
    #[error(transparent)]
    Http(hyper::Error),
}

impl UpstreamError {
    /// Whether no connection could be made (nothing was sent: any request may be retried).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::ConnectTimeout)
    }

    /// Whether the instance refused the connection: nothing listens there.
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Connect(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    }
}

/// The proxy's upstream connections, by endpoint address. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pools: RwLock<HashMap<SocketAddr, Arc<Pool>>>,
    sweeping: std::sync::atomic::AtomicBool,
}

/// The connections to one endpoint.
#[derive(Debug, Default)]
struct Pool {
    /// Idle HTTP/1.1 connections, the most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// The HTTP/2 connection, shared by every request.
    http2: Mutex<Option<http2::SendRequest<ProxyBody>>>,
}

#[derive(Debug)]
struct Idle {
    sender: http1::SendRequest<ProxyBody>,
    since: Instant,
}

/// An HTTP/1.1 connection lent to one response: it goes back to its pool once the
/// response body has been read to its end, and is closed if the body is dropped before.
#[derive(Debug)]
pub struct Release {
    sender: http1::SendRequest<ProxyBody>,
    pool: Arc<Pool>,
}

impl Release {
    /// The response is complete: the connection may carry another request.
    pub fn release(self) {
        self.pool.put(self.sender);
    }
}

impl Pool {
    fn put(&self, sender: http1::SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() >= MAX_IDLE_PER_ENDPOINT {
            idle.remove(0);
        }
        idle.push(Idle {
            sender,
            since: Instant::now(),
        });
    }

    /// The most recently used idle connection still open, if any.
    fn checkout(&self) -> Option<http1::SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock();
        while let Some(entry) = idle.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < IDLE_TIMEOUT {
                return Some(entry.sender);
            }
        }
        None
    }

    /// Closes idle connections past the timeout; whether the pool is now empty.
    fn sweep(&self, now: Instant) -> bool {
        let mut idle = self.idle.lock();
        idle.retain(|e| !e.sender.is_closed() && now.duration_since(e.since) < IDLE_TIMEOUT);
        let mut http2 = self.http2.lock();
        if http2.as_ref().is_some_and(http2::SendRequest::is_closed) {
            *http2 = None;
        }
        idle.is_empty() && http2.is_none()
    }
}

impl Upstreams {
    /// No connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn pool(&self, addr: SocketAddr) -> Arc<Pool> {
        if let Some(pool) = self.inner.pools.read().get(&addr) {
            return pool.clone();
        }
        self.start_sweeping();
        self.inner.pools.write().entry(addr).or_default().clone()
    }

    /// Sends `request` to the instance at `addr` over HTTP/2 (prior knowledge) or
    /// HTTP/1.1 and returns its response head; the body streams from the connection.
    pub async fn send(
        &self,
        addr: SocketAddr,
        http2: bool,
        request: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        let pool = self.pool(addr);
        if http2 {
            send_http2(&pool, addr, request).await
        } else {
            send_http1(&pool, addr, request).await
        }
    }

    /// A background task (one per process, while the upstreams live) closes idle
    /// connections past [`IDLE_TIMEOUT`] and forgets endpoints with none.
    fn start_sweeping(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.sweeping.store(false, Ordering::Relaxed);
            return;
        };
        let inner = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = inner.upgrade() else { return };
                let now = Instant::now();
                // A pool some response still holds a connection of stays.
                inner
                    .pools
                    .write()
                    .retain(|_, pool| !pool.sweep(now) || Arc::strong_count(pool) > 1);
            }
        });
    }
}

async fn send_http1(
    pool: &Arc<Pool>,
    addr: SocketAddr,
    mut request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, UpstreamError> {
    // An origin server gets the origin form (`/path?query`, RFC 9112 §3.2.1), not the
    // absolute URI hyper's connection would write as given; `Host` names the authority.
    if let Some(origin) = request.uri().path_and_query().cloned() {
        *request.uri_mut() = origin.into();
    }
    // Idle connections first; one that turns out closed before the request was written
    // hands the request back, and the next one (or a new connection) takes it.
    while let Some(mut sender) = pool.checkout() {
        if sender.ready().await.is_err() {
            continue;
        }
        match sender.try_send_request(request).await {
            Ok(response) => return Ok(lend(response, sender, pool)),
            Err(mut error) => match error.take_message() {
                Some(unsent) => request = unsent,
                None => return Err(UpstreamError::Http(error.into_error())),
            },
        }
    }
    let mut sender = connect_http1(addr).await?;
    match sender.send_request(request).await {
        Ok(response) => Ok(lend(response, sender, pool)),
        Err(error) => Err(UpstreamError::Http(error)),
    }
}

/// The response, its body holding the connection until it has been read (a protocol
/// switch keeps the connection: it is the upgraded stream's now).
fn lend(
    response: Response<Incoming>,
    sender: http1::SendRequest<ProxyBody>,
    pool: &Arc<Pool>,
) -> Response<ProxyBody> {
    let release = (response.status() != StatusCode::SWITCHING_PROTOCOLS).then(|| Release {
        sender,
        pool: pool.clone(),
    });
    response.map(|body| ProxyBody::pooled(body, release))
}

async fn connect(addr: SocketAddr) -> Result<TokioIo<TcpStream>, UpstreamError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(UpstreamError::Connect(error)),
        Err(_) => return Err(UpstreamError::ConnectTimeout),
    };
    let _ = stream.set_nodelay(true);
    Ok(TokioIo::new(stream))
}

async fn connect_http1(addr: SocketAddr) -> Result<http1::SendRequest<ProxyBody>, UpstreamError> {
    let io = connect(addr).await?;
    let (sender, connection) = http1::handshake(io).await.map_err(UpstreamError::Http)?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%addr, %error, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

async fn send_http2(
    pool: &Arc<Pool>,
    addr: SocketAddr,
    mut request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, UpstreamError> {
    let shared = pool.http2.lock().clone().filter(|s| !s.is_closed());
    if let Some(mut sender) = shared {
        match sender.try_send_request(request).await {
            Ok(response) => return Ok(response.map(|body| ProxyBody::pooled(body, None))),
            Err(mut error) => match error.take_message() {
                Some(unsent) => request = unsent,
                None => return Err(UpstreamError::Http(error.into_error())),
            },
        }
    }
    let io = connect(addr).await?;
    let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(io)
        .await
        .map_err(UpstreamError::Handshake)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%addr, %error, "upstream HTTP/2 connection ended with an error");
        }
    });
    *pool.http2.lock() = Some(sender.clone());
    match sender.send_request(request).await {
        Ok(response) => Ok(response.map(|body| ProxyBody::pooled(body, None))),
        Err(error) => Err(UpstreamError::Http(error)),
    }
}
