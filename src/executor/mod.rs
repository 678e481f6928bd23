//! The executor: runs a validated, planned experiment against the cluster.
//!
//! It talks only through `RunEvent`s on the `EventBus` (journal + progress). Every
//! fault is recorded in the `Ledger` before its first mutating call, and the ledger is
//! emptied — reverted — on every exit path: success, deviation, abort, SIGINT/SIGTERM
//! and a panicking step task.

pub(crate) mod phases;
mod preflight;
pub mod recover;
pub mod session;
pub mod signals;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use self::phases::Check;
use crate::cluster::{self, Connection};
use crate::events::{
    NoteLevel, PlannedHypothesis, PlannedStep, RunEvent, RunFinished, RunStarted, StepStatus,
    Verdict,
};
use crate::exit::Outcome;
use crate::faults::{self, FaultContext, Ledger, recovery};
use crate::plan::{self, Plan};
use crate::probes::Probe;
use crate::probes::prometheus::{self, PrometheusEndpoint, PrometheusSettings, display_url};
use crate::run::bus::EventBus;
use crate::run::stop::{Stop, wait_or_stop};
use crate::spec::{
    Fault, Hypothesis, Loaded, Probe as ProbeSpec, ResolvedAction, ResolvedStep, Safety, Scenario,
    Target,
};

pub struct RunOptions {
    pub run_id: String,
    pub seed: u64,
    /// Send every mutating call with `dryRun=All`.
    pub server_dry_run: bool,
    pub default_namespace: Option<String>,
    pub prometheus_url: Option<String>,
    /// `--prometheus-token`: overrides the spec's bearer token or basic auth.
    pub prometheus_token: Option<crate::probes::prometheus::Secret>,
    /// `--prometheus-token-file`: re-read on every query.
    pub prometheus_token_file: Option<std::path::PathBuf>,
    /// How long one revert retries a failing API before it is reported as failed.
    pub revert_timeout: Duration,
}

/// What happened, for the exit code.
#[derive(Debug, Default, Clone)]
struct Tally {
    deviated: bool,
    inconclusive: bool,
    errors: Vec<String>,
    revert_failures: Vec<String>,
}

#[derive(Clone)]
struct Runner {
    conn: Connection,
    bus: EventBus,
    ledger: Ledger,
    stop: watch::Sender<Stop>,
    options: Arc<RunOptions>,
    safety: Option<Safety>,
    default_namespace: String,
    tally: Arc<Mutex<Tally>>,
    /// The run's Prometheus, or why it cannot be used (then every PromQL sample errors).
    prometheus: Arc<Result<Arc<PrometheusEndpoint>, prometheus::SetupError>>,
}

