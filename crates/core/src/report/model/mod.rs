//! The journal folded into one view of the run: steps in plan order, each with its faults,
//! targets and hypothesis checks. Every renderer reads this view, so JUnit, Markdown and
//! JSON never disagree about what happened.
//!
//! Pure: no clock, no environment, no I/O. Everything comes from the records.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::words;
pub use super::words::{phase_word, status_word};
use crate::events::{
    FaultIntent, HypothesisVerdict, NoteLevel, PlannedHypothesis, ProbeSample, Record, RunEvent,
    RunFinished, RunStarted, StepStatus, Verdict,
};
use crate::exit::{self, Outcome};
use crate::spec::Phase;

/// What the reports know about a run.
#[derive(Debug, Clone)]
pub struct RunView {
    /// `None` when the journal lost even its first line.
    pub started: Option<RunStarted>,
    pub started_at: Option<Timestamp>,
    /// `RunFinished`, or the last record of a partial journal.
    pub ended_at: Option<Timestamp>,
    pub finished: Option<RunFinished>,
    /// The journal was cut short (torn last line or no `RunFinished`).
    pub partial: bool,
    pub steps: Vec<StepView>,
    /// Hypotheses that apply to the whole experiment (`step: None` in the journal).
    pub experiment_hypotheses: Vec<HypothesisView>,
    pub notes: Vec<NoteView>,
    /// Every record except probe samples, as one line each, in journal order.
    pub timeline: Vec<TimelineEntry>,
}

#[derive(Debug, Clone)]
pub struct StepView {
    pub id: String,
    pub name: String,
    pub scenario: Option<String>,
    pub fault: Option<String>,
    pub state: StepState,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub targets: Vec<String>,
    pub intent: Option<FaultIntent>,
    pub faults: Vec<FaultAction>,
    pub recoveries: Vec<Recovery>,
    pub hypotheses: Vec<HypothesisView>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    /// Planned, but the journal says nothing about it.
    NotReached,
    Skipped(String),
    /// Started and never finished (partial journal).
    Running,
    Finished(StepStatus),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultActionKind {
    Injected,
    InjectFailed,
    Reverted,
    RevertFailed,
}

#[derive(Debug, Clone)]
pub struct FaultAction {
    pub at: Timestamp,
    pub target: String,
    pub kind: FaultActionKind,
    /// The detail (success) or the error (failure).
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Recovery {
    pub at: Timestamp,
    pub workload: String,
    pub after_ms: u64,
}

#[derive(Debug, Clone)]
pub struct HypothesisView {
    pub name: String,
    pub probe: String,
    pub expectation: String,
    pub weight: f64,
    /// Before, during, after (only the phases planned or observed).
    pub checks: Vec<CheckView>,
}

/// One hypothesis in one phase: the unit JUnit calls a test case.
#[derive(Debug, Clone)]
pub struct CheckView {
    pub phase: Phase,
    pub verdict: Option<HypothesisVerdict>,
    pub verdict_at: Option<Timestamp>,
    pub samples: Vec<ProbeSample>,
}

#[derive(Debug, Clone)]
pub struct NoteView {
    pub at: Timestamp,
    pub level: NoteLevel,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct TimelineEntry {
    pub at: Timestamp,
    pub step: Option<String>,
    pub text: String,
}

/// How a check ended, as the reports classify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    Held,
    Deviated,
    /// No data: never a pass.
    Inconclusive,
    /// The probe itself failed (Prometheus unreachable or erroring).
    Error,
    /// Not evaluated: aborted, skipped, or the journal ends first.
    NotRun,
}

impl CheckView {
    pub fn outcome(&self) -> CheckOutcome {
        match self.verdict.as_ref().map(|v| v.verdict) {
            Some(Verdict::Passed) => CheckOutcome::Held,
            Some(Verdict::Deviated) => CheckOutcome::Deviated,
            Some(Verdict::Inconclusive) => CheckOutcome::Inconclusive,
            Some(Verdict::Error) => CheckOutcome::Error,
            Some(Verdict::Aborted | Verdict::Skipped) | None => CheckOutcome::NotRun,
        }
    }

