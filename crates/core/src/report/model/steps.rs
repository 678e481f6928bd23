//! A step of the run as the journal tells it: its state, the faults injected into and
//! reverted from its targets, the workloads that recovered, and the hypotheses checked
//! around it.

use jiff::Timestamp;

use super::{CheckView, HypothesisView, status_word};
use crate::events::{FaultIntent, StepStatus};
use crate::spec::Phase;

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
    pub unrecovered: Vec<Unrecovered>,
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
    /// The recovery-time objective it was judged against (`None` in older journals).
    pub within_ms: Option<u64>,
}

/// A disrupted workload that was not whole again when shakedown stopped watching.
#[derive(Debug, Clone)]
pub struct Unrecovered {
    pub at: Timestamp,
    pub workload: String,
    pub waited_ms: u64,
    pub within_ms: Option<u64>,
    /// A signal cut the wait short: the objective was not judged.
    pub stopped: bool,
}

/// One owner's recovery-time objective and what was measured against it: its own JUnit
/// case and a row of the report's recovery table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryGate {
    pub workload: String,
    pub within_ms: u64,
    /// From its own last disruption to whole again; `None`: never seen whole.
    pub measured_ms: Option<u64>,
    /// How long it was watched when it was never seen whole.
    pub waited_ms: Option<u64>,
    /// `None`: not judged (a signal stopped the run before it recovered).
    pub passed: Option<bool>,
}

impl RecoveryGate {
    /// `recovery deployment/shop/checkout within 60s`: the JUnit case's name.
    pub fn name(&self) -> String {
        format!("recovery {} within {}", self.workload, self.allowed())
    }

    /// The objective as the spec writes durations (`60s`, `2m`).
    pub fn allowed(&self) -> String {
        crate::spec::duration::format_duration(std::time::Duration::from_millis(self.within_ms))
    }

    /// What was measured against what was allowed, in words.
    pub fn said(&self) -> String {
        let allowed = self.allowed();
        match (self.measured_ms, self.waited_ms) {
            (Some(ms), _) => format!(
                "{} recovered in {} (allowed {allowed})",
                self.workload,
                crate::report::text::duration(ms)
            ),
            (None, Some(waited)) if self.passed.is_none() => format!(
                "{} not recovered after {}: the run was stopped before it was (allowed {allowed})",
                self.workload,
                crate::report::text::duration(waited)
            ),
            (None, waited) => format!(
                "{} never recovered: not whole {} after its last disruption (allowed {allowed})",
                self.workload,
                crate::report::text::duration(waited.unwrap_or(0))
            ),
        }
    }
}

impl StepView {
    pub(super) fn planned(id: &str, name: &str) -> Self {
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
            unrecovered: Vec::new(),
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

    /// The fault's type alone (`node-drain`), for decisions: [`fault_kind`](Self::fault_kind)
    /// may be the plan's description (`node-drain for 1s`), the intent names the type.
    pub fn fault_type(&self) -> Option<&str> {
        self.intent
            .as_ref()
            .map(|i| i.fault.as_str())
            .or_else(|| self.fault_kind()?.split_whitespace().next())
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

    /// Every owner's recovery-time objective with what was measured, in journal order
    /// (recovered first, then the ones never seen whole). Journals written before the
    /// gate existed record no objective, and so have no gates.
    pub fn recovery_gates(&self) -> Vec<RecoveryGate> {
        let recovered = self.recoveries.iter().filter_map(|r| {
            let within_ms = r.within_ms?;
            Some(RecoveryGate {
                workload: r.workload.clone(),
                within_ms,
                measured_ms: Some(r.after_ms),
                waited_ms: None,
                passed: Some(r.after_ms <= within_ms),
            })
        });
        let missed = self.unrecovered.iter().filter_map(|u| {
            Some(RecoveryGate {
                workload: u.workload.clone(),
                within_ms: u.within_ms?,
                measured_ms: None,
                waited_ms: Some(u.waited_ms),
                passed: (!u.stopped).then_some(false),
            })
        });
        recovered.chain(missed).collect()
    }

    pub fn count(&self, kind: FaultActionKind) -> usize {
        self.faults.iter().filter(|f| f.kind == kind).count()
    }

    /// Targets injected and neither reverted nor known to need no revert. A pod-delete has
    /// nothing to undo (the owners recreate the pods), so it never leaves anything behind.
    pub fn unreverted_targets(&self) -> Vec<&str> {
        if self.fault_type() == Some("pod-delete") {
            return Vec::new();
        }
        // A drain's evicted pods, like deleted ones, are the owners' to recreate: only its
        // cordoned nodes can be left behind.
        let drain = self.fault_type() == Some("node-drain");
        let mut open: Vec<&str> = Vec::new();
        for f in self
            .faults
            .iter()
            .filter(|f| !drain || f.target.starts_with("node/"))
        {
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

    /// Gives every target one identity, the one the fault's own events use, so a selected
    /// target and the same target hit compare equal in every report. A node drain selects
    /// nodes by name (`node-a-1`) but says it cordoned `node/node-a-1`; its pods
    /// (`shop/checkout-…`, evicted) already carry their namespace.
    pub(super) fn normalise_targets(&mut self) {
        if self.fault_type() != Some("node-drain") {
            return;
        }
        let node = |t: &str| {
            if t.contains('/') {
                t.to_owned()
            } else {
                format!("node/{t}")
            }
        };
        let mut targets: Vec<String> = Vec::with_capacity(self.targets.len());
        for t in self.targets.iter().map(|t| node(t)) {
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
        self.targets = targets;
        for f in &mut self.faults {
            f.target = node(&f.target);
        }
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
