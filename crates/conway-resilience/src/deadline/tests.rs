use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

use super::*;
use crate::error::{BoxError, Error};

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(DEADLINE_HEADER, HeaderValue::from_bytes(value).unwrap());
    }
    headers
}

#[test]
fn header_parses_plain_milliseconds() {
    assert_eq!(parse_deadline(b"250"), Some(Duration::from_millis(250)));
    assert_eq!(parse_deadline(b"0007"), Some(Duration::from_millis(7)));
    assert_eq!(parse_deadline(b"86400000"), Some(MAX_HEADER_DEADLINE));
}

#[test]
fn hostile_header_values_are_ignored() {
    let hostile: &[&[u8]] = &[
        b"",
        b"0",
        b"000",
        b"-5",
        b"+5",
        b" 5",
        b"5 ",
        b"1.5",
        b"1e3",
        b"0x10",
        b"1_000",
        b"abc",
        b"5ms",
        "\u{ff15}".as_bytes(), // a full-width digit five
        b"86400001",           // a millisecond past a day
        b"18446744073709551615",
        b"18446744073709551616",  // u64::MAX + 1
        b"99999999999999999999",  // 20 digits, overflows u64
        b"100000000000000000000", // 21 digits
    ];
    for value in hostile {
        assert_eq!(
            parse_deadline(value),
            None,
            "{:?}",
            String::from_utf8_lossy(value)
        );
    }
}

#[test]
fn the_smaller_of_timeout_and_header_wins() {
    let now = Instant::now();
    let timeout = Duration::from_secs(2);

    let shorter = Deadline::for_request(now, timeout, &headers(&[b"300"]));
    assert_eq!(shorter.remaining(now), Duration::from_millis(300));

    let longer = Deadline::for_request(now, timeout, &headers(&[b"60000"]));
    assert_eq!(longer.remaining(now), timeout);

    let garbage = Deadline::for_request(now, timeout, &headers(&[b"-1", b"nope"]));
    assert_eq!(garbage.remaining(now), timeout);

    let several = Deadline::for_request(now, timeout, &headers(&[b"900", b"x", b"400"]));
    assert_eq!(several.remaining(now), Duration::from_millis(400));
}

#[test]
fn per_try_deadline_is_the_smaller_of_per_try_timeout_and_remaining() {
    let now = Instant::now();
    let deadline = Deadline::after(now, Duration::from_secs(1));
    let per_try = Some(Duration::from_millis(300));
    assert_eq!(deadline.per_try(now, per_try), Duration::from_millis(300));
    let later = now + Duration::from_millis(800);
    assert_eq!(deadline.per_try(later, per_try), Duration::from_millis(200));
    assert_eq!(deadline.per_try(later, None), Duration::from_millis(200));
    let past = now + Duration::from_secs(5);
    assert_eq!(deadline.per_try(past, per_try), Duration::ZERO);
    assert!(deadline.is_expired(past));
}

#[test]
fn an_enormous_timeout_does_not_overflow() {
    let now = Instant::now();
    let deadline = Deadline::after(now, Duration::MAX);
    assert!(deadline.remaining(now) > Duration::from_secs(86_400 * 365));
}

#[test]
fn header_upstream_carries_what_is_left() {
    let now = Instant::now();
    let deadline = Deadline::after(now, Duration::from_millis(1000));
    let mut headers = headers(&[b"5000"]);

    assert!(deadline.set_header(now + Duration::from_micros(250_700), &mut headers));
    assert_eq!(headers.get_all(&DEADLINE_HEADER).iter().count(), 1);
    assert_eq!(headers[&DEADLINE_HEADER], "749"); // rounded down

    assert!(deadline.set_header(now + Duration::from_micros(999_900), &mut headers));
    assert_eq!(headers[&DEADLINE_HEADER], "1"); // never "0"

    assert!(!deadline.set_header(now + Duration::from_secs(1), &mut headers));
    assert!(!headers.contains_key(&DEADLINE_HEADER));
}

async fn slow(request: Request<()>) -> Result<(Option<String>, bool), BoxError> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let header = request.headers().get(&DEADLINE_HEADER);
    let header = header.map(|v| v.to_str().unwrap().to_owned());
    Ok((header, request.extensions().get::<Deadline>().is_some()))
}

#[tokio::test(start_paused = true)]
async fn service_fails_at_the_configured_timeout_exactly() {
    let service = SetDeadlineLayer::new(Duration::from_secs(1)).layer(service_fn(slow));
    let start = Instant::now();
    let error = service.oneshot(Request::new(())).await.unwrap_err();
    assert_eq!(Error::find(&*error), Some(&Error::DeadlineExceeded));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn service_fails_at_the_callers_shorter_deadline() {
    let service = SetDeadline::new(service_fn(slow), Duration::from_secs(10));
    let request = Request::builder()
        .header(DEADLINE_HEADER, "300")
        .body(())
        .unwrap();
    let start = Instant::now();
    let error = service.oneshot(request).await.unwrap_err();
    assert_eq!(Error::find(&*error), Some(&Error::DeadlineExceeded));
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn service_passes_the_deadline_upstream_and_recovers() {
    let service = SetDeadline::new(service_fn(slow), Duration::from_secs(5));
    let request = Request::builder()
        .header(DEADLINE_HEADER, "bogus")
        .body(())
        .unwrap();
    let (header, has_extension) = service.oneshot(request).await.unwrap();
    assert_eq!(header.as_deref(), Some("5000"));
    assert!(has_extension);
}

#[tokio::test(start_paused = true)]
async fn a_zero_timeout_fails_without_calling_inner() {
    let called = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = called.clone();
    let inner = service_fn(move |_: Request<()>| {
        seen.store(true, std::sync::atomic::Ordering::SeqCst);
        async { Ok::<_, BoxError>(()) }
    });
    let error = SetDeadline::new(inner, Duration::ZERO)
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(Error::find(&*error), Some(&Error::DeadlineExceeded));
    assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
}
