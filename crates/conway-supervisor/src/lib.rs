//! Conway's supervisor: runs a system's services as processes on one machine.
//!
//! For each service with a `run` command it keeps the declared number of replicas
//! running, each a real child process:
//!
//! - **Start**: a free loopback port per replica; the command line with `$PORT`,
//!   `$CONWAY_SERVICE`, `$CONWAY_INSTANCE`, `$DATA_DIR`… expanded ([`env::expand`]);
//!   the folder `workdir`; the environment ARCHITECTURE.md lists ([`env::environment`])
//!   plus the manifest's `env`. Services start in `depends_on` order (a cycle starts
//!   together, [`order`]), each once its dependencies have a healthy instance, or after
//!   a timeout that says which is not ready.
//! - **Registration and health**: each replica is registered with the control plane —
//!   through its API client only — as `starting`, with a stable id (`orders-2`), a
//!   lease renewed by heartbeats, and the SHA-256 of its mesh token; the registry's
//!   health [`Checker`](conway_registry::health::Checker) checks it, and each change is
//!   reported. Its metadata says how often the slot was restarted ([`RESTARTS`]) and
//!   when this process started ([`STARTED_AT_MS`]). It is deregistered before it is
//!   stopped.
//! - **Output**: stdout and stderr line by line, capped and rate-limited, in a ring per
//!   instance and to every [`LogSink`] ([`logs`]).
//! - **Crashes**: an exited replica is deregistered and restarted after an exponential
//!   backoff with jitter; five exits within a minute make a crash loop, reported once
//!   with the last exit status and output lines. A replica in a crash loop is **not**
//!   given up: it is tried again at the longest backoff (30 s), as Kubernetes does,
//!   since what it lacks (a database, a file, a port) may come back; it leaves the crash
//!   loop after staying healthy for `reset_after` ([`RestartPolicy`]).
//! - **Stop**: SIGTERM to the replica's process group, a grace period, then SIGKILL.
//!   No process outlives the supervisor, even one killed with SIGKILL: with
//!   [`Launcher::Wrapper`] each child arms the parent-death signal before it execs
//!   (see [`process::exec_child`] for why a wrapper, not `pre_exec`).
//! - **Scale**: [`Supervisor::scale`] adds replicas or removes the newest ones; the
//!   [`Scale`] trait is what an HTTP route needs of it. [`autoscale`] scales services
//!   with `autoscale` on the in-flight requests the proxies report, as Knative does.
//! - **Deploy**: rolling, health-gated replacement, or a canary with a run-time split
//!   until promoted or rolled back ([`deploy`](Deploy)); [`Supervisor::apply`] brings
//!   the supervised services to a changed manifest.
//! - **Chaos**: [`ChaosJobs`] kill running instances with SIGKILL, once or at an
//!   interval, each kill recorded in the [`history`].
//!
//! Builds run before, through [`build::Builder`], once per distinct command and folder
//! ([`plan::build_steps`]).

pub mod autoscale;
pub mod build;
mod chaos;
mod deploy;
pub mod env;
pub mod history;
pub mod logs;
mod operate;
mod options;
pub mod order;
pub mod plan;
pub mod process;
mod registration;
pub mod restart;
mod scale;
mod slot;
mod status;
mod supervisor;
pub mod token;

pub use chaos::{ChaosError, ChaosJobs, MIN_INTERVAL};
pub use deploy::{Deploy, DeployError, FAILED_STARTS};
pub use logs::{ChannelSink, LogLine, LogOptions, LogSink};
pub use operate::SupervisedChanges;
pub use options::SupervisorOptions;
pub use process::Launcher;
pub use restart::RestartPolicy;
pub use scale::{MAX_REPLICAS, Scale, ScaleError, Scaled};
pub use slot::{RESTARTS, STARTED_AT_MS};
pub use status::{Event, ReplicaState, ReplicaStatus, ServiceStatus, Status};
pub use supervisor::{Supervisor, SupervisorError};