    /// When the phase was first probed, else when its verdict was given.
    pub fn first_at(&self) -> Option<Timestamp> {
        self.samples
            .first()
            .map(|s| s.eval_time)
            .or(self.verdict_at)
    }

    pub fn last_at(&self) -> Option<Timestamp> {
        self.verdict_at
            .or_else(|| self.samples.last().map(|s| s.eval_time))
    }
}

impl HypothesisView {
    fn planned(p: &PlannedHypothesis) -> Self {
        let mut phases = p.phases.clone();
        phases.sort();
        phases.dedup();
        HypothesisView {
            name: p.name.clone(),
            probe: p.probe.clone(),
            expectation: p.expectation.clone(),
            weight: if p.weight.is_finite() && p.weight >= 0.0 {
                p.weight
            } else {
                1.0
            },
            checks: phases.into_iter().map(CheckView::empty).collect(),
        }
    }

    fn observed(name: &str) -> Self {
        HypothesisView {
            name: name.to_owned(),
            probe: String::new(),
            expectation: String::new(),
            weight: 1.0,
            checks: Vec::new(),
        }
    }

    fn check_mut(&mut self, phase: Phase) -> &mut CheckView {
        let index = match self.checks.iter().position(|c| c.phase == phase) {
            Some(i) => i,
            None => {
                self.checks.push(CheckView::empty(phase));
                self.checks.sort_by_key(|c| c.phase);
                self.checks
                    .iter()
                    .position(|c| c.phase == phase)
                    .unwrap_or(0)
            }
        };
        &mut self.checks[index]
    }

    /// Every finite value observed, across phases and series.
    pub fn values(&self) -> Vec<f64> {
        self.checks
            .iter()
            .flat_map(|c| &c.samples)
            .flat_map(|s| &s.values)
            .filter_map(|v| v.value.filter(|x| x.is_finite()))
            .collect()
    }

    /// The longest time to recover any `after` check reported.
    pub fn recovery_ms(&self) -> Option<u64> {
        self.checks
            .iter()
            .filter_map(|c| c.verdict.as_ref()?.recovery_ms)
            .max()
    }
}

impl CheckView {
    fn empty(phase: Phase) -> Self {
        CheckView {
            phase,
            verdict: None,
            verdict_at: None,
            samples: Vec::new(),
        }
    }
}

/// Min, median (nearest rank) and max of a set of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub min: f64,
    pub p50: f64,
    pub max: f64,
    pub count: usize,
}

pub fn stats(values: &[f64]) -> Option<Stats> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = sorted.len().div_ceil(2) - 1;
    Some(Stats {
        min: sorted[0],
        p50: sorted[rank],
        max: sorted[sorted.len() - 1],
        count: sorted.len(),
    })
}

impl StepView {
    fn planned(id: &str, name: &str) -> Self {
        StepView {
            id: id.to_owned(),
            name: name.to_owned(),
            scenario: None,
            fault: None,
            state: StepState::NotReached,
            started_at: None,
            ended_at: None,
            targets: Vec::new(),
            intent: None,
            faults: Vec::new(),
            recoveries: Vec::new(),
            hypotheses: Vec::new(),
        }
    }

    /// A step worth a JUnit suite and a verdict table: it probes or faults something.
    /// Pauses are only timeline entries.
    pub fn is_checked(&self) -> bool {
        self.scenario.is_some() || self.fault.is_some() || !self.hypotheses.is_empty()
    }

    pub fn fault_kind(&self) -> Option<&str> {
        self.fault
            .as_deref()
            .or(self.intent.as_ref().map(|i| i.fault.as_str()))
    }

    /// From the first injection to the last revert (else the end of the `during` phase,
    /// the step's end, or `run_end`).
    pub fn fault_window(&self, run_end: Option<Timestamp>) -> Option<(Timestamp, Timestamp)> {
        let start = self
            .faults
            .iter()
            .find(|f| f.kind == FaultActionKind::Injected)?
            .at;
        let reverted = self
            .faults
            .iter()
            .filter(|f| {
                matches!(
                    f.kind,
                    FaultActionKind::Reverted | FaultActionKind::RevertFailed
                )
            })
            .map(|f| f.at)
            .max();
        // Without a revert (pod-delete has nothing to undo), the fault lasts as long as the
        // `during` phase that watched it.
        let during = self
            .hypotheses
            .iter()
            .flat_map(|h| &h.checks)
            .filter(|c| c.phase == Phase::During)
            .filter_map(CheckView::last_at)
            .max();
        let end = reverted
            .or(during)
            .or(self.ended_at)
            .or(run_end)
            .unwrap_or(start);
        Some((start, end.max(start)))
    }

