//! The records Conway keeps: spans and log lines, with their ids, kinds and levels.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

/// A W3C trace id: 16 bytes, never all zero; 32 lower-case hex digits as text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// A W3C span id: 8 bytes, never all zero; 16 lower-case hex digits as text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

/// Text that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: expected {digits} hex digits, not all zero")]
pub struct IdError {
    what: &'static str,
    digits: usize,
}

macro_rules! id_type {
    ($ty:ident, $len:literal, $what:literal) => {
        impl $ty {
            /// The id in `bytes`, if it has the right length and is not all zero (the
            /// OTLP encoding of "no id").
            pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
                let id: [u8; $len] = bytes.try_into().ok()?;
                (id != [0; $len]).then_some(Self(id))
            }

            /// The bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// A random id, for producers that start spans.
            pub fn random() -> Self {
                loop {
                    let mut id = [0u8; $len];
                    for chunk in id.chunks_mut(8) {
                        let random = fastrand::u64(..).to_le_bytes();
                        chunk.copy_from_slice(&random[..chunk.len()]);
                    }
                    if id != [0; $len] {
                        return Self(id);
                    }
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for byte in self.0 {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($ty))
            }
        }

        impl FromStr for $ty {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let error = IdError {
                    what: $what,
                    digits: $len * 2,
                };
                let bytes = decode_hex(text).ok_or(error.clone())?;
                Self::from_bytes(&bytes).ok_or(error)
            }
        }
    };
}

id_type!(TraceId, 16, "trace id");
id_type!(SpanId, 8, "span id");

/// Lower- or upper-case hex to bytes.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// What a span stands for, as OTLP numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    /// Not said.
    #[default]
    Unspecified,
    /// Work inside a process.
    Internal,
    /// Handling a request.
    Server,
    /// Sending a request.
    Client,
    /// Sending a message.
    Producer,
    /// Receiving a message.
    Consumer,
}

impl SpanKind {
    /// The OTLP number (`SPAN_KIND_SERVER` is 2); unknown numbers are `Unspecified`.
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// The OTLP number.
    pub fn to_otlp(self) -> i32 {
        self as i32
    }

    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// A span's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanStatus {
    /// Not said (most successful spans).
    #[default]
    Unset,
    /// Explicitly fine.
    Ok,
    /// Failed.
    Error,
}

impl SpanStatus {
    /// The OTLP status code (`STATUS_CODE_ERROR` is 2); unknown codes are `Unset`.
    pub fn from_otlp(code: i32) -> Self {
        match code {
            1 => Self::Ok,
            2 => Self::Error,
            _ => Self::Unset,
        }
    }

    /// The OTLP status code.
    pub fn to_otlp(self) -> i32 {
        self as i32
    }

    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// A log record's severity, OTLP's six ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Level {
    /// Not said.
    #[default]
    Unspecified,
    /// `SEVERITY_NUMBER_TRACE*` (1–4).
    Trace,
    /// 5–8.
    Debug,
    /// 9–12.
    Info,
    /// 13–16.
    Warn,
    /// 17–20.
    Error,
    /// 21–24.
    Fatal,
}

impl Level {
    /// The level of an OTLP severity number, else of its severity text.
    pub fn from_otlp(number: i32, text: &str) -> Self {
        match number {
            1..=4 => Self::Trace,
            5..=8 => Self::Debug,
            9..=12 => Self::Info,
            13..=16 => Self::Warn,
            17..=20 => Self::Error,
            21..=24 => Self::Fatal,
            _ => text.parse().unwrap_or_default(),
        }
    }

    /// The lowest OTLP severity number of the level.
    pub fn to_otlp(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            other => (other.rank() - 1) * 4 + 1,
        }
    }

    /// 0 (unspecified) to 6 (fatal), as the store keeps it.
    pub fn rank(self) -> i32 {
        self as i32
    }

    /// The level of a stored rank.
    pub fn from_rank(rank: i64) -> Self {
        match rank {
            1 => Self::Trace,
            2 => Self::Debug,
            3 => Self::Info,
            4 => Self::Warn,
            5 => Self::Error,
            6 => Self::Fatal,
            _ => Self::Unspecified,
        }
    }

    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Fatal => "fatal",
        }
    }
}

impl FromStr for Level {
    type Err = String;

