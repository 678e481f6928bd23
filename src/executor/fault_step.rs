//! One fault step, the same way for every kind of fault: select the targets, check the
//! baseline, record the intent, inject, hold (sampling `during`), revert, verify the
//! owners recovered, then judge `after`. The fault's own behaviour comes only through
//! [`Injector`]; this file never asks which fault it is running.

use std::time::Duration;

use tokio::sync::watch;

use super::Runner;
use super::phases::{self, Check};
use crate::cluster;
use crate::events::{FaultIntent, NoteLevel, RunEvent, StepStatus};
use crate::faults::disruption::Disrupted;
use crate::faults::recovery::{self, RecoveryWatch};
use crate::faults::{FaultContext, FaultError, Hold, Injector, Listed};
use crate::plan::{self, FaultStep, TargetSelection};
use crate::run::stop::{Stop, unless_stopped, wait_or_stop};
use crate::spec::{Fault, OnEmptyTargets, Recovery, Safety};

impl Runner {
    pub(super) async fn fault_step(&self, id: &str, step: &FaultStep) {
        // `s` pressed between steps skips the one about to start.
        if self.take_skip() {
            self.skipped_from_console(id);
            return;
        }
        if self.stopped() {
            self.bus.emit(RunEvent::StepSkipped {
                step: id.into(),
                reason: "the run was stopped before this step".into(),
            });
            return;
        }
        self.bus.emit(RunEvent::StepStarted { step: id.into() });
        // The one place a fault's kind is looked at: to pick its implementation.
        let status = match &step.fault {
            Fault::PodDelete(f) => self.fault_body(id, step, f).await,
            Fault::NodeDrain(f) => self.fault_body(id, step, f).await,
            Fault::NetworkLatency(f) => self.fault_body(id, step, f).await,
        };
        // Whatever outlasts the fault (the step's silence) ends with the step.
        self.end_of_step(id).await;
        // `None`: the step was skipped (and said so); a finish would read as completed.
        if let Some(status) = status {
            self.bus.emit(RunEvent::StepFinished {
                step: id.into(),
                status,
            });
        }
    }

