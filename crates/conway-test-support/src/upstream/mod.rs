//! A real upstream HTTP server for integration tests: `server().route("/", "hello").run()`.
//!
//! It listens on `127.0.0.1` (port 0 unless told), speaks HTTP/1.1 and h2c (prior
//! knowledge) on the same port, and answers each path as told ([`Reply`]): a fixed status
//! and body, an echo of the request as JSON, a delay, a reset, no answer at all, or a
//! WebSocket echo. Every answer carries `x-served-by: NAME`, so tests can see which
//! instance served a request. `GET /health` answers `200` until
//! [`Upstream::set_healthy`] flips it to `503`; health checks are counted apart from the
//! requests.
//!
//! It runs on its own thread and runtime, so it serves the same from synchronous and
//! asynchronous tests; dropping the [`Upstream`] stops it, closes every connection and
//! frees its port.

mod reply;
mod serve;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use hyper::HeaderMap;
use parking_lot::Mutex;

pub use self::reply::Reply;

/// Starts describing a server; finish with [`UpstreamBuilder::run`].
pub fn server() -> UpstreamBuilder {
    UpstreamBuilder {
        name: None,
        routes: HashMap::new(),
        fallback: Reply::echo(),
        port: 0,
        healthy: true,
    }
}

/// A server being described.
#[derive(Debug)]
pub struct UpstreamBuilder {
    name: Option<String>,
    routes: HashMap<String, Reply>,
    fallback: Reply,
    port: u16,
    healthy: bool,
}

impl UpstreamBuilder {
    /// Its name, sent in `x-served-by` and the echo's `instance`; default `upstream-PORT`.
    #[must_use]
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Answer requests for exactly `path` (without the query) with `reply`; a `&str` is
    /// a `200` with that body.
    #[must_use]
    pub fn route(mut self, path: &str, reply: impl Into<Reply>) -> Self {
        self.routes.insert(path.to_owned(), reply.into());
        self
    }

    /// Answer every other path with `reply` (default: [`Reply::echo`]).
    #[must_use]
    pub fn fallback(mut self, reply: impl Into<Reply>) -> Self {
        self.fallback = reply.into();
        self
    }

    /// Listen on this port (to stand in for an instance that went away), not port 0.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Start with `/health` failing.
    #[must_use]
    pub fn unhealthy(mut self) -> Self {
        self.healthy = false;
        self
    }

    /// Binds and starts serving.
    ///
    /// # Panics
    ///
    /// When the port cannot be bound, or the server's thread cannot start.
    pub fn run(self) -> Upstream {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:{}: {e}", self.port));
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let addr = listener.local_addr().expect("a bound address");
        let name = self
            .name
            .unwrap_or_else(|| format!("upstream-{}", addr.port()));
        let state = Arc::new(State {
            name: name.clone(),
            routes: Mutex::new(self.routes),
            fallback: Mutex::new(self.fallback),
            healthy: AtomicBool::new(self.healthy),
            requests: AtomicU64::new(0),
            health_checks: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("upstream {name}"))
            .spawn(move || serve::run(listener, serving, stopped))
            .expect("a thread for the upstream server");
        Upstream {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// What the server shares between its connections and the test.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) name: String,
    routes: Mutex<HashMap<String, Reply>>,
    fallback: Mutex<Reply>,
    pub(crate) healthy: AtomicBool,
    pub(crate) requests: AtomicU64,
    pub(crate) health_checks: AtomicU64,
    pub(crate) connections: AtomicU64,
    received: Mutex<Vec<Received>>,
}

/// The most requests kept for [`Upstream::received`]; older ones are dropped.
const KEPT: usize = 10_000;

impl State {
    pub(crate) fn reply_for(&self, path: &str) -> Reply {
        match self.routes.lock().get(path) {
            Some(reply) => reply.clone(),
            None => self.fallback.lock().clone(),
        }
    }

    pub(crate) fn record(&self, received: Received) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut log = self.received.lock();
        if log.len() == KEPT {
            log.remove(0);
        }
        log.push(received);
    }
}

/// One request the server read (health checks aside).
#[derive(Debug, Clone)]
pub struct Received {
    /// `GET`, `POST`…
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, if any.
    pub query: Option<String>,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub version: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body (empty if reading it failed).
    pub body: Vec<u8>,
    /// Whether reading the body failed (the peer broke off, say).
    pub body_error: bool,
}

impl Received {
    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }
}

/// A running server; stops (and frees its port) when dropped.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`, as a manifest's `addresses` takes it.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its name (`x-served-by`).
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Makes `/health` answer `200` (true) or `503` (false).
    pub fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Answers `path` with `reply` from now on.
    pub fn set_route(&self, path: &str, reply: impl Into<Reply>) {
        self.state
            .routes
            .lock()
            .insert(path.to_owned(), reply.into());
    }

    /// Requests read so far, health checks aside.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Requests read so far for exactly `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .received
            .lock()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// Health checks answered so far.
    pub fn health_checks(&self) -> u64 {
        self.state.health_checks.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// The requests read so far (the last 10,000), oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().clone()
    }

    /// The last request read, if any.
    pub fn last(&self) -> Option<Received> {
        self.state.received.lock().last().cloned()
    }

    /// Stops it now: stops accepting, closes every connection, frees the port.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shut_down();
    }
}