    pub fn count(&self, kind: FaultActionKind) -> usize {
        self.faults.iter().filter(|f| f.kind == kind).count()
    }

    /// Targets injected and neither reverted nor known to need no revert. A pod-delete has
    /// nothing to undo (the owners recreate the pods), so it never leaves anything behind.
    pub fn unreverted_targets(&self) -> Vec<&str> {
        if self.fault_kind() == Some("pod-delete") {
            return Vec::new();
        }
        let mut open: Vec<&str> = Vec::new();
        for f in &self.faults {
            match f.kind {
                FaultActionKind::Injected => {
                    if !open.contains(&f.target.as_str()) {
                        open.push(&f.target);
                    }
                }
                FaultActionKind::Reverted => open.retain(|t| *t != f.target),
                FaultActionKind::InjectFailed | FaultActionKind::RevertFailed => {}
            }
        }
        open
    }

    /// Every target the fault actually hit, in first-hit order.
    pub fn hit_targets(&self) -> Vec<&str> {
        let mut hit: Vec<&str> = Vec::new();
        for f in &self.faults {
            if f.kind == FaultActionKind::Injected && !hit.contains(&f.target.as_str()) {
                hit.push(&f.target);
            }
        }
        hit
    }

    pub fn status_word(&self) -> String {
        match &self.state {
            StepState::NotReached => "not reached".into(),
            StepState::Skipped(_) => "skipped".into(),
            StepState::Running => "unfinished".into(),
            StepState::Finished(s) => status_word(*s).into(),
        }
    }
}

/// The JSON summary's machine key for a verdict (`passed`, not the human `held`): a
/// stable contract for scripts. Human text uses [`words::verdict_word`].
pub fn verdict_key(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "passed",
        Verdict::Deviated => "deviated",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Error => "error",
        Verdict::Aborted => "aborted",
        Verdict::Skipped => "skipped",
    }
}

/// The resilience score: the weighted share of hypothesis checks that held.
///
/// A *check* is one hypothesis in one phase (`before`, `during`, `after`) of one step, or
/// of the whole experiment for experiment-wide hypotheses. Every check the plan contains
/// counts, with its hypothesis's `weight` (default 1):
///
/// ```text
/// score = Σ weight of checks whose verdict is `passed`
///         ─────────────────────────────────────────────  × 100 %
///         Σ weight of every planned or observed check
/// ```
///
/// A check that deviated, was inconclusive (no data), errored (Prometheus unreachable),
/// was aborted or skipped, or never ran because the journal ends first, did not hold: it
/// adds its weight below the line and nothing above it. So an aborted or crashed run
/// cannot score better than the checks it actually proved. Pauses have no checks. With no
/// checks at all the score is undefined (`n/a`), never 100 %.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub held_weight: f64,
    pub total_weight: f64,
    pub held_checks: usize,
    pub total_checks: usize,
}

impl Score {
    /// Between 0 and 1; `None` when there was nothing to check.
    pub fn ratio(&self) -> Option<f64> {
        (self.total_weight > 0.0).then(|| self.held_weight / self.total_weight)
    }

    /// `78.6%`, or `n/a`.
    pub fn percent(&self) -> String {
        match self.ratio() {
            Some(r) => format!("{:.1}%", r * 100.0),
            None => "n/a".into(),
        }
    }
}

impl RunView {
    pub fn experiment(&self) -> &str {
        self.started
            .as_ref()
            .map_or("unknown-experiment", |s| s.experiment.as_str())
    }

    pub fn run_id(&self) -> &str {
        self.started
            .as_ref()
            .map_or("unknown", |s| s.run_id.as_str())
    }

