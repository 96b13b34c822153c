//! The mirror resumes after a broken watch and lists again after compaction.

use std::time::Duration;

use axum::body::Bytes;
use conway_client::{Client, Mirror, MirrorOptions, MirrorSnapshot};
use tokio::sync::mpsc;

use crate::server::{Answer, Script, instance, put_line, start};

fn options() -> MirrorOptions {
    MirrorOptions {
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
    }
}

/// Waits until `condition` holds of the mirror's snapshot and connection, woken by its
/// changes; panics after 10 s.
async fn wait_for(mirror: &Mirror, what: &str, condition: impl Fn(&MirrorSnapshot, bool) -> bool) {
    let mut changed = mirror.changed();
    let mut connection = mirror.connection();
    let wait = async {
        while !condition(&mirror.snapshot(), mirror.connected()) {
            tokio::select! {
                _ = changed.changed() => {}
                _ = connection.changed() => {}
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .is_err()
    {
        panic!(
            "timed out waiting for {what}; the mirror holds {:?}",
            mirror.snapshot()
        );
    }
}

fn ids(snapshot: &MirrorSnapshot) -> Vec<&str> {
    snapshot.instances.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn a_closed_watch_resumes_after_the_last_revision_and_410_lists_again() {
    let (sender, receiver) = mpsc::unbounded_channel();
    let script = Script {
        revision: 5,
        instances: vec![instance("a")],
        watches: [Answer::Channel(receiver), Answer::Status(410, "compacted")].into(),
        ..Script::default()
    };
    let fake = start(script).await;
    let mirror = Mirror::start_from(
        Client::new(&fake.url).expect("valid URL"),
        options(),
        MirrorSnapshot::default(),
    );

    wait_for(&mirror, "the listing", |s, connected| {
        s.listed && connected && ids(s) == ["a"]
    })
    .await;
    assert_eq!(mirror.revision(), 5);
    sender.send(Bytes::from(put_line(6, "b"))).expect("open");
    wait_for(&mirror, "instance b", |s, _| ids(s) == ["a", "b"]).await;
    assert_eq!(mirror.revision(), 6);

    // History moves on while the watch is down: the resumed watch is compacted.
    {
        let mut script = fake.script.lock();
        script.revision = 20;
        script.instances = vec![instance("c")];
    }
    drop(sender);
    wait_for(&mirror, "the new listing", |s, connected| {
        connected && ids(s) == ["c"]
    })
    .await;
    assert_eq!(mirror.revision(), 20);
    let script = fake.script.lock();
    assert_eq!(script.sinces, [Some(5), Some(6), Some(20)]);
    assert_eq!(
        script.config_reads, 2,
        "listed once at start, once after the 410"
    );
}

#[tokio::test]
async fn a_compacted_error_line_lists_again_and_other_errors_resume() {
    let (sender, receiver) = mpsc::unbounded_channel();
    let ended = "{\"error\":{\"code\":\"watch_ended\",\"message\":\"lagged\"}}\n".to_owned();
    let compacted = "{\"error\":{\"code\":\"compacted\",\"message\":\"gone\"}}\n".to_owned();
    let script = Script {
        revision: 1,
        watches: [
            Answer::Lines(vec![put_line(2, "a"), ended]),
            Answer::Channel(receiver),
        ]
        .into(),
        ..Script::default()
    };
    let fake = start(script).await;
    let mirror = Mirror::start_from(
        Client::new(&fake.url).expect("valid URL"),
        options(),
        MirrorSnapshot::default(),
    );

    // The first watch ends with a lagged watcher: the mirror resumes after revision 2.
    wait_for(&mirror, "the resumed watch", |s, connected| {
        connected && ids(s) == ["a"]
    })
    .await;
    assert_eq!(fake.script.lock().sinces, [Some(1), Some(2)]);
    {
        let mut script = fake.script.lock();
        script.revision = 7;
        script.instances = vec![instance("z")];
    }
    sender.send(Bytes::from(compacted)).expect("open");
    wait_for(&mirror, "the new listing", |s, connected| {
        connected && ids(s) == ["z"]
    })
    .await;
    let script = fake.script.lock();
    assert_eq!(script.sinces, [Some(1), Some(2), Some(7)]);
    assert_eq!(script.config_reads, 2);
}

#[tokio::test]
async fn a_saved_snapshot_is_served_before_the_control_plane_answers() {
    let fake = start(Script {
        revision: 3,
        instances: vec![instance("live")],
        ..Script::default()
    })
    .await;
    let saved = MirrorSnapshot {
        revision: 3,
        listed: true,
        instances: [("saved".to_owned(), instance("saved"))].into(),
        ..MirrorSnapshot::default()
    };
    let mirror = Mirror::start_from(Client::new(&fake.url).expect("valid URL"), options(), saved);
    assert_eq!(
        ids(&mirror.snapshot()),
        ["saved"],
        "served at once, before any contact"
    );
    wait_for(&mirror, "the resumed watch", |_, connected| connected).await;
    let script = fake.script.lock();
    assert_eq!(
        script.sinces,
        [Some(3)],
        "a listed snapshot resumes its watch"
    );
    assert_eq!(script.config_reads, 0, "without listing again");
}
