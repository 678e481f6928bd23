//! The executor: runs a plan against the cluster.
//!
//! It takes only the [`Plan`] (and the run's options and connection): the spec is never
//! walked again here. It talks only through `RunEvent`s on the `EventBus` (journal +
//! progress). Every fault is recorded in the `Ledger` before its first mutating call,
//! and the ledger is emptied (reverted) on every exit path: success, deviation, abort,
//! SIGINT/SIGTERM, the kill switch (`shakedown halt`) and a panicking step task.

pub mod deliveries;
mod fault_step;
mod locks;
pub(crate) mod phases;
mod preflight;
pub mod recover;
mod recover_silences;
pub mod session;
pub mod signals;
mod silences;
pub mod upload;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use self::phases::Check;
use crate::cluster::Connection;
use crate::events::{
    NoteLevel, PlannedHypothesis, RunEvent, RunFinished, RunStarted, StepStatus, Verdict,
};
use crate::exit::{CouldNotRun, Deviation, Failure, Outcome};
use crate::faults::{self, FaultContext, Ledger};
use crate::plan::{Action, Plan, PlannedStep, describe_fault};
use crate::probes::Probe;
use crate::probes::alert::{AlertProbe, AlertSource};
use crate::probes::prometheus::{self, PrometheusEndpoint, PrometheusSettings, display_url};
use crate::run::bus::EventBus;
use crate::run::console::CONSOLE_ABORT;
use crate::run::stop::{Stop, wait_or_stop};
use crate::spec::{Hypothesis, Probe as ProbeSpec};

pub use preflight::{
    RunWide, alertmanager_preflight, preflight, prometheus_preflight, promql_hypotheses,
};

/// How this run talks to the world; what it does is the plan's.
pub struct RunOptions {
    pub run_id: String,
    /// Send every mutating call with `dryRun=All`.
    pub server_dry_run: bool,
    pub prometheus_url: Option<String>,
    /// `--prometheus-token`: overrides the spec's bearer token or basic auth.
    pub prometheus_token: Option<crate::probes::prometheus::Secret>,
    /// `--prometheus-token-file`: re-read on every query.
    pub prometheus_token_file: Option<std::path::PathBuf>,
    /// How long the reverts (all of one step, or everything left at the end, run
    /// concurrently) may take before what is not undone is reported as failed.
    pub revert_timeout: Duration,
    /// Where the run's locks live and how long to wait for them; `None` takes no lock
    /// (a server dry run, which changes nothing).
    pub lock: Option<crate::cluster::lease::LockSettings>,
    /// Where the kill switch's marker is watched (`cluster::halt`).
    pub halt_namespace: String,
    /// The console's `p`: the run waits here before each step while it is paused.
    pub pause: crate::run::stop::PauseGate,
    /// `run --baseline`: the run is judged against it just before it finishes.
    pub baseline: Option<crate::report::history::Baseline>,
    /// This experiment's earlier runs, journaled for the report's recovery trend.
    pub earlier_runs: Vec<crate::events::EarlierRun>,
}

/// What happened, for the exit code.
#[derive(Debug, Default, Clone)]
struct Tally {
    deviated: bool,
    inconclusive: bool,
    errors: Vec<String>,
    revert_failures: Vec<String>,
    /// `run --baseline`: the regression gate's findings against that run.
    regressed: Option<(String, Vec<String>)>,
    /// Steps whose fault reached no target and whose scenario allowed it
    /// (`onEmptyTargets: skip`): a pass must not claim their fault was injected.
    skipped_empty: Vec<String>,
}

#[derive(Clone)]
struct Runner {
    conn: Connection,
    bus: EventBus,
    ledger: Ledger,
    stop: watch::Sender<Stop>,
    options: Arc<RunOptions>,
    /// The plan's seed: every step's picks derive from it and the step id.
    seed: u64,
    tally: Arc<Mutex<Tally>>,
    /// The run's Prometheus, or why it cannot be used (then every PromQL sample errors).
    prometheus: Arc<Result<Arc<PrometheusEndpoint>, prometheus::SetupError>>,
    /// Where alert probes read: the `alertmanager:` block's, else the run's Prometheus;
    /// or why neither can be used (then every alert sample errors).
    alerts: Arc<Result<AlertSource, String>>,
}

