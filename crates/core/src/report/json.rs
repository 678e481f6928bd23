//! `summary.json`: the verdicts, the resilience score, recovery times and the exit code,
//! for machines. The journal stays the full record; this is its digest.
//!
//! Its JSON Schema is derived from the same types ([`schema`], printed by
//! `shakedown schema --summary`), so the published shape cannot drift from what is
//! written.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::model::{
    self, CheckOutcome, FaultActionKind, HypothesisView, RunView, StepState, StepView, phase_word,
    stats, verdict_key,
};
use super::text;
use crate::events::{PlannedHypothesis, Record};
use crate::exit::Outcome;
use crate::spec::Expectation;

/// Bumped when a field changes meaning or disappears (adding one does not).
pub const SCHEMA: &str = "shakedown.dev/summary/v1";

/// The summary of one run (`summary.json`, and each item of `run -o json`).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "shakedown summary.json", extend("$id" = SCHEMA))]
struct Summary<'a> {
    /// Always `shakedown.dev/v1`, as in every machine output of shakedown.
    #[schemars(extend("const" = crate::output::API_VERSION))]
    api_version: &'static str,
    /// Always `Summary`.
    #[schemars(extend("const" = "Summary"))]
    kind: &'static str,
    /// Always `shakedown.dev/summary/v1`.
    #[schemars(extend("const" = SCHEMA))]
    schema: &'static str,
    run_id: &'a str,
    experiment: &'a str,
    /// The experiment's (or scenario's) `metadata.labels`.
    labels: BTreeMap<&'a str, &'a str>,
    source: Option<&'a str>,
    seed: Option<u64>,
    context: Option<&'a str>,
    api_server: Option<&'a str>,
    prometheus_url: Option<&'a str>,
    dry_run: Option<&'a str>,
    version: Option<&'a str>,
    started_at: Option<String>,
    finished_at: Option<String>,
    duration_ms: Option<u64>,
    /// `completed`, `failed`, `aborted`, `interrupted`, or `unfinished` (partial journal).
    status: &'static str,
    deviated: bool,
    partial: bool,
    exit_code: u8,
    verdict: &'static str,
    message: String,
    /// The resilience score; its `score` is `null` when the run could not run.
    resilience_score: ScoreJson,
    steps: Vec<StepJson>,
    experiment_hypotheses: Vec<HypothesisJson>,
    recovery_times: Vec<RecoveryJson>,
    /// Per alert (one alert probe in one step): its time to detect and to resolve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    alerts: Vec<AlertJson>,
}

