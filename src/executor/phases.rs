//! Steady-state phases: `before` (baseline), `during` (sampled while the fault holds,
//! judged against `tolerance`, optionally aborting), and `after` (must hold again
//! within `recovery.within`; the time to recover is measured).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::events::{HypothesisVerdict, ProbeSample, RunEvent, SampleOutcome, Verdict};
use crate::probes::{Probe, check_window, judge};
use crate::run::bus::EventBus;
use crate::run::stop::{Stop, wait_or_signal, wait_or_stop};
use crate::spec::{Hypothesis, Phase};

/// A hypothesis with the probe that measures it.
#[derive(Clone)]
pub struct Check {
    pub hypothesis: Hypothesis,
    pub probe: Arc<dyn Probe>,
    /// `None` for experiment-wide hypotheses.
    pub step: Option<String>,
}

impl Check {
    fn applies(&self, phase: Phase) -> bool {
        self.hypothesis.phases.contains(&phase)
    }

    async fn sample(&self, bus: &EventBus, phase: Phase) -> (SampleOutcome, Option<f64>) {
        let at = bus.now();
        let observation = self.probe.sample(at).await;
        let (outcome, detail) = judge(&self.hypothesis, &observation);
        let values = observation.into_values();
        let worst = values
            .iter()
            .filter_map(|v| v.value)
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            });
        bus.emit(RunEvent::ProbeSample(ProbeSample {
            step: self.step.clone(),
            hypothesis: self.hypothesis.name.clone(),
            phase,
            eval_time: at,
            query: self.probe.describe(),
            values,
            outcome,
            detail,
        }));
        (outcome, worst)
    }

    fn verdict(
        &self,
        bus: &EventBus,
        phase: Phase,
        verdict: Verdict,
        message: String,
        (samples, passed): (u32, u32),
        recovery_ms: Option<u64>,
    ) -> Verdict {
        bus.emit(RunEvent::HypothesisVerdict(HypothesisVerdict {
            step: self.step.clone(),
            hypothesis: self.hypothesis.name.clone(),
            phase,
            verdict,
            expectation: self.expectation(),
            message,
            samples,
            passed,
            recovery_ms,
        }));
        verdict
    }

    /// Re-judges the fault window with a range query, where the probe can look back:
    /// a breach between two samples turns a pass into a deviation.
    async fn look_back(
        &self,
        start: jiff::Timestamp,
        end: jiff::Timestamp,
        verdict: Verdict,
        message: String,
    ) -> (Verdict, String) {
        let window = check_window(&self.hypothesis, self.probe.as_ref(), start, end).await;
        match window {
            None => (verdict, message),
            Some(Err(e)) => (
                verdict,
                format!("{message}; the range query over the window failed: {e}"),
            ),
            Some(Ok(w)) if w.points == 0 => (verdict, message),
            Some(Ok(w))
                if verdict == Verdict::Passed && w.share() + 1e-9 < self.hypothesis.tolerance.0 =>
            {
                (
                    Verdict::Deviated,
                    format!(
                        "{message}, but over the fault window {} vs {} held in only {}/{} points of a range query",
                        observed(w.worst),
                        self.expectation(),
                        w.held,
                        w.points
                    ),
                )
            }
            Some(Ok(w)) => (
                verdict,
                format!(
                    "{message}; range query over the window: {}/{} points held",
                    w.held, w.points
                ),
            ),
        }
    }

    fn expectation(&self) -> String {
        self.hypothesis
            .expect
            .map_or_else(|| "reachable".to_owned(), |e| e.to_string())
    }
}

fn verdict_for(outcome: SampleOutcome) -> Verdict {
    match outcome {
        SampleOutcome::Pass => Verdict::Passed,
        SampleOutcome::Fail => Verdict::Deviated,
        SampleOutcome::NoData => Verdict::Inconclusive,
        SampleOutcome::Error => Verdict::Error,
    }
}

