//! Output capture: each instance's stdout and stderr, read line by line, labelled with
//! service and instance, each line capped ([`LineSplitter`]) and rate-limited per
//! instance ([`TokenBucket`]; the lines dropped are counted and reported as one line),
//! kept in a bounded ring for crash reports, and handed to every [`LogSink`].
//!
//! Memory stays bounded whatever an instance writes: the reader holds one buffer and
//! one capped line, the ring a fixed number of capped lines.

mod limit;
mod lines;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use limit::TokenBucket;
pub use lines::{Line, LineSplitter};

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// The supervisor's own notes about the instance (dropped lines, exits).
    Supervisor,
}

impl Stream {
    /// `stdout`, `stderr` or `conway`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Supervisor => "conway",
        }
    }
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The instance's service.
    pub service: Arc<str>,
    /// The instance (`orders-1`).
    pub instance: Arc<str>,
    /// Where it came from.
    pub stream: Stream,
    /// When it was read.
    pub time: SystemTime,
    /// The line, without its newline; capped.
    pub text: String,
}

impl fmt::Display for LogLine {
    /// `service/instance | text`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} | {}", self.service, self.instance, self.text)
    }
}

/// Where captured lines go (the terminal, the log store). Called for every line that
/// passed the rate limit, in order, from the capturing task: it must not block; a sink
/// that cannot keep up drops lines rather than wait.
pub trait LogSink: Send + Sync + fmt::Debug {
    /// Takes one line.
    fn send(&self, line: &LogLine);
}

/// A sink that forwards lines into a bounded channel, dropping them when it is full:
/// the hook for a log store that reads at its own pace.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    sender: mpsc::Sender<LogLine>,
}

impl ChannelSink {
    /// A sink and the receiver of its lines, holding at most `capacity` unread.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<LogLine>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { sender }, receiver)
    }
}

impl LogSink for ChannelSink {
    fn send(&self, line: &LogLine) {
        let _ = self.sender.try_send(line.clone());
    }
}

/// Limits of the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// The longest line kept, in bytes; longer ones are cut with a marker.
    pub max_line_bytes: usize,
    /// Lines a second each instance may write, sustained.
    pub lines_per_second: u32,
    /// Lines an instance may write at once beyond the sustained rate.
    pub burst: u32,
    /// Lines kept per instance for crash reports.
    pub ring_lines: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            max_line_bytes: 16 * 1024,
            lines_per_second: 1000,
            burst: 5000,
            ring_lines: 200,
        }
    }
}

/// One instance's captured output: the rate limit shared by its streams, its ring of
/// recent lines, and the sinks. Kept across restarts of the instance, so a crash report
/// shows the lines before each of the last exits.
#[derive(Debug)]
pub struct InstanceLog {
    service: Arc<str>,
    instance: Arc<str>,
    options: LogOptions,
    sinks: Arc<[Arc<dyn LogSink>]>,
    state: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    ring: VecDeque<LogLine>,
    bucket: TokenBucket,
    dropped: u64,
}

impl InstanceLog {
    /// An empty log of `instance`.
    pub fn new(
        service: &str,
        instance: &str,
        options: LogOptions,
        sinks: Arc<[Arc<dyn LogSink>]>,
    ) -> Self {
        Self {
            service: service.into(),
            instance: instance.into(),
            sinks,
            state: Mutex::new(LogState {
                ring: VecDeque::with_capacity(options.ring_lines.min(1024)),
                bucket: TokenBucket::new(options.lines_per_second, options.burst, Instant::now()),
                dropped: 0,
            }),
            options,
        }
    }

    /// Takes one line of output, if the rate limit lets it pass; else counts it.
    pub fn push(&self, stream: Stream, line: Line<'_>) {
        let mut state = self.state.lock();
        if !state.bucket.try_take(Instant::now()) {
            state.dropped += 1;
            return;
        }
        self.report_dropped(&mut state);
        self.record(&mut state, stream, line.text());
    }

    /// Adds a line of the supervisor's own (not rate-limited).
    pub fn note(&self, text: String) {
        let mut state = self.state.lock();
        self.report_dropped(&mut state);
        self.record(&mut state, Stream::Supervisor, text);
    }

    /// Reports lines dropped since the last line that passed, if any.
    pub fn flush(&self) {
        let mut state = self.state.lock();
        self.report_dropped(&mut state);
    }

    /// The last `n` lines kept, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let state = self.state.lock();
        let skip = state.ring.len().saturating_sub(n);
        state.ring.iter().skip(skip).cloned().collect()
    }

    /// Lines dropped by the rate limit and not reported yet.
    pub fn pending_dropped(&self) -> u64 {
        self.state.lock().dropped
    }

    fn report_dropped(&self, state: &mut LogState) {
        if state.dropped > 0 {
            let text = format!(
                "[conway] {} lines dropped (over {} lines/s)",
                state.dropped, self.options.lines_per_second
            );
            state.dropped = 0;
            self.record(state, Stream::Supervisor, text);
        }
    }

    fn record(&self, state: &mut LogState, stream: Stream, text: String) {
        let line = LogLine {
            service: self.service.clone(),
            instance: self.instance.clone(),
            stream,
            time: SystemTime::now(),
            text,
        };
        for sink in self.sinks.iter() {
            sink.send(&line);
        }
        if self.options.ring_lines > 0 {
            if state.ring.len() == self.options.ring_lines {
                state.ring.pop_front();
            }
            state.ring.push_back(line);
        }
    }
}

