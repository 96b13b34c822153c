//! Fixtures for Conway's integration tests: a real `conway` process started on port 0
//! and found through its ready line, killed when dropped (even when a test panics), and
//! waiting on conditions instead of sleeping.
//!
//! It knows how to start and stop processes ([`up`] drives a whole `conway up`), and
//! [`upstream`] serves as the instances behind them; tests speak HTTP to them as users do.

pub mod up;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `conway` component, killed and reaped on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// The ready line it printed, parsed.
    pub ready: serde_json::Value,
    /// What it printed on stdout after the ready line, kept open so it never blocks.
    _stdout: BufReader<ChildStdout>,
}

impl Process {
    /// Starts `binary` with `args` and waits (up to 30 s) for its JSON ready line.
    ///
    /// # Panics
    ///
    /// If it cannot start, exits, or prints no ready line in time.
    pub fn start(binary: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .env("CONWAY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        // Reading blocks until the line or EOF; a process that exits gives EOF.
        let read = stdout.read_line(&mut line);
        match read {
            Ok(n) if n > 0 => {}
            _ => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!(
                    "{} {args:?} printed no ready line ({status})",
                    binary.display()
                );
            }
        }
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
        assert_eq!(ready["ready"], true, "ready line: {line}");
        Self {
            child,
            ready,
            _stdout: stdout,
        }
    }

    /// The address of one of the ready line's fields (`control_plane`, `gateway`…).
    pub fn url(&self, field: &str) -> String {
        self.ready[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field:?} in {}", self.ready))
            .to_owned()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (up to `timeout`) for it to exit; its exit code, or
    /// `None` if it had to be killed.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A control plane (`conway server`) on a free loopback port with its own data folder.
#[derive(Debug)]
pub struct ControlPlane {
    /// The process.
    pub process: Process,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data folder.
    pub data_dir: PathBuf,
}

impl ControlPlane {
    /// Starts `conway server` with `--data-dir data_dir` and any extra arguments.
    pub fn start(binary: &Path, data_dir: &Path, extra: &[&str]) -> Self {
        let data = data_dir.to_str().expect("UTF-8 path");
        let mut args = vec!["server", "--listen", "127.0.0.1:0", "--data-dir", data];
        args.extend_from_slice(extra);
        let process = Process::start(binary, &args);
        let url = process.url("control_plane");
        Self {
            process,
            url,
            data_dir: data_dir.to_owned(),
        }
    }
}

/// A gateway (`conway gateway`) following a control plane, with its client and admin
/// listeners on free loopback ports.
#[derive(Debug)]
pub struct Gateway {
    /// The process.
    pub process: Process,
    /// `http://127.0.0.1:PORT`, where clients connect.
    pub url: String,
    /// `http://127.0.0.1:PORT`, the admin listener (`/healthz`, `/metrics`).
    pub admin: String,
    /// Its data folder (the saved state).
    pub data_dir: PathBuf,
}

impl Gateway {
    /// Starts `conway gateway --server server` with `--data-dir data_dir` and any extra
    /// arguments; returns once it has the control plane's routes.
    pub fn start(binary: &Path, server: &str, data_dir: &Path, extra: &[&str]) -> Self {
        let data = data_dir.to_str().expect("UTF-8 path");
        let mut args = vec![
            "gateway",
            "--server",
            server,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ];
        args.extend_from_slice(extra);
        let process = Process::start(binary, &args);
        Self {
            url: process.url("gateway"),
            admin: process.url("admin"),
            process,
            data_dir: data_dir.to_owned(),
        }
    }
}

/// Waits until `condition` holds, checking every 10 ms, for at most `timeout`.
///
/// # Panics
///
/// When time runs out, naming `what` was awaited.
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A small HTTP service in Python (`$PORT`, `/health`, `/env`, …) for supervisor tests.
pub const TEST_SERVICE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/service.py");

/// A Python service traced with the OpenTelemetry SDK: each request a server span that
/// calls `http://$DOWNSTREAM/hello` through the mesh in a client span. Its interpreter
/// needs the packages of `examples/shop/recommendations/requirements.txt`.
pub const OTEL_SERVICE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/otel_service.py");

/// A temporary folder, removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}
