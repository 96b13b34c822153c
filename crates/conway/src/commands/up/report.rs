//! What `up` tells people on stderr: the supervisor's events, instances' output when
//! followed, the summary once up, and what is not ready when time runs out.

use std::io::Write;
use std::time::Duration;

use comfy_table::{Table, presets};
use conway_core::api::ReadyLine;
use conway_supervisor::{Event, LogLine, LogSink, Status};
use tokio::sync::mpsc;

/// Prints each instance's lines on stderr as `service/instance | line`.
#[derive(Debug)]
pub(super) struct StderrSink;

impl LogSink for StderrSink {
    fn send(&self, line: &LogLine) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Prints the supervisor's events until it is gone.
pub(super) async fn print_events(mut events: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = events.recv().await {
        let level = match event {
            Event::CrashLoop { .. } | Event::CannotStart { .. } => "error",
            Event::Exited { .. } | Event::DependencyNotReady { .. } => "warning",
            Event::Autoscaled { .. } => "info",
        };
        eprintln!("{level}: {event}");
    }
}

/// The summary shown once every service is up: a row per service, then the URLs.
pub(super) fn summary(status: &Status, ready: &ReadyLine) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(["SERVICE", "REPLICAS", "VERSION", "STATE"]);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    for service in status.services.values() {
        table.add_row([
            service.name.clone(),
            format!("{}/{}", service.healthy(), service.replicas),
            service.version.clone().unwrap_or_else(|| "-".to_owned()),
            service.state().to_owned(),
        ]);
    }
    let mut text: String = table
        .lines()
        .map(|line| line.trim_end().to_owned() + "\n")
        .collect();
    for (name, url) in [
        ("gateway", &ready.gateway),
        ("dashboard", &ready.dashboard),
        ("control plane", &ready.control_plane),
    ] {
        if let Some(url) = url {
            text.push_str(&format!("{name}: {url}\n"));
        }
    }
    text
}

/// Says which replicas are not healthy after `waited`.
pub(super) fn not_ready(status: &Status, waited: Duration) {
    for service in status.services.values() {
        if !service.started {
            eprintln!(
                "warning: {} has not started after {}s (it waits for its dependencies)",
                service.name,
                waited.as_secs()
            );
        }
        for replica in service.instances.values().filter(|r| !r.settled()) {
            eprintln!(
                "warning: {} is not healthy after {}s ({})",
                replica.id,
                waited.as_secs(),
                replica.shown_state()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use conway_supervisor::{ReplicaState, ReplicaStatus, ServiceStatus};

    use super::*;

    #[test]
    fn summary_has_a_row_per_service_and_the_urls() {
        let replica = |index, state, crash_loop| ReplicaStatus {
            id: format!("x-{index}"),
            index,
            state,
            crash_loop,
            pid: None,
            port: None,
            restarts: 0,
            last_exit: None,
        };
        let service =
            |name: &str, version: Option<&str>, replicas: Vec<ReplicaStatus>| ServiceStatus {
                name: name.to_owned(),
                version: version.map(str::to_owned),
                replicas: replicas.len() as u32,
                started: true,
                instances: replicas.into_iter().map(|r| (r.index, r)).collect(),
            };
        let status = Status {
            services: BTreeMap::from([
                (
                    "orders".to_owned(),
                    service(
                        "orders",
                        Some("1.4.0"),
                        vec![
                            replica(1, ReplicaState::Healthy, false),
                            replica(2, ReplicaState::Healthy, false),
                        ],
                    ),
                ),
                (
                    "bad".to_owned(),
                    service(
                        "bad",
                        None,
                        vec![replica(1, ReplicaState::Restarting, true)],
                    ),
                ),
            ]),
        };
        let ready = ReadyLine {
            ready: true,
            gateway: Some("http://127.0.0.1:8080".into()),
            dashboard: Some("http://127.0.0.1:7700/".into()),
            control_plane: Some("http://127.0.0.1:7700".into()),
            ..ReadyLine::default()
        };
        let text = summary(&status, &ready);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("SERVICE  REPLICAS  VERSION  STATE"),
            "{text}"
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["bad", "0/1", "-", "crashloop"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["orders", "2/2", "1.4.0", "running"]
        );
        assert!(text.contains("gateway: http://127.0.0.1:8080\n"), "{text}");
        assert!(
            text.contains("dashboard: http://127.0.0.1:7700/\n"),
            "{text}"
        );
    }
}
