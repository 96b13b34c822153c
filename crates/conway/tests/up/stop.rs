//! Clean stop on SIGTERM, no orphans on SIGKILL, and the wrapper every process is
//! started through.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{CONWAY, PATIENCE, Up, alive, header, service, wait_gone};

#[test]
fn sigterm_stops_everything_and_kills_what_ignores_it_after_the_grace() {
    let manifest = format!(
        "{}{}{}",
        header(),
        service("polite", &[], "replicas = 2"),
        service("stubborn", &["ignore-term"], ""),
    );
    let mut up = Up::start(&manifest, &[("CONWAY_STOP_GRACE", "700ms")]);
    let children = up.children();
    assert_eq!(children.len(), 3, "{children:?}");
    let stubborn = up.instance_pid("stubborn-1").expect("stubborn-1");
    let polite = up.instance_pid("polite-1").expect("polite-1");
    let asked = Instant::now();
    up.signal("TERM");
    // The polite ones go at once; the stubborn one stays until the grace is over.
    wait_gone(&[polite], PATIENCE);
    assert!(alive(stubborn) || asked.elapsed() >= Duration::from_millis(700));
    let status = up.exit(PATIENCE);
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "{}", up.stderr());
    assert!(
        took >= Duration::from_millis(700),
        "waited the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    for pid in children {
        assert!(!alive(pid), "{pid} is still running");
    }
}

#[test]
fn sigkill_of_up_leaves_no_orphans() {
    let manifest = format!(
        "{}{}{}",
        header(),
        service("a", &[], "replicas = 2"),
        service("b", &["ignore-term"], ""),
    );
    let mut up = Up::start(&manifest, &[]);
    let children = up.children();
    assert_eq!(children.len(), 3, "{children:?}");
    up.signal("KILL");
    // The parent-death signal takes them with it.
    wait_gone(&children, Duration::from_secs(5));
}

#[test]
fn the_wrapper_restores_sigpipe_and_needs_its_parent() {
    // Started by this test, the wrapper's parent is this process.
    let me = std::process::id().to_string();
    let output = Command::new(CONWAY)
        .args(["exec-child", "--parent", &me, "--program", "/bin/sh", "--"])
        .args([
            "sh",
            "-c",
            "grep SigIgn /proc/self/status; echo \"name=$0\"",
        ])
        .output()
        .expect("run the wrapper");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mask = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).expect("hex mask"))
        .expect("SigIgn line");
    assert_eq!(
        mask & (1 << 12),
        0,
        "SIGPIPE (13) must not be ignored: {stdout}"
    );
    assert!(stdout.contains("name=sh\n"), "{stdout}");
    // Another parent than the one named: the supervisor is gone, nothing runs.
    let output = Command::new(CONWAY)
        .args(["exec-child", "--parent", "1", "--program", "/bin/sh", "--"])
        .args(["sh", "-c", "echo ran"])
        .output()
        .expect("run the wrapper");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the supervisor exited before the instance started")
    );
}