    /// The step's status, or `None` when it ended skipped (its `StepSkipped` is emitted).
    async fn fault_body<F: Injector>(
        &self,
        id: &str,
        step: &FaultStep,
        fault: &F,
    ) -> Option<StepStatus> {
        let safety = step.safety.as_ref();
        let recovery = self.watch_recovery_of(step, fault);
        let (targets, listed) = match self.select(id, &step.selection, safety).await {
            Ok(picked) => picked,
            Err(e) => {
                self.note(NoteLevel::Warning, format!("step {id}: {e}"));
                self.tally().errors.push(format!("step {id}: {e}"));
                return Some(StepStatus::Failed);
            }
        };
        self.bus.emit(RunEvent::TargetsSelected {
            step: id.into(),
            targets: targets.clone(),
        });
        let checks = self.checks(Some(id), &step.hypotheses);
        // A server dry run sends every call of the fault and its revert with dryRun=All,
        // but nothing is faulted: it samples no probe, holds nothing and waits for no
        // recovery.
        let dry_run = self.options.server_dry_run;
        if dry_run {
            phases::skip_dry_run(&checks, &self.bus);
        } else if !phases::before(&checks, &self.bus, &self.stop).await {
            if self.stopped() {
                self.bus.emit(RunEvent::StepSkipped {
                    step: id.into(),
                    reason: "the run was stopped during the baseline: no fault injected".into(),
                });
                return None;
            }
            self.bus.emit(RunEvent::StepSkipped {
                step: id.into(),
                reason: "baseline failed: no fault injected".into(),
            });
            self.tally()
                .errors
                .push(format!("step {id}: baseline failed"));
            return Some(StepStatus::Failed);
        }
        if self.take_skip() {
            // `s` pressed during the baseline: nothing is injected.
            phases::skip_after_from_console(&checks, &self.bus);
            self.skipped_from_console(id);
            return None;
        }
        if let Some(silence) = &step.silence
            && let Err(why) = self.put_up_silence(Some(id), silence, step.window).await
        {
            let why = format!("step {id}: {why}; nothing was injected");
            self.note(NoteLevel::Warning, why.clone());
            self.tally().errors.push(why);
            return Some(StepStatus::Failed);
        }
        let mut ctx = self.fault_context(id);
        ctx.evictable = step.drain_scope().map(std::sync::Arc::new);
        ctx.listed = listed;
        let intent = RunEvent::FaultIntent(FaultIntent {
            step: id.into(),
            fault: step.fault.type_name().into(),
            targets: targets.clone(),
            params: serde_json::to_value(&step.fault).unwrap_or_default(),
            revert: fault.revert_hint(&self.options.run_id),
        });
        if let Err(e) = self.bus.emit_durably(intent).await {
            // No mutation without its intent record on disk: it is what tells a later
            // `recover --journal` (and the auditor) what was done.
            let why =
                format!("step {id}: the journal cannot be written ({e}); nothing was injected");
            self.note(NoteLevel::Warning, why.clone());
            self.tally().errors.push(why);
            return Some(StepStatus::Failed);
        }
        self.recovery_synced(&recovery).await;
        let injected_at = tokio::time::Instant::now();
        let recovery_budget = step.recovery.within.0;
        let (mut disrupted, mut inject_error) = match fault.inject(&ctx, &targets).await {
            Ok(disrupted) => (disrupted, None),
            Err(e) => (Disrupted::default(), Some(e)),
        };
        if inject_error.is_none() && !self.injected_anything(id) {
            const WHY: &str = "every target was skipped, already faulted, or had nothing to evict";
            if step.on_empty_targets == OnEmptyTargets::Skip {
                // The scenario said an empty step is expected: skipped, never held. (A
                // server dry run has already skipped every hypothesis.)
                self.revert_step(id, fault, &disrupted).await;
                if !dry_run {
                    phases::skip_empty_step(&checks, &self.bus);
                }
                self.bus.emit(RunEvent::StepSkipped {
                    step: id.into(),
                    reason: format!("nothing to inject: {WHY} (onEmptyTargets: skip)"),
                });
                self.tally_verdicts(Some(id));
                self.tally().skipped_empty.push(id.to_owned());
                return None;
            }
            // A chaos test that injected nothing did not pass: every target was skipped,
            // already faulted by someone else, or had nothing to evict. Checked before
            // the hold, so nothing is "held" for the fault's whole duration.
            let e = FaultError::NotApplied(format!("nothing was injected: {WHY}"));
            self.note(NoteLevel::Warning, format!("step {id}: {e}"));
            inject_error = Some(e);
        }
        if inject_error.is_none() && !dry_run {
            let hold = fault.hold(recovery_budget);
            if let Err(e) = self
                .hold(&ctx, step, fault, hold, &checks, &mut disrupted, &recovery)
                .await
            {
                inject_error = Some(e);
            }
        }
        let reverted_at = tokio::time::Instant::now();
        self.revert_step(id, fault, &disrupted).await;
        // An injection a stop cut short is the stop's outcome, not an error of its own.
        let inject_error = inject_error.filter(|e| !matches!(e, FaultError::Stopped(_)));
        if let Some(e) = &inject_error {
            self.tally().errors.push(format!("step {id}: {e}"));
        }
        if self.take_skip() {
            // The console's `s`: reverted above; the rest of the step is not judged.
            phases::skip_after_from_console(&checks, &self.bus);
            self.skipped_from_console(id);
            self.tally_verdicts(Some(id));
            return None;
        }
        if dry_run {
            self.tally_verdicts(Some(id));
            return Some(match (&*self.stop.borrow(), inject_error) {
                (Stop::Signalled(_) | Stop::Halted(_), _) => StepStatus::Interrupted,
                (_, Some(_)) => StepStatus::Failed,
                _ => StepStatus::Completed,
            });
        }
        self.verify_recovery(id, &disrupted, injected_at, &step.recovery, &recovery)
            .await;
        if !self.signalled() {
            phases::after(&checks, &self.bus, &step.recovery, reverted_at, &self.stop).await;
        }
        self.tally_verdicts(Some(id));
        Some(match (&*self.stop.borrow(), inject_error) {
            (Stop::Aborted(_), _) => StepStatus::Aborted,
            (Stop::Signalled(_) | Stop::Halted(_), _) => StepStatus::Interrupted,
            (Stop::LockLost(_), _) => StepStatus::Failed,
            (_, Some(_)) => StepStatus::Failed,
            _ => StepStatus::Completed,
        })
    }

    /// Whether any injection into a target of this step was journaled.
    fn injected_anything(&self, id: &str) -> bool {
        self.bus
            .records()
            .iter()
            .any(|r| matches!(&r.event, RunEvent::FaultInjected { step, .. } if step == id))
    }