/// One alert's times, from its `firing within` and `resolved within` hypotheses.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct AlertJson {
    step: Option<String>,
    /// The alert probe: `alert CheckoutHighLatency{service="checkout"}`.
    alert: String,
    /// From the injection to the first sample that saw it firing.
    detect_ms: Option<u64>,
    /// From the revert to the first of the samples in a row that saw it resolved.
    resolve_ms: Option<u64>,
    /// The hypotheses that judged it.
    hypotheses: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ScoreJson {
    /// Between 0 and 1; `null` when nothing was checked or the run could not run (exit
    /// 3): a run that could not judge its hypotheses has no score.
    score: Option<f64>,
    held_weight: f64,
    total_weight: f64,
    held_checks: usize,
    total_checks: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct StepJson {
    id: String,
    name: String,
    scenario: Option<String>,
    fault: Option<String>,
    status: String,
    skip_reason: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
    targets_selected: Vec<String>,
    targets_hit: Vec<String>,
    injected: usize,
    inject_failed: usize,
    reverted: usize,
    revert_failed: usize,
    not_reverted: Vec<String>,
    hypotheses: Vec<HypothesisJson>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct HypothesisJson {
    name: String,
    expectation: String,
    /// The expectation as numbers; `null` when it is not a comparison (`reachable`).
    threshold: Option<Threshold>,
    /// Share of `during` samples that must hold.
    tolerance: Option<Quantity>,
    /// Sampling interval.
    every: Option<Quantity>,
    weight: f64,
    min: Option<f64>,
    p50: Option<f64>,
    max: Option<f64>,
    recovery_ms: Option<u64>,
    /// `firing within` (alert hypotheses): from the injection to the first sample that
    /// saw the alert firing. Absent when it did not fire or is not an alert hypothesis.
    #[serde(skip_serializing_if = "Option::is_none")]
    detect_ms: Option<u64>,
    checks: Vec<CheckJson>,
    /// `resolved within` (alert hypotheses): from the revert to the first of the samples
    /// in a row that saw the alert resolved. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    resolve_ms: Option<u64>,
}

/// An expectation as numbers, in the query's own unit.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "operator")]
enum Threshold {
    #[serde(rename = "<")]
    Lt { value: f64 },
    #[serde(rename = "<=")]
    Le { value: f64 },
    #[serde(rename = ">")]
    Gt { value: f64 },
    #[serde(rename = ">=")]
    Ge { value: f64 },
    #[serde(rename = "==")]
    Eq { value: f64 },
    #[serde(rename = "!=")]
    Ne { value: f64 },
    /// Inclusive on both ends.
    #[serde(rename = "between")]
    Between { min: f64, max: f64 },
}

/// A number with its unit.
#[derive(Debug, Serialize, JsonSchema)]
struct Quantity {
    value: f64,
    #[schemars(extend("enum" = ["percent", "ms"]))]
    unit: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct CheckJson {
    phase: &'static str,
    /// The journal's verdict, or `notRun` when it has none.
    verdict: &'static str,
    held: bool,
    message: Option<String>,
    samples: u32,
    passed: u32,
    recovery_ms: Option<u64>,
    /// The time to detect, on the `during` check of a `firing within` hypothesis.
    #[serde(skip_serializing_if = "Option::is_none")]
    detect_ms: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RecoveryJson {
    step: Option<String>,
    /// A workload (`Recovered`) or a hypothesis (`after` phase).
    what: String,
    kind: &'static str,
    after_ms: u64,
    /// A workload's recovery-time objective (`recovery.within` or `recovery.owners`);
    /// absent for hypotheses and in journals written before the gate existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    within_ms: Option<u64>,
    /// Whether `afterMs` met `withinMs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    met: Option<bool>,
}

pub fn render(records: &[Record], truncated: bool) -> String {
    let view = model::analyze(records, truncated);
    let summary = summary(&view);
    let mut out = serde_json::to_string_pretty(&summary).unwrap_or_else(|_| "{}".into());
    out.push('\n');
    out
}

/// The summary as a JSON value, for documents that embed it (`run -o json`).
pub fn value(records: &[Record], truncated: bool) -> serde_json::Value {
    let view = model::analyze(records, truncated);
    serde_json::to_value(summary(&view)).unwrap_or_default()
}

/// The JSON Schema (draft 2020-12) of `summary.json`.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Summary<'static>)).unwrap_or_default()
}

fn summary(view: &RunView) -> Summary<'_> {
    let started = view.started.as_ref();
    let score = view.score();
    Summary {
        api_version: crate::output::API_VERSION,
        kind: "Summary",
        schema: SCHEMA,
        run_id: view.run_id(),
        experiment: view.experiment(),
        labels: started.map_or_else(BTreeMap::new, |s| {
            s.labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        }),
        source: started.map(|s| s.source.as_str()),
        seed: started.map(|s| s.seed),
        context: started.and_then(|s| s.context.as_deref()),
        api_server: started.and_then(|s| s.api_server.as_deref()),
        prometheus_url: started.and_then(|s| s.prometheus_url.as_deref()),
        dry_run: started.map(|s| s.dry_run.as_str()),
        version: started.map(|s| s.version.as_str()),
        started_at: view.started_at.map(text::time),
        finished_at: view.ended_at.map(text::time),
        duration_ms: view.duration_ms(),
        status: view
            .finished
            .as_ref()
            .map_or("unfinished", |f| model::status_word(f.status)),
        deviated: view.finished.as_ref().map_or_else(
            || view.derived_outcome() == Outcome::Deviated,
            |f| f.deviated,
        ),
        partial: view.partial,
        exit_code: view.exit_code(),
        verdict: view.verdict_label(),
        message: view.verdict_sentence(),
        resilience_score: ScoreJson {
            score: score.ratio().map(|r| (r * 10_000.0).round() / 10_000.0),
            held_weight: score.held_weight,
            total_weight: score.total_weight,
            held_checks: score.held_checks,
            total_checks: score.total_checks,
        },
        steps: view.steps.iter().map(|s| step(view, s)).collect(),
        experiment_hypotheses: view
            .experiment_hypotheses
            .iter()
            .map(|h| hypothesis(h, planned(view, None, &h.name)))
            .collect(),
        recovery_times: recoveries(view),
        alerts: view
            .alerts()
            .into_iter()
            .map(|a| AlertJson {
                step: a.step,
                alert: text::clean_line(&a.alert),
                detect_ms: a.detect_ms,
                resolve_ms: a.resolve_ms,
                hypotheses: a.hypotheses.iter().map(|h| text::clean_line(h)).collect(),
            })
            .collect(),
    }
}

/// The plan's record of a hypothesis (of a step, or experiment-wide), from `RunStarted`.
fn planned<'a>(view: &'a RunView, step: Option<&str>, name: &str) -> Option<&'a PlannedHypothesis> {
    let started = view.started.as_ref()?;
    let hypotheses = match step {
        Some(id) => &started.steps.iter().find(|s| s.id == id)?.hypotheses,
        None => &started.hypotheses,
    };
    hypotheses.iter().find(|h| h.name == name)
}

