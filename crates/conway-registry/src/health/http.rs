//! The HTTP probe: `GET path` over a fresh HTTP/1.1 connection; any 2xx passes.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HOST, HeaderValue, USER_AGENT};
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::probe::{Probe, ProbeConfigError, ProbeError};

/// The `User-Agent` of every HTTP check.
pub const USER_AGENT_VALUE: &str = concat!("conway-health/", env!("CARGO_PKG_VERSION"));

/// The most of an answer's body a check reads before closing the connection.
pub const MAX_BODY_BYTES: usize = 4096;

/// Passes when `GET path` answers with a 2xx status within the timeout.
///
/// Each check opens one connection and sends `Connection: close`. Redirects are not
/// followed (a 3xx fails), and at most [`MAX_BODY_BYTES`] of the body are read.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    target: SocketAddr,
    path: Uri,
    host: HeaderValue,
    timeout: Duration,
}

impl HttpProbe {
    /// A probe that GETs `path` (origin form: `/health`, `/status?full=1`) from
    /// `target`, giving up after `timeout`.
    pub fn new(
        target: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<Self, ProbeConfigError> {
        let invalid = || ProbeConfigError::InvalidPath(path.to_owned());
        let uri: Uri = path.parse().map_err(|_| invalid())?;
        if !path.starts_with('/') || uri.scheme().is_some() || uri.authority().is_some() {
            return Err(invalid());
        }
        let host = HeaderValue::try_from(target.to_string()).map_err(|_| invalid())?;
        Ok(Self {
            target,
            path: uri,
            host,
            timeout,
        })
    }

    fn request(&self) -> Result<Request<Empty<Bytes>>, ProbeError> {
        Request::get(self.path.clone())
            .header(HOST, self.host.clone())
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(CONNECTION, "close")
            .body(Empty::new())
            .map_err(|error| ProbeError::Http(error.to_string()))
    }

    /// One exchange, unbounded in time: connect, send, judge the status, drain a little.
    async fn exchange(&self) -> Result<(), ProbeError> {
        let request = self.request()?;
        let stream = TcpStream::connect(self.target)
            .await
            .map_err(|error| ProbeError::connect(&error))?;
        // Health checks are tiny; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_error)?;
        let exchange = async move {
            let response = sender.send_request(request).await.map_err(http_error)?;
            judge(response).await
        };
        // The connection is driven here, not spawned, so that a timeout drops it too.
        tokio::pin!(exchange, connection);
        tokio::select! {
            result = &mut exchange => result,
            // The connection ended first: the exchange now ends too, with what it got.
            _ = &mut connection => exchange.await,
        }
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn check(&self) -> Result<(), ProbeError> {
        tokio::time::timeout(self.timeout, self.exchange())
            .await
            .unwrap_or(Err(ProbeError::TimedOut(self.timeout)))
    }
}

/// Passes a 2xx status; reads at most [`MAX_BODY_BYTES`] of the body either way, so the
/// server is not cut off mid-write for a short answer.
async fn judge(response: Response<Incoming>) -> Result<(), ProbeError> {
    let status = response.status();
    let mut body = response.into_body();
    let mut read = 0;
    while read < MAX_BODY_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            // The status decides; a body cut short does not.
            Some(Err(_)) | None => break,
        }
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(ProbeError::Status(status.as_u16()))
    }
}

fn http_error(error: hyper::Error) -> ProbeError {
    ProbeError::Http(error.to_string())
}

#[cfg(test)]
mod tests;