    /// Starts watching what the step's recovery is judged from: the pods of the
    /// namespaces the fault can remove pods from (its targets', or those a drain may
    /// evict from). Started before the targets are picked, so the watch's first list is
    /// answered while the pick's own list is; [`Self::recovery_synced`] then waits for
    /// it before the first disruption, so an owner whole again while the fault still
    /// holds (a drain a PDB holds back) is timed when it happened. Faults that remove no
    /// pod, and server dry runs, watch nothing.
    fn watch_recovery_of<F: Injector>(&self, step: &FaultStep, fault: &F) -> RecoveryWatch {
        let recovery = RecoveryWatch::new(self.conn.client.clone());
        if self.options.server_dry_run || fault.removed_pod_revert().is_none() {
            return recovery;
        }
        let scope = step.drain_scope();
        let evictable = scope.iter().flat_map(|e| e.namespaces());
        let namespaces = step.selection.pod_namespaces().iter().chain(evictable);
        recovery.watch_namespaces(namespaces.map(String::as_str));
        recovery
    }

    /// Waits until the recovery watch has listed every namespace it follows.
    async fn recovery_synced(&self, recovery: &RecoveryWatch) {
        /// At worst a slow first list only delays the fault by this much; pods alive
        /// before it is answered are then timed from when it was.
        const FIRST_LIST: Duration = Duration::from_secs(5);
        let listed = tokio::time::Instant::now() + FIRST_LIST;
        unless_stopped(&mut self.stop.subscribe(), recovery.synced(listed)).await;
    }

