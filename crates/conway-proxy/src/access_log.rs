//! The access log: one line per request on stderr, written off the request path.
//!
//! A request appends its line to a shared buffer (a lock held for a copy, no system
//! call, no allocation once the buffer has grown); a writer thread takes the buffer
//! every [`FLUSH_EVERY`] and writes it out in one go. When stderr is slower than the
//! traffic and the buffer holds [`MAX_PENDING`] bytes, further lines are dropped and
//! counted, and a line says how many — a request never waits for the log.
//!
//! Lines are plain text with `key=value` fields, no colour:
//! `2026-11-25T15:10:10.123Z access client=127.0.0.1:50712 method=GET path=/api/x
//! status=200 route=api service=catalog endpoint=catalog-1 tries=1 duration_ms=0.412
//! trace_id=4bf92f3577b34da6a3ce929d0e0e4736`, or, in [`Format::Json`] (`--log-format
//! json`), one JSON object a line with the same fields and `"message":"access"`.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// How often buffered lines are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// The most bytes waiting to be written; past it, lines are dropped (and counted).
pub const MAX_PENDING: usize = 4 * 1024 * 1024;

/// How lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// `key=value` fields after a timestamp.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// What one line records.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The client's address.
    pub client: std::net::SocketAddr,
    /// The request's method.
    pub method: &'a str,
    /// The request's path (never the query).
    pub path: &'a str,
    /// The status answered.
    pub status: u16,
    /// The route's name (or the mesh caller's).
    pub route: &'a str,
    /// The service.
    pub service: &'a str,
    /// The endpoint tried last.
    pub endpoint: &'a str,
    /// How many tries.
    pub tries: u32,
    /// Time to the response head.
    pub duration: Duration,
    /// The trace, as 32 hex digits.
    pub trace_id: u128,
}

/// The proxy's access log. Cheap to clone; the writer thread ends once every clone is
/// dropped, after a last flush.
#[derive(Debug, Clone)]
pub struct AccessLog {
    shared: Arc<Shared>,
    format: Format,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
}

impl AccessLog {
    /// An access log on stderr, with its writer thread.
    pub fn stderr(format: Format) -> Self {
        Self::to(Box::new(std::io::stderr()), format)
    }

    /// An access log written to `out` (tests use a buffer).
    pub fn to(out: Box<dyn std::io::Write + Send>, format: Format) -> Self {
        let shared = Arc::new(Shared::default());
        let weak = Arc::downgrade(&shared);
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(&weak, out));
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the access log's writer; lines will be dropped");
        }
        Self { shared, format }
    }

    /// Appends the line of one request.
    pub fn record(&self, entry: &Entry<'_>) {
        let mut pending = self.shared.pending.lock();
        if pending.bytes.len() >= MAX_PENDING {
            pending.dropped += 1;
            return;
        }
        let mut line = LineWriter(&mut pending.bytes);
        let _ = match self.format {
            Format::Text => write_line(&mut line, entry, SystemTime::now()),
            Format::Json => write_json_line(&mut line, entry, SystemTime::now()),
        };
    }

    /// Writes out what is buffered now (on shutdown).
    pub fn flush(&self) {
        let (bytes, dropped) = self.shared.take();
        let _ = write_out(&mut std::io::stderr(), &bytes, dropped);
    }
}

impl Shared {
    fn take(&self) -> (Vec<u8>, u64) {
        let mut pending = self.pending.lock();
        let capacity = pending.bytes.capacity().min(MAX_PENDING);
        let bytes = std::mem::replace(&mut pending.bytes, Vec::with_capacity(capacity));
        (bytes, std::mem::take(&mut pending.dropped))
    }
}

fn write_loop(shared: &Weak<Shared>, mut out: Box<dyn std::io::Write + Send>) {
    loop {
        std::thread::sleep(FLUSH_EVERY);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (bytes, dropped) = shared.take();
        drop(shared);
        if write_out(&mut out, &bytes, dropped).is_err() {
            // Nowhere to write: keep draining so requests never wait.
            continue;
        }
    }
}

fn write_out(out: &mut dyn std::io::Write, bytes: &[u8], dropped: u64) -> std::io::Result<()> {
    if !bytes.is_empty() {
        out.write_all(bytes)?;
    }
    if dropped > 0 {
        writeln!(
            out,
            "access log: {dropped} lines dropped (the log could not keep up)"
        )?;
    }
    out.flush()
}

/// `fmt::Write` into the byte buffer.
struct LineWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for LineWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn write_line(
    out: &mut impl std::fmt::Write,
    entry: &Entry<'_>,
    now: SystemTime,
) -> std::fmt::Result {
    write_timestamp(out, now)?;
    write!(
        out,
        " access client={} method={} path=",
        entry.client, entry.method
    )?;
    write_value(out, entry.path)?;
    write!(out, " status={} route=", entry.status)?;
    write_value(out, entry.route)?;
    out.write_str(" service=")?;
    write_value(out, entry.service)?;
    out.write_str(" endpoint=")?;
    write_value(out, entry.endpoint)?;
    let micros = entry.duration.as_micros();
    writeln!(
        out,
        " tries={} duration_ms={}.{:03} trace_id={:032x}",
        entry.tries,
        micros / 1000,
        micros % 1000,
        entry.trace_id
    )
}

