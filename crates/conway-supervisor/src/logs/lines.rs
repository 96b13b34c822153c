//! Splitting a byte stream into lines of bounded length: a line longer than the cap
//! keeps its first bytes and says how many were cut, so a process that writes a
//! gigabyte without a newline costs no more memory than one line.

/// One line, as cut from the stream: its kept bytes (without the newline) and how many
/// bytes beyond the cap were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The kept bytes.
    pub bytes: &'a [u8],
    /// The bytes cut off the end (0 when the line fit).
    pub truncated: usize,
}

impl Line<'_> {
    /// The line as text (invalid UTF-8 replaced), with a marker when it was cut.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(self.bytes);
        if self.truncated == 0 {
            text.into_owned()
        } else {
            format!("{text} … [{} bytes truncated]", self.truncated)
        }
    }
}

/// Cuts a stream into lines of at most `cap` bytes.
#[derive(Debug)]
pub struct LineSplitter {
    cap: usize,
    line: Vec<u8>,
    over: usize,
}

impl LineSplitter {
    /// A splitter keeping at most `cap` bytes of each line (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            line: Vec::new(),
            over: 0,
        }
    }

    /// Feeds the next bytes of the stream; calls `emit` for each line they complete.
    pub fn feed(&mut self, mut chunk: &[u8], mut emit: impl FnMut(Line<'_>)) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.keep(&chunk[..end]);
            self.emit(&mut emit);
            chunk = &chunk[end + 1..];
        }
        self.keep(chunk);
    }

    /// The stream ended: emits the last line if it had no newline.
    pub fn finish(&mut self, mut emit: impl FnMut(Line<'_>)) {
        if !self.line.is_empty() || self.over > 0 {
            self.emit(&mut emit);
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.cap - self.line.len();
        let kept = room.min(bytes.len());
        self.line.extend_from_slice(&bytes[..kept]);
        self.over = self.over.saturating_add(bytes.len() - kept);
    }

    fn emit(&mut self, emit: &mut impl FnMut(Line<'_>)) {
        if self.over == 0 && self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        emit(Line {
            bytes: &self.line,
            truncated: self.over,
        });
        self.line.clear();
        self.over = 0;
        // A line that grew large gives its memory back.
        if self.line.capacity() > 64 * 1024 {
            self.line.shrink_to(64 * 1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(cap: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::new(cap);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, |line| lines.push(line.text()));
        }
        splitter.finish(|line| lines.push(line.text()));
        lines
    }

    #[test]
    fn splits_on_newlines_across_chunks() {
        assert_eq!(
            split(100, &[b"one\ntw", b"o\n", b"three"]),
            ["one", "two", "three"]
        );
        assert_eq!(split(100, &[b"a\r\nb\n\n"]), ["a", "b", ""]);
        assert!(split(100, &[b""]).is_empty());
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let lines = split(4, &[b"abcdefgh\nxy\n", b"0123", b"456789"]);
        assert_eq!(
            lines,
            [
                "abcd … [4 bytes truncated]",
                "xy",
                "0123 … [6 bytes truncated]"
            ]
        );
    }

    #[test]
    fn a_huge_line_keeps_only_the_cap() {
        let mut splitter = LineSplitter::new(16 * 1024);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..1024 {
            // 64 MiB without a newline.
            splitter.feed(&chunk, |_| panic!("no line yet"));
            assert!(splitter.line.len() <= 16 * 1024);
        }
        let mut seen = None;
        splitter.feed(b"\n", |line| {
            seen = Some((line.bytes.len(), line.truncated))
        });
        assert_eq!(seen, Some((16 * 1024, 64 * 1024 * 1024 - 16 * 1024)));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            split(100, &[b"ok \xff\xfe end\n"]),
            ["ok \u{fffd}\u{fffd} end"]
        );
    }
}
