//! The Markdown table the run ends with, and its notes.

use std::time::Duration;

use crate::detection::{INTERVAL, TTL, UNHEALTHY_THRESHOLD};
use crate::propagation::Propagation;
use crate::scale::Scale;
use crate::stats::{Summary, ms, ratio};
use crate::throughput::Throughput;

/// etcd, the anchor, as far as it ran.
#[derive(Debug)]
pub(crate) enum Anchor {
    NotInstalled,
    Failed(String),
    Ran {
        version: String,
        propagation: anyhow::Result<Propagation>,
        throughput: anyhow::Result<Throughput>,
    },
}

/// Everything one run measured; a row that failed holds its error.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) watchers: usize,
    pub(crate) registrations: usize,
    pub(crate) instances: usize,
    pub(crate) window: Duration,
    pub(crate) clients: usize,
    pub(crate) propagation: anyhow::Result<Propagation>,
    pub(crate) anchor: Anchor,
    pub(crate) failing_check: anyhow::Result<Vec<Duration>>,
    pub(crate) lapsed_lease: anyhow::Result<Vec<Duration>>,
    pub(crate) scale: anyhow::Result<Scale>,
    pub(crate) durable: anyhow::Result<Throughput>,
    pub(crate) in_memory: anyhow::Result<Throughput>,
}

const MIB: f64 = 1024.0 * 1024.0;

impl Report {
    pub(crate) fn print(&self) {
        let mut notes = Vec::new();
        let (etcd_name, etcd_prop, etcd_tput) = match &self.anchor {
            Anchor::NotInstalled => ("etcd".to_owned(), None, None),
            Anchor::Failed(_) => ("etcd".to_owned(), None, None),
            Anchor::Ran {
                version,
                propagation,
                throughput,
            } => (
                format!("etcd {version}"),
                Some(propagation),
                Some(throughput),
            ),
        };
        let missing_anchor = match &self.anchor {
            Anchor::NotInstalled => "etcd: not installed".to_owned(),
            Anchor::Failed(error) => format!("etcd failed to start: {error}"),
            Anchor::Ran { .. } => "–".to_owned(),
        };
        let anchor_cell = |cell: Option<String>| cell.unwrap_or_else(|| missing_anchor.clone());

        let mut rows: Vec<[String; 6]> = Vec::new();
        // 1. propagation
        let conway_p99 = self.propagation.as_ref().ok().and_then(|p| p.summary);
        let etcd_p99 = etcd_prop
            .and_then(|p| p.as_ref().ok())
            .and_then(|p| p.summary);
        rows.push([
            "1".into(),
            format!(
                "propagation: registration ack → event read, by each of {} watchers ({} registrations)",
                self.watchers, self.registrations
            ),
            "p99 ≤ 10 ms".into(),
            cell(&self.propagation, |p| propagation_cell(p, "Conway", &mut notes)),
            anchor_cell(
                etcd_prop.map(|p| cell(p, |p| propagation_cell(p, &etcd_name, &mut notes))),
            ),
            match (conway_p99, etcd_p99) {
                (Some(c), Some(e)) => format!(
                    "p99 {}, p50 {}",
                    ratio(c.p99.as_secs_f64(), e.p99.as_secs_f64()),
                    ratio(c.p50.as_secs_f64(), e.p50.as_secs_f64())
                ),
                _ => "–".into(),
            },
        ]);
        // 2. detection
        let check_target = INTERVAL * UNHEALTHY_THRESHOLD + Duration::from_millis(100);
        rows.push([
            "2a".into(),
            format!(
                "detection: health endpoint flips to 503 → gone from `?healthy=true` (interval {} × {UNHEALTHY_THRESHOLD})",
                ms(INTERVAL)
            ),
            format!("≤ {}", ms(check_target)),
            cell(&self.failing_check, |d| median_max(d, "trials")),
            "–".into(),
            "–".into(),
        ]);
        rows.push([
            "2b".into(),
            format!(
                "detection: last heartbeat → lease's delete event (TTL {} s)",
                TTL.as_secs()
            ),
            format!("≤ {}", ms(TTL + Duration::from_secs(1))),
            cell(&self.lapsed_lease, |d| median_max(d, "leases")),
            "–".into(),
            "–".into(),
        ]);
        // 3. scale
        if let Ok(scale) = &self.scale {
            notes.push(format!(
                "scale: {} instances registered in {:.1} s ({:.0} MiB resident after); {:.0} heartbeats/s acknowledged in the window, {} failed; {} instances listed at the end",
                self.instances,
                scale.register_time.as_secs_f64(),
                scale.rss_after_register as f64 / MIB,
                scale.heartbeats_per_second,
                scale.heartbeat_errors,
                scale.listed
            ));
        }
        rows.push([
            "3a".into(),
            format!(
                "scale: server resident memory (max VmRSS), {} instances heartbeating every 10 s, {} s window",
                self.instances,
                self.window.as_secs()
            ),
            "< 200 MiB".into(),
            cell(&self.scale, |s| format!("{:.1} MiB", s.rss_max as f64 / MIB)),
            "–".into(),
            "–".into(),
        ]);
        rows.push([
            "3b".into(),
            "scale: server CPU (utime + stime) over the same window".into(),
            "< 30% of one core".into(),
            cell(&self.scale, |s| {
                format!("{:.1}% of one core", s.cpu_percent)
            }),
            "–".into(),
            "–".into(),
        ]);
        // 4. throughput
        let durable = self.durable.as_ref().ok().map(|t| t.per_second);
        let in_memory = self.in_memory.as_ref().ok().map(|t| t.per_second);
        let etcd_rate = etcd_tput
            .and_then(|t| t.as_ref().ok())
            .map(|t| t.per_second);
        for (name, result) in [("durable", &self.durable), ("in-memory", &self.in_memory)]
            .into_iter()
            .chain(etcd_tput.map(|t| ("etcd", t)))
        {
            if let Ok(t) = result
                && t.errors > 0
            {
                notes.push(format!("throughput ({name}): {} writes failed", t.errors));
            }
        }
        rows.push([
            "4a".into(),
            format!(
                "write throughput: registrations acknowledged/s, {} concurrent clients, durable store (synced SQLite)",
                self.clients
            ),
            "printed beside 4b".into(),
            cell(&self.durable, |t| format!("{:.0}/s", t.per_second)),
            anchor_cell(etcd_tput.map(|t| cell(t, |t| format!("put: {:.0}/s", t.per_second)))),
            match (durable, etcd_rate) {
                (Some(c), Some(e)) => format!("Conway/etcd {}", ratio(c, e)),
                _ => "–".into(),
            },
        ]);
        rows.push([
            "4b".into(),
            "write throughput: the same against `--in-memory`".into(),
            "–".into(),
            cell(&self.in_memory, |t| format!("{:.0}/s", t.per_second)),
            "–".into(),
            match (durable, in_memory) {
                (Some(d), Some(m)) => format!("durable/in-memory {}", ratio(d, m)),
                _ => "–".into(),
            },
        ]);

        print_table(
            [
                "#",
                "measurement",
                "target",
                "measured (Conway)",
                &format!("anchor ({etcd_name})"),
                "ratio",
            ],
            &rows,
        );
        match self.anchor {
            Anchor::NotInstalled => {
                notes.push("etcd: not installed, so rows 1 and 4a have no anchor".to_owned());
            }
            Anchor::Ran { .. } => notes.push(
                "etcd is driven through its JSON gateway (HTTP/1.1, as Conway is), which relays to its gRPC API inside the process; a native gRPC client skips that hop".to_owned(),
            ),
            Anchor::Failed(_) => {}
        }
        println!();
        for note in notes {
            println!("- {note}");
        }
    }
}

