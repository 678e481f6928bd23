//! The journal folded into one view of the run: steps in plan order, each with its faults,
//! targets and hypothesis checks. Every renderer reads this view, so JUnit, Markdown and
//! JSON never disagree about what happened.
//!
//! Pure: no clock, no environment, no I/O. Everything comes from the records.
//!
//! The view's parts live beside this file: a step and its faults (`steps.rs`), a
//! hypothesis and its checks (`hypotheses.rs`), and what the run amounts to, its outcome,
//! exit code and score (`outcome.rs`). This file holds the run itself and folds the
//! journal into it.

mod alerts;
mod hypotheses;
mod outcome;
mod steps;

use std::collections::BTreeMap;

use jiff::Timestamp;

pub use self::alerts::{AlertTimes, is_alert};
pub use self::hypotheses::{CheckOutcome, CheckView, HypothesisView, Stats, stats};
pub use self::outcome::{Score, verdict_key};
pub use self::steps::{
    FaultAction, FaultActionKind, Recovery, RecoveryGate, StepState, StepView, Unrecovered,
};
use super::words;
pub use super::words::{phase_word, status_word};
use crate::events::{
    BaselineCompared, EarlierRun, NoteLevel, Record, RunEvent, RunFinished, RunStarted,
};

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
    /// The regression gate's judgement, when the run had a baseline.
    pub compared: Option<BaselineCompared>,
    /// This experiment's earlier runs, oldest first, for the recovery trend.
    pub earlier_runs: Vec<EarlierRun>,
    /// Every record except probe samples, as one line each, in journal order.
    pub timeline: Vec<TimelineEntry>,
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

    /// A `--dry-run=server` run: every call carried `dryRun=All`, nothing was faulted and
    /// no hypothesis was judged, whatever the outcome.
    pub fn is_dry_run(&self) -> bool {
        self.started.as_ref().is_some_and(|s| s.dry_run == "server")
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
        compared: None,
        earlier_runs: Vec::new(),
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
        step.normalise_targets();
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
            ..
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
            ..
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
            within_ms,
        } => step_mut(view, index, step).recoveries.push(Recovery {
            at,
            workload: workload.clone(),
            after_ms: *after_ms,
            within_ms: *within_ms,
        }),
        RunEvent::NotRecovered {
            step,
            workload,
            waited_ms,
            within_ms,
            stopped,
        } => step_mut(view, index, step).unrecovered.push(Unrecovered {
            at,
            workload: workload.clone(),
            waited_ms: *waited_ms,
            within_ms: *within_ms,
            stopped: *stopped,
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
        RunEvent::BaselineCompared(compared) => view.compared = Some(compared.clone()),
        RunEvent::EarlierRuns { runs } => view.earlier_runs.clone_from(runs),
        // The write-up lists a missed notification with the run's warnings.
        RunEvent::DeliveryFailed { .. } => view.notes.push(NoteView {
            at,
            level: NoteLevel::Warning,
            message: words::line(&record.event),
        }),
        RunEvent::RunFinished(finished) => {
            view.finished = Some(finished.clone());
            view.ended_at = Some(at);
        }
        // Silences are in the event log, in words; no table of their own.
        RunEvent::SilenceIntent(_)
        | RunEvent::SilenceCreated { .. }
        | RunEvent::SilenceExpired { .. }
        | RunEvent::SilenceNotExpired { .. } => {}
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
        | RunEvent::NotRecovered { step, .. }
        | RunEvent::StepFinished { step, .. }
        | RunEvent::StepSkipped { step, .. } => Some(step),
        RunEvent::FaultIntent(i) => Some(&i.step),
        RunEvent::SilenceIntent(i) => i.step.as_deref(),
        RunEvent::SilenceCreated { step, .. }
        | RunEvent::SilenceExpired { step, .. }
        | RunEvent::SilenceNotExpired { step, .. } => step.as_deref(),
        RunEvent::ProbeSample(s) => s.step.as_deref(),
        RunEvent::HypothesisVerdict(v) => v.step.as_deref(),
        RunEvent::RunStarted(_)
        | RunEvent::Note { .. }
        | RunEvent::BaselineCompared(_)
        | RunEvent::EarlierRuns { .. }
        | RunEvent::DeliveryFailed { .. }
        | RunEvent::RunFinished(_) => None,
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
    use crate::exit::{self, Outcome};

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

    /// Regression: a server dry run scored 100 % and read PASSED while nothing was
    /// faulted. Its score is undefined, its verdict `DRY RUN`, and a dry run's "would
    /// cordon" never counts as a fault left behind.
    #[test]
    fn a_dry_run_has_no_score_and_its_own_verdict() {
        let start = START.replace(r#""dryRun":"none""#, r#""dryRun":"server""#);
        let view = analyze(
            &records(&[
                &start,
                r#""event":"stepStarted","step":"1""#,
                r#""event":"faultIntent","step":"1","fault":"node-drain","targets":["n"],"params":{},"revert":"x""#,
                r#""event":"faultInjected","step":"1","target":"node/n","detail":"would cordon","dryRun":true"#,
                r#""event":"faultReverted","step":"1","target":"node/n","detail":"would uncordon","dryRun":true"#,
                r#""event":"hypothesisVerdict","step":"1","hypothesis":"h","phase":"before","verdict":"skipped","expectation":"> 0","message":"dry run","samples":0,"passed":0"#,
                r#""event":"stepFinished","step":"1","status":"completed""#,
                r#""event":"runFinished","status":"completed","deviated":false,"exitCode":0,"outcome":"dryRun""#,
            ]),
            false,
        );
        assert!(view.is_dry_run());
        assert_eq!(view.verdict_label(), "DRY RUN");
        assert_eq!(view.exit_code(), 0);
        assert_eq!(view.score().ratio(), None);
        assert_eq!(view.score().percent(), "n/a");
        assert!(view.steps[0].unreverted_targets().is_empty());
    }

    /// Each owner's objective and what was measured: met, missed, never whole, and not
    /// judged when a signal cut the wait; an older journal without objectives has none.
    /// A journal cut short after a missed objective is deviated (exit 1).
    #[test]
    fn recovery_gates_are_read_from_the_journal() {
        let view = analyze(
            &records(&[
                START,
                r#""event":"stepStarted","step":"1""#,
                r#""event":"recovered","step":"1","workload":"deployment/shop/a","afterMs":1500,"withinMs":2000"#,
                r#""event":"recovered","step":"1","workload":"deployment/shop/b","afterMs":2500,"withinMs":2000"#,
                r#""event":"recovered","step":"1","workload":"deployment/shop/old","afterMs":9000"#,
                r#""event":"notRecovered","step":"1","workload":"deployment/shop/c","waitedMs":61000,"withinMs":60000"#,
                r#""event":"notRecovered","step":"1","workload":"deployment/shop/d","waitedMs":300,"withinMs":60000,"stopped":true"#,
            ]),
            false,
        );
        let gates = view.steps[0].recovery_gates();
        let judged: Vec<(&str, Option<bool>)> = gates
            .iter()
            .map(|g| (g.workload.as_str(), g.passed))
            .collect();
        assert_eq!(
            judged,
            [
                ("deployment/shop/a", Some(true)),
                ("deployment/shop/b", Some(false)),
                ("deployment/shop/c", Some(false)),
                ("deployment/shop/d", None),
            ]
        );
        assert_eq!(gates[1].name(), "recovery deployment/shop/b within 2s");
        assert_eq!(
            gates[1].said(),
            "deployment/shop/b recovered in 2.5s (allowed 2s)"
        );
        assert_eq!(
            gates[2].said(),
            "deployment/shop/c never recovered: not whole 1m01s after its last disruption (allowed 1m)"
        );
        assert_eq!(view.exit_code(), 1);
    }

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
            could_not_run: false,
        };
        assert_eq!(empty.percent(), "n/a", "no checks is never 100%");
        let unjudged = Score {
            held_weight: 3.0,
            total_weight: 13.0,
            held_checks: 3,
            total_checks: 10,
            could_not_run: true,
        };
        assert_eq!(
            unjudged.ratio(),
            None,
            "a run that could not run has no score"
        );
    }

    #[test]
    fn median_is_the_nearest_rank() {
        let st = stats(&[3.0, 1.0, f64::NAN, 2.0, 10.0]).expect("values");
        assert_eq!((st.min, st.p50, st.max, st.count), (1.0, 2.0, 10.0, 4));
        assert!(stats(&[f64::NAN]).is_none());
    }
}
