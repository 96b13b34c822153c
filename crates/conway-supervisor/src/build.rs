//! Running the build commands before anything starts: each in its folder, in its own
//! process group (stopped with whatever it started if the build is cancelled), its
//! output kept (the last part of it) to show when it fails.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::plan::BuildStep;
use crate::process::{Group, Launcher, Spawner, resolve};

/// The most output kept of one build (its end), in bytes.
pub const MAX_BUILD_OUTPUT: usize = 1024 * 1024;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Its command cannot be started.
    #[error("cannot run `{command}`: {reason}")]
    NotStarted {
        /// The command line.
        command: String,
        /// Why.
        reason: String,
    },
    /// It ran and failed.
    #[error("`{command}` failed ({status})")]
    Failed {
        /// The command line.
        command: String,
        /// How it exited.
        status: String,
        /// Its output, stdout and stderr interleaved as they came (the last
        /// [`MAX_BUILD_OUTPUT`] bytes).
        output: String,
    },
}

/// Runs builds through a launcher, from a spawner of its own.
#[derive(Debug)]
pub struct Builder {
    launcher: Launcher,
    spawner: Spawner,
}

impl Builder {
    /// A builder starting commands as `launcher` says.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn new(launcher: Launcher) -> std::io::Result<Self> {
        Ok(Self {
            launcher,
            spawner: Spawner::new()?,
        })
    }

    /// Runs `step` to its end; how long it took. Cancelling (dropping) the future kills
    /// the build's process group.
    pub async fn run(&self, step: &BuildStep) -> Result<Duration, BuildError> {
        let started = Instant::now();
        let shown = step.command.join(" ");
        let not_started = |reason: String| BuildError::NotStarted {
            command: shown.clone(),
            reason,
        };
        let Some(name) = step.command.first() else {
            return Err(not_started("the command is empty".to_owned()));
        };
        let path = std::env::var_os("PATH");
        let program = resolve(name, &step.workdir, path.as_deref())
            .map_err(|e| not_started(e.to_string()))?;
        let mut command = self.launcher.command(&program, &step.command);
        command.current_dir(&step.workdir);
        let mut child = self
            .spawner
            .spawn(command)
            .await
            .map_err(|e| not_started(e.to_string()))?;
        let group = Group::new(child.id());
        let output = Arc::new(Mutex::new(Tail::default()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(collect(stdout, output.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(collect(stderr, output.clone())));
        }
        let status = child.wait().await;
        group.kill();
        for reader in readers {
            let _ = reader.await;
        }
        match status {
            Ok(status) if status.success() => Ok(started.elapsed()),
            Ok(status) => Err(BuildError::Failed {
                command: shown,
                status: status.to_string(),
                output: output.lock().text(),
            }),
            Err(error) => Err(BuildError::Failed {
                command: shown,
                status: format!("unknown ({error})"),
                output: output.lock().text(),
            }),
        }
    }
}

/// The last bytes of an output.
#[derive(Debug, Default)]
struct Tail {
    bytes: VecDeque<u8>,
    cut: bool,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(MAX_BUILD_OUTPUT);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.cut = true;
        }
    }

    fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let text = String::from_utf8_lossy(&[a, b].concat()).into_owned();
        if self.cut {
            format!("[… earlier output cut]\n{text}")
        } else {
            text
        }
    }
}

async fn collect(mut pipe: impl AsyncRead + Unpin, output: Arc<Mutex<Tail>>) {
    let mut buffer = vec![0; 16 * 1024];
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        output.lock().push(&buffer[..n]);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn step(command: &[&str], workdir: PathBuf) -> BuildStep {
        BuildStep {
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            workdir,
            services: vec!["a".into()],
        }
    }

    #[tokio::test]
    async fn a_successful_build_runs_in_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let builder = Builder::new(Launcher::Direct).unwrap();
        builder
            .run(&step(
                &["sh", "-c", "echo built > out.txt"],
                dir.path().to_owned(),
            ))
            .await
            .expect("the build passes");
        let written = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
        assert_eq!(written, "built\n");
    }

    #[tokio::test]
    async fn a_failed_build_reports_status_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let builder = Builder::new(Launcher::Direct).unwrap();
        let failed = builder
            .run(&step(
                &["sh", "-c", "echo compiling; echo 'error: no' >&2; exit 3"],
                dir.path().to_owned(),
            ))
            .await
            .expect_err("the build fails");
        match failed {
            BuildError::Failed {
                command,
                status,
                output,
            } => {
                assert!(command.starts_with("sh -c"));
                assert_eq!(status, "exit status: 3");
                assert!(output.contains("compiling\n"), "{output}");
                assert!(output.contains("error: no\n"), "{output}");
            }
            other => panic!("{other:?}"),
        }
        let missing = builder
            .run(&step(&["no-such-build-tool-x"], dir.path().to_owned()))
            .await
            .expect_err("not found");
        assert!(
            missing.to_string().contains("not found in PATH"),
            "{missing}"
        );
    }

    #[test]
    fn only_the_tail_of_a_huge_output_is_kept() {
        let mut tail = Tail::default();
        for _ in 0..3 {
            tail.push(&vec![b'a'; MAX_BUILD_OUTPUT]);
        }
        tail.push(b"the end");
        assert_eq!(tail.bytes.len(), MAX_BUILD_OUTPUT);
        assert!(tail.text().ends_with("the end"));
        assert!(tail.text().starts_with("[… earlier output cut]"));
    }
}
