//! The bodies the proxy sends: a client's or upstream's body streamed as it comes
//! (within a size limit), a buffered copy (replayable for retries), or nothing.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::upstream::Release;

/// Errors of a body in transit.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body went past the route's `max_body`.
#[derive(Debug, thiserror::Error)]
#[error("the body is larger than the {limit} bytes allowed")]
pub struct TooLarge {
    /// The limit.
    pub limit: u64,
}

/// A body on its way through the proxy. Streaming bodies are never buffered unless a
/// retry policy needs a copy.
#[derive(Debug)]
pub enum ProxyBody {
    /// Streamed from the other side, frame by frame (trailers included); `limit` bounds
    /// the bytes of a request body whose length was not declared.
    Streaming {
        /// The body.
        body: Incoming,
        /// The most bytes allowed through.
        limit: u64,
        /// Bytes seen so far.
        seen: u64,
        /// The pooled connection a response body came on, given back once the body has
        /// been read to its end.
        release: Option<Release>,
    },
    /// Held in memory: a replayable request body, or a response the proxy wrote.
    Full(Option<Bytes>),
}

impl ProxyBody {
    /// A streamed body without a limit (responses).
    pub fn streaming(body: Incoming) -> Self {
        Self::pooled(body, None)
    }

    /// A response body that came on a pooled connection: `release` gives the connection
    /// back once the body has ended (at once for a body that is empty).
    pub fn pooled(body: Incoming, release: Option<Release>) -> Self {
        let release = match release {
            Some(release) if body.is_end_stream() => {
                release.release();
                None
            }
            other => other,
        };
        Self::Streaming {
            body,
            limit: u64::MAX,
            seen: 0,
            release,
        }
    }

    /// A streamed body cut off past `limit` bytes.
    pub fn limited(body: Incoming, limit: u64) -> Self {
        Self::Streaming {
            body,
            limit,
            seen: 0,
            release: None,
        }
    }

    /// A body holding `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(bytes.into()))
    }

    /// No body.
    pub fn empty() -> Self {
        Self::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Streaming {
                body,
                limit,
                seen,
                release,
            } => match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    *seen += frame.data_ref().map_or(0, |data| data.len() as u64);
                    if *seen > *limit {
                        return Poll::Ready(Some(Err(Box::new(TooLarge { limit: *limit }))));
                    }
                    // The last frame: hyper's server may not poll again, so the
                    // connection goes back now.
                    if body.is_end_stream()
                        && let Some(release) = release.take()
                    {
                        release.release();
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Box::new(error)))),
                Poll::Ready(None) => {
                    if let Some(release) = release.take() {
                        release.release();
                    }
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
            Self::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Streaming { body, .. } => body.is_end_stream(),
            Self::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Streaming { body, .. } => body.size_hint(),
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