/// Why a step ended skipped when someone pressed `s` on the live console.
const SKIPPED_FROM_CONSOLE: &str =
    "skipped from the console (key s): the rest of the step was cut short and its fault reverted";

/// Runs a plan end to end and returns its outcome, watching terminating signals while
/// it runs.
pub async fn run(plan: &Plan, conn: Connection, bus: EventBus, options: RunOptions) -> Outcome {
    let (stop, _) = watch::channel(Stop::Running);
    let signals = signals::install(stop.clone());
    let outcome = run_with_stop(plan, conn, bus, options, stop).await;
    signals.abort();
    outcome
}

/// [`run`], stopped through `stop`, whose signals the caller watches: a session does
/// from its first moment (connect, preflight) to its last report, so no signal finds
/// the process without a handler.
pub async fn run_with_stop(
    plan: &Plan,
    conn: Connection,
    bus: EventBus,
    options: RunOptions,
    stop: watch::Sender<Stop>,
) -> Outcome {
    // The kill switch is watched for as long as the run runs (`cluster::halt`).
    let halt_watch = signals::watch_halt(
        conn.client.clone(),
        options.halt_namespace.clone(),
        stop.clone(),
        bus.clone(),
    );
    let outcome = run_plan(plan, conn, bus, options, stop).await;
    halt_watch.abort();
    outcome
}

async fn run_plan(
    plan: &Plan,
    conn: Connection,
    bus: EventBus,
    options: RunOptions,
    stop: watch::Sender<Stop>,
) -> Outcome {
    let prometheus = prometheus::endpoint(&PrometheusSettings {
        url: options.prometheus_url.clone(),
        token: options.prometheus_token.clone(),
        token_file: options.prometheus_token_file.clone(),
        spec: plan.prometheus.clone(),
    });
    let alerts = match &plan.alertmanager {
        Some(spec) => PrometheusEndpoint::alertmanager(spec)
            .map(|e| AlertSource::Alertmanager(Arc::new(e)))
            .map_err(|e| shakedown_vocab::error_chain(&e)),
        None => match &prometheus {
            Ok(endpoint) => Ok(AlertSource::Prometheus(endpoint.clone())),
            Err(e) => Err(shakedown_vocab::error_chain(e)),
        },
    };
    let runner = Runner {
        conn,
        bus: bus.clone(),
        ledger: Ledger::default(),
        stop: stop.clone(),
        options: Arc::new(options),
        seed: plan.seed,
        tally: Arc::new(Mutex::new(Tally::default())),
        prometheus: Arc::new(prometheus),
        alerts: Arc::new(alerts),
    };
    bus.emit(RunEvent::RunStarted(run_started(plan, &runner)));
    // The run's locks come before anything it could change (locks.rs says what they cover).
    let lock = match runner.take_locks(plan).await {
        Ok(lock) => lock,
        Err(reason) => {
            runner.skip_every_step(plan, &reason);
            return runner.finish();
        }
    };
    let experiment_checks = runner.checks(None, &plan.hypotheses);
    let dry_run = runner.options.server_dry_run;
    if dry_run {
        phases::skip_dry_run(&experiment_checks, &bus);
    } else if !phases::before(&experiment_checks, &bus, &stop).await {
        let stopped = runner.stopped();
        for entry in plan.entries() {
            let reason = if stopped {
                "the run was stopped during the experiment baseline: no fault injected"
            } else {
                "experiment baseline failed: no fault injected"
            };
            bus.emit(RunEvent::StepSkipped {
                step: entry.id,
                reason: reason.to_owned(),
            });
        }
        if !stopped {
            runner
                .tally()
                .errors
                .push("experiment baseline failed".into());
        }
        runner.release_locks(lock).await;
        return runner.finish();
    }
    if let Some(silence) = &plan.silence
        && let Err(why) = runner.put_up_silence(None, silence, plan.longest).await
    {
        let reason = format!("the run's silence: {why}; no fault injected");
        runner.skip_every_step(plan, &reason);
        runner.release_locks(lock).await;
        return runner.finish();
    }
    // Experiment-wide hypotheses are sampled for as long as the steps run (a dry run
    // judges none: they were skipped above).
    let (ended_tx, ended_rx) = watch::channel(false);
    let watcher = {
        let checks = if dry_run {
            Vec::new()
        } else {
            experiment_checks.clone()
        };
        let (bus, stop) = (bus.clone(), stop.clone());
        tokio::spawn(async move {
            phases::during(&checks, &bus, phases::Window::Until(ended_rx), &stop).await
        })
    };

    // The steps run in their own task, so a panic in a fault cannot skip the revert below.
    let steps = tokio::spawn({
        let runner = runner.clone();
        let steps = plan.steps.clone();
        async move { runner.sequence(&steps).await }
    });
    if let Err(join) = steps.await {
        runner.note(
            NoteLevel::Warning,
            format!("a step task failed ({join}); reverting everything"),
        );
        runner
            .tally()
            .errors
            .push(format!("internal error: {join}"));
    }
    runner.revert_everything().await;
    ended_tx.send_replace(true);
    let _ = watcher.await;
    if !runner.signalled() && !dry_run && !experiment_checks.is_empty() {
        let recovery = crate::spec::Recovery::default();
        let now = tokio::time::Instant::now();
        phases::after(&experiment_checks, &bus, &recovery, now, &stop).await;
    }
    // The run's silence, and anything else still in the ledger.
    runner.end_of_step(silences::RUN_SILENCE).await;
    runner.revert_everything().await;
    runner.tally_verdicts(None);
    runner.release_locks(lock).await;
    runner.finish()
}

