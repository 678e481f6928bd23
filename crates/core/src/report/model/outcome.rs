//! What the run amounts to: its outcome and exit code (recorded, or derived from a
//! journal cut short), the verdict words and sentence, why a check has no verdict, and
//! the resilience score.

use super::{CheckOutcome, FaultActionKind, RunView, StepState, StepView, status_word};
use crate::events::{StepStatus, Verdict};
use crate::exit::{self, Outcome};

/// The JSON summary's machine key for a verdict (`passed`, not the human `held`): a
/// stable contract for scripts. Human text uses
/// [`words::verdict_word`](crate::report::words::verdict_word).
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
/// checks at all the score is undefined (`n/a`), never 100 %; so is a dry run's, which
/// judges nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub held_weight: f64,
    pub total_weight: f64,
    pub held_checks: usize,
    pub total_checks: usize,
    /// The run could not run (exit 3: cluster or Prometheus unreachable, …): its checks
    /// were never judged, so it has no score at all, not a low one (issue 12).
    pub could_not_run: bool,
}

impl Score {
    /// Between 0 and 1; `None` when there was nothing to check or the run could not run.
    pub fn ratio(&self) -> Option<f64> {
        (self.total_weight > 0.0 && !self.could_not_run)
            .then(|| self.held_weight / self.total_weight)
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
    pub fn score(&self) -> Score {
        let mut score = Score {
            held_weight: 0.0,
            total_weight: 0.0,
            held_checks: 0,
            total_checks: 0,
            could_not_run: self.outcome() == Some(Outcome::CouldNotRun),
        };
        if self.is_dry_run() {
            // Nothing was faulted: a score would measure nothing.
            return score;
        }
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
        }) || self
            .steps
            .iter()
            .any(|s| s.recovery_gates().iter().any(|g| g.passed == Some(false)));
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
        // A pass with a skipped step (`onEmptyTargets: skip`) did not inject every fault.
        let skipped = self
            .steps
            .iter()
            .any(|s| matches!(s.state, StepState::Skipped(_)));
        let mut sentence = match self.outcome() {
            Some(Outcome::Passed) if skipped => {
                "every judged hypothesis held, and every fault that was injected was reverted"
                    .to_owned()
            }
            outcome => outcome.map_or_else(
                || exit::UNKNOWN_MEANING.to_owned(),
                |o| o.meaning().into_owned(),
            ),
        };
        if let Some(message) = self.finished.as_ref().and_then(|f| f.message.as_deref()) {
            sentence = format!("{sentence} ({})", crate::report::text::clean_line(message));
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
}