/// Runs one experiment (or scenario) file end to end and returns its outcome.
pub async fn run(
    loaded: &Loaded,
    plan: &Plan,
    conn: Connection,
    bus: EventBus,
    options: RunOptions,
) -> Outcome {
    let (stop, _) = watch::channel(Stop::Running);
    let signals = signals::install(stop.clone());
    let safety = match &loaded.document {
        crate::spec::Document::Experiment(e) => e.spec.safety.clone(),
        crate::spec::Document::Scenario(s) => s.spec.safety.clone(),
    };
    let prometheus = prometheus::endpoint(&PrometheusSettings {
        url: options.prometheus_url.clone(),
        token: options.prometheus_token.clone(),
        token_file: options.prometheus_token_file.clone(),
        // The experiment's own, else the first of its scenarios that names one: a run
        // talks to one Prometheus.
        spec: match &loaded.document {
            crate::spec::Document::Experiment(e) => e.spec.prometheus.clone(),
            crate::spec::Document::Scenario(s) => s.spec.prometheus.clone(),
        }
        .or_else(|| {
            loaded
                .scenarios()
                .into_iter()
                .find_map(|(_, s)| s.spec.prometheus.clone())
        }),
    });
    let default_namespace = options
        .default_namespace
        .clone()
        .unwrap_or_else(|| conn.default_namespace.clone());
    let runner = Runner {
        conn,
        bus: bus.clone(),
        ledger: Ledger::default(),
        stop: stop.clone(),
        options: Arc::new(options),
        safety,
        default_namespace,
        tally: Arc::new(Mutex::new(Tally::default())),
        prometheus: Arc::new(prometheus),
    };
    bus.emit(RunEvent::RunStarted(run_started(loaded, plan, &runner)));
    let experiment_checks = match &loaded.document {
        crate::spec::Document::Experiment(e) => runner.checks(None, &e.spec.hypotheses),
        crate::spec::Document::Scenario(_) => Vec::new(),
    };
    if !phases::before(&experiment_checks, &bus).await {
        for entry in &plan.entries {
            let reason = "experiment baseline failed: no fault injected".to_owned();
            bus.emit(RunEvent::StepSkipped {
                step: entry.id.clone(),
                reason,
            });
        }
        runner
            .tally()
            .errors
            .push("experiment baseline failed".into());
        signals.abort();
        return runner.finish();
    }
    // Experiment-wide hypotheses are sampled for as long as the steps run.
    let (ended_tx, ended_rx) = watch::channel(false);
    let watcher = {
        let (checks, bus, stop) = (experiment_checks.clone(), bus.clone(), stop.clone());
        tokio::spawn(async move {
            phases::during(&checks, &bus, phases::Window::Until(ended_rx), &stop).await
        })
    };

    // The steps run in their own task, so a panic in a fault cannot skip the revert below.
    let steps = tokio::spawn({
        let runner = runner.clone();
        let loaded = loaded.clone();
        async move { runner.run_document(&loaded).await }
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
    if !runner.stopped() && !experiment_checks.is_empty() {
        let recovery = crate::spec::Recovery::default();
        let now = tokio::time::Instant::now();
        phases::after(
            &experiment_checks,
            &bus,
            recovery.settle.0,
            recovery.within.0,
            now,
        )
        .await;
    }
    runner.tally_verdicts(None);
    signals.abort();
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

    async fn run_document(&self, loaded: &Loaded) {
        match &loaded.document {
            crate::spec::Document::Scenario(s) => self.scenario_step("1", s).await,
            crate::spec::Document::Experiment(_) => {
                self.sequence(String::new(), loaded.steps.clone()).await
            }
        }
    }

    /// Mirrors `plan::Builder`'s ids exactly, so picks and reports line up with the plan.
    fn sequence(
        &self,
        prefix: String,
        steps: Vec<ResolvedStep>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            for (i, step) in steps.iter().enumerate() {
                self.step(format!("{prefix}{}", i + 1), step).await;
            }
        })
    }

    fn step<'a>(
        &'a self,
        id: String,
        step: &'a ResolvedStep,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let mut stopped = self.stop.subscribe();
            if !step.after.is_zero()
                && wait_or_stop(&mut stopped, tokio::time::Instant::now() + step.after).await
            {
                self.bus.emit(RunEvent::StepSkipped {
                    step: id,
                    reason: "the run was stopped".into(),
                });
                return;
            }
            for round in 1..=step.repeat {
                let id = if step.repeat > 1 {
                    format!("{id}#{round}")
                } else {
                    id.clone()
                };
                match &step.action {
                    ResolvedAction::Scenario { scenario, .. } => {
                        self.scenario_step(&id, scenario).await
                    }
                    ResolvedAction::Experiment { steps, .. } => {
                        self.sequence(format!("{id}."), steps.clone()).await
                    }
                    ResolvedAction::Pause(length) => {
                        if wait_or_stop(&mut stopped, tokio::time::Instant::now() + *length).await {
                            self.bus.emit(RunEvent::StepSkipped {
                                step: id,
                                reason: "the run was stopped".into(),
                            });
                            return;
                        }
                    }
                    ResolvedAction::Parallel(children) => {
                        let mut group = tokio::task::JoinSet::new();
                        for (i, child) in children.iter().enumerate() {
                            let runner = self.clone();
                            let child = child.clone();
                            let child_id = format!("{id}.{}", i + 1);
                            group.spawn(async move { runner.step(child_id, &child).await });
                        }
                        while let Some(done) = group.join_next().await {
                            if let Err(join) = done {
                                self.note(
                                    NoteLevel::Warning,
                                    format!(
                                        "a parallel step failed ({join}); its faults are reverted"
                                    ),
                                );
                                self.tally().errors.push(format!("internal error: {join}"));
                            }
                        }
                    }
                }
            }
        })
    }

    async fn scenario_step(&self, id: &str, scenario: &Scenario) {
        if self.stopped() {
            self.bus.emit(RunEvent::StepSkipped {
                step: id.into(),
                reason: "the run was stopped before this step".into(),
            });
            return;
        }
        self.bus.emit(RunEvent::StepStarted { step: id.into() });
        let status = self.scenario_body(id, scenario).await;
        self.bus.emit(RunEvent::StepFinished {
            step: id.into(),
            status,
        });
    }

    async fn scenario_body(&self, id: &str, scenario: &Scenario) -> StepStatus {
        let spec = &scenario.spec;
        let safety = self.safety.as_ref().or(spec.safety.as_ref());
        let targets = match self.select(id, &spec.target, safety).await {
            Ok(targets) => targets,
            Err(e) => {
                self.note(NoteLevel::Warning, format!("step {id}: {e}"));
                self.tally().errors.push(format!("step {id}: {e}"));
                return StepStatus::Failed;
            }
        };
        self.bus.emit(RunEvent::TargetsSelected {
            step: id.into(),
            targets: targets.clone(),
        });
        let checks = self.checks(Some(id), &spec.hypotheses);
        if !phases::before(&checks, &self.bus).await {
            self.bus.emit(RunEvent::StepSkipped {
                step: id.into(),
                reason: "baseline failed: no fault injected".into(),
            });
            self.tally()
                .errors
                .push(format!("step {id}: baseline failed"));
            return StepStatus::Failed;
        }
        let ctx = self.fault_context(id);
        self.bus
            .emit(RunEvent::FaultIntent(crate::events::FaultIntent {
                step: id.into(),
                fault: spec.fault.type_name().into(),
                targets: targets.clone(),
                params: serde_json::to_value(&spec.fault).unwrap_or_default(),
                revert: revert_hint(&spec.fault, &self.options.run_id),
            }));
        let injected_at = tokio::time::Instant::now();
        let injected = self.inject(&ctx, &spec.fault, &targets).await;
        let mut inject_error = injected.as_ref().err().cloned();
        let mut disrupted = injected.unwrap_or_default();
        if inject_error.is_none() {
            match self
                .hold(
                    &ctx,
                    &spec.fault,
                    &spec.target,
                    safety,
                    &checks,
                    &mut disrupted,
                    spec.recovery.within.0,
                )
                .await
            {
                Ok(()) => {}
                Err(e) => inject_error = Some(e),
            }
        }
        let reverted_at = tokio::time::Instant::now();
        self.revert_step(id, &spec.fault, &disrupted).await;
        if let Some(e) = &inject_error {
            self.tally().errors.push(format!("step {id}: {e}"));
        }
        self.verify_recovery(
            id,
            &disrupted,
            injected_at,
            spec.recovery.settle.0 + spec.recovery.within.0,
        )
        .await;
        if !self.stopped() {
            phases::after(
                &checks,
                &self.bus,
                spec.recovery.settle.0,
                spec.recovery.within.0,
                reverted_at,
            )
            .await;
        }
        self.tally_verdicts(Some(id));
        match (&*self.stop.borrow(), inject_error) {
            (Stop::Aborted(_), _) => StepStatus::Aborted,
            (Stop::Interrupted | Stop::Terminated, _) => StepStatus::Interrupted,
            (_, Some(_)) => StepStatus::Failed,
            _ => StepStatus::Completed,
        }
    }

    /// The first injection. Everything it disrupted is returned for recovery checks.
    async fn inject(
        &self,
        ctx: &FaultContext,
        fault: &Fault,
        targets: &[String],
    ) -> Result<recovery::Disrupted, String> {
        match fault {
            Fault::PodDelete(f) => faults::pod_delete::delete_pods(ctx, f, targets).await,
            Fault::NodeDrain(f) => faults::node_drain::drain(ctx, f, targets).await,
            Fault::NetworkLatency(f) => faults::network::inject(ctx, f, targets)
                .await
                .map(|()| recovery::Disrupted::default()),
        }
    }

    /// Holds the fault while `during` hypotheses are sampled. A one-shot pod-delete is
    /// "active" until its owners are whole again (at most `recovery_budget`); a repeated
    /// pod-delete deletes fresh picks every interval.
    #[allow(clippy::too_many_arguments)]
    async fn hold(
        &self,
        ctx: &FaultContext,
        fault: &Fault,
        target: &Target,
        safety: Option<&Safety>,
        checks: &[Check],
        disrupted: &mut recovery::Disrupted,
        recovery_budget: Duration,
    ) -> Result<(), String> {
        let mut stopped = self.stop.subscribe();
        let hold = fault.active_for();
        let deadline = tokio::time::Instant::now() + hold;
        match fault {
            Fault::PodDelete(f) if f.interval.is_none() => {
                let (done_tx, done_rx) = watch::channel(false);
                let waiting = async {
                    let until = tokio::time::Instant::now() + recovery_budget;
                    recovery::wait_until_recovered(&ctx.client, disrupted, until, &mut stopped)
                        .await;
                    done_tx.send_replace(true);
                };
                tokio::join!(
                    waiting,
                    phases::during(
                        checks,
                        &self.bus,
                        phases::Window::Until(done_rx),
                        &self.stop
                    )
                );
                Ok(())
            }
            Fault::PodDelete(f) => {
                let interval = f.interval.map_or(hold, |i| i.0);
                let repeat = async {
                    let mut round = 1;
                    loop {
                        let next = tokio::time::Instant::now() + interval;
                        if next >= deadline || wait_or_stop(&mut stopped, next).await {
                            return Ok(());
                        }
                        round += 1;
                        // Fresh picks each round: the pods deleted last round are gone.
                        let picks = self
                            .select(&format!("{}@{round}", ctx.step), target, safety)
                            .await?;
                        self.bus.emit(RunEvent::TargetsSelected {
                            step: ctx.step.clone(),
                            targets: picks.clone(),
                        });
                        disrupted.extend(faults::pod_delete::delete_pods(ctx, f, &picks).await?);
                    }
                };
                let (result, ()) = tokio::join!(
                    repeat,
                    phases::during(checks, &self.bus, phases::Window::For(hold), &self.stop)
                );
                result
            }
            Fault::NodeDrain(_) | Fault::NetworkLatency(_) => {
                let holding = wait_or_stop(&mut stopped, deadline);
                tokio::join!(
                    holding,
                    phases::during(checks, &self.bus, phases::Window::For(hold), &self.stop)
                );
                Ok(())
            }
        }
    }

    async fn select(
        &self,
        id: &str,
        target: &Target,
        safety: Option<&Safety>,
    ) -> Result<Vec<String>, String> {
        let namespaces = match target {
            Target::Pods(p) if p.namespaces.is_empty() => vec![self.default_namespace.clone()],
            Target::Pods(p) => p.namespaces.clone(),
            Target::Nodes(_) => Vec::new(),
        };
        let with_nodes = matches!(target, Target::Nodes(_));
        let mut inventory =
            cluster::inventory(&self.conn, &namespaces, with_nodes, Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string())?;
        inventory.default_namespace = self.default_namespace.clone();
        plan::select_targets(
            target,
            safety,
            &inventory,
            plan::derive_seed(self.options.seed, id),
        )
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
        }
    }

    /// Reverts the step's ledger entries. Deleted and evicted pods have nothing to undo
    /// (their owners replace them), but the fault window ends here for them too, and the
    /// reports need to see that every target was dealt with.
    async fn revert_step(&self, id: &str, fault: &Fault, disrupted: &recovery::Disrupted) {
        let detail = match fault {
            Fault::PodDelete(_) => Some("nothing to revert: the owner recreates the pod"),
            Fault::NodeDrain(_) => Some("nothing to revert: the owner reschedules the evicted pod"),
            Fault::NetworkLatency(_) => None,
        };
        if let Some(detail) = detail {
            for (namespace, name, _) in &disrupted.pods {
                let target = format!("{namespace}/{name}");
                self.bus.emit(RunEvent::FaultReverted {
                    step: id.into(),
                    target,
                    detail: detail.into(),
                });
            }
        }
        for entry in self.ledger.take_step(id) {
            self.revert_one(id, &entry).await;
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
        }
    }

    async fn revert_one(&self, step: &str, entry: &faults::Undo) {
        let result = faults::undo(
            &self.fault_context(step),
            entry,
            self.options.revert_timeout,
        )
        .await;
        match result {
            Ok(detail) => {
                self.bus.emit(RunEvent::FaultReverted {
                    step: step.into(),
                    target: entry.target(),
                    detail,
                });
            }
            Err(error) => {
                self.bus.emit(RunEvent::RevertFailed {
                    step: step.into(),
                    target: entry.target(),
                    error: error.clone(),
                });
                self.tally()
                    .revert_failures
                    .push(format!("{}: {error}", entry.target()));
            }
        }
    }

    /// The safety net: whatever is still in the ledger gets reverted now.
    async fn revert_everything(&self) {
        for (step, entry) in self.ledger.take_all() {
            self.revert_one(&step, &entry).await;
        }
    }

    async fn verify_recovery(
        &self,
        id: &str,
        disrupted: &recovery::Disrupted,
        since: tokio::time::Instant,
        budget: Duration,
    ) {
        if disrupted.owners.is_empty() || self.options.server_dry_run {
            return;
        }
        let mut disrupted = disrupted.clone();
        let mut stopped = self.stop.subscribe();
        let deadline = tokio::time::Instant::now() + budget;
        recovery::wait_until_recovered(&self.conn.client, &mut disrupted, deadline, &mut stopped)
            .await;
        for (owner, at) in &disrupted.recovered {
            let after_ms = at.saturating_duration_since(since).as_millis() as u64;
            self.bus.emit(RunEvent::Recovered {
                step: id.into(),
                workload: owner.to_string(),
                after_ms,
            });
        }
        let stopped = self.stopped();
        for owner in disrupted.pending() {
            let message = if stopped {
                format!("step {id}: recovery of {owner} not verified: the run was stopped")
            } else {
                format!("step {id}: {owner} did not get its ready replicas back within {budget:?}")
            };
            self.note(NoteLevel::Warning, message);
        }
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

    /// Emits RunFinished and maps the run to the exit-code contract.
    fn finish(&self) -> Outcome {
        let tally = self.tally().clone();
        let stop = self.stop.borrow().clone();
        let (outcome, status, message) = if !tally.revert_failures.is_empty() {
            let what = tally.revert_failures.join("; ");
            (
                Outcome::RevertFailed,
                StepStatus::Failed,
                format!(
                    "REVERT FAILED, the cluster may still be faulted: {what}. Run `shakedown recover`."
                ),
            )
        } else if stop == Stop::Interrupted {
            (
                Outcome::Interrupted(crate::exit::Signal::Int),
                StepStatus::Interrupted,
                "interrupted by SIGINT; every fault was reverted".into(),
            )
        } else if stop == Stop::Terminated {
            (
                Outcome::Interrupted(crate::exit::Signal::Term),
                StepStatus::Interrupted,
                "terminated by SIGTERM; every fault was reverted".into(),
            )
        } else if !tally.errors.is_empty() {
            (
                Outcome::CouldNotRun,
                StepStatus::Failed,
                tally.errors.join("; "),
            )
        } else if let Stop::Aborted(h) = &stop {
            (
                Outcome::Deviated,
                StepStatus::Aborted,
                format!("aborted: `{h}` breached; every fault was reverted"),
            )
        } else if tally.deviated || tally.inconclusive {
            (
                Outcome::Deviated,
                StepStatus::Completed,
                "steady state deviated or could not be confirmed".into(),
            )
        } else {
            (
                Outcome::Passed,
                StepStatus::Completed,
                "every hypothesis held; every fault was injected and reverted".into(),
            )
        };
        self.bus.emit(RunEvent::RunFinished(RunFinished {
            status,
            deviated: tally.deviated,
            exit_code: outcome.code(),
            outcome: Some(outcome),
            message: Some(message),
        }));
        self.bus.finish_progress();
        outcome
    }
}

