//! The watch stream over a real chunked body.

use std::time::Duration;

use axum::body::Bytes;
use conway_client::{Client, ClientError};
use conway_core::api::{WatchKind, WatchLine};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::server::{Answer, Script, start};

#[tokio::test]
async fn lines_split_across_chunks_arrive_whole_and_an_error_line_ends_the_stream() {
    let (sender, receiver) = mpsc::unbounded_channel();
    let fake = start(Script {
        watches: [Answer::Channel(receiver)].into(),
        ..Script::default()
    })
    .await;
    let client = Client::new(&fake.url).expect("valid URL");
    let mut stream = client.watch(Some(3)).await.expect("the watch opens");
    assert_eq!(fake.script.lock().sinces, [Some(3)]);

    sender
        .send(Bytes::from_static(b"{\"revision\":4,\"op\":\"put\",\"ki"))
        .expect("open");
    sender
        .send(Bytes::from_static(
            b"nd\":\"service\",\"key\":\"orders\",\"value\":{}}\n{\"keepalive\"",
        ))
        .expect("open");
    sender
        .send(Bytes::from_static(b":true,\"revision\":4}\r\n\n"))
        .expect("open");
    match stream.next().await {
        Some(Ok(WatchLine::Event(event))) => assert_eq!(
            (event.revision, event.kind, event.key.as_str()),
            (4, WatchKind::Service, "orders")
        ),
        other => panic!("expected the service event, got {other:?}"),
    }
    assert_eq!(
        stream.next().await.expect("a line").expect("a keep-alive"),
        WatchLine::KeepAlive {
            keepalive: true,
            revision: 4
        }
    );

    sender
        .send(Bytes::from_static(
            b"{\"error\":{\"code\":\"watch_ended\",\"message\":\"lagged\"}}\n",
        ))
        .expect("open");
    let error = stream
        .next()
        .await
        .expect("a line")
        .expect_err("the error line");
    assert!(
        matches!(&error, ClientError::WatchEnded { code, .. } if code == "watch_ended"),
        "{error:?}"
    );
    assert!(stream.next().await.is_none(), "nothing follows an error");
}

#[tokio::test]
async fn a_body_that_ends_ends_the_stream_after_its_last_line() {
    let lines = vec![
        crate::server::put_line(1, "a"),
        "{\"keepalive\":true,\"revision\":1}".to_owned(),
    ];
    let fake = start(Script {
        watches: [Answer::Lines(lines)].into(),
        ..Script::default()
    })
    .await;
    let client = Client::new(&fake.url).expect("valid URL");
    let lines: Vec<_> = client.watch(None).await.expect("opens").collect().await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(Result::is_ok), "{lines:?}");
    assert_eq!(fake.script.lock().sinces, [None]);
}

#[tokio::test]
async fn an_overlong_line_is_refused() {
    let (sender, receiver) = mpsc::unbounded_channel();
    let fake = start(Script {
        watches: [Answer::Channel(receiver)].into(),
        ..Script::default()
    })
    .await;
    let client = Client::builder(&fake.url)
        .max_line_bytes(64)
        .build()
        .expect("valid URL");
    let mut stream = client.watch(Some(0)).await.expect("opens");
    sender.send(Bytes::from(vec![b'x'; 100])).expect("open");
    let error = stream.next().await.expect("an item").expect_err("too long");
    assert!(
        matches!(error, ClientError::LineTooLong { limit: 64 }),
        "{error:?}"
    );
    assert!(error.to_string().contains("64 bytes"));
}

#[tokio::test]
async fn a_silent_watch_times_out_but_a_talking_one_does_not() {
    let (sender, receiver) = mpsc::unbounded_channel();
    let fake = start(Script {
        watches: [Answer::Channel(receiver)].into(),
        ..Script::default()
    })
    .await;
    let idle = Duration::from_millis(300);
    let client = Client::builder(&fake.url)
        .watch_idle_timeout(idle)
        .build()
        .expect("valid URL");
    let mut stream = client.watch(Some(0)).await.expect("opens");
    sender
        .send(Bytes::from_static(b"{\"keepalive\":true,\"revision\":0}\n"))
        .expect("open");
    assert!(stream.next().await.expect("a line").is_ok());
    let started = tokio::time::Instant::now();
    let error = stream.next().await.expect("an item").expect_err("silence");
    assert!(
        matches!(error, ClientError::Timeout { after, .. } if after == idle),
        "{error:?}"
    );
    assert!(started.elapsed() >= idle);
}

#[tokio::test]
async fn compacted_and_future_revisions_are_typed() {
    let watches = [
        Answer::Status(410, "compacted"),
        Answer::Status(400, "future_revision"),
    ];
    let fake = start(Script {
        watches: watches.into(),
        ..Script::default()
    })
    .await;
    let client = Client::new(&fake.url).expect("valid URL");
    let compacted = client.watch(Some(1)).await.expect_err("410");
    assert!(compacted.is_compacted(), "{compacted:?}");
    let future = client.watch(Some(99)).await.expect_err("400");
    assert_eq!(
        (future.status(), future.code()),
        (Some(400), Some("future_revision"))
    );
}
