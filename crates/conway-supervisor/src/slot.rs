//! One replica slot (`orders-2`): start its process, register and check it, capture its
//! output; when it exits, deregister it and start it again after a backoff; when asked
//! to stop, deregister it, then SIGTERM, grace, SIGKILL.

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use conway_core::api::{CheckedBy, InstanceState, RegisterInstance};
use conway_registry::health::Checker;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::env::{InstanceContext, environment, expand};
use crate::logs::{InstanceLog, Stream, capture};
use crate::plan::ServicePlan;
use crate::process::{Group, free_port, resolve, wait_listening};
use crate::registration::Registration;
use crate::restart::{Backoff, CrashTracker};
use crate::status::{Event, ReplicaState};
use crate::supervisor::Inner;
use crate::token;

/// Instance metadata: how often the supervisor restarted this slot before this process.
pub const RESTARTS: &str = "conway.restarts";

/// Instance metadata: when this process started, in milliseconds since the Unix epoch.
pub const STARTED_AT_MS: &str = "conway.started_at_ms";

/// Lines of output a crash-loop report shows.
const REPORTED_LINES: usize = 10;

/// How long the output of an exited process may take to drain.
const DRAIN: Duration = Duration::from_secs(1);

pub(crate) struct SlotContext {
    pub(crate) inner: Arc<Inner>,
    pub(crate) plan: Arc<ServicePlan>,
    pub(crate) index: u32,
    pub(crate) id: String,
    pub(crate) log: Arc<InstanceLog>,
}

/// How one run of the process ended.
enum Ended {
    /// Asked to stop; the process is gone.
    Stopped,
    /// It exited by itself, having been healthy for at most this long in a row.
    Exited {
        status: String,
        healthy_for: Duration,
    },
    /// It could not be started.
    NotStarted(String),
}

/// Runs the slot until `stop` says so (or its sender is gone).
pub(crate) async fn run(context: SlotContext, mut stop: watch::Receiver<bool>) {
    let policy = context.inner.options.restart;
    let mut backoff = Backoff::new(&policy);
    let mut crashes = CrashTracker::new(&policy);
    let mut looping = false;
    while !stopping(&stop) {
        let (status, healthy_for, not_started) = match incarnation(&context, &mut stop).await {
            Ended::Stopped => break,
            Ended::Exited {
                status,
                healthy_for,
            } => (status, healthy_for, None),
            Ended::NotStarted(reason) => {
                context.log.note(format!("cannot start: {reason}"));
                (
                    format!("not started: {reason}"),
                    Duration::ZERO,
                    Some(reason),
                )
            }
        };
        if healthy_for >= policy.reset_after {
            backoff.reset();
            crashes.clear();
            looping = false;
        }
        let entered_loop = crashes.record(Instant::now()) && !looping;
        looping |= entered_loop;
        if looping {
            backoff.saturate();
        }
        let delay = backoff.next_delay();
        context
            .inner
            .update(&context.plan.name, context.index, |replica| {
                replica.state = ReplicaState::Restarting;
                replica.crash_loop = looping;
                replica.pid = None;
                replica.restarts += 1;
                replica.last_exit = Some(status.clone());
            });
        let event = if entered_loop {
            Event::CrashLoop {
                instance: context.id.clone(),
                exits: crashes.recent(),
                window: policy.crash_loop_window,
                last_status: status,
                last_lines: context.log.tail(REPORTED_LINES),
                retry_every: policy.max_backoff,
            }
        } else if let Some(reason) = not_started {
            Event::CannotStart {
                instance: context.id.clone(),
                reason,
                restart_in: delay,
            }
        } else {
            Event::Exited {
                instance: context.id.clone(),
                status,
                restart_in: delay,
                crash_loop: looping,
            }
        };
        let _ = context.inner.events.send(event);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(&mut stop) => break,
        }
    }
}

