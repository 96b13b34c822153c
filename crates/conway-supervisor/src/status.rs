//! What the supervisor reports: where each replica stands ([`Status`], a snapshot
//! updated on every change), and what happened to it ([`Event`], for people).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::logs::LogLine;

/// Where one replica stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Its process is starting; its checks have not passed yet.
    Starting,
    /// Its checks pass.
    Healthy,
    /// Its checks fail.
    Unhealthy,
    /// It exited and waits for its restart.
    Restarting,
    /// It is being stopped.
    Stopping,
    /// It was stopped.
    Stopped,
}

impl ReplicaState {
    /// The name shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Restarting => "restarting",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }
}

/// One replica of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// Its instance id (`orders-2`), the same across restarts.
    pub id: String,
    /// Its slot (2 for `orders-2`).
    pub index: u32,
    /// Where it stands.
    pub state: ReplicaState,
    /// Whether it exited too often lately (see `RestartPolicy`); it is still restarted,
    /// at the longest backoff.
    pub crash_loop: bool,
    /// The running process.
    pub pid: Option<u32>,
    /// The port it was given.
    pub port: Option<u16>,
    /// How often it was restarted.
    pub restarts: u32,
    /// How it last exited (`exit status: 1`, `signal: 9 (SIGKILL)`, `not started: ...`).
    pub last_exit: Option<String>,
}

impl ReplicaStatus {
    /// The state shown to people: `crashloop` for a replica in a crash loop that is not
    /// healthy now.
    pub fn shown_state(&self) -> &'static str {
        if self.crash_loop && self.state != ReplicaState::Healthy {
            "crashloop"
        } else {
            self.state.as_str()
        }
    }

    /// Healthy, or given up on for now (a crash loop): nothing to wait for.
    pub fn settled(&self) -> bool {
        self.state == ReplicaState::Healthy || self.crash_loop
    }
}

/// One supervised service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    /// Its name.
    pub name: String,
    /// The version it runs.
    pub version: Option<String>,
    /// How many replicas it should have.
    pub replicas: u32,
    /// Whether it was started (else it waits for its dependencies).
    pub started: bool,
    /// Its replicas, by slot.
    pub instances: BTreeMap<u32, ReplicaStatus>,
}

impl ServiceStatus {
    /// Healthy replicas.
    pub fn healthy(&self) -> usize {
        self.instances
            .values()
            .filter(|r| r.state == ReplicaState::Healthy)
            .count()
    }

    /// Every wanted replica is healthy or in a crash loop.
    pub fn settled(&self) -> bool {
        // Counted, not by slot number: a deploy's replacements take new numbers.
        self.started
            && self.instances.values().filter(|r| r.settled()).count() >= self.replicas as usize
    }

    /// Settled with no healthy replica: nothing healthy to wait for.
    pub fn failed(&self) -> bool {
        self.settled() && self.healthy() == 0
    }

    /// One word for people: `waiting`, `running`, `degraded`, `crashloop`, `unhealthy`,
    /// `starting`, `stopped`.
    pub fn state(&self) -> &'static str {
        let healthy = self.healthy();
        let replicas = self.replicas as usize;
        let shown = |s: &str| self.instances.values().any(|r| r.shown_state() == s);
        if !self.started {
            "waiting"
        } else if healthy >= replicas {
            if replicas == 0 { "stopped" } else { "running" }
        } else if shown("crashloop") {
            "crashloop"
        } else if healthy > 0 {
            "degraded"
        } else if shown("unhealthy") {
            "unhealthy"
        } else if self
            .instances
            .values()
            .all(|r| r.state == ReplicaState::Stopped)
        {
            "stopped"
        } else {
            "starting"
        }
    }
}

/// Every supervised service, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The services.
    pub services: BTreeMap<String, ServiceStatus>,
}

impl Status {
    /// Every service is settled: its replicas are healthy or in a crash loop.
    pub fn settled(&self) -> bool {
        self.services.values().all(ServiceStatus::settled)
    }

    /// A replica, by service and slot.
    pub fn replica(&self, service: &str, index: u32) -> Option<&ReplicaStatus> {
        self.services.get(service)?.instances.get(&index)
    }
}

