//! Driving the real `conway up`: a manifest in a temporary folder, the process started
//! with its stdout and stderr captured, the ready line awaited; plain HTTP to what it
//! serves; the process table read from `/proc`. Whatever happens, `up` and every
//! process it started are killed when the fixture drops.
//!
//! The binary is the `conway` that cargo built beside the running test (see
//! [`conway_binary`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use crate::{TEST_SERVICE, temp_dir, wait_for};

/// The `conway` binary cargo built for the running integration test: in the target
/// folder's profile directory, one level above the test's own `deps/`.
///
/// # Panics
///
/// When it is not there (a test of a crate that does not build the `conway` binary).
pub fn conway_binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    let profile = test
        .parent()
        .and_then(Path::parent)
        .expect("a test binary inside target/PROFILE/deps");
    let conway = profile.join(format!("conway{}", std::env::consts::EXE_SUFFIX));
    assert!(
        conway.is_file(),
        "no conway binary at {}: run the tests of the conway crate",
        conway.display()
    );
    conway
}

/// How long a condition may take on a busy machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A `conway up` process.
#[derive(Debug)]
pub struct Up {
    child: Child,
    /// Its folder: `conway.toml`, and `data/`.
    pub dir: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
    stdout: mpsc::Receiver<String>,
    /// The processes it started, as last seen.
    seen_children: Vec<u32>,
}

impl Up {
    /// Writes `manifest` and starts `conway up` on it, with `env` added.
    pub fn launch(manifest: &str, env: &[(&str, &str)]) -> Self {
        Self::launch_with(manifest, env, &[])
    }

    /// Writes `manifest` and starts `conway up ARGS` on it, with `env` added.
    pub fn launch_with(manifest: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let dir = temp_dir();
        std::fs::write(dir.path().join("conway.toml"), manifest).expect("write the manifest");
        Self::launch_in(dir, env, args)
    }

    /// Starts `conway up ARGS` on the manifest already in `dir`.
    pub fn launch_in(dir: tempfile::TempDir, env: &[(&str, &str)], args: &[&str]) -> Self {
        let manifest = dir.path().join("conway.toml");
        Self::launch_manifest(&manifest, dir, env, args)
    }

    /// Starts `conway up ARGS` on `manifest`, wherever it is (its relative folders hold
    /// from there), with its data in `dir`.
    pub fn launch_manifest(
        manifest: &Path,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let data = dir.path().join("data");
        let mut child = Command::new(conway_binary())
            .arg("up")
            .arg("-f")
            .arg(manifest)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(args)
            .env_remove("CONWAY_STOP_GRACE")
            .env("CONWAY_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start conway up");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = BufReader::new(child.stderr.take().expect("stderr"));
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while matches!(pipe.read_line(&mut line), Ok(n) if n > 0) {
                collected.lock().push_str(&line);
                line.clear();
            }
        });
        let (lines, stdout) = mpsc::channel();
        let pipe = BufReader::new(child.stdout.take().expect("stdout"));
        std::thread::spawn(move || {
            for line in pipe.lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            dir,
            stderr,
            stdout,
            seen_children: Vec::new(),
        }
    }

    /// Starts `conway up` and waits for its ready line.
    pub fn start(manifest: &str, env: &[(&str, &str)]) -> Running {
        Self::launch(manifest, env).ready()
    }

    /// Waits for the ready line.
    pub fn ready(self) -> Running {
        self.ready_within(PATIENCE)
    }

    /// Waits up to `timeout` for the ready line (builds come before it).
    pub fn ready_within(self, timeout: Duration) -> Running {
        match self.stdout.recv_timeout(timeout) {
            Ok(line) => {
                let ready: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}\n{}", self.stderr()));
                assert_eq!(ready["ready"], true, "{line}");
                Running { up: self, ready }
            }
            Err(_) => panic!("no ready line; stderr:\n{}", self.stderr()),
        }
    }

    /// Waits for `up` to exit; its status.
    pub fn exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "up still runs after {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lines it printed on stdout so far, beyond what was read.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.try_iter().collect()
    }

    /// Everything it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().clone()
    }

    /// Waits until its stderr holds `text`.
    pub fn wait_stderr(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.stderr().contains(text) {
            assert!(
                Instant::now() < deadline,
                "stderr never said {text:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `up`'s process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The processes `up` started that are running now (its children).
    pub fn children(&mut self) -> Vec<u32> {
        let children = children_of(self.pid());
        for pid in &children {
            if !self.seen_children.contains(pid) {
                self.seen_children.push(*pid);
            }
        }
        children
    }

    /// The pid of the process of instance `id` (its `CONWAY_INSTANCE`).
    pub fn instance_pid(&mut self, id: &str) -> Option<u32> {
        let wanted = format!("CONWAY_INSTANCE={id}");
        self.children().into_iter().find(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|b| *b == 0)
                    .any(|var| var == wanted.as_bytes())
            })
        })
    }

    /// Sends `signal` (`TERM`, `KILL`) to `up`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.children();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in &self.seen_children {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        if std::thread::panicking() {
            eprintln!("--- stderr of conway up ---\n{}", self.stderr());
        }
    }
}

