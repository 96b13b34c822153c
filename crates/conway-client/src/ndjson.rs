//! Splits a chunked body into lines, whatever the chunk boundaries, with a cap on a
//! line's length so a misbehaving server cannot make the client buffer without end.

use bytes::{Bytes, BytesMut};

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
