//! Running an experiment: the hypothesis first, then the method with checks every
//! `interval`, then the rollback — always, also after a deviation, a failed action or
//! Ctrl-C — then the hypothesis again.

use std::collections::BTreeSet;
use std::future::Future;

use conway_client::{Client, ClientError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use crate::experiment::{Action, ActionKind, Experiment};
use crate::inject::Injected;
use crate::probe::Prober;
use crate::report::{Check, Deviation, Phase, PhaseReport, Report, Step, Verdict};

/// Why an experiment could not start: nothing was injected.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The control plane did not answer, or refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The experiment names a service the running system does not define.
    #[error("no service named {0:?} in the running system (conway services lists them)")]
    UnknownService(String),
}

/// Runs `experiment` against the control plane behind `client`. `interrupt` completes
/// on Ctrl-C or SIGTERM: the method stops and the rollback runs. `progress` hears each
/// step as it happens, for people.
pub async fn run(
    experiment: &Experiment,
    client: &Client,
    interrupt: impl Future<Output = ()>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report, RunError> {
    let defined: BTreeSet<String> = client
        .services()
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let named = experiment
        .steady_state
        .probes
        .get_ref()
        .iter()
        .filter_map(|p| p.get_ref().service.clone())
        .chain(
            experiment
                .method
                .iter()
                .filter_map(|a| a.get_ref().service.as_ref().map(|s| s.get_ref().clone())),
        );
    for service in named {
        if !defined.contains(&service) {
            return Err(RunError::UnknownService(service));
        }
    }
    let baseline = client.config().await?.faults;

    let started = Instant::now();
    let since = move || started.elapsed().as_millis() as u64;
    let interval = experiment.steady_state.interval.get_ref().get();
    let probes = experiment
        .steady_state
        .probes
        .get_ref()
        .iter()
        .map(|p| p.get_ref().clone())
        .collect();
    let mut prober = Prober::new(client.clone(), probes, interval);
    let mut report = Report {
        title: experiment.title.clone(),
        verdict: Verdict::Held,
        deviation: None,
        error: None,
        phases: Vec::new(),
        method: Vec::new(),
        rollback: Vec::new(),
        elapsed_ms: 0,
    };

    // Before: a deviation here means the system is not in its steady state; nothing
    // is injected.
    let check = Check {
        at_ms: since(),
        results: prober.check().await,
    };
    let deviated = deviation(Phase::Before, &check);
    progress(&say_check(Phase::Before, &check));
    report.phases.push(PhaseReport {
        phase: Phase::Before,
        checks: vec![check],
    });
    if let Some(deviation) = deviated {
        report.verdict = Verdict::Deviated;
        report.deviation = Some(deviation);
        report.elapsed_ms = since();
        return Ok(report);
    }

    // During: the method, with a check every interval in a task of its own so that
    // a slow probe never holds the method up.
    let (stop, stopped) = oneshot::channel::<()>();
    let (checks_tx, mut checks) = mpsc::unbounded_channel();
    let prober_task = tokio::spawn(async move {
        let mut next = Instant::now() + interval;
        let mut stopped = stopped;
        loop {
            tokio::select! {
                _ = &mut stopped => return prober,
                () = sleep_until(next) => {}
            }
            let at_ms = since();
            let results = prober.check().await;
            next = Instant::now() + interval;
            if checks_tx.send(Check { at_ms, results }).is_err() {
                return prober;
            }
        }
    });
    let mut during = PhaseReport {
        phase: Phase::During,
        checks: Vec::new(),
    };
    let mut injected = Injected::new(client, baseline);
    let ended = {
        let method = method(
            &experiment.method,
            &mut injected,
            &mut report.method,
            since,
            progress,
        );
        tokio::pin!(method);
        tokio::pin!(interrupt);
        loop {
            tokio::select! {
                biased;
                () = &mut interrupt => break Ended::Interrupted,
                Some(check) = checks.recv() => {
                    let deviated = deviation(Phase::During, &check);
                    if deviated.is_some() {
                        progress(&say_check(Phase::During, &check));
                    }
                    during.checks.push(check);
                    if let Some(deviation) = deviated {
                        break Ended::Deviated(deviation);
                    }
                }
                result = &mut method => break match result {
                    Ok(()) => Ended::Done,
                    Err(error) => Ended::Failed(error),
                },
            }
        }
    };
    let _ = stop.send(());
    let mut prober = match prober_task.await {
        Ok(prober) => prober,
        Err(_) => Prober::new(
            client.clone(),
            experiment
                .steady_state
                .probes
                .get_ref()
                .iter()
                .map(|p| p.get_ref().clone())
                .collect(),
            interval,
        ),
    };
    while let Ok(check) = checks.try_recv() {
        during.checks.push(check);
    }
    match ended {
        Ended::Done => {
            // The method's end, faults still in place: one last check.
            let check = Check {
                at_ms: since(),
                results: prober.check().await,
            };
            progress(&say_check(Phase::During, &check));
            if let Some(deviation) = deviation(Phase::During, &check) {
                report.verdict = Verdict::Deviated;
                report.deviation = Some(deviation);
            }
            during.checks.push(check);
        }
        Ended::Deviated(deviation) => {
            progress("the hypothesis deviated: the method stops here");
            report.verdict = Verdict::Deviated;
            report.deviation = Some(deviation);
        }
        Ended::Failed(error) => {
            progress(&format!("the method failed: {error}"));
            report.verdict = Verdict::Failed;
            report.error = Some(error);
        }
        Ended::Interrupted => {
            progress("interrupted: rolling back");
            report.verdict = Verdict::Interrupted;
            report.error = Some("interrupted by a signal".into());
        }
    }
    report.phases.push(during);

    // Rollback, whatever happened.
    injected
        .roll_back(&mut report.rollback, since, progress)
        .await;

    // After: has the system come back?
    if report.verdict != Verdict::Interrupted {
        let after = recover(experiment, &mut prober, since, progress).await;
        if let Some(deviation) = after
            .checks
            .last()
            .and_then(|check| deviation(Phase::After, check))
        {
            if report.verdict == Verdict::Held {
                report.verdict = Verdict::Deviated;
            }
            report.deviation.get_or_insert(deviation);
        }
        report.phases.push(after);
    }
    report.elapsed_ms = since();
    Ok(report)
}

/// How the method phase ended.
enum Ended {
    Done,
    Deviated(Deviation),
    Failed(String),
    Interrupted,
}

/// After the rollback: checks every interval until every probe holds, for at most
/// `recover_within` (one check without it).
async fn recover(
    experiment: &Experiment,
    prober: &mut Prober,
    since: impl Fn() -> u64,
    progress: &(dyn Fn(&str) + Sync),
) -> PhaseReport {
    let interval = experiment.steady_state.interval.get_ref().get();
    let deadline = experiment
        .rollback
        .recover_within
        .as_ref()
        .map(|within| Instant::now() + within.get_ref().get());
    let mut after = PhaseReport {
        phase: Phase::After,
        checks: Vec::new(),
    };
    loop {
        let check = Check {
            at_ms: since(),
            results: prober.check().await,
        };
        let held = check.deviation().is_none();
        let next = Instant::now() + interval;
        after.checks.push(check);
        if held || deadline.is_none_or(|deadline| next > deadline) {
            break;
        }
        sleep_until(next).await;
    }
    if let Some(check) = after.checks.last() {
        progress(&say_check(Phase::After, check));
    }
    after
}

fn deviation(phase: Phase, check: &Check) -> Option<Deviation> {
    check.deviation().map(|result| Deviation {
        phase,
        at_ms: check.at_ms,
        result: result.clone(),
    })
}

fn say_check(phase: Phase, check: &Check) -> String {
    match check.deviation() {
        None => format!(
            "{} +{}: the steady state holds ({} probe{})",
            phase.name(),
            seconds(check.at_ms),
            check.results.len(),
            if check.results.len() == 1 { "" } else { "s" }
        ),
        Some(result) => format!(
            "{} +{}: probe {:?} deviated: expected {}, observed {}",
            phase.name(),
            seconds(check.at_ms),
            result.probe,
            result.expected,
            result.observed
        ),
    }
}

pub(crate) fn seconds(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
}

/// A fault to lift at a time.
struct Lift {
    at: Instant,
    service: String,
    kind: ActionKind,
}

/// Runs the method's actions in order: faults and kill jobs start and the next action
/// follows at once; `wait` pauses; a fault with `for` is lifted when its time is up.
/// Returns once every timed fault and kill job has run its course.
async fn method(
    actions: &[serde_spanned::Spanned<Action>],
    injected: &mut Injected<'_>,
    steps: &mut Vec<Step>,
    since: impl Fn() -> u64,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    let mut lifts: Vec<Lift> = Vec::new();
    let mut end = Instant::now();
    for action in actions {
        let action = action.get_ref();
        let what = describe(action);
        let now = Instant::now();
        let until = action
            .duration_for
            .as_ref()
            .map(|d| now + d.get_ref().get());
        let result = match action.action {
            ActionKind::Wait => {
                progress(&format!("method +{}: {what}", seconds(since())));
                steps.push(Step {
                    at_ms: since(),
                    what,
                    error: None,
                });
                let until = until.unwrap_or(now);
                lift_until(&mut lifts, until, injected, steps, &since, progress).await?;
                continue;
            }
            ActionKind::Delay | ActionKind::Abort => {
                let service = service_of(action);
                let result = injected.inject(&service, action).await;
                if result.is_ok()
                    && let Some(at) = until
                {
                    lifts.push(Lift {
                        at,
                        service,
                        kind: action.action,
                    });
                }
                result
            }
            ActionKind::Kill => injected.kill(action).await,
        };
        progress(&format!("method +{}: {what}", seconds(since())));
        steps.push(Step {
            at_ms: since(),
            what,
            error: result.as_ref().err().cloned(),
        });
        result?;
        if let Some(until) = until {
            end = end.max(until);
        }
    }
    lift_until(&mut lifts, end, injected, steps, &since, progress).await
}

/// Waits until `until`, lifting the faults whose time comes first.
async fn lift_until(
    lifts: &mut Vec<Lift>,
    until: Instant,
    injected: &mut Injected<'_>,
    steps: &mut Vec<Step>,
    since: &impl Fn() -> u64,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    loop {
        lifts.sort_by_key(|l| l.at);
        let due = lifts.first().filter(|l| l.at <= until).map(|l| l.at);
        let Some(at) = due else {
            sleep_until(until).await;
            return Ok(());
        };
        sleep_until(at).await;
        let lift = lifts.remove(0);
        let result = injected.lift(&lift.service, lift.kind).await;
        let what = format!("{} {} ends", lift.kind.name(), lift.service);
        progress(&format!("method +{}: {what}", seconds(since())));
        steps.push(Step {
            at_ms: since(),
            what,
            error: result.as_ref().err().cloned(),
        });
        result?;
    }
}

pub(crate) fn service_of(action: &Action) -> String {
    action
        .service
        .as_ref()
        .map(|s| s.get_ref().clone())
        .unwrap_or_default()
}

/// An action in words: `delay inventory 50% by 300ms for 10s`.
fn describe(action: &Action) -> String {
    let service = service_of(action);
    let lasting = |text: String| match &action.duration_for {
        Some(d) => format!("{text} for {}", d.get_ref()),
        None => format!("{text} until the rollback"),
    };
    let percent = action.percent.as_ref().map_or(0.0, |p| *p.get_ref());
    match action.action {
        ActionKind::Delay => lasting(format!(
            "delay {service} {percent}% by {}",
            action
                .duration
                .as_ref()
                .map(|d| d.get_ref().to_string())
                .unwrap_or_default()
        )),
        ActionKind::Abort => lasting(format!(
            "abort {service} {percent}% with {}",
            action.status.as_ref().map_or(0, |s| *s.get_ref())
        )),
        ActionKind::Kill => {
            let target = match &action.instance {
                Some(instance) => instance.get_ref().clone(),
                None => format!("a random instance of {service}"),
            };
            match (&action.every, &action.duration_for) {
                (None, _) => format!("kill {target}"),
                (Some(every), None) => {
                    format!("kill {target} every {} until the rollback", every.get_ref())
                }
                (Some(every), Some(d)) => {
                    format!(
                        "kill {target} every {} for {}",
                        every.get_ref(),
                        d.get_ref()
                    )
                }
            }
        }
        ActionKind::Wait => format!(
            "wait {}",
            action
                .duration_for
                .as_ref()
                .map(|d| d.get_ref().to_string())
                .unwrap_or_default()
        ),
    }
}