fn revert_hint(fault: &Fault, run_id: &str) -> String {
    match fault {
        Fault::PodDelete(_) => "nothing to revert: the owners recreate deleted pods".into(),
        Fault::NodeDrain(_) => format!(
            "kubectl uncordon the nodes annotated {}={run_id}, or `shakedown recover`",
            faults::CORDONED_BY
        ),
        Fault::NetworkLatency(f) => format!(
            "exec `tc qdisc del dev {} root` in the shakedown-netem container, or wait for its TTL; `shakedown recover` removes the annotations",
            f.interface
        ),
    }
}

fn run_started(loaded: &Loaded, plan: &Plan, runner: &Runner) -> RunStarted {
    let scenarios = loaded.scenarios();
    RunStarted {
        run_id: runner.options.run_id.clone(),
        experiment: loaded.name().to_owned(),
        source: loaded.path.display().to_string(),
        seed: runner.options.seed,
        context: Some(runner.conn.context.clone()),
        api_server: Some(runner.conn.server.clone()),
        // The endpoint's own URL: never credentials, and the spec's when no flag was given.
        prometheus_url: match runner.prometheus.as_ref() {
            Ok(endpoint) => Some(endpoint.display_url().to_owned()),
            Err(_) => runner.options.prometheus_url.as_deref().map(display_url),
        },
        dry_run: if runner.options.server_dry_run {
            "server".into()
        } else {
            "none".into()
        },
        version: env!("CARGO_PKG_VERSION").into(),
        steps: plan
            .entries
            .iter()
            .map(|e| {
                let scenario = scenarios
                    .iter()
                    .find(|(id, _)| id == &e.id)
                    .map(|(_, s)| *s);
                PlannedStep {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    scenario: scenario.map(|s| s.metadata.name.clone()),
                    fault: e.fault.clone(),
                    hypotheses: scenario
                        .map(|s| s.spec.hypotheses.iter().map(planned_hypothesis).collect())
                        .unwrap_or_default(),
                }
            })
            .collect(),
        hypotheses: match &loaded.document {
            crate::spec::Document::Experiment(e) => {
                e.spec.hypotheses.iter().map(planned_hypothesis).collect()
            }
            crate::spec::Document::Scenario(_) => Vec::new(),
        },
    }
}

fn planned_hypothesis(h: &Hypothesis) -> PlannedHypothesis {
    PlannedHypothesis {
        name: h.name.clone(),
        probe: match &h.probe {
            ProbeSpec::Promql(q) => q.clone(),
            ProbeSpec::Http(http) => format!("{} {}", http.method, http.url),
            ProbeSpec::Kube(k) => format!("{:?}", k),
        },
        expectation: h
            .expect
            .map_or_else(|| "reachable".into(), |e| e.to_string()),
        phases: h.phases.clone(),
        weight: h.weight,
        tolerance: h.tolerance.0,
        abort: h.abort,
        every_ms: h.every.0.as_millis() as u64,
    }
}

pub use preflight::preflight;
