//! `GET /v1/watch?since=REVISION`: the change stream, parsed line by line as the chunked
//! body arrives.

use std::pin::Pin;
use std::task::{Context, Poll};

use conway_core::api::{ErrorBody, WatchEvent, WatchLine};
use futures_util::stream::{BoxStream, Stream, StreamExt};

use crate::Revision;
use crate::client::Client;
use crate::error::ClientError;
use crate::ndjson;

/// The lines of a watch: changes and keep-alives. After an error item the stream ends;
/// it also ends, without error, when the server closes the watch (it is shutting down).
pub struct WatchStream {
    inner: BoxStream<'static, Result<WatchLine, ClientError>>,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream").finish_non_exhaustive()
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchLine, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl Client {
    /// Watches every change after `since` (exclusive: pass the revision of the listing
    /// you hold), or from now when `None`. Fails with [`ClientError::Compacted`] when the
    /// registry no longer keeps that history: list again, then watch from the new
    /// listing's revision. The stream has no overall timeout, but fails with
    /// [`ClientError::Timeout`] after a silence longer than the watch idle timeout.
    pub async fn watch(&self, since: Option<Revision>) -> Result<WatchStream, ClientError> {
        let mut url = self.url(&["v1", "watch"]);
        if let Some(since) = since {
            url.query_pairs_mut()
                .append_pair("since", &since.to_string());
        }
        let response = self.open_stream(url).await?;
        Ok(WatchStream {
            inner: ndjson::items(self, response, |line| parse_line(line).map(Some)),
        })
    }
}

/// A watch line: a change, a keep-alive, or the error that ends the watch.
pub(crate) fn parse_line(line: &[u8]) -> Result<WatchLine, ClientError> {
    let error = match serde_json::from_slice::<WatchLine>(line) {
        Ok(parsed) => return Ok(parsed),
        Err(error) => error,
    };
    if let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(line) {
        return Err(match error.code.as_str() {
            "compacted" => ClientError::Compacted {
                message: error.message,
            },
            _ => ClientError::WatchEnded {
                code: error.code,
                message: error.message,
            },
        });
    }
    // Neither: say why it is not an event, which tells more than the untagged enum does.
    let source = serde_json::from_slice::<WatchEvent>(line)
        .err()
        .unwrap_or(error);
    Err(ClientError::Decode {
        what: "a watch line",
        source,
    })
}

#[cfg(test)]
mod tests {
    use conway_core::api::{WatchKind, WatchOp};

    use super::*;

    #[test]
    fn events_keepalives_and_error_lines_are_told_apart() {
        let event = parse_line(br#"{"revision":7,"op":"delete","kind":"instance","key":"i-1"}"#)
            .expect("an event");
        match event {
            WatchLine::Event(event) => {
                assert_eq!(
                    (event.revision, event.op, event.kind, event.key.as_str()),
                    (7, WatchOp::Delete, WatchKind::Instance, "i-1")
                );
            }
            other => panic!("{other:?}"),
        }
        let keepalive = parse_line(br#"{"keepalive":true,"revision":9}"#).expect("a keep-alive");
        assert_eq!(
            keepalive,
            WatchLine::KeepAlive {
                keepalive: true,
                revision: 9
            }
        );
        let ended = parse_line(br#"{"error":{"code":"watch_ended","message":"lagged"}}"#)
            .expect_err("an error line");
        assert_eq!(ended.code(), Some("watch_ended"));
        let compacted = parse_line(br#"{"error":{"code":"compacted","message":"old"}}"#)
            .expect_err("an error line");
        assert!(compacted.is_compacted());
        let garbage = parse_line(br#"{"revision":"x"}"#).expect_err("not a line of the API");
        assert!(matches!(garbage, ClientError::Decode { .. }), "{garbage:?}");
    }
}