    pub fn all_hypotheses(&self) -> impl Iterator<Item = (Option<&StepView>, &HypothesisView)> {
        self.steps
            .iter()
            .flat_map(|s| s.hypotheses.iter().map(move |h| (Some(s), h)))
            .chain(self.experiment_hypotheses.iter().map(|h| (None, h)))
    }

    pub fn score(&self) -> Score {
        let mut score = Score {
            held_weight: 0.0,
            total_weight: 0.0,
            held_checks: 0,
            total_checks: 0,
        };
        for (_, h) in self.all_hypotheses() {
            for c in &h.checks {
                score.total_checks += 1;
                score.total_weight += h.weight;
                if c.outcome() == CheckOutcome::Held {
                    score.held_checks += 1;
                    score.held_weight += h.weight;
                }
            }
        }
        score
    }

    /// How the run ended: recorded by `RunFinished` (an older journal: through its exit
    /// code), else derived from what the journal shows (see
    /// [`derived_outcome`](Self::derived_outcome)). `None`: the recorded exit code is not
    /// one shakedown documents.
    pub fn outcome(&self) -> Option<Outcome> {
        match &self.finished {
            Some(finished) => finished.resolved_outcome(),
            None => Some(self.derived_outcome()),
        }
    }

    /// The run's exit code: its outcome's, or the number recorded when no outcome has it.
    pub fn exit_code(&self) -> u8 {
        match &self.finished {
            Some(finished) => finished.code(),
            None => self.derived_outcome().code(),
        }
    }

    /// For a journal without `RunFinished`: a revert failed when one failed or an
    /// injected fault was never reverted (the cluster may still be faulted), else
    /// deviated when a check deviated, else could not run (the run did not complete).
    pub fn derived_outcome(&self) -> Outcome {
        let faulted = self.steps.iter().any(|s| {
            s.count(FaultActionKind::RevertFailed) > 0 || !s.unreverted_targets().is_empty()
        });
        let deviated = self.all_hypotheses().any(|(_, h)| {
            h.checks
                .iter()
                .any(|c| c.outcome() == CheckOutcome::Deviated)
        });
        if faulted {
            Outcome::RevertFailed
        } else if deviated {
            Outcome::Deviated
        } else {
            Outcome::CouldNotRun
        }
    }

    /// The verdict word for the outcome (the table is [`Outcome::label`]; an aborted run
    /// that deviated says `ABORTED`).
    pub fn verdict_label(&self) -> &'static str {
        let aborted = self
            .finished
            .as_ref()
            .is_some_and(|f| f.status == StepStatus::Aborted);
        self.outcome()
            .map_or(exit::UNKNOWN_LABEL, |o| o.label(aborted))
    }

    /// One sentence saying what the exit code means for this run.
    pub fn verdict_sentence(&self) -> String {
        let mut sentence = self.outcome().map_or_else(
            || exit::UNKNOWN_MEANING.to_owned(),
            |o| o.meaning().into_owned(),
        );
        if let Some(message) = self.finished.as_ref().and_then(|f| f.message.as_deref()) {
            sentence = format!("{sentence} ({})", super::text::clean_line(message));
        }
        if self.finished.is_none() {
            sentence = format!("the journal ends before the run finished; {sentence}");
        }
        sentence
    }

    /// Why a check of `step` (or an experiment-wide one) has no verdict.
    pub fn not_run_reason(&self, step: Option<&StepView>) -> String {
        let partial = self.partial;
        match step.map(|s| &s.state) {
            Some(StepState::Skipped(reason)) => format!("step skipped: {reason}"),
            Some(StepState::NotReached) if partial => {
                "not run: the journal ends before this step (partial report)".into()
            }
            Some(StepState::NotReached) => "not run: the step never started".into(),
            Some(StepState::Finished(status)) => {
                format!("not evaluated: the step {}", status_word(*status))
            }
            Some(StepState::Running) | None if partial => {
                "not evaluated: the journal ends before a verdict (partial report)".into()
            }
            Some(StepState::Running) | None => "not evaluated: no verdict recorded".into(),
        }
    }

    pub fn duration_ms(&self) -> Option<u64> {
        span_ms(self.started_at?, self.ended_at?)
    }
}

