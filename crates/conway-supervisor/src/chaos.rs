//! Chaos kills: jobs that SIGKILL a running instance of a service — the one named, or
//! a random one — at once and then every interval for a while, as a crash would. They
//! run in the supervisor's process, so they go on after the CLI that started them
//! returns, until their time is up or they are stopped. Every kill is recorded in the
//! [`History`](crate::history::History) as a `chaos.kill` event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conway_core::api::{ChaosJob, ChaosJobState, ChaosKillRequest};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::history::now_us;
use crate::supervisor::Supervisor;

/// The shortest interval between kills.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Why a chaos request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChaosError {
    /// No such supervised service.
    #[error("no service named {0:?} runs here")]
    Unknown(String),
    /// No such instance.
    #[error("no instance {0:?} runs here")]
    NoInstance(String),
    /// The instance is not running now.
    #[error("instance {0:?} is not running (it is {1})")]
    NotRunning(String, String),
    /// The service has no running instance.
    #[error("{0} has no running instance to kill")]
    NothingToKill(String),
    /// A malformed request.
    #[error("{0}")]
    Invalid(String),
    /// No such job.
    #[error("no chaos job {0:?}")]
    NoJob(String),
}

/// The chaos jobs of one supervisor. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct ChaosJobs {
    supervisor: Supervisor,
    jobs: Mutex<Vec<Job>>,
    /// Jobs started so far, for their ids.
    next: AtomicU64,
}

#[derive(Debug)]
struct Job {
    state: Arc<Mutex<ChaosJob>>,
    stop: watch::Sender<bool>,
}

impl ChaosJobs {
    /// No jobs yet, killing instances of `supervisor`.
    pub fn new(supervisor: Supervisor) -> Self {
        Self {
            supervisor,
            jobs: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
        }
    }

    /// Checks `request`, kills once at once, and (with `every`) starts a job that
    /// kills again every interval until `for` ends or it is stopped.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start(&self, request: ChaosKillRequest) -> Result<ChaosJob, ChaosError> {
        let every = request.every.map(|e| e.get());
        if every.is_some_and(|e| e < MIN_INTERVAL) {
            return Err(ChaosError::Invalid(format!(
                "--every must be at least {}",
                conway_core::units::Duration::from(MIN_INTERVAL)
            )));
        }
        if request.duration.is_some() && every.is_none() {
            return Err(ChaosError::Invalid(
                "--for needs --every: without it, one instance is killed once".into(),
            ));
        }
        let Some(running) = self.supervisor.running_instances(&request.service) else {
            return Err(ChaosError::Unknown(request.service.clone()));
        };
        if let Some(instance) = &request.instance
            && !self.supervisor.knows(&request.service, instance)
        {
            return Err(ChaosError::NoInstance(instance.clone()));
        }
        if request.instance.is_none() && running.is_empty() {
            return Err(ChaosError::NothingToKill(request.service.clone()));
        }
        let id = format!("chaos-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let state = Arc::new(Mutex::new(ChaosJob {
            id: id.clone(),
            request: request.clone(),
            state: ChaosJobState::Running,
            kills: 0,
            last_error: None,
            started_us: now_us(),
        }));
        // The first kill at once, so that a request that cannot kill anything says so.
        if let Err(error) = kill_one(&self.supervisor, &state) {
            if every.is_none() {
                return Err(error);
            }
            state.lock().last_error = Some(error.to_string());
        }
        let (stop, stopped) = watch::channel(false);
        match every {
            None => state.lock().state = ChaosJobState::Finished,
            Some(every) => {
                let deadline = request.duration.map(|d| Instant::now() + d.get());
                tokio::spawn(run(
                    self.supervisor.clone(),
                    state.clone(),
                    every,
                    deadline,
                    stopped,
                ));
            }
        }
        let job = state.lock().clone();
        self.jobs.lock().push(Job { state, stop });
        Ok(job)
    }

    /// Every job, the oldest first.
    pub fn jobs(&self) -> Vec<ChaosJob> {
        self.jobs
            .lock()
            .iter()
            .map(|j| j.state.lock().clone())
            .collect()
    }

    /// Stops job `id` (or, with `None`, every running job); the jobs as they ended.
    pub fn stop(&self, id: Option<&str>) -> Result<Vec<ChaosJob>, ChaosError> {
        let jobs = self.jobs.lock();
        let chosen: Vec<&Job> = match id {
            Some(id) => vec![
                jobs.iter()
                    .find(|j| j.state.lock().id == id)
                    .ok_or_else(|| ChaosError::NoJob(id.to_owned()))?,
            ],
            None => jobs
                .iter()
                .filter(|j| j.state.lock().state == ChaosJobState::Running)
                .collect(),
        };
        Ok(chosen
            .into_iter()
            .map(|job| {
                let _ = job.stop.send(true);
                let mut state = job.state.lock();
                if state.state == ChaosJobState::Running {
                    state.state = ChaosJobState::Stopped;
                }
                state.clone()
            })
            .collect())
    }
}

impl Drop for ChaosJobs {
    fn drop(&mut self) {
        for job in self.jobs.get_mut().iter() {
            let _ = job.stop.send(true);
        }
    }
}

/// Kills every `every` until `deadline` or `stop`.
async fn run(
    supervisor: Supervisor,
    state: Arc<Mutex<ChaosJob>>,
    every: Duration,
    deadline: Option<Instant>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next = Instant::now() + every;
    loop {
        if let Some(deadline) = deadline.filter(|d| next > *d) {
            // No kill left before the deadline: finished then, unless stopped first
            // (`stop` says so itself).
            let stopped = tokio::time::timeout_at(deadline, stop.wait_for(|s| *s))
                .await
                .is_ok();
            if !stopped {
                state.lock().state = ChaosJobState::Finished;
            }
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if *stop.borrow() {
            return;
        }
        let result = kill_one(&supervisor, &state);
        state.lock().last_error = result.err().map(|e| e.to_string());
        next += every;
    }
}

/// Kills the job's instance, or a random running one of its service, and records it.
fn kill_one(supervisor: &Supervisor, state: &Mutex<ChaosJob>) -> Result<(), ChaosError> {
    let (service, instance, id) = {
        let job = state.lock();
        (
            job.request.service.clone(),
            job.request.instance.clone(),
            job.id.clone(),
        )
    };
    let target = match instance {
        Some(instance) => instance,
        None => {
            let running = supervisor.running_instances(&service).unwrap_or_default();
            if running.is_empty() {
                return Err(ChaosError::NothingToKill(service));
            }
            running[fastrand::usize(..running.len())].clone()
        }
    };
    supervisor.kill(&target)?;
    state.lock().kills += 1;
    supervisor.history().record(
        "chaos.kill",
        Some(&service),
        Some(&target),
        format!("{id} killed {target} (SIGKILL)"),
    );
    Ok(())
}