fn write_json_line(
    out: &mut impl std::fmt::Write,
    entry: &Entry<'_>,
    now: SystemTime,
) -> std::fmt::Result {
    out.write_str("{\"timestamp\":\"")?;
    write_timestamp(out, now)?;
    write!(
        out,
        "\",\"message\":\"access\",\"client\":\"{}\",\"method\":",
        entry.client
    )?;
    write_json_string(out, entry.method)?;
    out.write_str(",\"path\":")?;
    write_json_string(out, entry.path)?;
    write!(out, ",\"status\":{},\"route\":", entry.status)?;
    write_json_string(out, entry.route)?;
    out.write_str(",\"service\":")?;
    write_json_string(out, entry.service)?;
    out.write_str(",\"endpoint\":")?;
    write_json_string(out, entry.endpoint)?;
    let micros = entry.duration.as_micros();
    writeln!(
        out,
        ",\"tries\":{},\"duration_ms\":{}.{:03},\"trace_id\":\"{:032x}\"}}",
        entry.tries,
        micros / 1000,
        micros % 1000,
        entry.trace_id
    )
}

/// `value` as a JSON string: quotes, backslashes and control characters escaped.
fn write_json_string(out: &mut impl std::fmt::Write, value: &str) -> std::fmt::Result {
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// A value as is when it is plain, else quoted with `"` and `\` escaped (paths and
/// names come from clients and the manifest; a line never breaks).
fn write_value(out: &mut impl std::fmt::Write, value: &str) -> std::fmt::Result {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'=');
    if plain {
        return out.write_str(value);
    }
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            c if c.is_control() => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// RFC 3339 in UTC with milliseconds: `2026-11-25T15:10:10.123Z`.
fn write_timestamp(out: &mut impl std::fmt::Write, now: SystemTime) -> std::fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = conway_core::calendar::civil_from_days(days as i64);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(path: &'a str, route: &'a str) -> Entry<'a> {
        Entry {
            client: "127.0.0.1:50712".parse().unwrap(),
            method: "GET",
            path,
            status: 200,
            route,
            service: "catalog",
            endpoint: "catalog-1",
            tries: 1,
            duration: Duration::from_micros(1412),
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
        }
    }

    fn line(entry: &Entry<'_>, now: SystemTime) -> String {
        let mut out = String::new();
        write_line(&mut out, entry, now).unwrap();
        out
    }

    #[test]
    fn a_line_has_every_field_and_no_colour() {
        let now = UNIX_EPOCH + Duration::from_millis(1_795_619_410_123);
        assert_eq!(
            line(&entry("/api/x", "api"), now),
            "2026-11-25T15:10:10.123Z access client=127.0.0.1:50712 method=GET path=/api/x \
             status=200 route=api service=catalog endpoint=catalog-1 tries=1 \
             duration_ms=1.412 trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n"
        );
    }

    #[test]
    fn odd_values_are_quoted_and_never_break_the_line() {
        let text = line(&entry("/a b\"c", "x\ny"), UNIX_EPOCH);
        assert!(text.starts_with("1970-01-01T00:00:00.000Z "), "{text}");
        assert!(text.contains(r#"path="/a b\"c""#), "{text}");
        assert!(text.contains(r#"route="x\u{a}y""#), "{text}");
        assert_eq!(text.matches('\n').count(), 1, "{text}");
    }

    #[test]
    fn json_lines_parse_with_every_field_even_from_hostile_values() {
        let mut out = String::new();
        let now = UNIX_EPOCH + Duration::from_millis(1_795_619_410_123);
        write_json_line(&mut out, &entry("/a b\"c\\", "x\ny\u{1}"), now).unwrap();
        assert_eq!(out.matches('\n').count(), 1, "{out}");
        let line: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
        assert_eq!(line["timestamp"], "2026-11-25T15:10:10.123Z");
        assert_eq!(line["message"], "access");
        assert_eq!(line["client"], "127.0.0.1:50712");
        assert_eq!(line["path"], "/a b\"c\\");
        assert_eq!(line["route"], "x\ny\u{1}");
        assert_eq!(line["status"], 200);
        assert_eq!(line["tries"], 1);
        assert_eq!(line["duration_ms"], 1.412);
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_writer() {
        let sink = Sink::default();
        let log = AccessLog::to(Box::new(sink.clone()), Format::Text);
        log.record(&entry("/one", "api"));
        // The writer thread flushes on its interval; wait for it (no fixed sleep).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&sink.0.lock()).contains("path=/one") {
            assert!(std::time::Instant::now() < deadline, "the line never came");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_full_buffer_drops_lines_and_says_so() {
        // No writer thread: the buffer only grows.
        let log = AccessLog {
            shared: Arc::default(),
            format: Format::Text,
        };
        let path = "/".repeat(MAX_PENDING);
        log.record(&entry(&path, "api"));
        log.record(&entry("/dropped", "api"));
        let (bytes, dropped) = log.shared.take();
        assert!(bytes.len() > MAX_PENDING);
        assert_eq!(dropped, 1);
        let mut out = Vec::new();
        write_out(&mut out, b"", dropped).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "access log: 1 lines dropped (the log could not keep up)\n"
        );
    }
}