/// Whole milliseconds from `a` to `b` (0 when `b` is earlier).
pub fn span_ms(a: Timestamp, b: Timestamp) -> Option<u64> {
    let ms = b.as_millisecond() - a.as_millisecond();
    Some(u64::try_from(ms).unwrap_or(0))
}

/// Folds the journal into a [`RunView`].
pub fn analyze(records: &[Record], truncated: bool) -> RunView {
    let mut view = RunView {
        started: None,
        started_at: None,
        ended_at: records.last().map(|r| r.at),
        finished: None,
        partial: truncated,
        steps: Vec::new(),
        experiment_hypotheses: Vec::new(),
        notes: Vec::new(),
        timeline: Vec::new(),
    };
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for record in records {
        fold(&mut view, &mut index, record);
    }
    if view.finished.is_none() {
        view.partial = true;
    }
    if view.started_at.is_none() {
        view.started_at = records.first().map(|r| r.at);
    }
    for step in &mut view.steps {
        if step.state == StepState::Running && step.ended_at.is_none() {
            step.ended_at = view.ended_at;
        }
    }
    view
}

fn fold(view: &mut RunView, index: &mut BTreeMap<String, usize>, record: &Record) {
    let at = record.at;
    if let Some(text) = timeline_text(&record.event) {
        view.timeline.push(TimelineEntry {
            at,
            step: event_step(&record.event).map(str::to_owned),
            text,
        });
    }
    match &record.event {
        RunEvent::RunStarted(started) => {
            view.started_at = Some(at);
            for planned in &started.steps {
                let mut step = StepView::planned(&planned.id, &planned.name);
                step.scenario.clone_from(&planned.scenario);
                step.fault.clone_from(&planned.fault);
                step.hypotheses = planned
                    .hypotheses
                    .iter()
                    .map(HypothesisView::planned)
                    .collect();
                index.insert(planned.id.clone(), view.steps.len());
                view.steps.push(step);
            }
            view.started = Some(started.clone());
        }
        RunEvent::StepStarted { step } => {
            let s = step_mut(view, index, step);
            s.state = StepState::Running;
            s.started_at = Some(at);
        }
        RunEvent::TargetsSelected { step, targets } => {
            let s = step_mut(view, index, step);
            for t in targets {
                if !s.targets.contains(t) {
                    s.targets.push(t.clone());
                }
            }
        }
        RunEvent::FaultIntent(intent) => {
            let s = step_mut(view, index, &intent.step);
            if s.fault.is_none() {
                s.fault = Some(intent.fault.clone());
            }
            s.intent = Some(intent.clone());
        }
        RunEvent::FaultInjected {
            step,
            target,
            detail,
        } => {
            push_fault(
                view,
                index,
                step,
                at,
                target,
                FaultActionKind::Injected,
                detail,
            );
        }
        RunEvent::FaultInjectFailed {
            step,
            target,
            error,
        } => {
            push_fault(
                view,
                index,
                step,
                at,
                target,
                FaultActionKind::InjectFailed,
                error,
            );
        }
        RunEvent::FaultReverted {
            step,
            target,
            detail,
        } => {
            push_fault(
                view,
                index,
                step,
                at,
                target,
                FaultActionKind::Reverted,
                detail,
            );
        }
        RunEvent::RevertFailed {
            step,
            target,
            error,
        } => {
            push_fault(
                view,
                index,
                step,
                at,
                target,
                FaultActionKind::RevertFailed,
                error,
            );
        }
        RunEvent::Recovered {
            step,
            workload,
            after_ms,
        } => step_mut(view, index, step).recoveries.push(Recovery {
            at,
            workload: workload.clone(),
            after_ms: *after_ms,
        }),
        RunEvent::ProbeSample(sample) => {
            let h = hypothesis_mut(view, index, sample.step.as_deref(), &sample.hypothesis);
            if h.probe.is_empty() {
                h.probe.clone_from(&sample.query);
            }
            h.check_mut(sample.phase).samples.push(sample.clone());
        }
        RunEvent::HypothesisVerdict(verdict) => {
            let h = hypothesis_mut(view, index, verdict.step.as_deref(), &verdict.hypothesis);
            if h.expectation.is_empty() {
                h.expectation.clone_from(&verdict.expectation);
            }
            let check = h.check_mut(verdict.phase);
            check.verdict = Some(verdict.clone());
            check.verdict_at = Some(at);
        }
        RunEvent::StepFinished { step, status } => {
            let s = step_mut(view, index, step);
            s.state = StepState::Finished(*status);
            s.ended_at = Some(at);
        }
        RunEvent::StepSkipped { step, reason } => {
            let s = step_mut(view, index, step);
            s.state = StepState::Skipped(reason.clone());
            s.started_at.get_or_insert(at);
            s.ended_at = Some(at);
        }
        RunEvent::Note { level, message } => view.notes.push(NoteView {
            at,
            level: *level,
            message: message.clone(),
        }),
        RunEvent::RunFinished(finished) => {
            view.finished = Some(finished.clone());
            view.ended_at = Some(at);
        }
    }
}

