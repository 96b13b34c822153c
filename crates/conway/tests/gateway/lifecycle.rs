//! The gateway's life: graceful shutdown, serving without the control plane (and
//! starting without it, from its saved state), and no descriptor left behind by clients
//! that walk away.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use conway_test_support::Gateway;
use conway_test_support::upstream::{Reply, server};

use crate::fixture::{System, conway, count, eventually, external};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let up = server()
        .named("up")
        .route(
            "/slow",
            Reply::text("finished").delay(Duration::from_millis(1500)),
        )
        .run();
    let mut system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external("web", &[&up], ""),
    ))
    .await;
    let request = tokio::spawn(system.http.get(system.url("/slow")).send());
    eventually("the request upstream", || async { up.requests() == 1 }).await;

    let address = system.address();
    let exited = tokio::task::spawn_blocking(move || {
        let code = system.gateway.process.terminate(Duration::from_secs(15));
        (code, system)
    });
    // The listener closes at once; the request in flight goes on.
    eventually("the gateway to stop accepting", || async {
        TcpStream::connect(&address).is_err()
    })
    .await;
    let response = request.await.expect("a task").expect("an answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("a body"), "finished");
    let (code, _system) = exited.await.expect("a task");
    assert_eq!(code, Some(0), "a graceful exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_control_plane_the_gateway_serves_and_restarts_from_its_saved_state() {
    let (a, b) = (server().named("a").run(), server().named("b").run());
    let mut system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external("web", &[&a, &b], ""),
    ))
    .await;
    system.plane.process.kill();

    let served = system.spread("/", 40, 4).await;
    assert_eq!(
        count(&served, "a") + count(&served, "b"),
        40,
        "served without the control plane: {served:?}"
    );

    assert_eq!(
        system.gateway.process.terminate(Duration::from_secs(15)),
        Some(0)
    );
    // Started again on the same folder while the control plane is still away: it must
    // be ready from what it saved, and serve. This time on one thread (tokio's
    // current-thread runtime, as the benchmark runs it).
    system.gateway = Gateway::start(
        conway(),
        &system.plane.url,
        &system.gateway.data_dir,
        &["--threads", "1"],
    );
    let served = system.spread("/", 40, 4).await;
    assert_eq!(
        count(&served, "a") + count(&served, "b"),
        40,
        "served from the saved state: {served:?}"
    );
    assert!(
        count(&served, "a") > 0 && count(&served, "b") > 0,
        "{served:?}"
    );
}

/// Descriptors the process holds now.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors")
        .count()
}

/// Resident memory of the process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_abandoned_connections_leave_nothing_behind() {
    let up = server().named("up").run();
    let system = System::start(&format!(
        "[[gateway.routes]]\npath = \"/\"\nservice = \"web\"\n\n{}",
        external("web", &[&up], ""),
    ))
    .await;
    let pid = system.gateway.process.pid();
    // Warm up: the pool to the instance and the runtime's threads settle first.
    system.spread("/", 40, 8).await;
    let (fds, memory) = (descriptors(pid), resident_kib(pid));

    let address = system.address();
    tokio::task::spawn_blocking(move || {
        for batch in 0..10 {
            let mut open = Vec::new();
            for i in 0..100 {
                let mut stream = TcpStream::connect(&address).expect("connect");
                // Nothing; half a request line; headers without their end; a whole
                // request whose answer is never read.
                let sent: &[u8] = match (batch * 100 + i) % 4 {
                    0 => b"",
                    1 => b"GET /half",
                    2 => b"GET / HTTP/1.1\r\nHost: x\r\nX-Unfinished: ",
                    _ => b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                };
                let _ = stream.write_all(sent);
                open.push(stream);
            }
            drop(open);
        }
    })
    .await
    .expect("the connections");

    eventually("the descriptors back near their baseline", || async {
        descriptors(pid) <= fds + 8
    })
    .await;
    let grown = resident_kib(pid).saturating_sub(memory);
    assert!(grown < 32 * 1024, "resident memory grew by {grown} KiB");
    assert_eq!(system.get("/").await.status(), 200, "still serving");
}
