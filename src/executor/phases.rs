//! Steady-state phases: `before` (baseline), `during` (sampled while the fault holds,
//! judged against `tolerance`, optionally aborting), and `after` (must hold again
//! within `recovery.within`; the time to recover is measured). Alert hypotheses use the
//! same loops: `firing within` is judged on the first firing sample (the time to detect,
//! from the injection), `resolved within` replaces `recovery.within` for its hypothesis
//! (the time to resolve, from the revert).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::events::{
    HypothesisVerdict, ProbeSample, RunEvent, SampleOutcome, SeriesValue, Verdict,
};
use crate::probes::{Probe, QueryError, breaching, check_window, judge, show_series, worse};
use crate::run::bus::EventBus;
use crate::run::stop::{Stop, unless_stopped, wait_or_signal, wait_or_stop};
use crate::spec::{Expectation, Hypothesis, Phase, Recovery};

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

    /// One sample, with a hard deadline shorter than the interval (a hung backend is an
    /// error in time for the next sample), recorded with at most `MAX_RECORDED_SERIES`
    /// series. Returns the outcome and the series to name: the worst breaching one on a
    /// failure, else the highest.
    async fn sample(&self, bus: &EventBus, phase: Phase) -> Sampled {
        let at = bus.now();
        let budget = sample_budget(self.hypothesis.every.0);
        let observation = tokio::time::timeout(budget, self.probe.sample(at))
            .await
            .unwrap_or_else(|_| self.probe.timed_out(budget));
        let (outcome, detail) = judge(&self.hypothesis, &observation);
        let values = observation.into_values();
        let named = breaching(&self.hypothesis, &values).cloned().or_else(|| {
            values
                .iter()
                .filter(|v| v.value.is_some())
                .max_by(|a, b| a.value.unwrap_or(0.0).total_cmp(&b.value.unwrap_or(0.0)))
                .cloned()
        });
        let why = detail.clone();
        let (values, detail) = recorded(values, named.as_ref(), detail);
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
        (outcome, named, why)
    }

    /// A sample as a verdict says it: the value against the expectation, or, when the
    /// probe saw no value, why (a 401, no data, a stale answer), not "no value".
    fn said(&self, (outcome, named, why): &Sampled) -> String {
        match (outcome, why) {
            (SampleOutcome::Error | SampleOutcome::NoData, Some(why)) => why.clone(),
            _ => format!(
                "{} (expected {})",
                shown(named.as_ref()),
                self.expectation()
            ),
        }
    }

    fn verdict(
        &self,
        bus: &EventBus,
        phase: Phase,
        verdict: Verdict,
        message: String,
        counts: (u32, u32),
        recovery_ms: Option<u64>,
    ) -> Verdict {
        self.verdict_timed(bus, phase, verdict, message, counts, (recovery_ms, None))
    }

    /// [`Check::verdict`] with the time to recover (or resolve) and the time to detect.
    fn verdict_timed(
        &self,
        bus: &EventBus,
        phase: Phase,
        verdict: Verdict,
        message: String,
        (samples, passed): (u32, u32),
        (recovery_ms, detect_ms): (Option<u64>, Option<u64>),
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
            detect_ms,
        }));
        verdict
    }

    /// `firing within`'s deadline, for an alert hypothesis that expects one.
    fn firing_within(&self) -> Option<Duration> {
        match self.hypothesis.expect {
            Some(Expectation::Firing(within)) => Some(within.0),
            _ => None,
        }
    }

    /// `resolved within`'s deadline, which replaces `recovery.within` for this hypothesis.
    fn resolved_within(&self) -> Option<Duration> {
        match self.hypothesis.expect {
            Some(Expectation::Resolved(within)) => Some(within.0),
            _ => None,
        }
    }

    /// Re-judges the fault window with a range query, where the probe can look back,
    /// within `budget`: a breach between two samples turns a pass into a deviation, and a
    /// re-check that fails or finds no data leaves nothing to call a pass.
    async fn look_back(
        &self,
        start: jiff::Timestamp,
        end: jiff::Timestamp,
        budget: tokio::time::Instant,
        verdict: Verdict,
        message: String,
    ) -> (Verdict, String) {
        let checked = check_window(&self.hypothesis, self.probe.as_ref(), start, end);
        let window = match tokio::time::timeout_at(budget, checked).await {
            Ok(window) => window,
            Err(_) => Some(Err(QueryError(
                "no answer in time (the fault is never held longer for a re-check)".into(),
            ))),
        };
        let overturned = |to: Verdict| {
            if verdict == Verdict::Passed {
                to
            } else {
                verdict
            }
        };
        match window {
            None => (verdict, message),
            Some(Err(e)) => (
                overturned(Verdict::Error),
                format!("{message}; the range query re-checking the window failed: {e}"),
            ),
            Some(Ok(w)) if w.points == 0 => (
                overturned(Verdict::Inconclusive),
                format!("{message}; the range query re-checking the window found no data"),
            ),
            Some(Ok(w))
                if verdict == Verdict::Passed && w.share() + 1e-9 < self.hypothesis.tolerance.0 =>
            {
                (
                    Verdict::Deviated,
                    format!(
                        "{message}, but over the fault window {} vs {} held in only {}/{} points of a range query",
                        shown(w.worst.as_ref()),
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

/// One sample's outcome, the series to name, and why it has no value if it has none.
type Sampled = (SampleOutcome, Option<SeriesValue>, Option<String>);

fn shown(series: Option<&SeriesValue>) -> String {
    series.map_or_else(|| "no value".to_owned(), show_series)
}

/// The next sampling instant of a loop that started at `start`: on absolute ticks, so a
/// slow sample (or anything else slow in the loop) never shifts the samples after it.
/// Ticks a sample overran are skipped, not made up for in a burst.
fn next_tick(start: tokio::time::Instant, every: Duration, tick: &mut u32) -> tokio::time::Instant {
    *tick = tick.saturating_add(1);
    let now = tokio::time::Instant::now();
    let mut next = start + every * *tick;
    if next < now && !every.is_zero() {
        let behind = (now - start).as_nanos() / every.as_nanos();
        *tick = u32::try_from(behind)
            .unwrap_or(u32::MAX - 1)
            .saturating_add(1);
        next = start + every * *tick;
    }
    next
}

/// How long one sample may take: shorter than the interval, so a hung backend is an
/// error before the next sample is due.
fn sample_budget(every: Duration) -> Duration {
    (every * 9 / 10).max(Duration::from_millis(100))
}

/// At most this many series of one sample go into the journal: a query that returns
/// thousands of series must not bloat it (the verdict names the breaching one anyway).
const MAX_RECORDED_SERIES: usize = 20;

/// The values to record: the named series first, then others up to the cap, and a
/// note of how many were left out.
fn recorded(
    mut values: Vec<SeriesValue>,
    named: Option<&SeriesValue>,
    detail: Option<String>,
) -> (Vec<SeriesValue>, Option<String>) {
    let total = values.len();
    if total <= MAX_RECORDED_SERIES {
        return (values, detail);
    }
    if let Some(first) = named.and_then(|n| values.iter().position(|v| v == n)) {
        values.swap(0, first);
    }
    values.truncate(MAX_RECORDED_SERIES);
    let note = format!("{total} series; the first {MAX_RECORDED_SERIES} recorded");
    let detail = Some(match detail {
        Some(detail) => format!("{detail} ({note})"),
        None => note,
    });
    (values, detail)
}

/// The baseline: one sample per `before` hypothesis. Returns whether all passed.
///
/// A stop of any kind (a signal, the kill switch, an abort, a lost lock) cuts it short:
/// the sample in flight is dropped (a hung probe may take up to 90 % of `every`), the
/// baselines not judged are skipped, and it returns false; the caller, seeing the stop,
/// injects nothing and says why.
pub async fn before(checks: &[Check], bus: &EventBus, stop: &watch::Sender<Stop>) -> bool {
    let mut stopped = stop.subscribe();
    let mut all_passed = true;
    let mut checks = checks.iter().filter(|c| c.applies(Phase::Before));
    while let Some(check) = checks.next() {
        let Some(sampled) = unless_stopped(&mut stopped, check.sample(bus, Phase::Before)).await
        else {
            let message = "the run was stopped before the baseline was checked";
            for check in std::iter::once(check).chain(checks) {
                let message = message.to_owned();
                check.verdict(bus, Phase::Before, Verdict::Skipped, message, (0, 0), None);
            }
            return false;
        };
        let outcome = sampled.0;
        let message = format!("baseline {}", check.said(&sampled));
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
    // One grid for every loop: taken before the first loop starts, so the hundredth
    // loop's ticks are not offset by the start-up of the ninety-nine before it.
    let (window_start, started) = (bus.now(), tokio::time::Instant::now());
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
                let h = &check.hypothesis;
                let firing_within = check.firing_within();
                // `firing within`: how long after the injection the first firing sample was taken.
                let mut detected: Option<Duration> = None;
                let mut tally = Tally::default();
                let mut worst: Option<SeriesValue> = None;
                // Consecutive breaches, and consecutive samples that could not say
                // whether the system is fine: the two stop conditions of `abort`.
                let (mut breaches, mut blind) = (0u32, 0u32);
                let mut ended_by: Option<Abort> = None;
                let (start, mut tick) = (started, 0);
                loop {
                    let asked = started.elapsed();
                    // A slow probe never keeps the fault past its window plus one interval:
                    // a sample still running then counts as an error.
                    let sampled = check.sample(bus, Phase::During);
                    let (outcome, named, _) = match deadline {
                        Some(deadline) => tokio::time::timeout_at(deadline + h.every.0, sampled)
                            .await
                            .unwrap_or((SampleOutcome::Error, None, None)),
                        None => sampled.await,
                    };
                    tally.count(outcome);
                    (breaches, blind) = match outcome {
                        SampleOutcome::Fail => (breaches + 1, 0),
                        SampleOutcome::Error | SampleOutcome::NoData => (0, blind + 1),
                        SampleOutcome::Pass => (0, 0),
                    };
                    if outcome == SampleOutcome::Fail {
                        worst = worse(h, worst, named);
                    }
                    if let Some(within) = firing_within {
                        // The first firing sample settles it, and so does the deadline.
                        if outcome == SampleOutcome::Pass {
                            detected = Some(asked);
                            break;
                        }
                        if started.elapsed() > within {
                            break;
                        }
                    }
                    if h.abort && breaches >= h.failure_threshold {
                        ended_by = Some(Abort::Breached(breaches));
                    } else if h.abort && blind >= h.error_threshold {
                        // A stop condition fails closed: blind is not safe.
                        ended_by = Some(Abort::Blind(blind));
                    }
                    if ended_by.is_some() {
                        // send_replace updates even when nobody is subscribed right now.
                        stop.send_replace(Stop::Aborted(h.name.clone()));
                        break;
                    }
                    let next = next_tick(start, h.every.0, &mut tick);
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
                if check.step.is_some() && matches!(*stop.borrow(), Stop::SkipStep) {
                    // The console's `s` cut the window short: a shortened window proves
                    // nothing either way.
                    check.verdict(
                        bus,
                        Phase::During,
                        Verdict::Skipped,
                        SKIPPED_FROM_CONSOLE.into(),
                        (tally.samples, tally.passed),
                        None,
                    );
                    return;
                }
                if let Some(within) = firing_within {
                    let (verdict, message) =
                        tally.firing_verdict(within, detected, started.elapsed());
                    let detect_ms =
                        detected.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                    check.verdict_timed(
                        bus,
                        Phase::During,
                        verdict,
                        message,
                        (tally.samples, tally.passed),
                        (None, detect_ms),
                    );
                    return;
                }
                let (verdict, message) = match ended_by {
                    Some(abort) => abort.verdict(&tally, shown(worst.as_ref()), check),
                    None => tally.verdict(h, shown(worst.as_ref()), check),
                };
                let (verdict, message) = if ended_by.is_some() {
                    (verdict, message)
                } else {
                    // The re-check never holds the fault longer: at most one interval,
                    // and never past the window plus one interval.
                    let mut budget = tokio::time::Instant::now() + h.every.0;
                    if let Some(deadline) = deadline {
                        budget = budget.min(deadline + h.every.0);
                    }
                    check
                        .look_back(window_start, bus.now(), budget, verdict, message)
                        .await
                };
                check.verdict(
                    bus,
                    Phase::During,
                    verdict,
                    message,
                    (tally.samples, tally.passed),
                    None,
                );
            }
        });
    // `join_all` polls only the loops whose sample or timer woke it (a hand-rolled join
    // that polled every loop on each wake cost O(n²) polls a tick with 100 hypotheses
    // and spread their samples over tens of milliseconds).
    futures::future::join_all(loops).await;
}

/// After the revert: waits `settle`, then samples until the hypothesis holds in
/// `consecutive` samples in a row or `within` runs out. The time to recover runs from
/// `reverted_at` to the first sample of that run, so a single lucky sample between two
/// breaches is not a recovery. A run that starts within `within` is confirmed even if
/// its last samples come after. A terminating signal cuts it short (the hypothesis is
/// then skipped, not judged); an abort does not: recovery after an early revert is
/// still measured.
pub async fn after(
    checks: &[Check],
    bus: &EventBus,
    recovery: &Recovery,
    reverted_at: tokio::time::Instant,
    stop: &watch::Sender<Stop>,
) {
    let (settle, within) = (recovery.settle.0, recovery.within.0);
    let consecutive = recovery.consecutive.max(1);
    let mut stopped = stop.subscribe();
    if wait_or_signal(&mut stopped, tokio::time::Instant::now() + settle).await {
        return skip_after(checks, bus);
    }
    let start = tokio::time::Instant::now();
    let loops = checks
        .iter()
        .filter(|c| c.applies(Phase::After))
        .map(|check| async move {
            let within = check.resolved_within().unwrap_or(within);
            let deadline = reverted_at + settle + within;
            let mut stopped = stop.subscribe();
            let (mut samples, mut passed) = (0u32, 0u32);
            // When the current run of held samples began, and how long it is.
            let mut streak: Option<(tokio::time::Instant, u32)> = None;
            let mut tick = 0;
            let last = loop {
                let sampled_at = tokio::time::Instant::now();
                let outcome = check.sample(bus, Phase::After).await;
                samples += 1;
                streak = if outcome.0 == SampleOutcome::Pass {
                    passed += 1;
                    Some(streak.map_or((sampled_at, 1), |(first, n)| (first, n + 1)))
                } else {
                    None
                };
                if let Some((first, n)) = streak
                    && n >= consecutive
                {
                    let recovery = first.saturating_duration_since(reverted_at);
                    let recovery = u64::try_from(recovery.as_millis()).unwrap_or(u64::MAX);
                    let message = if check.resolved_within().is_some() {
                        format!(
                            "resolved {:.1}s after the revert ({n} samples in a row, expected {})",
                            recovery as f64 / 1000.0,
                            check.expectation()
                        )
                    } else {
                        format!(
                            "held again {:.1}s after the revert ({n} samples in a row)",
                            recovery as f64 / 1000.0
                        )
                    };
                    check.verdict(
                        bus,
                        Phase::After,
                        Verdict::Passed,
                        message,
                        (samples, passed),
                        Some(recovery),
                    );
                    return;
                }
                let next = next_tick(start, check.hypothesis.every.0, &mut tick);
                if next > deadline && streak.is_none() {
                    break outcome;
                }
                if wait_or_signal(&mut stopped, next).await {
                    let message = "the run was stopped (a signal or the kill switch) before recovery was confirmed";
                    check.verdict(
                        bus,
                        Phase::After,
                        Verdict::Skipped,
                        message.into(),
                        (samples, passed),
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
                "did not hold {consecutive} samples in a row within {within:?}: last sample {}",
                check.said(&last)
            );
            check.verdict(bus, Phase::After, verdict, message, (samples, passed), None);
        });
    futures::future::join_all(loops).await;
}

/// The `during` samples of one hypothesis, by outcome.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    samples: u32,
    passed: u32,
    failed: u32,
    errors: u32,
    no_data: u32,
}

impl Tally {
    fn count(&mut self, outcome: SampleOutcome) {
        self.samples += 1;
        match outcome {
            SampleOutcome::Pass => self.passed += 1,
            SampleOutcome::Fail => self.failed += 1,
            SampleOutcome::Error => self.errors += 1,
            SampleOutcome::NoData => self.no_data += 1,
        }
    }

    /// The verdict of `firing within`: held when a sample saw it firing in time (the
    /// time to detect is that sample's, from the injection). Not seen firing is a
    /// deviation only when every sample could see: a blind sample might have missed it.
    fn firing_verdict(
        &self,
        within: Duration,
        detected: Option<Duration>,
        watched: Duration,
    ) -> (Verdict, String) {
        let shown = |d: Duration| format!("{:.1}s", d.as_secs_f64());
        let expected = shakedown_vocab::duration::format_duration(within);
        let Tally {
            samples,
            errors,
            no_data,
            ..
        } = *self;
        match detected {
            Some(at) if at <= within => (
                Verdict::Passed,
                format!(
                    "fired {} after the injection (time to detect; expected within {expected})",
                    shown(at)
                ),
            ),
            Some(at) => (
                Verdict::Deviated,
                format!(
                    "fired only {} after the injection, later than {expected}",
                    shown(at)
                ),
            ),
            None if errors > 0 => (
                Verdict::Error,
                format!(
                    "not seen firing, but {errors}/{samples} samples failed to query: it may have fired unseen"
                ),
            ),
            None if no_data > 0 => (
                Verdict::Inconclusive,
                format!("not seen firing, and {no_data}/{samples} samples had no data"),
            ),
            None if watched < within => (
                Verdict::Deviated,
                format!(
                    "did not fire while the fault held ({}, {samples} samples; expected within {expected})",
                    shown(watched)
                ),
            ),
            None => (
                Verdict::Deviated,
                format!("did not fire within {expected} of the injection ({samples} samples)"),
            ),
        }
    }

    /// The verdict of a window that ran to its end. No data never holds, whatever the
    /// tolerance: `tolerance: 0%` with nothing seen is inconclusive, not held.
    fn verdict(&self, h: &Hypothesis, worst: String, check: &Check) -> (Verdict, String) {
        let Tally {
            samples,
            passed,
            failed,
            errors,
            no_data,
        } = *self;
        let share = f64::from(passed) * 100.0 / f64::from(samples.max(1));
        let tolerance = h.tolerance.0;
        if errors > 0 && passed < samples {
            (
                Verdict::Error,
                format!("{errors}/{samples} samples failed to query"),
            )
        } else if passed + failed == 0 {
            (
                Verdict::Inconclusive,
                format!("no data in {no_data}/{samples} samples"),
            )
        } else if share + 1e-9 >= tolerance {
            (
                Verdict::Passed,
                format!("held in {passed}/{samples} samples (tolerance {tolerance}%)"),
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
                    "{worst} vs {} held in only {passed}/{samples} samples (tolerance {tolerance}%)",
                    check.expectation()
                ),
            )
        }
    }
}

/// Why an `abort: true` hypothesis stopped the fault.
#[derive(Debug, Clone, Copy)]
enum Abort {
    /// `failureThreshold` breaches in a row.
    Breached(u32),
    /// `errorThreshold` samples in a row without data or with an error.
    Blind(u32),
}

impl Abort {
    fn verdict(self, tally: &Tally, worst: String, check: &Check) -> (Verdict, String) {
        match self {
            Abort::Breached(n) => (
                Verdict::Aborted,
                format!(
                    "{worst} vs {} breached in {n} sample(s) in a row during the fault; aborted and reverted",
                    check.expectation()
                ),
            ),
            Abort::Blind(n) => (
                if tally.errors > 0 {
                    Verdict::Error
                } else {
                    Verdict::Inconclusive
                },
                format!(
                    "{n} consecutive samples without data or with errors; an abort condition fails closed: aborted and reverted"
                ),
            ),
        }
    }
}

/// Like `wait_or_stop`, but also returns early (true) when `ended` flips to true.
async fn wait_or_end(
    stopped: &mut watch::Receiver<Stop>,
    ended: &mut watch::Receiver<bool>,
    until: tokio::time::Instant,
) -> bool {
    // A step skipped from the console (`Stop::SkipStep`) does not end the run's own
    // window: only a real stop or the end of the steps does.
    loop {
        if *ended.borrow() {
            return true;
        }
        if !matches!(*stopped.borrow(), Stop::Running | Stop::SkipStep) {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return false,
            changed = stopped.changed() => if changed.is_err() {
                return wait_or_stop(stopped, until).await;
            },
            changed = ended.changed() => if changed.is_err() || *ended.borrow() {
                return true;
            },
        }
    }
}

/// Every `after` hypothesis, skipped: a signal or a halt arrived before the first sample.
/// Why a step's checks were not judged when the console's `s` cut it short.
const SKIPPED_FROM_CONSOLE: &str =
    "the step was skipped from the console (key s), so this was not judged";

/// The `after` hypotheses of a step the console's `s` skipped: reverted, not judged.
pub fn skip_after_from_console(checks: &[Check], bus: &EventBus) {
    skip(checks, bus, &[Phase::After], SKIPPED_FROM_CONSOLE);
}

fn skip_after(checks: &[Check], bus: &EventBus) {
    let message = "the run was stopped (a signal or the kill switch) before recovery was checked";
    skip(checks, bus, &[Phase::After], message);
}

/// Why a server dry run judges no hypothesis: nothing was faulted, so a held check would
/// prove nothing about resilience.
pub const NOT_JUDGED_IN_A_DRY_RUN: &str =
    "dry run: nothing was faulted, so no hypothesis is judged";

/// The `during` and `after` hypotheses of a step whose fault reached no target and whose
/// scenario says `onEmptyTargets: skip`: nothing was faulted, so nothing held.
pub fn skip_empty_step(checks: &[Check], bus: &EventBus) {
    let message = "the fault reached no target (onEmptyTargets: skip), so nothing was judged";
    skip(checks, bus, &[Phase::During, Phase::After], message);
}

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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use jiff::Timestamp;

    use super::*;
    use crate::probes::{Observation, RangeFuture, SampleFuture};
    use crate::run::bus::{Progress, system_clock};
    use crate::spec::read::parse_expectation;
    use crate::spec::{NoDataPolicy, Percent, Probe as ProbeSpec, SeriesMatch, Span};

    /// Answers each sample with the next of `script` (then the last again, or hangs
    /// for `None`), and its range re-check with `range`.
    struct Scripted {
        script: Mutex<Vec<Option<Observation>>>,
        range: Option<Result<Vec<Option<f64>>, String>>,
    }

    fn value(v: f64) -> Option<Observation> {
        Some(Observation::Values(vec![SeriesValue {
            labels: Default::default(),
            value: Some(v),
        }]))
    }

    fn empty() -> Option<Observation> {
        Some(Observation::Values(Vec::new()))
    }

    impl Probe for Scripted {
        fn describe(&self) -> String {
            "scripted".into()
        }
        fn sample(&self, _at: Timestamp) -> SampleFuture<'_> {
            let next = {
                let mut script = self.script.lock().unwrap();
                if script.len() > 1 {
                    script.remove(0)
                } else {
                    script[0].clone()
                }
            };
            Box::pin(async move {
                match next {
                    Some(observation) => observation,
                    None => std::future::pending().await,
                }
            })
        }
        fn sample_range(
            &self,
            start: Timestamp,
            _end: Timestamp,
            _step: Duration,
        ) -> Option<RangeFuture<'_>> {
            let range = self.range.clone()?;
            Some(Box::pin(async move {
                range.map_err(QueryError).map(|points| {
                    points
                        .into_iter()
                        .map(|v| {
                            let observation = match v {
                                Some(v) => value(v).unwrap(),
                                None => empty().unwrap(),
                            };
                            (start, observation)
                        })
                        .collect()
                })
            }))
        }
    }

    fn check(
        script: Vec<Option<Observation>>,
        range: Option<Result<Vec<Option<f64>>, String>>,
        edit: impl FnOnce(&mut Hypothesis),
    ) -> Vec<Check> {
        let mut hypothesis = Hypothesis {
            name: "h".into(),
            probe: ProbeSpec::Promql("scripted".into()),
            expect: Some(parse_expectation("< 1").unwrap()),
            phases: vec![Phase::During],
            every: Span(Duration::from_millis(100)),
            tolerance: Percent(100.0),
            abort: false,
            failure_threshold: 1,
            error_threshold: 2,
            series: SeriesMatch::All,
            no_data: NoDataPolicy::Inconclusive,
            weight: 1.0,
            line: None,
        };
        edit(&mut hypothesis);
        vec![Check {
            hypothesis,
            probe: Arc::new(Scripted {
                script: Mutex::new(script),
                range,
            }),
            step: None,
        }]
    }

    /// Runs `during` for `window` and returns the verdict, its message, and whether
    /// the run was told to abort.
    async fn during_verdict(checks: &[Check], window: Duration) -> (Verdict, String, bool) {
        let bus = EventBus::new(None, Progress::Quiet, system_clock());
        let (stop, _) = watch::channel(Stop::Running);
        during(checks, &bus, Window::For(window), &stop).await;
        let aborted = matches!(*stop.borrow(), Stop::Aborted(_));
        bus.records()
            .into_iter()
            .find_map(|r| match r.event {
                RunEvent::HypothesisVerdict(v) => Some((v.verdict, v.message, aborted)),
                _ => None,
            })
            .expect("a verdict")
    }

    /// The console's `s` ends a step's window at once, unjudged (skipped), and leaves the
    /// experiment-wide window sampling until the steps end.
    #[tokio::test(start_paused = true)]
    async fn a_skip_ends_the_steps_window_unjudged_but_not_the_experiments() {
        let bus = EventBus::new(None, Progress::Quiet, system_clock());
        let (stop, _) = watch::channel(Stop::Running);
        let mut step_checks = check(vec![value(0.0)], None, |h| h.name = "step".into());
        step_checks[0].step = Some("1".into());
        let run_checks = check(vec![value(0.0)], None, |h| h.name = "run".into());
        let (ended_tx, ended_rx) = watch::channel(false);
        let run_window = tokio::spawn({
            let (bus, stop) = (bus.clone(), stop.clone());
            async move { during(&run_checks, &bus, Window::Until(ended_rx), &stop).await }
        });
        let started = tokio::time::Instant::now();
        let step_window = tokio::spawn({
            let (bus, stop) = (bus.clone(), stop.clone());
            async move {
                during(
                    &step_checks,
                    &bus,
                    Window::For(Duration::from_secs(60)),
                    &stop,
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send_replace(Stop::SkipStep);
        assert!(step_window.await.is_ok());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the skip cut the window"
        );
        let verdict = |name: &str| {
            bus.records().into_iter().find_map(|r| match r.event {
                RunEvent::HypothesisVerdict(v) if v.hypothesis == name => Some(v),
                _ => None,
            })
        };
        let skipped = verdict("step").expect("the step's verdict");
        assert_eq!(skipped.verdict, Verdict::Skipped, "{}", skipped.message);
        assert!(skipped.message.contains("key s"), "{}", skipped.message);
        // The run's own window goes on through the skip (the executor puts the channel
        // back to running) and ends with the steps.
        stop.send_replace(Stop::Running);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            verdict("run").is_none(),
            "the run's window ended with the skip"
        );
        ended_tx.send_replace(true);
        assert!(run_window.await.is_ok());
        assert_eq!(verdict("run").map(|v| v.verdict), Some(Verdict::Passed));
    }

    /// Regression (issue 11): `tolerance: 0%` with no data at all was "held".
    #[tokio::test]
    async fn tolerance_zero_never_turns_no_data_into_held() {
        let checks = check(vec![empty()], None, |h| h.tolerance = Percent(0.0));
        let (verdict, message, _) = during_verdict(&checks, Duration::from_millis(350)).await;
        assert_eq!(verdict, Verdict::Inconclusive, "{message}");
    }

    /// Regression (issue 11): a failed range re-check did not overturn a passed during.
    #[tokio::test]
    async fn a_failed_or_empty_range_recheck_overturns_a_passed_during() {
        let failed = check(vec![value(0.0)], Some(Err("HTTP 500".into())), |_| {});
        let (verdict, message, _) = during_verdict(&failed, Duration::from_millis(250)).await;
        assert_eq!(verdict, Verdict::Error, "{message}");
        assert!(message.contains("HTTP 500"), "{message}");
        let empty = check(vec![value(0.0)], Some(Ok(vec![None, None])), |_| {});
        let (verdict, message, _) = during_verdict(&empty, Duration::from_millis(250)).await;
        assert_eq!(verdict, Verdict::Inconclusive, "{message}");
        let held = check(vec![value(0.0)], Some(Ok(vec![Some(0.0), None])), |_| {});
        let (verdict, message, _) = during_verdict(&held, Duration::from_millis(250)).await;
        assert_eq!(verdict, Verdict::Passed, "{message}");
        assert!(message.contains("1/1 points held"), "{message}");
    }

    #[tokio::test]
    async fn abort_waits_for_failure_threshold_breaches_in_a_row() {
        let abort = |threshold| {
            move |h: &mut Hypothesis| {
                h.abort = true;
                h.failure_threshold = threshold;
                h.tolerance = Percent(0.0);
            }
        };
        let script = || vec![value(5.0), value(0.0), value(5.0), value(5.0), value(0.0)];
        let (verdict, message, aborted) =
            during_verdict(&check(script(), None, abort(1)), Duration::from_secs(2)).await;
        assert_eq!((verdict, aborted), (Verdict::Aborted, true), "{message}");
        assert!(message.contains("breached in 1 sample"), "{message}");
        let (verdict, message, aborted) =
            during_verdict(&check(script(), None, abort(2)), Duration::from_secs(2)).await;
        assert_eq!((verdict, aborted), (Verdict::Aborted, true), "{message}");
        assert!(message.contains("breached in 2 sample"), "{message}");
        let (verdict, message, aborted) =
            during_verdict(&check(script(), None, abort(3)), Duration::from_millis(800)).await;
        assert_eq!((verdict, aborted), (Verdict::Passed, false), "{message}");
    }

    #[tokio::test]
    async fn a_blind_stop_condition_aborts_after_error_threshold_samples() {
        let blind = |threshold| {
            move |h: &mut Hypothesis| {
                h.abort = true;
                h.error_threshold = threshold;
            }
        };
        let error = || Some(Observation::Error("unreachable".into()));
        let script = || {
            vec![
                value(0.0),
                empty(),
                value(0.0),
                error(),
                empty(),
                value(0.0),
            ]
        };
        let (verdict, message, aborted) =
            during_verdict(&check(script(), None, blind(2)), Duration::from_secs(2)).await;
        assert_eq!((verdict, aborted), (Verdict::Error, true), "{message}");
        assert!(message.contains("2 consecutive"), "{message}");
        let (_, message, aborted) =
            during_verdict(&check(script(), None, blind(3)), Duration::from_millis(700)).await;
        assert!(!aborted, "{message}");
    }

    /// A hung probe never holds a fault: each sample ends within its budget, shorter
    /// than the interval, and the window ends on time.
    #[tokio::test]
    async fn a_hung_probe_is_an_error_within_the_interval_and_never_extends_the_window() {
        let checks = check(vec![None], Some(Ok(vec![Some(0.0)])), |h| {
            h.every = Span(Duration::from_millis(200));
            h.abort = true;
            h.error_threshold = 100;
        });
        let started = tokio::time::Instant::now();
        let (verdict, message, _) = during_verdict(&checks, Duration::from_secs(1)).await;
        assert_eq!(verdict, Verdict::Error, "{message}");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1200), "{took:?}");
    }

    /// A probe whose every sample takes 40 ms, noting when each one started.
    struct Slow(Mutex<Vec<tokio::time::Instant>>);

    impl Probe for Slow {
        fn describe(&self) -> String {
            "slow".into()
        }
        fn sample(&self, _at: Timestamp) -> SampleFuture<'_> {
            self.0.lock().unwrap().push(tokio::time::Instant::now());
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(40)).await;
                value(0.0).unwrap()
            })
        }
        fn sample_range(&self, _: Timestamp, _: Timestamp, _: Duration) -> Option<RangeFuture<'_>> {
            None
        }
    }

    /// Regression (issue 17): each sample was scheduled an interval after the previous
    /// one ended, so samples drifted later by the sample's (and the journal's) latency
    /// every interval. They now sit on absolute ticks from the window's start.
    #[tokio::test(start_paused = true)]
    async fn during_samples_sit_on_absolute_ticks_whatever_a_sample_takes() {
        let slow = Arc::new(Slow(Mutex::new(Vec::new())));
        let mut checks = check(vec![value(0.0)], None, |_| {});
        checks[0].probe = slow.clone();
        let started = tokio::time::Instant::now();
        during_verdict(&checks, Duration::from_secs(1)).await;
        let offsets: Vec<u128> = slow
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|t| (*t - started).as_millis())
            .collect();
        assert_eq!(offsets, (0..10).map(|i| i * 100).collect::<Vec<u128>>());
    }

    /// A probe whose samples each take `delay` and that counts how often its sample
    /// futures are polled.
    struct Counted {
        delay: Duration,
        samples: std::sync::atomic::AtomicUsize,
        polls: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Probe for Counted {
        fn describe(&self) -> String {
            "counted".into()
        }
        fn sample(&self, _at: Timestamp) -> SampleFuture<'_> {
            use std::sync::atomic::Ordering::Relaxed;
            self.samples.fetch_add(1, Relaxed);
            let mut sleep = Box::pin(tokio::time::sleep(self.delay));
            Box::pin(async move {
                std::future::poll_fn(|cx| {
                    self.polls.fetch_add(1, Relaxed);
                    sleep.as_mut().poll(cx)
                })
                .await;
                value(0.0).unwrap()
            })
        }
        fn sample_range(&self, _: Timestamp, _: Timestamp, _: Duration) -> Option<RangeFuture<'_>> {
            None
        }
    }

    /// Regression (issue 17): the loops of 100 hypotheses were joined by hand, polling
    /// every loop whenever any one woke, so each answer cost 100 polls and the samples of
    /// one tick spread over tens of milliseconds. A loop is now polled when it is woken.
    #[tokio::test(start_paused = true)]
    async fn a_hundred_loops_poll_only_the_loop_that_woke() {
        use std::sync::atomic::Ordering::Relaxed;
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut probes = Vec::new();
        let checks: Vec<Check> = (0..100u64)
            .map(|i| {
                let mut c = check(vec![value(0.0)], None, |h| h.name = format!("h{i}")).remove(0);
                // Each answer arrives at its own instant, as real ones do.
                let probe = Arc::new(Counted {
                    delay: Duration::from_micros(20_000 + 300 * i),
                    samples: Default::default(),
                    polls: polls.clone(),
                });
                probes.push(probe.clone());
                c.probe = probe;
                c
            })
            .collect();
        during_verdict(&checks, Duration::from_secs(1)).await;
        let samples: usize = probes.iter().map(|p| p.samples.load(Relaxed)).sum();
        assert_eq!(samples, 1000, "10 samples per loop");
        let polls = polls.load(Relaxed);
        // Two polls a sample: the one that starts its wait and the one its answer wakes.
        assert!(polls <= 3 * samples, "{polls} polls for {samples} samples");
    }

    #[test]
    fn a_tick_overrun_is_skipped_not_made_up_in_a_burst() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let start = tokio::time::Instant::now();
            let every = Duration::from_millis(100);
            let mut tick = 0;
            tokio::time::advance(Duration::from_millis(350)).await;
            let next = next_tick(start, every, &mut tick);
            assert_eq!(next - start, Duration::from_millis(400));
            assert_eq!(tick, 4);
        });
    }

    /// Regression (issue 11): a 401 from Prometheus showed only as "baseline no value".
    #[tokio::test]
    async fn a_baseline_without_a_value_says_why() {
        let refused = "Prometheus at http://p answered 401 Unauthorized: check bearerTokenEnv";
        let checks = check(vec![Some(Observation::Error(refused.into()))], None, |h| {
            h.phases = vec![Phase::Before]
        });
        let bus = EventBus::new(None, Progress::Quiet, system_clock());
        let (stop, _) = watch::channel(Stop::Running);
        assert!(!before(&checks, &bus, &stop).await);
        let message = bus
            .records()
            .into_iter()
            .find_map(|r| match r.event {
                RunEvent::HypothesisVerdict(v) => Some(v.message),
                _ => None,
            })
            .expect("a verdict");
        assert_eq!(message, format!("baseline {refused}"));
    }

    /// Regression (issue 13): a baseline sample that hung (a probe with a long timeout
    /// and `every`) kept a signalled run waiting until the probe gave up. A stop now cuts
    /// it short and the baseline says it was not checked.
    #[tokio::test]
    async fn a_stop_cuts_a_hung_baseline_short_and_skips_it() {
        let checks = check(vec![None], None, |h| {
            h.phases = vec![Phase::Before];
            h.every = Span(Duration::from_secs(120));
        });
        let bus = EventBus::new(None, Progress::Quiet, system_clock());
        let (stop, _) = watch::channel(Stop::Running);
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stopper.send_replace(Stop::Aborted("elsewhere".into()));
        });
        let started = tokio::time::Instant::now();
        assert!(!before(&checks, &bus, &stop).await);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let verdicts: Vec<_> = bus
            .records()
            .into_iter()
            .filter_map(|r| match r.event {
                RunEvent::HypothesisVerdict(v) => Some((v.verdict, v.message)),
                _ => None,
            })
            .collect();
        assert_eq!(
            verdicts,
            [(
                Verdict::Skipped,
                "the run was stopped before the baseline was checked".to_owned()
            )]
        );
    }

    /// Runs `after` right after a revert and returns the verdict's recovery time and
    /// its (samples, passed) counts.
    async fn after_recovery(checks: &[Check], consecutive: u32) -> (Option<u64>, u32, u32) {
        let bus = EventBus::new(None, Progress::Quiet, system_clock());
        let (stop, _) = watch::channel(Stop::Running);
        let recovery = Recovery {
            within: Span(Duration::from_secs(2)),
            consecutive,
            ..Recovery::default()
        };
        after(checks, &bus, &recovery, tokio::time::Instant::now(), &stop).await;
        bus.records()
            .into_iter()
            .find_map(|r| match r.event {
                RunEvent::HypothesisVerdict(v) => Some((v.recovery_ms, v.samples, v.passed)),
                _ => None,
            })
            .expect("a verdict")
    }

    /// Regression (issue 11): one held sample between two breaches counted as recovered.
    /// With `consecutive: 2` the time runs to the first of two held samples in a row.
    #[tokio::test]
    async fn after_counts_recovery_from_the_first_of_n_consecutive_held_samples() {
        let script = || vec![value(5.0), value(0.0), value(5.0), value(0.0), value(0.0)];
        let after_phase = |h: &mut Hypothesis| h.phases = vec![Phase::After];
        let (ms, samples, passed) = after_recovery(&check(script(), None, after_phase), 2).await;
        // The 4th sample, three intervals (100 ms) after the revert.
        let ms = ms.expect("recovered");
        assert!((250..=450).contains(&ms), "{ms} ms");
        assert_eq!((samples, passed), (5, 3));
        let (ms, samples, _) = after_recovery(&check(script(), None, after_phase), 1).await;
        let ms = ms.expect("recovered");
        assert!(
            (50..=200).contains(&ms),
            "one sample is enough with consecutive 1: {ms} ms"
        );
        assert_eq!(samples, 2);
    }

    #[tokio::test]
    async fn after_never_held_n_in_a_row_is_deviated() {
        let flapping = [value(5.0), value(0.0)];
        let script: Vec<_> = flapping.iter().cycle().take(40).cloned().collect();
        let checks = check(script, None, |h| h.phases = vec![Phase::After]);
        let (ms, _, passed) = after_recovery(&checks, 2).await;
        assert_eq!(ms, None);
        assert!(passed > 3, "it held now and then, never twice in a row");
    }

    /// `firing within 1s`: the scripted alert count.
    fn firing_within(script: Vec<Option<Observation>>) -> Vec<Check> {
        check(script, Some(Ok(vec![Some(0.0)])), |h| {
            h.expect = Some(parse_expectation("firing within 1s").unwrap());
        })
    }

    #[tokio::test]
    async fn firing_within_holds_at_the_first_firing_sample_and_reports_the_time_to_detect() {
        let checks = firing_within(vec![value(0.0), value(0.0), value(1.0)]);
        let bus = EventBus::new(None, Progress::Quiet, system_clock());
        let (stop, _) = watch::channel(Stop::Running);
        during(&checks, &bus, Window::For(Duration::from_secs(2)), &stop).await;
        let verdict = bus
            .records()
            .into_iter()
            .find_map(|r| match r.event {
                RunEvent::HypothesisVerdict(v) => Some(v),
                _ => None,
            })
            .expect("a verdict");
        assert_eq!(verdict.verdict, Verdict::Passed, "{}", verdict.message);
        // The third sample, two intervals (100 ms) after the window opened.
        let ms = verdict.detect_ms.expect("a time to detect");
        assert!((150..=400).contains(&ms), "{ms} ms");
        assert_eq!(verdict.samples, 3, "it stops sampling once it fired");
    }

    #[tokio::test]
    async fn firing_within_that_never_fires_deviates_and_a_blind_one_is_an_error() {
        let (verdict, message, _) =
            during_verdict(&firing_within(vec![value(0.0)]), Duration::from_secs(2)).await;
        assert_eq!(verdict, Verdict::Deviated, "{message}");
        assert!(message.contains("did not fire within 1s"), "{message}");
        let unreachable = Some(Observation::Error(
            "Alertmanager at http://am is unreachable".into(),
        ));
        let (verdict, message, _) =
            during_verdict(&firing_within(vec![unreachable]), Duration::from_secs(2)).await;
        assert_eq!(verdict, Verdict::Error, "{message}");
    }

    #[test]
    fn a_huge_sample_is_recorded_with_the_named_series_first_and_a_note() {
        let values: Vec<SeriesValue> = (0..1000)
            .map(|i| SeriesValue {
                labels: [("pod".to_owned(), format!("p{i}"))].into(),
                value: Some(f64::from(i)),
            })
            .collect();
        let named = values[999].clone();
        let (kept, detail) = recorded(values, Some(&named), None);
        assert_eq!(kept.len(), MAX_RECORDED_SERIES);
        assert_eq!(kept[0], named);
        assert_eq!(
            detail.as_deref(),
            Some("1000 series; the first 20 recorded")
        );
    }
}
