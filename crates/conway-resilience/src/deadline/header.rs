//! The `x-conway-deadline-ms` header: how much time a caller has left.

use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// What the caller has left of its own deadline, in whole milliseconds; a proxy sends
/// what is left of the request's deadline upstream in it.
pub const DEADLINE_HEADER: HeaderName = HeaderName::from_static("x-conway-deadline-ms");

/// The longest deadline a caller may ask for: a day. Longer values are taken as
/// absurd and ignored (which changes nothing: the configured timeout is shorter).
pub const MAX_HEADER_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses one `x-conway-deadline-ms` value: 1 to 20 ASCII digits, nothing else (no
/// sign, space, fraction or unit), from 1 ms to [`MAX_HEADER_DEADLINE`]. `0` is taken
/// as absurd rather than "already late": a Conway proxy never sends it (it fails the
/// request instead), and a stray `0` must not fail every request it rides on.
pub fn parse_deadline(value: &[u8]) -> Option<Duration> {
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let millis = value.iter().try_fold(0u64, |total, digit| {
        total.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })?;
    let deadline = Duration::from_millis(millis);
    (millis > 0 && deadline <= MAX_HEADER_DEADLINE).then_some(deadline)
}

/// The shortest valid `x-conway-deadline-ms` among a request's headers; invalid values
/// are ignored, so a caller can only ever shorten a deadline.
pub fn deadline_from_headers(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(&DEADLINE_HEADER)
        .iter()
        .filter_map(|value| parse_deadline(value.as_bytes()))
        .min()
}

/// The header value for `remaining`: whole milliseconds, rounded down, at least 1.
pub fn deadline_header_value(remaining: Duration) -> HeaderValue {
    let millis = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
    HeaderValue::from(millis.max(1))
}