fn cell<T>(result: &anyhow::Result<T>, show: impl FnOnce(&T) -> String) -> String {
    match result {
        Ok(value) => show(value),
        Err(error) => format!("failed: {}", format!("{error:#}").replace('|', "/")),
    }
}

fn propagation_cell(p: &Propagation, who: &str, notes: &mut Vec<String>) -> String {
    if p.missing > 0 {
        notes.push(format!(
            "propagation ({who}): {} watcher × registration pairs never arrived (within 5 s)",
            p.missing
        ));
    }
    if p.before_ack > 0 {
        notes.push(format!(
            "propagation ({who}): {} events were read before their registration's acknowledgement (counted as 0)",
            p.before_ack
        ));
    }
    if let Some(s) = p.from_send {
        notes.push(format!(
            "propagation ({who}), timed from the registration's request instead of its acknowledgement (so including the write): p50 {} · p99 {} · max {}",
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        ));
    }
    match p.summary {
        Some(Summary {
            count,
            p50,
            p99,
            max,
        }) => format!(
            "p50 {} · p99 {} · max {} ({count} samples)",
            ms(p50),
            ms(p99),
            ms(max)
        ),
        None => "no samples".to_owned(),
    }
}

fn median_max(samples: &[Duration], what: &str) -> String {
    match Summary::of(samples.to_vec()) {
        Some(s) => format!(
            "median {} · max {} ({} {what})",
            ms(s.p50),
            ms(s.max),
            s.count
        ),
        None => "no samples".to_owned(),
    }
}

fn print_table(header: [&str; 6], rows: &[[String; 6]]) {
    let line = |cells: &[&str]| println!("| {} |", cells.join(" | "));
    line(&header);
    line(&["---"; 6]);
    for row in rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
