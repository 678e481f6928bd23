//! `summary.json`: the verdicts, the resilience score, recovery times and the exit code,
//! for machines. The journal stays the full record; this is its digest.

use serde::Serialize;

use super::model::{
    self, CheckOutcome, FaultActionKind, HypothesisView, RunView, StepState, StepView, phase_word,
    stats, verdict_key,
};
use super::text;
use crate::events::Record;
use crate::exit::Outcome;

/// Bumped when a field changes meaning or disappears (adding one does not).
pub const SCHEMA: &str = "shakedown.dev/summary/v1";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    schema: &'static str,
    run_id: &'a str,
    experiment: &'a str,
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
    resilience_score: ScoreJson,
    steps: Vec<StepJson>,
    experiment_hypotheses: Vec<HypothesisJson>,
    recovery_times: Vec<RecoveryJson>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ScoreJson {
    /// Between 0 and 1; `null` when nothing was checked.
    score: Option<f64>,
    held_weight: f64,
    total_weight: f64,
    held_checks: usize,
    total_checks: usize,
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HypothesisJson {
    name: String,
    expectation: String,
    weight: f64,
    min: Option<f64>,
    p50: Option<f64>,
    max: Option<f64>,
    recovery_ms: Option<u64>,
    checks: Vec<CheckJson>,
}

#[derive(Debug, Serialize)]
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
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryJson {
    step: Option<String>,
    /// A workload (`Recovered`) or a hypothesis (`after` phase).
    what: String,
    kind: &'static str,
    after_ms: u64,
}

pub fn render(records: &[Record], truncated: bool) -> String {
    let view = model::analyze(records, truncated);
    let summary = summary(&view);
    let mut out = serde_json::to_string_pretty(&summary).unwrap_or_else(|_| "{}".into());
    out.push('\n');
    out
}

fn summary(view: &RunView) -> Summary<'_> {
    let started = view.started.as_ref();
    let score = view.score();
    Summary {
        schema: SCHEMA,
        run_id: view.run_id(),
        experiment: view.experiment(),
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
        steps: view.steps.iter().map(step).collect(),
        experiment_hypotheses: view.experiment_hypotheses.iter().map(hypothesis).collect(),
        recovery_times: recoveries(view),
    }
}

fn step(s: &StepView) -> StepJson {
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
        hypotheses: s.hypotheses.iter().map(hypothesis).collect(),
    }
}

fn hypothesis(h: &HypothesisView) -> HypothesisJson {
    let st = stats(&h.values());
    HypothesisJson {
        name: text::clean_line(&h.name),
        expectation: text::clean_line(&h.expectation),
        weight: h.weight,
        min: st.map(|s| s.min),
        p50: st.map(|s| s.p50),
        max: st.map(|s| s.max),
        recovery_ms: h.recovery_ms(),
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
            })
            .collect(),
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
                });
            }
        }
    }
    out
}