    /// `warn`, `WARNING`, `Error`, `critical`… (case-insensitive).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "trace" => Self::Trace,
            "debug" => Self::Debug,
            "info" | "information" | "notice" => Self::Info,
            "warn" | "warning" => Self::Warn,
            "error" | "err" => Self::Error,
            "fatal" | "critical" | "crit" | "panic" => Self::Fatal,
            "unspecified" | "" => Self::Unspecified,
            other => return Err(format!("unknown log level {other:?}")),
        })
    }
}

/// A finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// The trace.
    pub trace_id: TraceId,
    /// This span.
    pub span_id: SpanId,
    /// The parent span; none for a root span.
    pub parent_span_id: Option<SpanId>,
    /// The service that ran it (`service.name`).
    pub service: String,
    /// The span's name: the route, RPC method or operation.
    pub operation: String,
    /// What it stands for.
    pub kind: SpanKind,
    /// When it started.
    pub start: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// Its outcome.
    pub status: SpanStatus,
    /// The status description (errors).
    pub status_message: Option<String>,
    /// Attributes, as JSON values.
    pub attributes: Map<String, Value>,
}

impl SpanRecord {
    /// Roughly how many bytes the record holds, for memory budgets.
    pub fn approximate_size(&self) -> usize {
        128 + self.service.len()
            + self.operation.len()
            + self.status_message.as_ref().map_or(0, String::len)
            + map_size(&self.attributes)
    }
}

/// A log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// When it was written.
    pub time: SystemTime,
    /// The service that wrote it.
    pub service: String,
    /// The instance, when known.
    pub instance: Option<String>,
    /// Its severity.
    pub level: Level,
    /// The message.
    pub body: String,
    /// The trace it belongs to, when known.
    pub trace_id: Option<TraceId>,
    /// The span it belongs to, when known.
    pub span_id: Option<SpanId>,
    /// Attributes, as JSON values.
    pub attributes: Map<String, Value>,
}

impl LogRecord {
    /// A line of captured output: now, no trace, no attributes.
    pub fn line(service: &str, instance: Option<&str>, level: Level, body: &str) -> Self {
        Self {
            time: SystemTime::now(),
            service: service.to_owned(),
            instance: instance.map(str::to_owned),
            level,
            body: body.to_owned(),
            trace_id: None,
            span_id: None,
            attributes: Map::new(),
        }
    }

    /// Roughly how many bytes the record holds, for memory budgets.
    pub fn approximate_size(&self) -> usize {
        96 + self.service.len()
            + self.instance.as_ref().map_or(0, String::len)
            + self.body.len()
            + map_size(&self.attributes)
    }
}

fn map_size(map: &Map<String, Value>) -> usize {
    map.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len() + 8,
        Value::Array(items) => items.iter().map(value_size).sum::<usize>() + 8,
        Value::Object(map) => map_size(map) + 8,
        _ => 8,
    }
}

/// Microseconds since the Unix epoch (negative before it).
pub fn unix_micros(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// The time `micros` microseconds after the Unix epoch.
pub fn from_unix_micros(micros: i64) -> SystemTime {
    if micros >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_micros(micros.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

/// The time `nanos` nanoseconds after the Unix epoch.
pub fn from_unix_nanos(nanos: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// Nanoseconds since the Unix epoch (0 before it).
pub fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_as_hex() {
        let id: TraceId = "0AF7651916CD43DD8448EB211C80319C".parse().expect("valid");
        assert_eq!(id.to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert!(
            "00000000000000000000000000000000"
                .parse::<TraceId>()
                .is_err()
        );
        assert!("0af7651916cd43dd".parse::<TraceId>().is_err());
        assert!("zz".repeat(8).parse::<SpanId>().is_err());
        let span: SpanId = "b7ad6b7169203331".parse().expect("valid");
        assert_eq!(SpanId::from_bytes(span.as_bytes()), Some(span));
        assert_ne!(TraceId::random(), TraceId::random());
    }

    #[test]
    fn levels_come_from_numbers_or_text() {
        assert_eq!(Level::from_otlp(9, "whatever"), Level::Info);
        assert_eq!(Level::from_otlp(0, "WARNING"), Level::Warn);
        assert_eq!(Level::from_otlp(0, "gibberish"), Level::Unspecified);
        assert_eq!(Level::from_otlp(Level::Error.to_otlp(), ""), Level::Error);
        assert_eq!(Level::from_rank(Level::Fatal.rank().into()), Level::Fatal);
    }

    #[test]
    fn times_round_trip_through_micros() {
        let time = from_unix_micros(1_700_000_000_123_456);
        assert_eq!(unix_micros(time), 1_700_000_000_123_456);
        assert_eq!(unix_nanos(time), 1_700_000_000_123_456_000);
    }
}
