//! A hypothesis as the reports see it: one check per phase, each with its samples and
//! verdict; how a check's verdict is classified; and the min, median and max of what was
//! observed.

use jiff::Timestamp;

use crate::events::{HypothesisVerdict, PlannedHypothesis, ProbeSample, Verdict};
use crate::spec::Phase;

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
    pub(super) fn planned(p: &PlannedHypothesis) -> Self {
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

    pub(super) fn observed(name: &str) -> Self {
        HypothesisView {
            name: name.to_owned(),
            probe: String::new(),
            expectation: String::new(),
            weight: 1.0,
            checks: Vec::new(),
        }
    }

    pub(super) fn check_mut(&mut self, phase: Phase) -> &mut CheckView {
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

    /// The time to detect of a `firing within` alert hypothesis, if it fired.
    pub fn detect_ms(&self) -> Option<u64> {
        self.checks
            .iter()
            .filter_map(|c| c.verdict.as_ref()?.detect_ms)
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
