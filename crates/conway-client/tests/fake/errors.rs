//! Unreachable and slow control planes.

use std::time::Duration;

use conway_client::{Client, ClientError};

use crate::server::{Script, start};

#[tokio::test]
async fn nothing_listening_is_unreachable_and_names_the_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    drop(listener);
    let client = Client::new(&url).expect("valid URL");
    let error = client.services().await.expect_err("nothing listens");
    assert!(error.is_unreachable(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains(&url) && text.contains("conway server"),
        "{text}"
    );
    assert!(
        client
            .watch(Some(0))
            .await
            .expect_err("nothing listens")
            .is_unreachable()
    );
}

#[tokio::test]
async fn a_request_that_gets_no_answer_times_out() {
    let fake = start(Script::default()).await;
    let client = Client::builder(&fake.url)
        .timeout(Duration::from_millis(200))
        .build()
        .expect("valid URL");
    let error = client
        .services()
        .await
        .expect_err("the fake never answers /v1/services");
    assert!(
        matches!(error, ClientError::Timeout { after, .. } if after == Duration::from_millis(200)),
        "{error:?}"
    );
}
