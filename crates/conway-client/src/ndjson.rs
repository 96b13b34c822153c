//! Splits a chunked body into lines, whatever the chunk boundaries, with a cap on a
//! line's length so a misbehaving server cannot make the client buffer without end, and
//! turns such a body into a stream of parsed items (the watch, followed logs).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, StreamExt};

use crate::client::Client;
use crate::error::ClientError;

/// How one line becomes an item: `Ok(None)` skips it (a keep-alive nobody needs); an
/// error ends the stream.
pub(crate) type ParseLine<T> = fn(&[u8]) -> Result<Option<T>, ClientError>;

/// The items of the NDJSON `response`, each line parsed by `parse`. The stream ends
/// after its first error, or without one when the server closes the body; a silence
/// longer than the client's watch idle timeout is a [`ClientError::Timeout`].
pub(crate) fn items<T: Send + 'static>(
    client: &Client,
    response: reqwest::Response,
    parse: ParseLine<T>,
) -> BoxStream<'static, Result<T, ClientError>> {
    let state = Items {
        body: response.bytes_stream().boxed(),
        lines: LineBuffer::new(client.options.max_line_bytes),
        idle: client.options.watch_idle_timeout,
        max_line: client.options.max_line_bytes,
        client: client.clone(),
        done: false,
        parse,
    };
    futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        let item = state.next().await?;
        let failed = item.is_err();
        Some((item, (!failed).then_some(state)))
    })
    .boxed()
}

/// Where an NDJSON stream stands between items.
struct Items<T> {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    lines: LineBuffer,
    idle: Duration,
    max_line: usize,
    client: Client,
    /// The body has ended.
    done: bool,
    parse: ParseLine<T>,
}

impl<T> Items<T> {
    /// The next item, or `None` once the body has ended.
    async fn next(&mut self) -> Option<Result<T, ClientError>> {
        loop {
            let line = match self.lines.next_line() {
                Ok(Some(line)) => Some(line),
                Ok(None) if self.done => Some(self.lines.finish()?),
                Ok(None) => None,
                Err(LineTooLong) => {
                    return Some(Err(ClientError::LineTooLong {
                        limit: self.max_line,
                    }));
                }
            };
            if let Some(line) = line {
                match (self.parse)(&line) {
                    Ok(Some(item)) => return Some(Ok(item)),
                    Ok(None) => continue,
                    Err(error) => return Some(Err(error)),
                }
            }
            match tokio::time::timeout(self.idle, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.lines.push(&chunk),
                Ok(Some(Err(error))) => return Some(Err(self.client.transport(&error))),
                Ok(None) => self.done = true,
                Err(_) => {
                    return Some(Err(ClientError::Timeout {
                        url: self.client.base_url().to_owned(),
                        after: self.idle,
                    }));
                }
            }
        }
    }
}

/// A line longer than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineTooLong;

/// Bytes received and not yet returned as lines.
#[derive(Debug)]
pub(crate) struct LineBuffer {
    buffer: BytesMut,
    /// How far `buffer` is known to hold no newline.
    scanned: usize,
    max_line: usize,
}

impl LineBuffer {
    /// A buffer that accepts lines of at most `max_line` bytes, the newline excluded.
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            scanned: 0,
            max_line,
        }
    }

    /// Appends a chunk of the body.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete, non-blank line (without its `\n` or `\r\n`), if one is buffered.
    pub(crate) fn next_line(&mut self) -> Result<Option<Bytes>, LineTooLong> {
        loop {
            let Some(offset) = self.buffer[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buffer.len();
                return if self.buffer.len() > self.max_line {
                    Err(LineTooLong)
                } else {
                    Ok(None)
                };
            };
            let end = self.scanned + offset;
            self.scanned = 0;
            let mut line = self.buffer.split_to(end + 1).freeze();
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            if line.len() > self.max_line {
                return Err(LineTooLong);
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(line));
            }
        }
    }

    /// At the end of the body: what remains, if it is more than blanks (a last line
    /// without its newline).
    pub(crate) fn finish(&mut self) -> Option<Bytes> {
        let rest = self.buffer.split().freeze();
        self.scanned = 0;
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]], max: usize) -> Result<Vec<String>, LineTooLong> {
        let mut buffer = LineBuffer::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            buffer.push(chunk);
            while let Some(line) = buffer.next_line()? {
                lines.push(String::from_utf8_lossy(&line).into_owned());
            }
        }
        lines.extend(
            buffer
                .finish()
                .map(|rest| String::from_utf8_lossy(&rest).into_owned()),
        );
        Ok(lines)
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let lines = lines_of(
            &[
                b"{\"a\"",
                b":1}\n{\"b\":2}\n{\"c",
                b"\":3}\r\n",
                b"\n  \n{\"d\":4}",
            ],
            100,
        );
        assert_eq!(
            lines.expect("short lines"),
            ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}"]
        );
    }

    #[test]
    fn every_split_of_a_body_gives_the_same_lines() {
        let body = b"{\"revision\":1}\n{\"revision\":22}\n\n{\"keepalive\":true,\"revision\":3}\n";
        let whole = lines_of(&[body], 64).expect("short lines");
        assert_eq!(whole.len(), 3);
        for cut in 0..body.len() {
            for second in cut..body.len() {
                let parts = [&body[..cut], &body[cut..second], &body[second..]];
                assert_eq!(
                    lines_of(&parts, 64).expect("short lines"),
                    whole,
                    "cut at {cut} and {second}"
                );
            }
        }
    }

    #[test]
    fn a_line_over_the_cap_is_refused_before_it_ends() {
        let mut buffer = LineBuffer::new(8);
        buffer.push(b"12345678\n");
        assert_eq!(
            buffer.next_line().expect("at the cap").as_deref(),
            Some(&b"12345678"[..])
        );
        buffer.push(b"123456789");
        assert_eq!(buffer.next_line(), Err(LineTooLong));
        let mut buffer = LineBuffer::new(8);
        buffer.push(b"ok\n123456789\n");
        assert_eq!(
            buffer.next_line().expect("short").as_deref(),
            Some(&b"ok"[..])
        );
        assert_eq!(buffer.next_line(), Err(LineTooLong));
    }
}