impl Runner {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note(&self, level: NoteLevel, message: String) {
        self.bus.emit(RunEvent::Note { level, message });
    }

    fn stopped(&self) -> bool {
        !matches!(*self.stop.borrow(), Stop::Running)
    }

    /// Whether the console asked to skip the step under way ([`Stop::SkipStep`]); the
    /// run then goes on (`Running` again). A signal, a halt or an abort that came since
    /// is left alone.
    fn take_skip(&self) -> bool {
        self.stop.send_if_modified(|s| {
            let skip = matches!(s, Stop::SkipStep);
            if skip {
                *s = Stop::Running;
            }
            skip
        })
    }

    /// Marks step `id` skipped from the console, in every report.
    fn skipped_from_console(&self, id: &str) {
        self.bus.emit(RunEvent::StepSkipped {
            step: id.into(),
            reason: SKIPPED_FROM_CONSOLE.into(),
        });
    }

    /// A terminating signal arrived or the kill switch was pulled: wind down now,
    /// without the after-phases.
    fn signalled(&self) -> bool {
        self.stop.borrow().is_shutdown()
    }

    fn sequence<'a>(
        &'a self,
        steps: &'a [PlannedStep],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            for step in steps {
                self.step(step).await;
            }
        })
    }

    fn step<'a>(&'a self, step: &'a PlannedStep) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let mut stopped = self.stop.subscribe();
            let skipped = || RunEvent::StepSkipped {
                step: step.id.clone(),
                reason: "the run was stopped".into(),
            };
            if self.options.pause.is_paused() {
                self.note(
                    NoteLevel::Info,
                    format!("paused from the console (key p) before step {}", step.id),
                );
                self.options.pause.wait_open(&mut stopped).await;
                self.note(NoteLevel::Info, format!("step {}: resumed", step.id));
            }
            // A dry run faults nothing, so there is nothing to wait for between steps.
            let dry_run = self.options.server_dry_run;
            if !step.delay.is_zero()
                && !dry_run
                && wait_or_stop(&mut stopped, tokio::time::Instant::now() + step.delay).await
            {
                if self.take_skip() {
                    self.skipped_from_console(&step.id);
                } else {
                    self.bus.emit(skipped());
                }
                return;
            }
            match &step.action {
                Action::Fault(fault) => self.fault_step(&step.id, fault).await,
                Action::Sequence(steps) => self.sequence(steps).await,
                Action::Pause(_) if dry_run => {
                    self.bus.emit(RunEvent::StepSkipped {
                        step: step.id.clone(),
                        reason: "dry run: nothing is faulted, so there is nothing to pause for"
                            .into(),
                    });
                }
                Action::Pause(length) => {
                    if wait_or_stop(&mut stopped, tokio::time::Instant::now() + *length).await {
                        if self.take_skip() {
                            self.skipped_from_console(&step.id);
                        } else {
                            self.bus.emit(skipped());
                        }
                    }
                }
                Action::Parallel(children) => {
                    let mut group = tokio::task::JoinSet::new();
                    for child in children {
                        let (runner, child) = (self.clone(), child.clone());
                        group.spawn(async move { runner.step(&child).await });
                    }
                    while let Some(done) = group.join_next().await {
                        if let Err(join) = done {
                            self.note(
                                NoteLevel::Warning,
                                format!("a parallel step failed ({join}); its faults are reverted"),
                            );
                            self.tally().errors.push(format!("internal error: {join}"));
                        }
                    }
                }
            }
        })
    }

    fn checks(&self, step: Option<&str>, hypotheses: &[Hypothesis]) -> Vec<Check> {
        hypotheses
            .iter()
            .map(|h| Check {
                hypothesis: h.clone(),
                probe: self.probe_for(h),
                step: step.map(str::to_owned),
            })
            .collect()
    }

    fn probe_for(&self, hypothesis: &Hypothesis) -> Arc<dyn Probe> {
        match &hypothesis.probe {
            ProbeSpec::Kube(k) => Arc::new(crate::probes::kube::KubeReadiness::new(
                self.conn.client.clone(),
                k.clone(),
            )),
            ProbeSpec::Promql(q) => prometheus::probe(&self.prometheus, q),
            ProbeSpec::Http(h) => Arc::new(crate::probes::http::HttpProbe::new(h.clone())),
            ProbeSpec::Alert(a) => match self.alerts.as_ref() {
                Ok(source) => Arc::new(AlertProbe::new(
                    source.clone(),
                    a.clone(),
                    hypothesis.expect,
                )),
                Err(why) => Arc::new(prometheus::Unconfigured {
                    query: crate::report::words::alert_probe(a),
                    why: why.clone(),
                }),
            },
        }
    }

    fn fault_context(&self, step: &str) -> FaultContext {
        FaultContext {
            client: self.conn.client.clone(),
            run_id: self.options.run_id.clone(),
            step: step.into(),
            dry_run: self.options.server_dry_run,
            bus: self.bus.clone(),
            ledger: self.ledger.clone(),
            stop: self.stop.subscribe(),
            evictable: None,
            listed: Default::default(),
        }
    }

    /// Reverts `entries` concurrently within one `--revert-timeout`, reporting each
    /// target as it is done.
    async fn revert_entries(&self, entries: Vec<(String, faults::Undo)>) {
        if entries.is_empty() {
            return;
        }
        let ctx = self.fault_context("revert");
        faults::undo_all(
            &ctx,
            entries,
            self.options.revert_timeout,
            |step, entry, result| self.reverted(step, entry, result),
        )
        .await;
    }

    fn reverted(
        &self,
        step: &str,
        entry: &faults::Undo,
        result: Result<faults::Reverted, faults::RevertError>,
    ) {
        if let faults::Undo::ExpireSilence { id, .. } = entry {
            return self.silence_expired(step, id, result);
        }
        match result {
            Ok(reverted) => {
                self.bus.emit(RunEvent::FaultReverted {
                    step: step.into(),
                    target: entry.target(),
                    detail: reverted.detail(),
                    dry_run: self.options.server_dry_run,
                });
            }
            Err(error) => {
                let error = error.to_string();
                self.bus.emit(RunEvent::RevertFailed {
                    step: step.into(),
                    target: entry.target(),
                    error: error.clone(),
                });
                let failure = format!("{}: {error}", entry.target());
                let mut tally = self.tally();
                if self.options.server_dry_run {
                    // Nothing was faulted, so nothing is left faulted: the API server
                    // refused the revert's dry-run call, which the run could not do.
                    tally.errors.push(format!(
                        "dry run: the API server refused the revert of {failure}"
                    ));
                } else {
                    tally.revert_failures.push(failure);
                }
            }
        }
    }

    /// The safety net: whatever is still in the ledger gets reverted now, but the run's
    /// own silence, which lasts until the run ends ([`Runner::end_of_step`]).
    async fn revert_everything(&self) {
        let mut entries = self.ledger.take_all();
        let run_silence: Vec<_> = entries
            .extract_if(.., |(step, _)| step == silences::RUN_SILENCE)
            .collect();
        for (step, undo) in run_silence {
            self.ledger.record(&step, undo);
        }
        self.revert_entries(entries).await;
    }

    fn tally_verdicts(&self, id: Option<&str>) {
        let verdicts: Vec<Verdict> = self
            .bus
            .records()
            .iter()
            .filter_map(|r| match &r.event {
                RunEvent::HypothesisVerdict(v) if v.step.as_deref() == id => Some(v.verdict),
                _ => None,
            })
            .collect();
        let mut tally = self.tally();
        for verdict in verdicts {
            match verdict {
                Verdict::Deviated | Verdict::Aborted => tally.deviated = true,
                Verdict::Inconclusive => tally.inconclusive = true,
                Verdict::Error => {
                    let whose =
                        id.map_or_else(|| "experiment".to_owned(), |id| format!("step {id}"));
                    tally
                        .errors
                        .push(format!("{whose}: a probe could not be evaluated"));
                }
                Verdict::Passed | Verdict::Skipped => {}
            }
        }
    }

    /// What the tally and the stop reason amount to, in the one failure vocabulary
    /// (`crate::exit`), worst first: a cluster that may still be faulted, then a signal,
    /// then the kill switch, then a run that could not complete, then a deviation.
    fn verdict(tally: &Tally, stop: &Stop) -> Result<(), Failure> {
        if !tally.revert_failures.is_empty() {
            return Err(Failure::revert_failed(tally.revert_failures.clone()));
        }
        if let Stop::Signalled(signal) = stop {
            return Err(Failure::interrupted(*signal));
        }
        if let Stop::Halted(notice) = stop {
            return Err(Failure::Halted(notice.clone()));
        }
        if !tally.errors.is_empty() {
            return Err(CouldNotRun::Incomplete {
                problems: tally.errors.clone(),
            }
            .into());
        }
        if let Stop::Aborted(hypothesis) = stop {
            if hypothesis == CONSOLE_ABORT {
                return Err(Deviation::AbortedFromConsole.into());
            }
            return Err(Deviation::Aborted {
                hypothesis: hypothesis.clone(),
            }
            .into());
        }
        if tally.deviated || tally.inconclusive {
            return Err(Deviation::NotConfirmed.into());
        }
        if let Some((baseline, regressions)) = &tally.regressed {
            return Err(Deviation::Regressed {
                baseline: baseline.clone(),
                regressions: regressions.clone(),
            }
            .into());
        }
        Ok(())
    }

    /// The run against its history: journals the earlier runs (for the report's trend)
    /// and the regression gate's comparison (`run --baseline`); a regression counts
    /// against the verdict like a deviation. A server dry run judged nothing.
    fn judge_against_baseline(&self) {
        if self.options.server_dry_run {
            return;
        }
        if !self.options.earlier_runs.is_empty() {
            self.bus.emit(RunEvent::EarlierRuns {
                runs: self.options.earlier_runs.clone(),
            });
        }
        let Some(baseline) = self.options.baseline.as_ref() else {
            return;
        };
        let compared = baseline.judge(&self.bus.records());
        if !compared.regressions.is_empty() {
            let found = compared
                .regressions
                .iter()
                .map(|r| format!("{} {} → {}", r.what, r.baseline, r.current))
                .collect();
            self.tally().regressed = Some((compared.baseline.clone(), found));
        }
        self.bus.emit(RunEvent::BaselineCompared(compared));
    }

    /// What a dry run that was accepted throughout did, counted from its records.
    fn dry_run_summary(&self) -> String {
        let (mut injections, mut reverts) = (0, 0);
        for record in self.bus.records() {
            match record.event {
                RunEvent::FaultInjected { dry_run: true, .. } => injections += 1,
                RunEvent::FaultReverted { dry_run: true, .. } => reverts += 1,
                _ => {}
            }
        }
        format!(
            "{injections} injection(s) accepted with dryRun=All, {reverts} target(s) reverted as a dry run"
        )
    }

    /// Emits RunFinished and maps the run to the exit-code contract.
    fn finish(&self) -> Outcome {
        if let Some(e) = self.bus.journal_error() {
            // The evidence is incomplete: the run cannot pass, whatever its checks said.
            let why = format!("the journal could not be written completely: {e}");
            let mut tally = self.tally();
            if !tally.errors.contains(&why) {
                tally.errors.push(why);
            }
        }
        self.judge_against_baseline();
        let tally = self.tally().clone();
        let stop = self.stop.borrow().clone();
        let verdict = Self::verdict(&tally, &stop);
        let (outcome, message) = match &verdict {
            // Every call was accepted with dryRun=All and nothing was judged: its own
            // verdict, never PASSED.
            Ok(()) if self.options.server_dry_run => (Outcome::DryRun, self.dry_run_summary()),
            Ok(()) if tally.skipped_empty.is_empty() => (
                Outcome::Passed,
                "every hypothesis held; every fault was injected and reverted".to_owned(),
            ),
            Ok(()) => (
                Outcome::Passed,
                format!(
                    "every judged hypothesis held; step(s) {} skipped: the fault reached no target (onEmptyTargets: skip)",
                    tally.skipped_empty.join(", ")
                ),
            ),
            Err(failure) => (failure.outcome(), failure.to_string()),
        };
        let status = match &verdict {
            Err(Failure::RevertFailed { .. } | Failure::CouldNotRun(_)) => StepStatus::Failed,
            Err(Failure::Interrupted(_) | Failure::Halted(_)) => StepStatus::Interrupted,
            Err(Failure::Deviated(Deviation::Aborted { .. } | Deviation::AbortedFromConsole)) => {
                StepStatus::Aborted
            }
            _ => StepStatus::Completed,
        };
        self.bus.emit(RunEvent::RunFinished(RunFinished {
            status,
            deviated: tally.deviated || tally.regressed.is_some(),
            exit_code: outcome.code(),
            outcome: Some(outcome),
            message: Some(message),
        }));
        self.bus.finish_progress();
        outcome
    }
}