/// Reads `pipe` to its end into `log`, line by line.
pub async fn capture(mut pipe: impl AsyncRead + Unpin, stream: Stream, log: Arc<InstanceLog>) {
    let mut buffer = vec![0; 64 * 1024];
    let mut splitter = LineSplitter::new(log.options.max_line_bytes);
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => splitter.feed(&buffer[..n], |line| log.push(stream, line)),
        }
    }
    splitter.finish(|line| log.push(stream, line));
    log.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<LogLine>>);

    impl LogSink for Collect {
        fn send(&self, line: &LogLine) {
            self.0.lock().push(line.clone());
        }
    }

    fn log_with(options: LogOptions) -> (Arc<InstanceLog>, Arc<Collect>) {
        let sink = Arc::new(Collect::default());
        let sinks: Arc<[Arc<dyn LogSink>]> = Arc::new([sink.clone() as Arc<dyn LogSink>]);
        let log = Arc::new(InstanceLog::new("orders", "orders-1", options, sinks));
        (log, sink)
    }

    #[tokio::test]
    async fn lines_are_labelled_and_kept_in_a_bounded_ring() {
        let (log, sink) = log_with(LogOptions {
            ring_lines: 3,
            ..LogOptions::default()
        });
        capture(
            &b"one\ntwo\nthree\nfour\nfive"[..],
            Stream::Stdout,
            log.clone(),
        )
        .await;
        let seen = sink.0.lock();
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0].to_string(), "orders/orders-1 | one");
        assert_eq!(seen[4].stream, Stream::Stdout);
        let tail: Vec<_> = log.tail(10).into_iter().map(|l| l.text).collect();
        assert_eq!(tail, ["three", "four", "five"]);
        let last: Vec<_> = log.tail(1).into_iter().map(|l| l.text).collect();
        assert_eq!(last, ["five"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_is_rate_limited_and_the_drop_reported_once() {
        let (log, sink) = log_with(LogOptions {
            lines_per_second: 10,
            burst: 5,
            ring_lines: 100,
            ..LogOptions::default()
        });
        let flood = "spam\n".repeat(10_000);
        // Time is paused: the whole flood arrives in one instant.
        capture(flood.as_bytes(), Stream::Stderr, log.clone()).await;
        let seen = sink.0.lock();
        let texts: Vec<_> = seen.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts.len(), 6, "{texts:?}");
        assert!(texts[..5].iter().all(|t| *t == "spam"));
        assert_eq!(texts[5], "[conway] 9995 lines dropped (over 10 lines/s)");
        assert_eq!(seen[5].stream, Stream::Supervisor);
        assert_eq!(log.pending_dropped(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_drop_count_comes_before_the_next_line_that_passes() {
        let (log, sink) = log_with(LogOptions {
            lines_per_second: 1,
            burst: 1,
            ..LogOptions::default()
        });
        let line = Line {
            bytes: b"x",
            truncated: 0,
        };
        for _ in 0..4 {
            log.push(Stream::Stdout, line);
        }
        assert_eq!(log.pending_dropped(), 3);
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        log.push(
            Stream::Stdout,
            Line {
                bytes: b"later",
                truncated: 0,
            },
        );
        let texts: Vec<_> = sink.0.lock().iter().map(|l| l.text.clone()).collect();
        assert_eq!(
            texts,
            ["x", "[conway] 3 lines dropped (over 1 lines/s)", "later"]
        );
    }

    #[tokio::test]
    async fn long_lines_are_capped_on_capture() {
        let (log, _) = log_with(LogOptions {
            max_line_bytes: 8,
            ..LogOptions::default()
        });
        let long = format!("{}\nshort\n", "y".repeat(100_000));
        capture(long.as_bytes(), Stream::Stdout, log.clone()).await;
        let texts: Vec<_> = log.tail(5).into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["yyyyyyyy … [99992 bytes truncated]", "short"]);
    }

    #[tokio::test]
    async fn channel_sink_drops_when_full() {
        let (sink, mut lines) = ChannelSink::new(2);
        let sinks: Arc<[Arc<dyn LogSink>]> = Arc::new([Arc::new(sink) as Arc<dyn LogSink>]);
        let log = Arc::new(InstanceLog::new("a", "a-1", LogOptions::default(), sinks));
        capture(&b"1\n2\n3\n"[..], Stream::Stdout, log).await;
        assert_eq!(lines.recv().await.map(|l| l.text).as_deref(), Some("1"));
        assert_eq!(lines.recv().await.map(|l| l.text).as_deref(), Some("2"));
        assert!(lines.try_recv().is_err(), "the third line was dropped");
    }
}
