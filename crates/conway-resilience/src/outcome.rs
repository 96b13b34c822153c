//! What became of one try: the one classification every policy reads.
//!
//! The proxy maps each try's result into an [`Outcome`] once; the retry policy, the
//! circuit breaker and the outlier detector all read that value, so they agree on what
//! a failure is. A `4xx` answer is the caller's problem, never the service's: it is
//! [`Outcome::Success`], and no [`Failure`] can hold one.

use std::error::Error as StdError;
use std::fmt;

use conway_core::manifest::RetryCondition;

/// What became of one try of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The instance answered, and not with a `5xx` (a `4xx` counts here).
    Success,
    /// The try failed.
    Failure(Failure),
}

impl Outcome {
    /// The outcome of an answer with this status: a failure only for `5xx`.
    pub const fn from_status(status: u16) -> Self {
        match ServerError::new(status) {
            Some(status) => Self::Failure(Failure::Status(status)),
            None => Self::Success,
        }
    }

    /// The failure, if the try failed.
    pub const fn failure(self) -> Option<Failure> {
        match self {
            Self::Success => None,
            Self::Failure(failure) => Some(failure),
        }
    }

    /// Whether the try failed.
    pub const fn is_failure(self) -> bool {
        matches!(self, Self::Failure(_))
    }
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        Self::Failure(failure)
    }
}

/// How a try failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// No connection to the instance could be made: nothing was sent.
    ConnectError,
    /// The connection broke (reset, closed) before a whole answer came.
    Reset,
    /// The try's own deadline passed before an answer came.
    Timeout,
    /// The instance answered with a `5xx` status.
    Status(ServerError),
}

impl Failure {
    /// Whether this is a gateway failure in Envoy's sense, the kind that ejects an
    /// outlier: `502`, `503`, `504`, or a failure of the connection (connect error,
    /// reset, timeout). A `500` or `501` is the application's error, not the gateway's.
    pub const fn is_gateway_failure(self) -> bool {
        match self {
            Self::ConnectError | Self::Reset | Self::Timeout => true,
            Self::Status(status) => status.is_gateway_error(),
        }
    }

    /// Whether a retry condition of the manifest (`retries.on`) covers this failure.
    pub const fn matches(self, condition: RetryCondition) -> bool {
        match condition {
            RetryCondition::ConnectError => matches!(self, Self::ConnectError),
            RetryCondition::Reset => matches!(self, Self::Reset),
            RetryCondition::ServerError => matches!(self, Self::Status(_)),
            RetryCondition::GatewayError => match self {
                Self::Status(status) => status.is_gateway_error(),
                _ => false,
            },
            RetryCondition::Timeout => matches!(self, Self::Timeout),
        }
    }

    /// The status a proxy answers with when this failure is the last word: `502` for a
    /// connect error or reset, `504` for a timeout, the instance's own status otherwise.
    pub const fn status(self) -> u16 {
        match self {
            Self::ConnectError | Self::Reset => 502,
            Self::Timeout => 504,
            Self::Status(status) => status.get(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectError => f.write_str("connect error"),
            Self::Reset => f.write_str("connection reset"),
            Self::Timeout => f.write_str("try timed out"),
            Self::Status(status) => write!(f, "status {}", status.get()),
        }
    }
}

/// A `5xx` status; the only statuses a [`Failure`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerError(u16);

impl ServerError {
    /// The status, if it is from 500 to 599.
    pub const fn new(status: u16) -> Option<Self> {
        if status >= 500 && status <= 599 {
            Some(Self(status))
        } else {
            None
        }
    }

    /// The status code.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Whether it is `502`, `503` or `504`.
    pub const fn is_gateway_error(self) -> bool {
        matches!(self.0, 502..=504)
    }
}

/// Tells policies wrapped around a service (the tower layers) what became of a call.
pub trait Classify<Response> {
    /// The outcome of a response.
    fn response(&self, response: &Response) -> Outcome;