fn step_mut<'a>(
    view: &'a mut RunView,
    index: &mut BTreeMap<String, usize>,
    id: &str,
) -> &'a mut StepView {
    let i = *index.entry(id.to_owned()).or_insert_with(|| {
        // A step the plan did not list (or the plan line was lost): keep it anyway.
        view.steps.push(StepView::planned(id, id));
        view.steps.len() - 1
    });
    &mut view.steps[i]
}

fn hypothesis_mut<'a>(
    view: &'a mut RunView,
    index: &mut BTreeMap<String, usize>,
    step: Option<&str>,
    name: &str,
) -> &'a mut HypothesisView {
    let list = match step {
        Some(id) => &mut step_mut(view, index, id).hypotheses,
        None => &mut view.experiment_hypotheses,
    };
    let i = match list.iter().position(|h| h.name == name) {
        Some(i) => i,
        None => {
            list.push(HypothesisView::observed(name));
            list.len() - 1
        }
    };
    &mut list[i]
}

fn push_fault(
    view: &mut RunView,
    index: &mut BTreeMap<String, usize>,
    step: &str,
    at: Timestamp,
    target: &str,
    kind: FaultActionKind,
    text: &str,
) {
    step_mut(view, index, step).faults.push(FaultAction {
        at,
        target: target.to_owned(),
        kind,
        text: text.to_owned(),
    });
}

fn event_step(event: &RunEvent) -> Option<&str> {
    match event {
        RunEvent::StepStarted { step }
        | RunEvent::TargetsSelected { step, .. }
        | RunEvent::FaultInjected { step, .. }
        | RunEvent::FaultInjectFailed { step, .. }
        | RunEvent::FaultReverted { step, .. }
        | RunEvent::RevertFailed { step, .. }
        | RunEvent::Recovered { step, .. }
        | RunEvent::StepFinished { step, .. }
        | RunEvent::StepSkipped { step, .. } => Some(step),
        RunEvent::FaultIntent(i) => Some(&i.step),
        RunEvent::ProbeSample(s) => s.step.as_deref(),
        RunEvent::HypothesisVerdict(v) => v.step.as_deref(),
        RunEvent::RunStarted(_) | RunEvent::Note { .. } | RunEvent::RunFinished(_) => None,
    }
}

