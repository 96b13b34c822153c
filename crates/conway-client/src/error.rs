//! What can go wrong talking to the control plane, typed so callers can act on it:
//! retry when it is unreachable, list again when history is compacted, show the API's
//! message when it refused a request.

use std::time::Duration;

/// An error from the control plane client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The base URL cannot name a control plane.
    #[error("invalid control plane URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing answered at the control plane's address.
    #[error(
        "cannot reach the control plane at {url} ({reason}); it may not be running: start one with `conway server`, or point to another with --server or CONWAY_URL"
    )]
    Unreachable {
        /// The control plane's base URL.
        url: String,
        /// The cause, as the operating system put it (`Connection refused`).
        reason: String,
    },
    /// The control plane did not answer in time.
    #[error("the control plane at {url} did not answer within {after:?}")]
    Timeout {
        /// The control plane's base URL.
        url: String,
        /// How long the client waited.
        after: Duration,
    },
    /// The connection broke while a request or a watch was under way.
    #[error("the connection to the control plane at {url} broke: {reason}")]
    Disconnected {
        /// The control plane's base URL.
        url: String,
        /// The cause.
        reason: String,
    },
    /// The control plane refused the request with `{"error": {"code", "message"}}`.
    #[error("{message} (HTTP {status}, {code})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The API's stable error code (`not_found`, `invalid_request`…), or
        /// `http_STATUS` when the body was not an API error.
        code: String,
        /// The API's message for people.
        message: String,
    },
    /// The revision to watch from is older than the history the registry keeps: list
    /// again, then watch from the listing's revision.
    #[error("the registry no longer keeps the history asked for: {message}")]
    Compacted {
        /// The server's message.
        message: String,
    },
    /// The watch stream ended with an error line; watch again from the last revision seen.
    #[error("the watch ended: {message} ({code})")]
    WatchEnded {
        /// The API's error code (`watch_ended`).
        code: String,
        /// The server's message.
        message: String,
    },
    /// An answer that is not what the API promises.
    #[error("cannot decode {what} from the control plane: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A watch line longer than the client accepts.
    #[error("a watch line from the control plane is longer than {limit} bytes")]
    LineTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl ClientError {
    /// Whether the control plane could not be reached at all (nothing listens there).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// Whether the caller should list again before watching (`410 compacted`).
    pub fn is_compacted(&self) -> bool {
        matches!(self, Self::Compacted { .. })
    }

    /// The API's error code, when the control plane answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } | Self::WatchEnded { code, .. } => Some(code),
            Self::Compacted { .. } => Some("compacted"),
            _ => None,
        }
    }

    /// The HTTP status, when the control plane answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Compacted { .. } => Some(410),
            _ => None,
        }
    }

    /// Classifies a transport error of a request to `url`.
    pub(crate) fn transport(url: &str, error: &reqwest::Error, timeout: Duration) -> Self {
        let url = url.to_owned();
        if error.is_timeout() {
            Self::Timeout {
                url,
                after: timeout,
            }
        } else if error.is_connect() {
            Self::Unreachable {
                url,
                reason: root_cause(error),
            }
        } else {
            Self::Disconnected {
                url,
                reason: root_cause(error),
            }
        }
    }
}

/// The innermost cause's message: what the operating system or the peer said.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_names_the_url_and_the_way_out() {
        let error = ClientError::Unreachable {
            url: "http://127.0.0.1:7700".to_owned(),
            reason: "Connection refused (os error 111)".to_owned(),
        };
        let text = error.to_string();
        assert!(text.contains("http://127.0.0.1:7700"), "{text}");
        assert!(text.contains("conway server"), "{text}");
        assert!(text.contains("CONWAY_URL"), "{text}");
        assert!(error.is_unreachable());
        assert_eq!(error.status(), None);
    }

    #[test]
    fn api_errors_expose_their_code_and_status() {
        let error = ClientError::Api {
            status: 404,
            code: "not_found".to_owned(),
            message: "no service named \"x\"".to_owned(),
        };
        assert_eq!(error.code(), Some("not_found"));
        assert_eq!(error.status(), Some(404));
        assert!(error.to_string().starts_with("no service named"));
        let compacted = ClientError::Compacted {
            message: "gone".to_owned(),
        };
        assert!(compacted.is_compacted());
        assert_eq!(compacted.status(), Some(410));
    }
}
