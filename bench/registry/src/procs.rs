//! The processes under test: started here, killed when their guard drops (on success,
//! error, panic or Ctrl-C alike), and measured through `/proc`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

/// A child process, killed and reaped on drop, with the folder it wrote into.
#[derive(Debug)]
pub(crate) struct Guarded {
    name: &'static str,
    child: Child,
    /// Kept open so the child never writes into a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
    /// Removed after the child is gone (fields drop after `Drop::drop`).
    dir: TempDir,
}

impl Guarded {
    /// The child's process id, for `/proc`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the child's stderr goes.
    fn log(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    /// The last lines the child wrote to stderr, to explain a failure.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        tracing_line(&format!("stopped {} (pid {})", self.name, self.child.id()));
    }
}

fn tracing_line(message: &str) {
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!("registry-bench: {message}");
    }
}

/// A running `conway server` and its API's base URL.
#[derive(Debug)]
pub(crate) struct Conway {
    pub(crate) url: String,
    pub(crate) process: Guarded,
}

/// Starts `conway server` on a loopback port chosen by the OS, with a fresh data folder
/// (or `--in-memory`), and waits for its ready line.
pub(crate) async fn start_conway(binary: &Path, in_memory: bool) -> anyhow::Result<Conway> {
    let dir = TempDir::with_prefix("conway-bench-")?;
    let mut command = Command::new(binary);
    command
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"));
    if in_memory {
        command.arg("--in-memory");
    }
    command
        .env("CONWAY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(dir.path().join("stderr.log"))?);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut process = Guarded {
        name: "conway server",
        child,
        _stdout: None,
        dir,
    };
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).map(|_| (line, reader))
    });
    let (line, reader) = match tokio::time::timeout(Duration::from_secs(20), read).await {
        Ok(read) => read??,
        Err(_) => bail!(
            "conway server printed no ready line in 20 s:\n{}",
            process.tail()
        ),
    };
    process._stdout = Some(reader);
    let ready: serde_json::Value = serde_json::from_str(&line).with_context(|| {
        format!(
            "conway server's ready line {line:?} is not JSON:\n{}",
            process.tail()
        )
    })?;
    let url = ready["control_plane"]
        .as_str()
        .with_context(|| format!("no control_plane in the ready line {line:?}"))?
        .to_owned();
    tracing_line(&format!(
        "started conway server at {url} (pid {})",
        process.pid()
    ));
    Ok(Conway { url, process })
}

/// A running etcd and its client URL.
#[derive(Debug)]
pub(crate) struct Etcd {
    pub(crate) url: String,
    pub(crate) version: String,
    _process: Guarded,
}

/// Finds `etcd` on `PATH`.
pub(crate) fn find_etcd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
}

/// Starts a one-member etcd on loopback with a fresh data folder and waits until it
/// answers `/health`.
pub(crate) async fn start_etcd(binary: &Path, client: &reqwest::Client) -> anyhow::Result<Etcd> {
    let version = Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_default()
        .replace("etcd Version: ", "");
    let dir = TempDir::with_prefix("etcd-bench-")?;
    let (client_port, peer_port) = (free_port()?, free_port()?);
    let url = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let child = Command::new(binary)
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("bench={peer}")])
        .args(["--initial-cluster-state", "new"])
        .args(["--logger", "zap", "--log-outputs", "stderr"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.path().join("stderr.log"))?)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let process = Guarded {
        name: "etcd",
        child,
        _stdout: None,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let healthy = client
            .get(format!("{url}/health"))
            .send()
            .await
            .ok()
            .filter(|response| response.status().is_success());
        if let Some(response) = healthy
            && response.text().await.unwrap_or_default().contains("true")
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("etcd did not become healthy in 20 s:\n{}", process.tail());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing_line(&format!("started etcd {version} at {url}"));
    Ok(Etcd {
        url,
        version,
        _process: process,
    })
}

/// A port that was free a moment ago (etcd cannot bind port 0 and report it).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A process's resident memory, in bytes (`VmRSS` in `/proc/PID/status`).
pub(crate) fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .context("no VmRSS in /proc/PID/status")?;
    Ok(kib * 1024)
}

/// A process's user + system CPU time so far (`/proc/PID/stat`, fields 14 and 15).
pub(crate) fn cpu_time(pid: u32, ticks_per_second: u64) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its `)` do not.
    let rest = stat.rsplit_once(')').context("malformed /proc/PID/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short /proc/PID/stat")?.parse()?)
    };
    // After `)`: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(
        total as f64 / ticks_per_second as f64,
    ))
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on Linux almost always).
pub(crate) fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}
