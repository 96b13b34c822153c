//! Starting and stopping processes: each in a process group of its own (so a stop
//! reaches whatever it started), through the [`Launcher`] (so none outlives the
//! supervisor), spawned from one long-lived thread (the parent-death signal fires when
//! the *thread* that started a child ends, and runtime threads come and go).

mod exec;
mod resolve;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::time::Instant;

pub use exec::exec_child;
pub use resolve::{ResolveError, resolve};

/// How commands are started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Launcher {
    /// Directly. A process started so outlives a supervisor killed with SIGKILL.
    #[default]
    Direct,
    /// Through a wrapper that arms the parent-death signal and execs the command:
    /// `PROGRAM ARGS... --parent PID --program FILE -- ARGV...`, which must end in
    /// [`exec_child`] (the `conway` binary's `exec-child` verb does).
    Wrapper {
        /// The wrapper's program.
        program: PathBuf,
        /// Its first arguments.
        args: Vec<OsString>,
    },
}

impl Launcher {
    /// A command that runs `program` (a resolved file) with `argv` (whose first item is
    /// the name the program sees), in its own process group, with no input and piped
    /// output, killed if its handle is dropped.
    pub fn command(&self, program: &Path, argv: &[String]) -> Command {
        let mut command = match self {
            Self::Direct => {
                let mut command = Command::new(program);
                if let Some((name, args)) = argv.split_first() {
                    command.arg0(name).args(args);
                }
                command
            }
            Self::Wrapper {
                program: wrapper,
                args,
            } => {
                let mut command = Command::new(wrapper);
                command
                    .args(args)
                    .arg("--parent")
                    .arg(std::process::id().to_string())
                    .arg("--program")
                    .arg(program)
                    .arg("--")
                    .args(argv);
                command
            }
        };
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// Spawns commands from one dedicated thread that lives as long as the spawner, so the
/// parent-death signal of a child fires when the supervisor dies, not when a runtime
/// thread happens to retire.
#[derive(Debug)]
pub struct Spawner {
    requests: std::sync::mpsc::Sender<SpawnRequest>,
}

struct SpawnRequest {
    command: Command,
    reply: oneshot::Sender<io::Result<Child>>,
}

impl Spawner {
    /// Starts the spawning thread, bound to the current Tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn new() -> io::Result<Self> {
        let runtime = tokio::runtime::Handle::current();
        let (requests, queue) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("conway-spawner".to_owned())
            .spawn(move || {
                let _entered = runtime.enter();
                for mut request in queue {
                    let _ = request.reply.send(request.command.spawn());
                }
            })?;
        Ok(Self { requests })
    }

    /// Spawns `command` from the spawning thread.
    pub async fn spawn(&self, command: Command) -> io::Result<Child> {
        let stopped = || io::Error::other("the spawning thread has stopped");
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(SpawnRequest { command, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A process group, SIGKILLed when dropped unless released: whatever happens to the
/// task that started it, its processes do not stay behind.
#[derive(Debug)]
pub struct Group {
    pgid: Option<Pid>,
}

impl Group {
    /// The group led by `pid` (a child started with `process_group(0)`).
    pub fn new(pid: Option<u32>) -> Self {
        Self {
            pgid: pid
                .and_then(|pid| i32::try_from(pid).ok())
                .map(Pid::from_raw),
        }
    }

    /// Sends `signal` to every process of the group; whether any received it.
    pub fn signal(&self, signal: Signal) -> bool {
        self.pgid.is_some_and(|pgid| killpg(pgid, signal).is_ok())
    }

    /// Whether any process of the group is left (zombies waiting to be reaped by
    /// someone else do not count).
    pub fn alive(&self) -> bool {
        self.pgid.is_some_and(|pgid| {
            if cfg!(target_os = "linux") {
                !group_members(pgid.as_raw()).is_empty()
            } else {
                !matches!(killpg(pgid, None), Err(nix::errno::Errno::ESRCH))
            }
        })
    }

    /// Stops the group: SIGTERM, up to `grace` for the leader (`child`) and the rest to
    /// exit, then SIGKILL. Returns the leader's exit status and whether it took SIGKILL.
    pub async fn stop(&self, child: &mut Child, grace: Duration) -> (io::Result<ExitStatus>, bool) {
        let deadline = Instant::now() + grace;
        self.signal(Signal::SIGTERM);
        let status = match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                self.signal(Signal::SIGKILL);
                return (child.wait().await, true);
            }
        };
        // The leader is gone; the rest of the group gets what is left of the grace.
        while self.alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let killed = self.alive() && self.signal(Signal::SIGKILL);
        (status, killed)
    }

    /// Kills what is left of the group and forgets it.
    pub fn kill(mut self) {
        self.signal(Signal::SIGKILL);
        self.pgid = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// The live (not zombie) processes of process group `pgid`, from `/proc` (Linux).
pub fn group_members(pgid: i32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // `PID (COMM) STATE PPID PGRP ...`; COMM may hold anything, so split after
            // its last parenthesis.
            let mut fields = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_ascii_whitespace();
            let state = fields.next().unwrap_or("Z");
            let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
            group == Some(pgid) && !matches!(state, "Z" | "X")
        })
        .collect()
}

/// A free port on `ip`, found by binding port 0 and releasing it. Another process may
/// take it before the instance binds it; the instance then fails to start and is
/// restarted on another port, like any instance that exits.
pub fn free_port(ip: std::net::IpAddr) -> io::Result<u16> {
    let listener = std::net::TcpListener::bind((ip, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Waits until something accepts TCP connections at `address`, trying every 25 ms, for
/// at most `limit`: the first real health check then runs as soon as the instance
/// listens, not a whole interval later.
pub async fn wait_listening(address: std::net::SocketAddr, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let attempt = tokio::net::TcpStream::connect(address);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(250), attempt).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[cfg(test)]
mod tests;