fn observed(value: Option<f64>) -> String {
    value.map_or_else(
        || "no value".to_owned(),
        |v| {
            format!("{v:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        },
    )
}

/// The baseline: one sample per `before` hypothesis. Returns whether all passed.
pub async fn before(checks: &[Check], bus: &EventBus) -> bool {
    let mut all_passed = true;
    for check in checks.iter().filter(|c| c.applies(Phase::Before)) {
        let (outcome, value) = check.sample(bus, Phase::Before).await;
        let message = format!(
            "baseline {} (expected {})",
            observed(value),
            check.expectation()
        );
        let passed = u32::from(outcome == SampleOutcome::Pass);
        all_passed &= check.verdict(
            bus,
            Phase::Before,
            verdict_for(outcome),
            message,
            (1, passed),
            None,
        ) == Verdict::Passed;
    }
    all_passed
}

/// Samples every `during` hypothesis on its own interval until `hold` ends or the run
/// is stopped. A breach of an `abort: true` hypothesis stops the run at once.
/// How long `during` samples: a fault's hold, or until a whole experiment has ended.
#[derive(Clone)]
pub enum Window {
    For(Duration),
    Until(watch::Receiver<bool>),
}

pub async fn during(checks: &[Check], bus: &EventBus, window: Window, stop: &watch::Sender<Stop>) {
    let deadline = match &window {
        Window::For(hold) => Some(tokio::time::Instant::now() + *hold),
        Window::Until(_) => None,
    };
    let loops = checks
        .iter()
        .filter(|c| c.applies(Phase::During))
        .map(|check| {
            let mut stopped = stop.subscribe();
            let mut ended = match &window {
                Window::Until(rx) => Some(rx.clone()),
                Window::For(_) => None,
            };
            async move {
                let window_start = bus.now();
                let (mut samples, mut passed, mut errors, mut no_data) = (0u32, 0u32, 0u32, 0u32);
                let mut worst: Option<f64> = None;
                let mut aborted = false;
                // Consecutive samples that could not say whether the system is fine.
                let mut blind = 0u32;
                let mut blinded = false;
                loop {
                    // A slow probe never keeps the fault past its window plus one interval:
                    // a sample still running then counts as an error.
                    let sampled = check.sample(bus, Phase::During);
                    let (outcome, value) = match deadline {
                        Some(deadline) => {
                            let latest = deadline + check.hypothesis.every.0;
                            tokio::time::timeout_at(latest, sampled)
                                .await
                                .unwrap_or((SampleOutcome::Error, None))
                        }
                        None => sampled.await,
                    };
                    samples += 1;
                    blind = match outcome {
                        SampleOutcome::Error | SampleOutcome::NoData => blind + 1,
                        _ => 0,
                    };
                    if check.hypothesis.abort && blind >= BLIND_SAMPLES_ABORT {
                        // A stop condition fails closed: blind is not safe.
                        stop.send_replace(Stop::Aborted(check.hypothesis.name.clone()));
                        blinded = true;
                    }
                    match outcome {
                        SampleOutcome::Pass => passed += 1,
                        SampleOutcome::Error => errors += 1,
                        SampleOutcome::NoData => no_data += 1,
                        SampleOutcome::Fail => {
                            worst = value.or(worst);
                            if check.hypothesis.abort {
                                // send_replace updates even when nobody is subscribed right now.
                                stop.send_replace(Stop::Aborted(check.hypothesis.name.clone()));
                                aborted = true;
                                break;
                            }
                        }
                    }
                    if blinded {
                        break;
                    }
                    let next = tokio::time::Instant::now() + check.hypothesis.every.0;
                    let done = match (deadline, ended.as_mut()) {
                        (Some(deadline), _) => {
                            next >= deadline || wait_or_stop(&mut stopped, next).await
                        }
                        (None, Some(ended)) => wait_or_end(&mut stopped, ended, next).await,
                        (None, None) => true,
                    };
                    if done {
                        break;
                    }
                }
                let share = f64::from(passed) * 100.0 / f64::from(samples.max(1));
                let (verdict, message) = if blinded {
                    (
                        if errors > 0 {
                            Verdict::Error
                        } else {
                            Verdict::Inconclusive
                        },
                        format!(
                            "{blind} consecutive samples without data or with errors; an abort condition fails closed: aborted and reverted"
                        ),
                    )
                } else if aborted {
                    (
                        Verdict::Aborted,
                        format!(
                            "{} {} breached during the fault; aborted and reverted",
                            observed(worst),
                            check.expectation()
                        ),
                    )
                } else if errors > 0 && passed < samples {
                    (
                        Verdict::Error,
                        format!("{errors}/{samples} samples failed to query"),
                    )
                } else if share + 1e-9 >= check.hypothesis.tolerance.0 {
                    (
                        Verdict::Passed,
                        format!(
                            "held in {passed}/{samples} samples (tolerance {}%)",
                            check.hypothesis.tolerance.0
                        ),
                    )
                } else if no_data > 0 && passed + no_data >= samples {
                    (
                        Verdict::Inconclusive,
                        format!("no data in {no_data}/{samples} samples"),
                    )
                } else {
                    (
                        Verdict::Deviated,
                        format!(
                            "{} vs {} held in only {passed}/{samples} samples (tolerance {}%)",
                            observed(worst),
                            check.expectation(),
                            check.hypothesis.tolerance.0
                        ),
                    )
                };
                let (verdict, message) = if aborted || blinded {
                    (verdict, message)
                } else {
                    check
                        .look_back(window_start, bus.now(), verdict, message)
                        .await
                };
                check.verdict(
                    bus,
                    Phase::During,
                    verdict,
                    message,
                    (samples, passed),
                    None,
                );
            }
        });
    futures_join_all(loops).await;
}

/// After the revert: waits `settle`, then samples until the hypothesis holds or
/// `within` runs out. The time to recover runs from `reverted_at` to the first pass.
/// A terminating signal cuts it short (the hypothesis is then skipped, not judged); an
/// abort does not: recovery after an early revert is still measured.
pub async fn after(
    checks: &[Check],
    bus: &EventBus,
    settle: Duration,
    within: Duration,
    reverted_at: tokio::time::Instant,
    stop: &watch::Sender<Stop>,
) {
    let mut stopped = stop.subscribe();
    if wait_or_signal(&mut stopped, tokio::time::Instant::now() + settle).await {
        return skip_after(checks, bus);
    }
    let deadline = reverted_at + settle + within;
    let loops = checks
        .iter()
        .filter(|c| c.applies(Phase::After))
        .map(|check| async move {
            let mut stopped = stop.subscribe();
            let mut samples = 0u32;
            let last = loop {
                let outcome = check.sample(bus, Phase::After).await;
                samples += 1;
                if outcome.0 == SampleOutcome::Pass {
                    let recovery = reverted_at.elapsed().as_millis() as u64;
                    let message = format!(
                        "held again {:.1}s after the revert",
                        recovery as f64 / 1000.0
                    );
                    check.verdict(
                        bus,
                        Phase::After,
                        Verdict::Passed,
                        message,
                        (samples, 1),
                        Some(recovery),
                    );
                    return;
                }
                let next = tokio::time::Instant::now() + check.hypothesis.every.0;
                if next > deadline {
                    break outcome;
                }
                if wait_or_signal(&mut stopped, next).await {
                    let message = "the run was stopped by a signal before recovery was confirmed";
                    check.verdict(
                        bus,
                        Phase::After,
                        Verdict::Skipped,
                        message.into(),
                        (samples, 0),
                        None,
                    );
                    return;
                }
            };
            let verdict = match verdict_for(last.0) {
                Verdict::Passed => Verdict::Deviated,
                other => other,
            };
            let message = format!(
                "did not recover within {:?}: last {} vs {}",
                within,
                observed(last.1),
                check.expectation()
            );
            check.verdict(bus, Phase::After, verdict, message, (samples, 0), None);
        });
    futures_join_all(loops).await;
}

/// How many samples in a row an `abort: true` hypothesis may be blind (no data, or an
/// error) before it aborts the fault: a stop condition that cannot see must not let the
/// fault run on.
const BLIND_SAMPLES_ABORT: u32 = 3;

/// Like `wait_or_stop`, but also returns early (true) when `ended` flips to true.
async fn wait_or_end(
    stopped: &mut watch::Receiver<Stop>,
    ended: &mut watch::Receiver<bool>,
    until: tokio::time::Instant,
) -> bool {
    if *ended.borrow() {
        return true;
    }
    tokio::select! {
        stop = wait_or_stop(stopped, until) => stop,
        changed = ended.changed() => changed.is_err() || *ended.borrow(),
    }
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    // Poll all to completion concurrently without pulling in the futures crate.
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Every `after` hypothesis, skipped: a signal arrived before the first sample.
fn skip_after(checks: &[Check], bus: &EventBus) {
    let message = "the run was stopped by a signal before recovery was checked";
    skip(checks, bus, &[Phase::After], message);
}

/// Why a server dry run judges no hypothesis: nothing was faulted, so a held check would
/// prove nothing about resilience.
pub const NOT_JUDGED_IN_A_DRY_RUN: &str =
    "dry run: nothing was faulted, so no hypothesis is judged";

/// Every hypothesis in every phase it applies to, skipped without a sample: a server dry
/// run faults nothing, so there is nothing to judge.
pub fn skip_dry_run(checks: &[Check], bus: &EventBus) {
    let phases = [Phase::Before, Phase::During, Phase::After];
    skip(checks, bus, &phases, NOT_JUDGED_IN_A_DRY_RUN);
}

fn skip(checks: &[Check], bus: &EventBus, phases: &[Phase], message: &str) {
    for check in checks {
        for &phase in phases.iter().filter(|&&p| check.applies(p)) {
            let message = message.to_owned();
            check.verdict(bus, phase, Verdict::Skipped, message, (0, 0), None);
        }
    }
}