/// Something that happened that people should hear of.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An instance exited and will be restarted.
    Exited {
        /// The instance.
        instance: String,
        /// How it exited.
        status: String,
        /// When it restarts.
        restart_in: Duration,
        /// Whether it is in a crash loop.
        crash_loop: bool,
    },
    /// An instance could not be started at all.
    CannotStart {
        /// The instance.
        instance: String,
        /// Why, for people.
        reason: String,
        /// When it is tried again.
        restart_in: Duration,
    },
    /// An instance entered a crash loop.
    CrashLoop {
        /// The instance.
        instance: String,
        /// Exits within the window.
        exits: usize,
        /// The window.
        window: Duration,
        /// How it last exited.
        last_status: String,
        /// Its last lines of output.
        last_lines: Vec<LogLine>,
        /// How often it is tried again.
        retry_every: Duration,
    },
    /// A service started although a dependency has no healthy instance.
    DependencyNotReady {
        /// The service.
        service: String,
        /// The dependency.
        dependency: String,
        /// How long it waited.
        waited: Duration,
        /// Where the dependency stands.
        state: String,
    },
    /// The autoscaler changed a service's replicas.
    Autoscaled {
        /// The service.
        service: String,
        /// The replicas wanted before.
        from: u32,
        /// The replicas wanted now.
        to: u32,
        /// In-flight requests, averaged over the stable window.
        inflight: f64,
        /// In-flight requests, averaged over the panic window.
        panic: f64,
        /// Whether load over the panic window reached twice the target.
        panicking: bool,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited {
                instance,
                status,
                restart_in,
                crash_loop,
            } => {
                let looping = if *crash_loop { " (crash loop)" } else { "" };
                write!(
                    f,
                    "{instance} exited ({status}){looping}; restarting in {}",
                    human(*restart_in)
                )
            }
            Self::CannotStart {
                instance,
                reason,
                restart_in,
            } => {
                write!(
                    f,
                    "{instance} cannot start: {reason}; trying again in {}",
                    human(*restart_in)
                )
            }
            Self::CrashLoop {
                instance,
                exits,
                window,
                last_status,
                last_lines,
                retry_every,
            } => {
                write!(
                    f,
                    "{instance} is in a crash loop: {exits} exits within {}, last {last_status}; trying again every {}",
                    conway_core::units::Duration::from(*window),
                    conway_core::units::Duration::from(*retry_every)
                )?;
                if last_lines.is_empty() {
                    write!(f, "\n  (it wrote nothing)")?;
                } else {
                    write!(f, "\n  its last lines:")?;
                    for line in last_lines {
                        write!(f, "\n  {line}")?;
                    }
                }
                Ok(())
            }
            Self::DependencyNotReady {
                service,
                dependency,
                waited,
                state,
            } => write!(
                f,
                "{service} depends on {dependency}, which has no healthy instance after {} ({state}); starting {service} anyway",
                human(*waited)
            ),
            Self::Autoscaled {
                service,
                from,
                to,
                inflight,
                panic,
                panicking,
            } => {
                let mode = if *panicking { "panic" } else { "stable" };
                write!(
                    f,
                    "autoscaled {service} from {from} to {to} replicas ({mode}: {inflight:.1} in flight over the stable window, {panic:.1} over the panic window)"
                )
            }
        }
    }
}

/// `250ms`, `1.5s`, `24.6s`: for people, to a tenth of a second past one second.
fn human(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(index: u32, state: ReplicaState, crash_loop: bool) -> ReplicaStatus {
        ReplicaStatus {
            id: format!("s-{index}"),
            index,
            state,
            crash_loop,
            pid: None,
            port: None,
            restarts: 0,
            last_exit: None,
        }
    }

    fn service(replicas: u32, instances: Vec<ReplicaStatus>) -> ServiceStatus {
        ServiceStatus {
            name: "s".into(),
            version: None,
            replicas,
            started: true,
            instances: instances.into_iter().map(|r| (r.index, r)).collect(),
        }
    }

    #[test]
    fn settled_when_every_wanted_replica_is_healthy_or_looping() {
        use ReplicaState::*;
        let running = service(
            2,
            vec![replica(1, Healthy, false), replica(2, Healthy, false)],
        );
        assert!(running.settled());
        assert_eq!(running.state(), "running");
        let half = service(
            2,
            vec![replica(1, Healthy, false), replica(2, Starting, false)],
        );
        assert!(!half.settled());
        assert_eq!(half.state(), "degraded");
        let looping = service(
            2,
            vec![replica(1, Restarting, true), replica(2, Healthy, false)],
        );
        assert!(looping.settled());
        assert!(!looping.failed());
        assert_eq!(looping.state(), "crashloop");
        let dead = service(1, vec![replica(1, Starting, true)]);
        assert!(dead.failed());
        let missing = service(2, vec![replica(1, Healthy, false)]);
        assert!(!missing.settled());
        let mut waiting = running.clone();
        waiting.started = false;
        assert!(!waiting.settled());
        assert_eq!(waiting.state(), "waiting");
        assert_eq!(
            service(1, vec![replica(1, Unhealthy, false)]).state(),
            "unhealthy"
        );
        assert_eq!(
            service(1, vec![replica(1, Starting, false)]).state(),
            "starting"
        );
    }

    #[test]
    fn crash_loop_report_names_the_instance_status_and_lines() {
        let event = Event::CrashLoop {
            instance: "bad-1".into(),
            exits: 5,
            window: Duration::from_secs(60),
            last_status: "exit status: 3".into(),
            last_lines: vec![LogLine {
                service: "bad".into(),
                instance: "bad-1".into(),
                stream: crate::logs::Stream::Stderr,
                time: std::time::SystemTime::now(),
                text: "boom".into(),
            }],
            retry_every: Duration::from_secs(30),
        };
        let text = event.to_string();
        assert!(
            text.starts_with("bad-1 is in a crash loop: 5 exits within 1m, last exit status: 3"),
            "{text}"
        );
        assert!(text.contains("trying again every 30s"), "{text}");
        assert!(text.ends_with("\n  bad/bad-1 | boom"), "{text}");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_micros(63_400)), "63ms");
        assert_eq!(human(Duration::from_millis(24_568)), "24.6s");
        let event = Event::CannotStart {
            instance: "x-1".into(),
            reason: "command \"x\" not found in PATH".into(),
            restart_in: Duration::from_millis(1500),
        };
        assert_eq!(
            event.to_string(),
            "x-1 cannot start: command \"x\" not found in PATH; trying again in 1.5s"
        );
    }
}