/// The event log's line for a record (the live view's line too); probe samples are left
/// out (they are in the charts).
fn timeline_text(event: &RunEvent) -> Option<String> {
    match event {
        RunEvent::ProbeSample(_) => None,
        _ => Some(words::line(event)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(lines: &[&str]) -> Vec<Record> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let json = format!(
                    r#"{{"seq":{},"at":"2027-01-15T08:00:{:02}Z",{l}}}"#,
                    i + 1,
                    i
                );
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
            })
            .collect()
    }

    const START: &str = r#""event":"runStarted","runId":"r","experiment":"e","source":"e.yaml","seed":1,"dryRun":"none","version":"0","steps":[{"id":"1","name":"s","scenario":"s","hypotheses":[{"name":"h","probe":"up","expectation":"> 0","phases":["before","during","after"],"weight":3}]}]"#;

    #[test]
    fn a_journal_cut_short_gets_the_most_cautious_exit_code() {
        let injected = |fault: &str| {
            records(&[
                START,
                r#""event":"stepStarted","step":"1""#,
                &format!(
                    r#""event":"faultIntent","step":"1","fault":"{fault}","targets":["t"],"params":{{}},"revert":"x""#
                ),
                r#""event":"faultInjected","step":"1","target":"t","detail":"d""#,
            ])
        };
        assert_eq!(analyze(&injected("node-drain"), false).exit_code(), 4);
        // A deleted pod needs no revert: nothing is left faulted.
        assert_eq!(analyze(&injected("pod-delete"), false).exit_code(), 3);
        let deviated = records(&[
            START,
            r#""event":"hypothesisVerdict","step":"1","hypothesis":"h","phase":"before","verdict":"deviated","expectation":"> 0","message":"0 > 0 is false","samples":1,"passed":0"#,
        ]);
        assert_eq!(analyze(&deviated, false).exit_code(), 1);
        assert!(analyze(&deviated, false).partial, "no RunFinished");
    }

    #[test]
    fn the_recorded_outcome_wins_and_older_journals_read_through_their_exit_code() {
        let finished = |fields: &str| {
            analyze(
                &records(&[
                    START,
                    &format!(
                        r#""event":"runFinished","status":"interrupted","deviated":false,{fields}"#
                    ),
                ]),
                false,
            )
        };
        let current = finished(r#""exitCode":143,"outcome":{"interrupted":"SIGTERM"}"#);
        assert_eq!(
            current.outcome(),
            Some(Outcome::Interrupted(exit::Signal::Term))
        );
        assert_eq!(
            (current.exit_code(), current.verdict_label()),
            (143, "TERMINATED")
        );
        let older = finished(r#""exitCode":130"#);
        assert_eq!(
            older.outcome(),
            Some(Outcome::Interrupted(exit::Signal::Int))
        );
        assert_eq!(older.verdict_label(), "INTERRUPTED");
        let unknown = finished(r#""exitCode":77"#);
        assert_eq!(unknown.outcome(), None);
        assert_eq!(
            (unknown.exit_code(), unknown.verdict_label()),
            (77, "FAILED")
        );
        assert!(unknown.verdict_sentence().starts_with("the run failed"));
    }

    #[test]
    fn the_score_weighs_checks_and_counts_unrun_ones_as_not_held() {
        let run = records(&[
            START,
            r#""event":"hypothesisVerdict","step":"1","hypothesis":"h","phase":"before","verdict":"passed","expectation":"> 0","message":"ok","samples":1,"passed":1"#,
            r#""event":"hypothesisVerdict","step":"1","hypothesis":"h","phase":"during","verdict":"inconclusive","expectation":"> 0","message":"no data","samples":1,"passed":0"#,
            r#""event":"hypothesisVerdict","hypothesis":"global","phase":"during","verdict":"passed","expectation":"> 0","message":"ok","samples":1,"passed":1"#,
            r#""event":"runFinished","status":"completed","deviated":false,"exitCode":0"#,
        ]);
        let score = analyze(&run, false).score();
        // h: 3 checks of weight 3 (one held); global: 1 check of weight 1 (held).
        assert_eq!(score.total_checks, 4);
        assert_eq!(score.held_checks, 2);
        assert_eq!(score.total_weight, 10.0);
        assert_eq!(score.held_weight, 4.0);
        assert_eq!(score.percent(), "40.0%");
        let nothing = analyze(&records(&[START]), false);
        assert_eq!(nothing.score().total_checks, 3);
        let empty = Score {
            held_weight: 0.0,
            total_weight: 0.0,
            held_checks: 0,
            total_checks: 0,
        };
        assert_eq!(empty.percent(), "n/a", "no checks is never 100%");
    }

    #[test]
    fn median_is_the_nearest_rank() {
        let st = stats(&[3.0, 1.0, f64::NAN, 2.0, 10.0]).expect("values");
        assert_eq!((st.min, st.p50, st.max, st.count), (1.0, 2.0, 10.0, 4));
        assert!(stats(&[f64::NAN]).is_none());
    }
}