/// One process of the slot, from start to exit or stop.
async fn incarnation(context: &SlotContext, stop: &mut watch::Receiver<bool>) -> Ended {
    let inner = &context.inner;
    let plan = &context.plan;
    let options = &inner.options;
    let port = match free_port(options.address) {
        Ok(port) => port,
        Err(error) => return Ended::NotStarted(format!("no free port: {error}")),
    };
    let token = match token::generate() {
        Ok(token) => token,
        Err(error) => return Ended::NotStarted(format!("no random token: {error}")),
    };
    let control_plane = inner.client.base_url().to_owned();
    let env = environment(
        &InstanceContext {
            service: &plan.name,
            instance: &context.id,
            port,
            control_plane: &control_plane,
            data_dir: options.service_dir(&plan.name),
            mesh: options.mesh.map(|mesh| (mesh, token.as_str())),
            upstreams: options.upstreams.get(&plan.name),
            otlp: options.otlp.as_deref(),
        },
        &plan.env,
    );
    let argv: Vec<String> = plan.run.iter().map(|arg| expand(arg, &env)).collect();
    let path = env
        .get("PATH")
        .map(std::ffi::OsString::from)
        .or_else(|| std::env::var_os("PATH"));
    let program = match resolve(&argv[0], &plan.workdir, path.as_deref()) {
        Ok(program) => program,
        Err(error) => return Ended::NotStarted(error.to_string()),
    };
    let mut command = options.launcher.command(&program, &argv);
    command.current_dir(&plan.workdir).envs(&env);
    let mut child = match inner.spawner.spawn(command).await {
        Ok(child) => child,
        Err(error) => return Ended::NotStarted(format!("cannot run {:?}: {error}", argv[0])),
    };
    let pid = child.id();
    let started_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let restarts = inner
        .status
        .borrow()
        .replica(&plan.name, context.index)
        .map_or(0, |r| r.restarts);
    let group = Group::new(pid);
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(capture(
            stdout,
            Stream::Stdout,
            context.log.clone(),
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(capture(
            stderr,
            Stream::Stderr,
            context.log.clone(),
        )));
    }
    inner.update(&plan.name, context.index, |replica| {
        replica.state = ReplicaState::Starting;
        replica.pid = pid;
        replica.port = Some(port);
    });
    tracing::debug!(instance = %context.id, ?pid, port, "started");

    let address = SocketAddr::new(options.address, port);
    let registration = Arc::new(Registration::new(
        inner.client.clone(),
        &plan.name,
        RegisterInstance {
            id: Some(context.id.clone()),
            address: options.address.to_string(),
            port,
            version: plan.version.clone(),
            zone: plan.zone.clone(),
            metadata: [
                (token::TOKEN_DIGEST.to_owned(), token::digest(&token)),
                (RESTARTS.to_owned(), restarts.to_string()),
                (STARTED_AT_MS.to_owned(), started_at_ms.to_string()),
            ]
            .into(),
            ttl: Some(options.ttl.into()),
            checked_by: CheckedBy::Registrant,
        },
    ));
    if let Err(error) = registration.register().await {
        tracing::warn!(instance = %context.id, %error, "cannot register; will try again");
    }
    let renewing = {
        let registration = registration.clone();
        let every = options.ttl / 3;
        tokio::spawn(async move { registration.keep_alive(every).await })
    };

    let (checker, mut health) = Checker::<String>::new();
    let listening = wait_listening(address, plan.health.interval.get());
    tokio::pin!(listening);
    let mut checking = false;
    let mut healthy_since: Option<Instant> = None;
    let mut healthy_for = Duration::ZERO;
    let outcome = loop {
        tokio::select! {
            status = child.wait() => break Some(status),
            () = &mut listening, if !checking => {
                checking = true;
                if let Err(error) = checker.add(context.id.clone(), address, &plan.health) {
                    registration.report(InstanceState::Unhealthy, error.to_string()).await;
                }
            }
            Some(event) = health.recv() => {
                match (event.to, healthy_since) {
                    (InstanceState::Healthy, None) => healthy_since = Some(Instant::now()),
                    (InstanceState::Healthy, Some(_)) => {}
                    (_, Some(since)) => {
                        healthy_for = healthy_for.max(since.elapsed());
                        healthy_since = None;
                    }
                    (_, None) => {}
                }
                let state = match event.to {
                    InstanceState::Healthy => ReplicaState::Healthy,
                    InstanceState::Unhealthy => ReplicaState::Unhealthy,
                    InstanceState::Starting => ReplicaState::Starting,
                };
                tracing::debug!(instance = %context.id, from = %event.from, to = %event.to, reason = %event.reason, "health changed");
                // The control plane first: once the supervisor says healthy, the registry does.
                registration.report(event.to, event.reason).await;
                inner.update(&plan.name, context.index, |replica| replica.state = state);
            }
            () = stopped(stop) => break None,
        }
    };
    if let Some(since) = healthy_since {
        healthy_for = healthy_for.max(since.elapsed());
    }
    drop(checker);
    renewing.abort();
    // Out of the registry before the process goes, so no new request is sent its way.
    registration.deregister().await;
    let (ended, note) = match outcome {
        None => {
            inner.update(&plan.name, context.index, |replica| {
                replica.state = ReplicaState::Stopping;
            });
            // The proxies stop choosing it as soon as they see the deregistration; what
            // they sent just before finishes meanwhile.
            tokio::time::sleep(options.drain).await;
            let (status, killed) = group.stop(&mut child, options.stop_grace).await;
            let status = describe(status);
            let how = if killed {
                ", killed after the grace period"
            } else {
                ""
            };
            (Ended::Stopped, format!("stopped ({status}{how})"))
        }
        Some(status) => {
            let status = describe(status);
            let note = format!("exited ({status})");
            (
                Ended::Exited {
                    status,
                    healthy_for,
                },
                note,
            )
        }
    };
    // Whatever the process started goes with it.
    group.kill();
    for reader in readers {
        let _ = tokio::time::timeout(DRAIN, reader).await;
    }
    context.log.note(note);
    ended
}

/// `exit status: 1`, `signal: 9 (SIGKILL)`.
fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("unknown ({error})"),
    }
}

fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Completes when the slot is asked to stop, or nobody can ask any more.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