/// Journals a run that never started (the cluster could not be read, preflight
/// refused): its header, every step skipped with the reason, and its verdict. The
/// reports are then rendered from these records like any run's.
pub fn record_not_run(
    plan: &Plan,
    conn: &Connection,
    options: &RunOptions,
    bus: &EventBus,
    failure: &Failure,
) {
    let prometheus_url = options
        .prometheus_url
        .as_deref()
        .map(display_url)
        .or_else(|| {
            plan.prometheus
                .as_ref()
                .and_then(|p| p.url.as_deref())
                .map(display_url)
        });
    bus.emit(RunEvent::RunStarted(header(
        plan,
        conn,
        options,
        prometheus_url,
    )));
    for entry in plan.entries() {
        // A preflight problem names its step (`preflight: step 2 (name): why`); else the
        // run's own cause.
        let prefix = format!("preflight: step {} (", entry.id);
        let reason = failure
            .details()
            .iter()
            .find(|p| p.starts_with(&prefix))
            .cloned()
            .unwrap_or_else(|| format!("not run: {}", crate::exit::cause_chain(failure)));
        bus.emit(RunEvent::StepSkipped {
            step: entry.id,
            reason,
        });
    }
    let outcome = failure.outcome();
    let status = match failure {
        Failure::Interrupted(_) => StepStatus::Interrupted,
        _ => StepStatus::Failed,
    };
    bus.emit(RunEvent::RunFinished(RunFinished {
        status,
        deviated: false,
        exit_code: outcome.code(),
        outcome: Some(outcome),
        message: Some(crate::exit::cause_chain(failure)),
    }));
}