    /// Keeps the fault active as the fault says, while `during` hypotheses are sampled.
    #[allow(clippy::too_many_arguments)]
    async fn hold<F: Injector>(
        &self,
        ctx: &FaultContext,
        step: &FaultStep,
        fault: &F,
        hold: Hold,
        checks: &[Check],
        disrupted: &mut Disrupted,
        recovery: &RecoveryWatch,
    ) -> Result<(), FaultError> {
        let mut stopped = self.stop.subscribe();
        match hold {
            Hold::UntilRecovered(budget) => {
                let (done_tx, done_rx) = watch::channel(false);
                let waiting = async {
                    let until = tokio::time::Instant::now() + budget;
                    recovery::wait_until_recovered(recovery, disrupted, until, &mut stopped, false)
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
            Hold::Repeat { interval, total } => {
                let deadline = tokio::time::Instant::now() + total;
                let repeat = async {
                    let mut round = 1;
                    loop {
                        let next = tokio::time::Instant::now() + interval;
                        if next >= deadline
                            || self
                                .watch_recovery(recovery, disrupted, next, &mut stopped)
                                .await
                        {
                            return Ok(());
                        }
                        round += 1;
                        // Fresh picks each round: the pods deleted last round are gone.
                        // Reading them retries a flaky API for up to 30 s; a stop ends it.
                        let pick_id = format!("{}@{round}", ctx.step);
                        let picking = self.select(&pick_id, &step.selection, step.safety.as_ref());
                        let Some(picks) = unless_stopped(&mut stopped, picking).await else {
                            return Ok(());
                        };
                        let (picks, listed) = picks?;
                        self.bus.emit(RunEvent::TargetsSelected {
                            step: ctx.step.clone(),
                            targets: picks.clone(),
                        });
                        let round_ctx = FaultContext {
                            listed,
                            ..ctx.clone()
                        };
                        disrupted.extend(fault.inject(&round_ctx, &picks).await?);
                    }
                };
                let (result, ()) = tokio::join!(
                    repeat,
                    phases::during(checks, &self.bus, phases::Window::For(total), &self.stop)
                );
                result
            }
            Hold::For(length) => {
                let until = tokio::time::Instant::now() + length;
                // Owners can be whole again while the fault holds (a drained node's
                // pods rescheduled elsewhere): that is when they recovered.
                let holding = self.watch_recovery(recovery, disrupted, until, &mut stopped);
                tokio::join!(
                    holding,
                    phases::during(checks, &self.bus, phases::Window::For(length), &self.stop)
                );
                Ok(())
            }
        }
    }

    /// Notes owners that are whole again until `until`; true when the run was stopped.
    async fn watch_recovery(
        &self,
        recovery: &RecoveryWatch,
        disrupted: &mut Disrupted,
        until: tokio::time::Instant,
        stopped: &mut watch::Receiver<Stop>,
    ) -> bool {
        if !self.options.server_dry_run && disrupted.pending().next().is_some() {
            recovery::wait_until_recovered(recovery, disrupted, until, stopped, false).await;
        }
        wait_or_stop(stopped, until).await
    }

    /// Reads the cluster now and picks the step's targets, seeded by the plan's seed and
    /// `id`, with the step's effective safety; with what the listing saw of each picked
    /// pod, so the fault needs no second read of them.
    async fn select(
        &self,
        id: &str,
        selection: &TargetSelection,
        safety: Option<&Safety>,
    ) -> Result<(Vec<String>, Listed), FaultError> {
        let inventory = cluster::inventory(
            &self.conn,
            selection.pod_namespaces(),
            selection.is_nodes(),
            Duration::from_secs(30),
        )
        .await?;
        let targets = plan::select_targets(
            selection,
            safety,
            &inventory,
            plan::derive_seed(self.seed, id),
        )?;
        let picked: std::collections::BTreeSet<&str> = targets.iter().map(String::as_str).collect();
        let listed = inventory
            .pods
            .into_iter()
            .map(|p| (format!("{}/{}", p.namespace, p.name), p))
            .filter(|(key, _)| picked.contains(key.as_str()))
            .collect();
        Ok((targets, std::sync::Arc::new(listed)))
    }

    /// Reverts the step's ledger entries. Pods the fault removed have nothing to undo
    /// (their owners replace them), but the fault window ends here for them too, and the
    /// reports need to see that every target was dealt with.
    async fn revert_step<F: Injector>(&self, id: &str, fault: &F, disrupted: &Disrupted) {
        if let Some(detail) = fault.removed_pod_revert() {
            let dry_run = self.options.server_dry_run;
            for (namespace, name, _) in &disrupted.pods {
                self.bus.emit(RunEvent::FaultReverted {
                    step: id.into(),
                    target: format!("{namespace}/{name}"),
                    detail: detail.into(),
                    dry_run,
                });
            }
        }
        let entries = self.ledger.take_fault(id);
        self.revert_entries(entries.into_iter().map(|e| (id.to_owned(), e)).collect())
            .await;
    }

    /// Waits until every disrupted owner is whole again (up to `settle` plus its longest
    /// objective), then judges each against its recovery-time objective: recovered later
    /// than allowed, or never seen whole, is a deviation (exit 1) with its own JUnit case.
    /// Only a terminating signal leaves an owner unjudged.
    async fn verify_recovery(
        &self,
        id: &str,
        disrupted: &Disrupted,
        since: tokio::time::Instant,
        objectives: &Recovery,
        recovery: &RecoveryWatch,
    ) {
        if disrupted.owners.is_empty() || self.options.server_dry_run {
            return;
        }
        let mut disrupted = disrupted.clone();
        let mut stopped = self.stop.subscribe();
        let budget = objectives.settle.0 + objectives.longest().0;
        let deadline = tokio::time::Instant::now() + budget;
        // An abort ends the fault early; recovery is still measured. Only a signal cuts it.
        recovery::wait_until_recovered(recovery, &mut disrupted, deadline, &mut stopped, true)
            .await;
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut missed = false;
        for owner in disrupted.recovered.keys() {
            // From the owner's own last disruption, not from the first injection.
            let after_ms = disrupted.recovery_time(owner, since).map_or(0, millis);
            let within_ms = millis(objectives.objective(&owner.to_string()).0);
            missed |= after_ms > within_ms;
            self.bus.emit(RunEvent::Recovered {
                step: id.into(),
                workload: owner.to_string(),
                after_ms,
                within_ms: Some(within_ms),
            });
        }
        let signalled = self.signalled();
        let now = tokio::time::Instant::now();
        for owner in disrupted.pending() {
            let within = objectives.objective(&owner.to_string()).0;
            let last = disrupted
                .last_disrupted
                .get(owner)
                .copied()
                .unwrap_or(since);
            let waited = now.saturating_duration_since(last);
            self.bus.emit(RunEvent::NotRecovered {
                step: id.into(),
                workload: owner.to_string(),
                waited_ms: millis(waited),
                within_ms: Some(millis(within)),
                stopped: signalled,
            });
            missed |= !signalled;
            let message = if signalled {
                format!("step {id}: recovery of {owner} not verified: the run was stopped")
            } else {
                format!("step {id}: {owner} did not get its ready replicas back within {within:?}")
            };
            self.note(NoteLevel::Warning, message);
        }
        if missed {
            // The recovery-time objective is a gate: missing it is a deviation.
            self.tally().deviated = true;
        }
    }
}