    /// The failure an error stands for, or `None` for an error that is no fault of
    /// the instance's (a policy's own refusal); by default [`classify_error`].
    fn error(&self, error: &(dyn StdError + 'static)) -> Option<Failure> {
        classify_error(error)
    }
}

/// Classifies `http::Response`s by their status: only `5xx` fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassifyHttp;

impl<B> Classify<http::Response<B>> for ClassifyHttp {
    fn response(&self, response: &http::Response<B>) -> Outcome {
        Outcome::from_status(response.status().as_u16())
    }
}

/// The failure an error stands for, found by walking its cause chain: this crate's
/// timeouts and `io::ErrorKind::TimedOut` are [`Failure::Timeout`], a refused or
/// unreachable connection is [`Failure::ConnectError`], and anything else is
/// [`Failure::Reset`] (the try broke before an answer came) — except this crate's own
/// refusals ([`Error::Shed`](crate::Error::Shed), `CircuitOpen`, `FaultAbort`), which
/// are no fault of the instance's: `None`.
pub fn classify_error(error: &(dyn StdError + 'static)) -> Option<Failure> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(error) = error.downcast_ref::<crate::Error>() {
            return error.failure();
        }
        if error.is::<tokio::time::error::Elapsed>() {
            return Some(Failure::Timeout);
        }
        if let Some(error) = error.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match error.kind() {
                ErrorKind::TimedOut => return Some(Failure::Timeout),
                ErrorKind::ConnectionRefused
                | ErrorKind::AddrNotAvailable
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable => return Some(Failure::ConnectError),
                _ => {}
            }
        }
        cause = error.source();
    }
    Some(Failure::Reset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_5xx_statuses_fail() {
        for status in [100, 200, 204, 301, 400, 404, 429, 499, 600] {
            assert_eq!(Outcome::from_status(status), Outcome::Success, "{status}");
        }
        for status in [500, 502, 503, 504, 599] {
            let failure = Outcome::from_status(status).failure();
            assert_eq!(failure.map(Failure::status), Some(status), "{status}");
        }
        assert_eq!(ServerError::new(404), None);
    }

    #[test]
    fn gateway_failures_are_502_to_504_and_connection_failures() {
        let status = |s| Failure::Status(ServerError::new(s).unwrap());
        assert!(status(502).is_gateway_failure());
        assert!(status(504).is_gateway_failure());
        assert!(!status(500).is_gateway_failure());
        assert!(!status(505).is_gateway_failure());
        assert!(Failure::ConnectError.is_gateway_failure());
        assert!(Failure::Reset.is_gateway_failure());
        assert!(Failure::Timeout.is_gateway_failure());
    }

    #[test]
    fn retry_conditions_match_their_failures_only() {
        let status = |s| Failure::Status(ServerError::new(s).unwrap());
        assert!(status(500).matches(RetryCondition::ServerError));
        assert!(!status(500).matches(RetryCondition::GatewayError));
        assert!(status(503).matches(RetryCondition::GatewayError));
        assert!(!Failure::ConnectError.matches(RetryCondition::GatewayError));
        assert!(Failure::ConnectError.matches(RetryCondition::ConnectError));
        assert!(!Failure::Reset.matches(RetryCondition::ConnectError));
        assert!(Failure::Timeout.matches(RetryCondition::Timeout));
        assert!(!Failure::Timeout.matches(RetryCondition::ServerError));
    }

    #[test]
    fn errors_are_classified_through_their_cause_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapped")]
        struct Wrapped(#[source] std::io::Error);

        let refused = Wrapped(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(classify_error(&refused), Some(Failure::ConnectError));
        let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(classify_error(&timed_out), Some(Failure::Timeout));
        let ours = crate::Error::TryTimedOut;
        assert_eq!(classify_error(&ours), Some(Failure::Timeout));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify_error(&reset), Some(Failure::Reset));
        let shed = crate::Error::Shed {
            retry_after: std::time::Duration::from_secs(1),
        };
        assert_eq!(classify_error(&shed), None, "a refusal is no failure");
    }

    #[test]
    fn http_responses_are_classified_by_status() {
        let response = |status| http::Response::builder().status(status).body(()).unwrap();
        assert_eq!(ClassifyHttp.response(&response(404)), Outcome::Success);
        assert!(ClassifyHttp.response(&response(503)).is_failure());
    }
}