/// The run's header: where, with what, and every step the plan will take.
fn run_started(plan: &Plan, runner: &Runner) -> RunStarted {
    // The endpoint's own URL: never credentials, and the spec's when no flag was given.
    let prometheus_url = match runner.prometheus.as_ref() {
        Ok(endpoint) => Some(endpoint.display_url().to_owned()),
        Err(_) => runner.options.prometheus_url.as_deref().map(display_url),
    };
    header(plan, &runner.conn, &runner.options, prometheus_url)
}

fn header(
    plan: &Plan,
    conn: &Connection,
    options: &RunOptions,
    prometheus_url: Option<String>,
) -> RunStarted {
    RunStarted {
        run_id: options.run_id.clone(),
        experiment: plan.name.clone(),
        source: plan.source.clone(),
        seed: plan.seed,
        context: Some(conn.context.clone()),
        api_server: Some(conn.server.clone()),
        prometheus_url,
        dry_run: if options.server_dry_run {
            "server".into()
        } else {
            "none".into()
        },
        version: env!("CARGO_PKG_VERSION").into(),
        steps: planned_steps(&plan.steps),
        hypotheses: plan.hypotheses.iter().map(planned_hypothesis).collect(),
        labels: plan.labels.clone(),
    }
}

/// The plan's faults and pauses, in plan order, as the journal records them.
fn planned_steps(steps: &[PlannedStep]) -> Vec<crate::events::PlannedStep> {
    let mut out = Vec::new();
    for step in steps {
        match &step.action {
            Action::Fault(f) => out.push(crate::events::PlannedStep {
                id: step.id.clone(),
                name: step.name.clone(),
                scenario: Some(f.scenario.clone()),
                fault: Some(describe_fault(&f.fault)),
                hypotheses: f.hypotheses.iter().map(planned_hypothesis).collect(),
                file: Some(f.file.clone()),
                fault_line: f.fault_line,
            }),
            Action::Pause(_) => out.push(crate::events::PlannedStep {
                id: step.id.clone(),
                name: step.name.clone(),
                scenario: None,
                fault: None,
                hypotheses: Vec::new(),
                file: None,
                fault_line: None,
            }),
            Action::Parallel(children) | Action::Sequence(children) => {
                out.extend(planned_steps(children))
            }
        }
    }
    out
}

fn planned_hypothesis(h: &Hypothesis) -> PlannedHypothesis {
    PlannedHypothesis {
        name: h.name.clone(),
        // The report's words for the probe, never `Debug` (issue 12).
        probe: crate::report::words::probe(&h.probe),
        expectation: h
            .expect
            .map_or_else(|| "reachable".into(), |e| e.to_string()),
        phases: h.phases.clone(),
        weight: h.weight,
        tolerance: h.tolerance.0,
        abort: h.abort,
        every_ms: h.every.0.as_millis() as u64,
        line: h.line,
    }
}
