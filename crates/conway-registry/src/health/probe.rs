//! What one check does: the [`Probe`] trait, its error, and the TCP probe.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use conway_core::manifest::Health;
use tokio::net::TcpStream;

use super::http::HttpProbe;

/// Checks one target once. Implementations hold their target and their settings.
///
/// The checker bounds each check by the target's `timeout` (reporting
/// [`ProbeError::TimedOut`]), so a probe need not; the built-in probes also bound
/// themselves, so that they can be used alone.
#[async_trait]
pub trait Probe: fmt::Debug + Send + Sync {
    /// Runs one check: `Ok` when it passes, or why it failed.
    async fn check(&self) -> Result<(), ProbeError>;
}

/// Why a check failed; its message is the reason reported to people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The check did not finish in time.
    #[error("timed out after {}", conway_core::units::Duration::from(*.0))]
    TimedOut(Duration),
    /// Nothing listens on the port.
    #[error("connect refused")]
    ConnectRefused,
    /// The connection could not be made for another reason.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The HTTP answer's status was not 2xx.
    #[error("HTTP {0}")]
    Status(u16),
    /// The HTTP exchange failed (the connection closed early, a malformed answer).
    #[error("HTTP failed: {0}")]
    Http(String),
}

impl ProbeError {
    /// The error of a failed connect.
    pub(super) fn connect(error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Self::ConnectRefused,
            _ => Self::Connect(error.to_string()),
        }
    }
}

/// A health check that cannot be built from its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeConfigError {
    /// The HTTP path is not an origin-form request target (`/health?verbose=1`).
    #[error("invalid health check path {0:?}: expected a path starting with '/'")]
    InvalidPath(String),
}

/// The probe a service's `health` settings ask for, against `target`: an HTTP GET of
/// `http`'s path when it is set, otherwise a TCP connect (the default check).
pub fn probe_for(health: &Health, target: SocketAddr) -> Result<Box<dyn Probe>, ProbeConfigError> {
    let timeout = health.timeout().get();
    Ok(match &health.http {
        Some(path) => Box::new(HttpProbe::new(target, path, timeout)?),
        None => Box::new(TcpProbe::new(target, timeout)),
    })
}

/// Passes when a TCP connection to the target opens within the timeout; the connection
/// is closed at once.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    target: SocketAddr,
    timeout: Duration,
}

impl TcpProbe {
    /// A probe that connects to `target`, giving up after `timeout`.
    pub fn new(target: SocketAddr, timeout: Duration) -> Self {
        Self { target, timeout }
    }
}

#[async_trait]
impl Probe for TcpProbe {
    async fn check(&self) -> Result<(), ProbeError> {
        match tokio::time::timeout(self.timeout, TcpStream::connect(self.target)).await {
            Ok(Ok(_stream)) => Ok(()),
            Ok(Err(error)) => Err(ProbeError::connect(&error)),
            Err(_elapsed) => Err(ProbeError::TimedOut(self.timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// An address on which nothing listens: bound, then closed.
    pub(crate) async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn tcp_passes_on_an_open_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let probe = TcpProbe::new(listener.local_addr().unwrap(), Duration::from_secs(5));
        assert_eq!(probe.check().await, Ok(()));
    }

    #[tokio::test]
    async fn tcp_fails_on_a_closed_port() {
        let probe = TcpProbe::new(closed_port().await, Duration::from_secs(5));
        let error = probe.check().await.unwrap_err();
        assert_eq!(error, ProbeError::ConnectRefused);
        assert_eq!(error.to_string(), "connect refused");
    }

    #[test]
    fn reasons_read_as_documented() {
        let timed_out = ProbeError::TimedOut(Duration::from_millis(500));
        assert_eq!(timed_out.to_string(), "timed out after 500ms");
        assert_eq!(ProbeError::Status(503).to_string(), "HTTP 503");
    }

    #[test]
    fn probe_for_picks_http_when_a_path_is_set() {
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let http = Health {
            http: Some("/health".into()),
            tcp: false,
            ..Health::default()
        };
        let probe = probe_for(&http, target).unwrap();
        assert!(format!("{probe:?}").starts_with("HttpProbe"), "{probe:?}");
        let probe = probe_for(&Health::default(), target).unwrap();
        assert!(format!("{probe:?}").starts_with("TcpProbe"), "{probe:?}");
    }

    #[test]
    fn probe_for_rejects_a_path_that_is_not_a_path() {
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for path in ["health", "http://example.com/health", "/he alth", ""] {
            let health = Health {
                http: Some(path.into()),
                ..Health::default()
            };
            assert_eq!(
                probe_for(&health, target).unwrap_err(),
                ProbeConfigError::InvalidPath(path.into()),
                "{path:?}"
            );
        }
    }
}
