//! W3C Trace Context: every hop continues the caller's `traceparent` (or starts a trace),
//! sends its own span as the parent upstream, and answers with `traceresponse`.

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

/// The request header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The response header.
pub const TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");

/// The trace a request belongs to, and the proxy's span in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace, 16 bytes, never all zero.
    pub trace_id: u128,
    /// The caller's span, if the request carried one.
    pub parent_id: Option<u64>,
    /// The proxy's own span.
    pub span_id: u64,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceContext {
    /// Continues the request's valid `traceparent`, or starts a new sampled trace.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let span_id = nonzero_u64();
        match headers.get(TRACEPARENT).and_then(|v| parse(v.as_bytes())) {
            Some((trace_id, parent_id, flags)) => Self {
                trace_id,
                parent_id: Some(parent_id),
                span_id,
                flags,
            },
            None => Self {
                trace_id: nonzero_u128(),
                parent_id: None,
                span_id,
                flags: 1,
            },
        }
    }

    /// The `traceparent` sent upstream: this trace, with the proxy's span as parent.
    /// The same value answers as `traceresponse` (this trace and the proxy's span), so
    /// one formatted header serves both ways.
    pub fn traceparent(&self) -> HeaderValue {
        let mut text = [0u8; 55];
        text[..3].copy_from_slice(b"00-");
        hex_into(&mut text[3..35], &self.trace_id.to_be_bytes());
        text[35] = b'-';
        hex_into(&mut text[36..52], &self.span_id.to_be_bytes());
        text[52] = b'-';
        hex_into(&mut text[53..55], &[self.flags]);
        HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The `traceresponse` sent back: this trace and the proxy's span.
    pub fn traceresponse(&self) -> HeaderValue {
        self.traceparent()
    }

    /// The trace id as 32 hex digits.
    pub fn trace_id_hex(&self) -> String {
        let mut text = [0u8; 32];
        hex_into(&mut text, &self.trace_id.to_be_bytes());
        text.iter().map(|&b| char::from(b)).collect()
    }
}

/// Writes `bytes` as lower-case hex into `out` (twice as long).
pub(crate) fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// Parses `00-<32 hex>-<16 hex>-<2 hex>` (any version but `ff`, ignoring what a future
/// version appends); all-zero ids are invalid.
fn parse(value: &[u8]) -> Option<(u128, u64, u8)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let mut parts = text.split('-');
    let version = parts.next()?;
    let (trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2)
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    let parent = u64::from_str_radix(parent, 16).ok().filter(|p| *p != 0)?;
    Some((trace, parent, u8::from_str_radix(flags, 16).ok()?))
}

fn nonzero_u64() -> u64 {
    fastrand::u64(1..)
}

fn nonzero_u128() -> u128 {
    fastrand::u128(1..)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(traceparent: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_str(traceparent).unwrap());
        headers
    }

    #[test]
    fn a_valid_traceparent_is_continued() {
        let context = TraceContext::from_headers(&headers(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_id, Some(0x00f0_67aa_0ba9_02b7));
        assert_ne!(context.span_id, 0x00f0_67aa_0ba9_02b7);
        let upstream = context.traceparent();
        let upstream = upstream.to_str().unwrap();
        assert!(
            upstream.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
                && upstream.ends_with("-01"),
            "{upstream}"
        );
        assert_eq!(upstream.len(), 55);
        assert_eq!(
            context.traceparent(),
            format!(
                "00-{:032x}-{:016x}-{:02x}",
                context.trace_id, context.span_id, context.flags
            )
        );
        assert_eq!(context.traceresponse(), context.traceparent());
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
            "",
        ] {
            let context = TraceContext::from_headers(&headers(bad));
            assert_eq!(context.parent_id, None, "{bad}");
            assert_ne!(
                context.trace_id_hex(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_future_version_may_append_fields() {
        let context = TraceContext::from_headers(&headers(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-abc",
        ));
        assert_eq!(context.parent_id, Some(0x00f0_67aa_0ba9_02b7));
    }
}