/// A `conway up` that printed its ready line.
#[derive(Debug)]
pub struct Running {
    pub up: Up,
    /// The ready line.
    pub ready: Value,
}

impl Running {
    /// A URL of the ready line (`control_plane`, `gateway`…).
    pub fn url(&self, field: &str) -> String {
        self.ready[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {}", self.ready))
            .to_owned()
    }

    /// `GET /v1/services/{service}/instances` of its control plane.
    pub fn instances(&self, service: &str) -> Vec<Value> {
        let url = format!(
            "{}/v1/services/{service}/instances",
            self.url("control_plane")
        );
        let (status, body) = http("GET", &url, None);
        assert_eq!(status, 200, "{body}");
        let mut instances: Vec<Value> = serde_json::from_str(&body).expect("instances");
        instances.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        instances
    }

    /// The ids of the healthy instances of `service`, sorted.
    pub fn healthy(&self, service: &str) -> Vec<String> {
        self.instances(service)
            .iter()
            .filter(|i| i["state"] == "healthy")
            .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until the healthy instances of `service` are exactly `ids`.
    pub fn wait_healthy(&self, service: &str, ids: &[&str]) {
        wait_for(&format!("{service} healthy as {ids:?}"), PATIENCE, || {
            self.healthy(service) == ids
        });
    }
}

impl std::ops::Deref for Running {
    type Target = Up;
    fn deref(&self) -> &Up {
        &self.up
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Up {
        &mut self.up
    }
}

/// One HTTP/1.1 exchange over a fresh connection: the status and body.
pub fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The live processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, parent, state)| *parent == pid && state != "Z")
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    processes()
        .iter()
        .any(|(p, _, state)| *p == pid && state != "Z")
}

/// Waits until none of `pids` is alive.
pub fn wait_gone(pids: &[u32], timeout: Duration) {
    wait_for(&format!("processes {pids:?} to be gone"), timeout, || {
        !pids.iter().any(|pid| alive(*pid))
    });
}

/// (pid, parent pid, state) of every process.
fn processes() -> Vec<(u32, u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?.to_owned();
            let parent = fields.next()?.parse().ok()?;
            Some((pid, parent, state))
        })
        .collect()
}

/// A `[services.NAME]` table running the test service with `args`.
pub fn service(name: &str, args: &[&str], extra: &str) -> String {
    let mut run = vec!["python3".to_owned(), TEST_SERVICE.to_owned()];
    run.extend(args.iter().map(|a| (*a).to_owned()));
    format!(
        "[services.{name}]\nrun = {}\nhealth = {{ tcp = true, interval = \"200ms\" }}\n{extra}\n",
        toml_array(&run)
    )
}

/// `["a", "b"]`, quoted for TOML.
pub fn toml_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The manifest's header: gateway on a free port.
pub fn header() -> String {
    "[system]\nname = \"test\"\n\n[gateway]\nlisten = \"127.0.0.1:0\"\n\n".to_owned()
}

/// The path of a file in `up`'s folder.
pub fn in_dir(up: &Up, name: &str) -> PathBuf {
    up.dir.path().join(name)
}

/// Reads a file, or "" if it is not there.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
