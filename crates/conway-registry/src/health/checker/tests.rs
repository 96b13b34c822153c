//! The runner with a mock probe under paused time, and once with real sockets.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::*;
use HealthState::{Healthy, Starting, Unhealthy};

/// How the mock answers, changed by the test while it runs.
#[derive(Debug, Default)]
struct Control {
    failing: AtomicBool,
    hanging: AtomicBool,
    hang_once: AtomicBool,
    calls: Mutex<Vec<Instant>>,
}

impl Control {
    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().clone()
    }
}

/// Passes, fails with `HTTP 503`, or never answers, as its [`Control`] says; its
/// `dropped` sender closes when the checker drops the probe.
#[derive(Debug)]
struct MockProbe {
    control: Arc<Control>,
    _dropped: oneshot::Sender<()>,
}

#[async_trait]
impl Probe for MockProbe {
    async fn check(&self) -> Result<(), ProbeError> {
        self.control.calls.lock().push(Instant::now());
        let hang_once = self.control.hang_once.swap(false, Ordering::SeqCst);
        if hang_once || self.control.hanging.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        match self.control.failing.load(Ordering::SeqCst) {
            true => Err(ProbeError::Status(503)),
            false => Ok(()),
        }
    }
}

fn mock() -> (Box<dyn Probe>, Arc<Control>, oneshot::Receiver<()>) {
    let control = Arc::new(Control::default());
    let (dropped, on_drop) = oneshot::channel();
    let probe = MockProbe {
        control: Arc::clone(&control),
        _dropped: dropped,
    };
    (Box::new(probe), control, on_drop)
}

fn health(interval_ms: u64, healthy_threshold: u32, unhealthy_threshold: u32) -> Health {
    Health {
        interval: conway_core::units::Duration::from_millis(interval_ms),
        timeout: Some(conway_core::units::Duration::from_millis(interval_ms / 2)),
        healthy_threshold,
        unhealthy_threshold,
        ..Health::default()
    }
}

type Events = mpsc::UnboundedReceiver<HealthEvent<&'static str>>;

/// Waits for `future`, failing the test after a minute (of paused time, too).
async fn soon<F: Future>(future: F) -> F::Output {
    time::timeout(Duration::from_secs(60), future)
        .await
        .expect("in time")
}

async fn next(events: &mut Events) -> HealthEvent<&'static str> {
    soon(events.recv()).await.expect("the checker is alive")
}

