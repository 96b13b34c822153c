//! What the test upstream answers on one path.

use std::time::Duration;

use bytes::Bytes;

/// How the server answers requests for one path: build one with a constructor, then
/// adjust it with the `with_*`-style methods.
///
/// ```
/// # use conway_test_support::upstream::Reply;
/// # use std::time::Duration;
/// let slow = Reply::text("late").delay(Duration::from_millis(300));
/// let failing = Reply::status(503).header("retry-after", "1");
/// let grpc_like = Reply::text("ok").trailer("grpc-status", "0");
/// ```
#[derive(Debug, Clone)]
pub struct Reply {
    pub(crate) kind: Kind,
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) trailers: Vec<(String, String)>,
    pub(crate) delay: Option<Duration>,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A fixed body.
    Body(Bytes),
    /// The request described as JSON.
    Echo,
    /// The connection closed without an answer (HTTP/2: the stream reset).
    Reset,
    /// No answer, ever; the connection stays open.
    Hang,
    /// A WebSocket handshake, then every message sent back.
    WebSocket,
}

impl Reply {
    fn of(kind: Kind) -> Self {
        Self {
            kind,
            status: 200,
            headers: Vec::new(),
            trailers: Vec::new(),
            delay: None,
        }
    }

    /// `200` with this body.
    pub fn text(body: impl Into<Bytes>) -> Self {
        Self::of(Kind::Body(body.into()))
    }

    /// This status with an empty body.
    pub fn status(status: u16) -> Self {
        Self::of(Kind::Body(Bytes::new())).with_status(status)
    }

    /// `200` with the request as JSON: `instance`, `method`, `path`, `query`,
    /// `version`, `headers` (name → values joined with `", "`), `body`.
    pub fn echo() -> Self {
        Self::of(Kind::Echo)
    }

    /// Read the request, then close the connection without answering (over HTTP/2, reset
    /// the stream).
    pub fn reset() -> Self {
        Self::of(Kind::Reset)
    }

    /// Read the request, then never answer.
    pub fn hang() -> Self {
        Self::of(Kind::Hang)
    }

    /// Accept a WebSocket upgrade and echo every text and binary message.
    pub fn websocket() -> Self {
        Self::of(Kind::WebSocket)
    }

    /// Answer with this status instead.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Add a response header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Send a trailer after the body (HTTP/2, or chunked HTTP/1.1 when the client asked
    /// for trailers with `TE: trailers`).
    #[must_use]
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Wait this long after reading the request before answering (or resetting).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

impl From<&str> for Reply {
    fn from(body: &str) -> Self {
        Self::text(body.to_owned())
    }
}

impl From<String> for Reply {
    fn from(body: String) -> Self {
        Self::text(body)
    }
}