fn threshold(expectation: &str) -> Option<Threshold> {
    use crate::spec::CompareOp;
    let parsed = crate::spec::read::parse_expectation(expectation).ok()?;
    Some(match parsed {
        Expectation::Between(min, max) => Threshold::Between { min, max },
        // Alert expectations have no numeric bound: the verdict's expectation says them.
        Expectation::Firing(_) | Expectation::Resolved(_) | Expectation::NotFiring => {
            return None;
        }
        Expectation::Compare(op, value) => match op {
            CompareOp::Lt => Threshold::Lt { value },
            CompareOp::Le => Threshold::Le { value },
            CompareOp::Gt => Threshold::Gt { value },
            CompareOp::Ge => Threshold::Ge { value },
            CompareOp::Eq => Threshold::Eq { value },
            CompareOp::Ne => Threshold::Ne { value },
        },
    })
}

fn step(view: &RunView, s: &StepView) -> StepJson {
    StepJson {
        id: s.id.clone(),
        name: text::clean_line(&s.name),
        scenario: s.scenario.as_deref().map(text::clean_line),
        fault: s.fault_kind().map(str::to_owned),
        status: s.status_word(),
        skip_reason: match &s.state {
            StepState::Skipped(r) => Some(text::clean_line(r)),
            _ => None,
        },
        started_at: s.started_at.map(text::time),
        finished_at: s.ended_at.map(text::time),
        targets_selected: s.targets.iter().map(|t| text::clean_line(t)).collect(),
        targets_hit: s.hit_targets().into_iter().map(text::clean_line).collect(),
        injected: s.count(FaultActionKind::Injected),
        inject_failed: s.count(FaultActionKind::InjectFailed),
        reverted: s.count(FaultActionKind::Reverted),
        revert_failed: s.count(FaultActionKind::RevertFailed),
        not_reverted: s
            .unreverted_targets()
            .into_iter()
            .map(text::clean_line)
            .collect(),
        hypotheses: s
            .hypotheses
            .iter()
            .map(|h| hypothesis(h, planned(view, Some(&s.id), &h.name)))
            .collect(),
    }
}

fn hypothesis(h: &HypothesisView, planned: Option<&PlannedHypothesis>) -> HypothesisJson {
    let st = stats(&h.values());
    HypothesisJson {
        name: text::clean_line(&h.name),
        expectation: text::clean_line(&h.expectation),
        threshold: threshold(&h.expectation),
        tolerance: planned.map(|p| Quantity {
            value: p.tolerance,
            unit: "percent",
        }),
        every: planned.filter(|p| p.every_ms > 0).map(|p| Quantity {
            value: p.every_ms as f64,
            unit: "ms",
        }),
        weight: h.weight,
        min: st.map(|s| s.min),
        p50: st.map(|s| s.p50),
        max: st.map(|s| s.max),
        recovery_ms: h.recovery_ms(),
        detect_ms: h.detect_ms(),
        checks: h
            .checks
            .iter()
            .map(|c| CheckJson {
                phase: phase_word(c.phase),
                verdict: c
                    .verdict
                    .as_ref()
                    .map_or("notRun", |v| verdict_key(v.verdict)),
                held: c.outcome() == CheckOutcome::Held,
                message: c.verdict.as_ref().map(|v| text::clean_line(&v.message)),
                samples: c
                    .verdict
                    .as_ref()
                    .map_or(c.samples.len() as u32, |v| v.samples),
                passed: c.verdict.as_ref().map_or(0, |v| v.passed),
                recovery_ms: c.verdict.as_ref().and_then(|v| v.recovery_ms),
                detect_ms: c.verdict.as_ref().and_then(|v| v.detect_ms),
            })
            .collect(),
        resolve_ms: h.resolve_ms(),
    }
}

fn recoveries(view: &RunView) -> Vec<RecoveryJson> {
    let mut out = Vec::new();
    for s in &view.steps {
        for r in &s.recoveries {
            out.push(RecoveryJson {
                step: Some(s.id.clone()),
                what: text::clean_line(&r.workload),
                kind: "workload",
                after_ms: r.after_ms,
                within_ms: r.within_ms,
                met: r.within_ms.map(|within| r.after_ms <= within),
            });
        }
    }
    for (s, h) in view.all_hypotheses() {
        for c in &h.checks {
            if let Some(ms) = c.verdict.as_ref().and_then(|v| v.recovery_ms) {
                out.push(RecoveryJson {
                    step: s.map(|s| s.id.clone()),
                    what: text::clean_line(&h.name),
                    kind: "hypothesis",
                    after_ms: ms,
                    within_ms: None,
                    met: None,
                });
            }
        }
    }
    out
}