#[tokio::test(start_paused = true)]
async fn detection_takes_exactly_interval_times_unhealthy_threshold() {
    let (checker, mut events) = Checker::new();
    let (probe, control, _) = mock();
    let added = Instant::now();
    checker.add_probe("a", probe, &health(1000, 1, 3));
    assert_eq!(checker.state(&"a"), Some(Starting));

    let event = next(&mut events).await;
    assert_eq!((event.id, event.from, event.to), ("a", Starting, Healthy));
    assert_eq!(event.reason, "check passed");
    assert_eq!(
        added.elapsed(),
        Duration::ZERO,
        "the first check runs at once"
    );
    assert_eq!(checker.state(&"a"), Some(Healthy));

    control.failing.store(true, Ordering::SeqCst);
    let event = next(&mut events).await;
    assert_eq!((event.from, event.to), (Healthy, Unhealthy));
    assert_eq!(event.reason, "HTTP 503");
    assert_eq!(added.elapsed(), Duration::from_secs(3));
    assert_eq!(checker.state(&"a"), Some(Unhealthy));
    let offsets: Vec<_> = control.calls().iter().map(|at| *at - added).collect();
    assert_eq!(offsets, (0..4).map(Duration::from_secs).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn recovery_takes_exactly_interval_times_healthy_threshold() {
    let (checker, mut events) = Checker::new();
    let (probe, control, _) = mock();
    control.failing.store(true, Ordering::SeqCst);
    checker.add_probe("a", probe, &health(200, 3, 2));

    let event = next(&mut events).await;
    assert_eq!((event.from, event.to), (Starting, Unhealthy));
    let failed = Instant::now();
    control.failing.store(false, Ordering::SeqCst);
    let event = next(&mut events).await;
    assert_eq!((event.from, event.to), (Unhealthy, Healthy));
    assert_eq!(event.reason, "3 consecutive checks passed");
    assert_eq!(failed.elapsed(), Duration::from_millis(600));
}

#[tokio::test(start_paused = true)]
async fn a_check_that_never_answers_times_out() {
    let (checker, mut events) = Checker::new();
    let (probe, control, _) = mock();
    control.hanging.store(true, Ordering::SeqCst);
    let added = Instant::now();
    checker.add_probe("a", probe, &health(1000, 1, 2));

    let event = next(&mut events).await;
    assert_eq!((event.from, event.to), (Starting, Unhealthy));
    assert_eq!(event.reason, "timed out after 500ms");
    // Checks at 0s and 1s, each given up 500ms later.
    assert_eq!(added.elapsed(), Duration::from_millis(1500));
}

/// A check that overruns its interval (possible only when `timeout > interval`) delays
/// the next ones instead of causing a burst of checks to catch up.
#[tokio::test(start_paused = true)]
async fn an_overrunning_check_delays_the_next_without_a_burst() {
    let (checker, mut events) = Checker::new();
    let (probe, control, _) = mock();
    control.hang_once.store(true, Ordering::SeqCst);
    let health = Health {
        timeout: Some(conway_core::units::Duration::from_millis(1500)),
        ..health(1000, 1, 3)
    };
    let added = Instant::now();
    checker.add_probe("a", probe, &health);
    assert_eq!(next(&mut events).await.to, Healthy);
    let offsets: Vec<_> = control.calls().iter().map(|at| *at - added).collect();
    assert_eq!(offsets, [Duration::ZERO, Duration::from_millis(1500)]);
    tokio::time::sleep_until(added + Duration::from_millis(3600)).await;
    let offsets: Vec<_> = control.calls().iter().map(|at| *at - added).collect();
    let expected = [0, 1500, 2500, 3500].map(Duration::from_millis);
    assert_eq!(offsets, expected);
}

#[tokio::test(start_paused = true)]
async fn removing_a_target_stops_its_task() {
    let (checker, mut events) = Checker::new();
    let (probe, control, dropped) = mock();
    checker.add_probe("a", probe, &health(1000, 1, 1));
    assert_eq!(next(&mut events).await.to, Healthy);

    // Still passing: nothing but the removal can end the task.
    assert!(checker.remove(&"a"));
    assert!(
        soon(dropped).await.is_err(),
        "the probe was dropped with its task"
    );
    control.failing.store(true, Ordering::SeqCst);
    let calls = control.calls().len();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(control.calls().len(), calls, "no check after removal");
    assert!(events.try_recv().is_err(), "no event after removal");
    assert_eq!(checker.state(&"a"), None);
    assert!(!checker.remove(&"a"));
    assert!(checker.is_empty());
}

#[tokio::test(start_paused = true)]
async fn adding_the_same_id_replaces_the_target() {
    let (checker, mut events) = Checker::new();
    let (first, _, first_dropped) = mock();
    checker.add_probe("a", first, &health(1000, 1, 1));
    assert_eq!(next(&mut events).await.to, Healthy);

    let (second, second_control, _) = mock();
    second_control.failing.store(true, Ordering::SeqCst);
    checker.add_probe("a", second, &health(1000, 1, 1));
    assert_eq!(checker.state(&"a"), Some(Starting));
    assert!(
        soon(first_dropped).await.is_err(),
        "the replaced probe was dropped"
    );
    assert_eq!(checker.len(), 1);
    let event = next(&mut events).await;
    assert_eq!((event.from, event.to), (Starting, Unhealthy));
    assert_eq!(checker.state(&"a"), Some(Unhealthy));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_checker_stops_every_task() {
    let (checker, mut events) = Checker::new();
    let (a, _, a_dropped) = mock();
    let (b, _, b_dropped) = mock();
    checker.add_probe("a", a, &health(1000, 1, 1));
    checker.add_probe("b", b, &health(1000, 1, 1));
    assert_eq!(checker.len(), 2);
    assert_eq!(next(&mut events).await.to, Healthy);
    assert_eq!(next(&mut events).await.to, Healthy);

    // Both still passing: nothing but the drop can end their tasks.
    drop(checker);
    assert!(soon(a_dropped).await.is_err());
    assert!(soon(b_dropped).await.is_err());
    // Every sender is gone with its task: the channel ends.
    assert_eq!(soon(events.recv()).await, None);
}

/// Fails its first check, but only once the test lets it: it blocks its worker thread
/// until then, so the task is running while the test removes it.
#[derive(Debug)]
struct BlockingProbe {
    entered: Mutex<std::sync::mpsc::Sender<()>>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
    _dropped: oneshot::Sender<()>,
}

#[async_trait]
impl Probe for BlockingProbe {
    async fn check(&self) -> Result<(), ProbeError> {
        let _ = self.entered.lock().send(());
        let _ = self.release.lock().recv();
        Err(ProbeError::Status(503))
    }
}

/// The race that aborting alone loses: the task is mid-check when the target is removed,
/// and would report the check's outcome before it next yields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_follows_a_removal_even_mid_check() {
    let (entered, on_entered) = std::sync::mpsc::channel();
    let (release, on_release) = std::sync::mpsc::channel();
    let (dropped, on_drop) = oneshot::channel();
    let probe = BlockingProbe {
        entered: Mutex::new(entered),
        release: Mutex::new(on_release),
        _dropped: dropped,
    };
    let (checker, mut events) = Checker::new();
    checker.add_probe("a", Box::new(probe), &health(1000, 1, 1));
    on_entered.recv().unwrap();
    assert!(checker.remove(&"a"));
    release.send(()).unwrap();
    assert!(soon(on_drop).await.is_err(), "the task ended");
    assert!(events.try_recv().is_err(), "an event followed the removal");
}

/// Real sockets and real time: waits on events, not on a clock.
#[tokio::test]
async fn a_tcp_target_turns_unhealthy_when_its_port_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (checker, mut events) = Checker::new();
    checker.add("a", addr, &health(50, 1, 2)).unwrap();

    let event = next(&mut events).await;
    assert_eq!((event.from, event.to), (Starting, Healthy));
    drop(listener);
    let event = next(&mut events).await;
    assert_eq!((event.from, event.to), (Healthy, Unhealthy));
    assert_eq!(event.reason, "connect refused");
}

#[tokio::test]
async fn an_invalid_http_path_is_refused() {
    let (checker, _events) = Checker::new();
    let health = Health {
        http: Some("health".into()),
        ..Health::default()
    };
    let error = checker
        .add("a", "127.0.0.1:9".parse().unwrap(), &health)
        .unwrap_err();
    assert_eq!(error, ProbeConfigError::InvalidPath("health".into()));
    assert!(!checker.contains(&"a"));
}
