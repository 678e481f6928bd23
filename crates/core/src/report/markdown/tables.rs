//! The report's tables: per step, each check's verdict and the fault's inject and revert;
//! per hypothesis, min/p50/max and time to recover, with its chart; per step, the targets
//! selected and hit.

use std::fmt::Write as _;

use super::{Chart, MAX_TARGETS, cell};
use crate::events::Verdict;
use crate::report::model::{
    self, CheckOutcome, CheckView, FaultActionKind, RunView, StepState, StepView, phase_word, stats,
};
use crate::report::text::{self, md, md_block, md_code, md_code_text};
use crate::report::words::{self, ProbeText};

fn outcome_cell(check: &CheckView) -> String {
    match (check.outcome(), check.verdict.as_ref().map(|v| v.verdict)) {
        (CheckOutcome::Held, _) => "✅ held".into(),
        (CheckOutcome::Deviated, _) => "❌ deviated".into(),
        (CheckOutcome::Inconclusive, _) => "⚠️ inconclusive".into(),
        (CheckOutcome::Error, _) => "🛑 error".into(),
        (CheckOutcome::NotRun, Some(Verdict::Aborted)) => "⏹️ aborted".into(),
        (CheckOutcome::NotRun, _) => "⏭️ not run".into(),
    }
}

fn step_title(step: &StepView) -> String {
    let mut title = format!("Step {}: {}", md(&step.id), md(&step.name));
    if let Some(f) = step.fault_kind() {
        let _ = write!(title, " · {}", md(f));
    }
    let _ = write!(title, " · {}", md(&step.status_word()));
    title
}

pub(super) fn verdicts(view: &RunView) -> String {
    let mut s = String::from("## Verdicts\n\n");
    for step in &view.steps {
        let _ = writeln!(s, "### {}\n", step_title(step));
        if let StepState::Skipped(reason) = &step.state {
            let _ = writeln!(s, "*Skipped:* {}\n", cell(reason));
        }
        if !step.is_checked() {
            if matches!(step.state, StepState::Skipped(_)) {
                continue;
            }
            if let (Some(a), Some(b)) = (step.started_at, step.ended_at) {
                let _ = writeln!(
                    s,
                    "No checks ({}).\n",
                    text::duration(model::span_ms(a, b).unwrap_or(0))
                );
            } else {
                s.push_str("No checks.\n\n");
            }
            continue;
        }
        s.push_str("| check | phase | verdict | observed |\n|---|---|---|---|\n");
        for h in &step.hypotheses {
            for c in &h.checks {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    cell(&h.name),
                    phase_word(c.phase),
                    outcome_cell(c),
                    observed(view, Some(step), c)
                );
            }
        }
        alert_rows(&mut s, view, Some(&step.id));
        if let Some(kind) = step.fault_kind() {
            let (inject, revert) = if view.is_dry_run() {
                dry_run_fault_cells(step)
            } else {
                fault_cells(step)
            };
            let _ = writeln!(s, "| fault {} | inject | {} |", cell(kind), inject);
            let _ = writeln!(s, "| fault {} | revert | {} |", cell(kind), revert);
        }
        s.push('\n');
    }
    if !view.experiment_hypotheses.is_empty() {
        s.push_str(
            "### Experiment-wide\n\n| check | phase | verdict | observed |\n|---|---|---|---|\n",
        );
        for h in &view.experiment_hypotheses {
            for c in &h.checks {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    cell(&h.name),
                    phase_word(c.phase),
                    outcome_cell(c),
                    observed(view, None, c)
                );
            }
        }
        alert_rows(&mut s, view, None);
        s.push('\n');
    }
    s
}

/// One row per alert of a step (or experiment-wide): its time to detect and to resolve,
/// from its `firing within` and `resolved within` hypotheses.
fn alert_rows(s: &mut String, view: &RunView, step: Option<&str>) {
    for alert in view.alerts() {
        if alert.step.as_deref() != step
            || (alert.detect_ms.is_none() && alert.resolve_ms.is_none())
        {
            continue;
        }
        let shown = |ms: Option<u64>| ms.map_or_else(|| "–".to_owned(), text::duration);
        let _ = writeln!(
            s,
            "| {} | timing | ⏱️ measured | time to detect {} · time to resolve {} |",
            cell(&alert.alert),
            shown(alert.detect_ms),
            shown(alert.resolve_ms)
        );
    }
}

fn observed(view: &RunView, step: Option<&StepView>, c: &CheckView) -> String {
    match &c.verdict {
        Some(v) => cell(&v.message),
        None => cell(&view.not_run_reason(step)),
    }
}

/// A dry run's inject and revert rows: what the API server accepted (or refused) with
/// `dryRun=All`; nothing was injected, so they never read "done".
fn dry_run_fault_cells(step: &StepView) -> (String, String) {
    let refused =
        |n: usize, what: &str| format!("🛑 error | the API server refused {n} dry-run {what}(s)");
    let inject = match (
        step.count(FaultActionKind::Injected),
        step.count(FaultActionKind::InjectFailed),
    ) {
        (_, failed) if failed > 0 => refused(failed, "injection"),
        (0, _) => "⏭️ not run | no injection was tried".to_owned(),
        (n, _) => {
            format!("🧪 dry run | {n} injection(s) accepted with dryRun=All; nothing changed")
        }
    };
    let revert = match (
        step.count(FaultActionKind::Reverted),
        step.count(FaultActionKind::RevertFailed),
    ) {
        (_, failed) if failed > 0 => refused(failed, "revert"),
        (0, _) => "⏭️ not run | nothing to revert".to_owned(),
        (n, _) => format!("🧪 dry run | {n} target(s) would be reverted; nothing changed"),
    };
    (inject, revert)
}

/// The verdict and observed columns for a step's inject and revert rows.
fn fault_cells(step: &StepView) -> (String, String) {
    let injected = step.count(FaultActionKind::Injected);
    let inject_failed = step.count(FaultActionKind::InjectFailed);
    let reverted = step.count(FaultActionKind::Reverted);
    let revert_failed = step.count(FaultActionKind::RevertFailed);
    let inject = if inject_failed > 0 {
        format!("🛑 error | {inject_failed} injection(s) failed, {injected} succeeded")
    } else if injected == 0
        && step.state == StepState::Finished(crate::events::StepStatus::Completed)
    {
        "🛑 error | the step completed but nothing was injected".into()
    } else if injected == 0 {
        "⏭️ not run | nothing was injected".into()
    } else {
        format!(
            "✅ done | {injected} injection(s) into {} target(s)",
            step.hit_targets().len()
        )
    };
    let open = step.unreverted_targets();
    let revert = if revert_failed > 0 {
        format!(
            "🛑 error | {revert_failed} revert(s) failed: the cluster may still be faulted; run `shakedown recover`"
        )
    } else if !open.is_empty() {
        format!(
            "🛑 error | never reverted: {}; run `shakedown recover`",
            cell(&open.join(", "))
        )
    } else if injected == 0 {
        "⏭️ not run | nothing to revert".into()
    } else if step.fault_type() == Some("pod-delete") {
        "✅ done | nothing to undo (owners recreate pods)".into()
    } else {
        format!("✅ done | {reverted} target(s) reverted")
    };
    (inject, revert)
}

pub(super) fn hypotheses(view: &RunView, charts: &[Chart]) -> String {
    let mut s = String::from("## Hypotheses\n\n");
    for (step, h) in view.all_hypotheses() {
        let scope = match step {
            Some(st) => format!("step {}", md(&st.id)),
            None => "experiment-wide".into(),
        };
        let _ = writeln!(s, "### {} · {scope}\n", md(&h.name));
        let _ = writeln!(
            s,
            "Expectation {}, weight {}.\n",
            md_code_text(&h.expectation),
            text::number(h.weight)
        );
        s.push_str("| phase | verdict | samples held | min | p50 | max | time to recover |\n|---|---|---|---|---|---|---|\n");
        for c in &h.checks {
            let values: Vec<f64> = c
                .samples
                .iter()
                .flat_map(|s| &s.values)
                .filter_map(|v| v.value)
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                phase_word(c.phase),
                outcome_cell(c),
                held(c),
                stats_cells(&values),
                recovery_cell(c.verdict.as_ref().and_then(|v| v.recovery_ms))
            );
        }
        let _ = writeln!(
            s,
            "| **all** | | | {} | {} |\n",
            stats_cells(&h.values()),
            recovery_cell(h.recovery_ms())
        );
        if let Some(ms) = h.detect_ms() {
            let _ = writeln!(
                s,
                "Time to detect: {} (from the injection to the first firing sample).\n",
                text::duration(ms)
            );
        }
        if let Some(ms) = h.resolve_ms() {
            let _ = writeln!(
                s,
                "Time to resolve: {} (from the revert to the first of the samples in a row that saw it resolved).\n",
                text::duration(ms)
            );
        }
        let chart = charts
            .iter()
            .find(|c| c.hypothesis == h.name && c.step.as_deref() == step.map(|s| s.id.as_str()));
        match chart {
            Some(c) if c.svg.is_some() => {
                let _ = writeln!(s, "![{} over time]({})\n", md(&h.name), c.path);
            }
            _ => s.push_str("*No numeric samples: no chart.*\n\n"),
        }
        if !h.probe.is_empty() {
            match words::probe_text(&h.probe) {
                ProbeText::Promql(query) => s.push_str(&md_block("promql", &query)),
                ProbeText::Words(probe) => {
                    let _ = writeln!(s, "Probe: {}", md(&probe));
                }
            }
            s.push('\n');
        }
    }
    if view.all_hypotheses().next().is_none() {
        s.push_str("No hypotheses.\n\n");
    }
    s
}

fn held(c: &CheckView) -> String {
    match &c.verdict {
        Some(v) => format!("{}/{}", v.passed, v.samples),
        None if c.samples.is_empty() => "–".into(),
        None => {
            let passed = c
                .samples
                .iter()
                .filter(|s| s.outcome == crate::events::SampleOutcome::Pass)
                .count();
            format!("{passed}/{} so far", c.samples.len())
        }
    }
}

fn stats_cells(values: &[f64]) -> String {
    match stats(values) {
        Some(st) => format!(
            "{} | {} | {}",
            text::number(st.min),
            text::number(st.p50),
            text::number(st.max)
        ),
        None => "– | – | –".into(),
    }
}

fn recovery_cell(ms: Option<u64>) -> String {
    ms.map_or("–".into(), text::duration)
}

pub(super) fn targets(view: &RunView) -> String {
    let mut s = String::from("## Targets and reproduction\n\n");
    if let Some(r) = &view.started {
        let _ = writeln!(
            s,
            "Seed {}. The same seed picks the same targets: {}\n",
            md_code_text(&r.seed.to_string()),
            md_code_text(&format!("shakedown run {} --seed {}", r.source, r.seed))
        );
    }
    let mut any = false;
    for step in view
        .steps
        .iter()
        .filter(|s| !s.targets.is_empty() || !s.faults.is_empty())
    {
        any = true;
        let _ = writeln!(s, "### {}\n", step_title(step));
        let hit = step.hit_targets();
        let failed: Vec<&str> = step
            .faults
            .iter()
            .filter(|f| f.kind == FaultActionKind::InjectFailed)
            .map(|f| f.target.as_str())
            .collect();
        s.push_str("| target | selected | hit |\n|---|---|---|\n");
        let mut all: Vec<&str> = step.targets.iter().map(String::as_str).collect();
        for t in hit.iter().chain(&failed) {
            if !all.contains(t) {
                all.push(t);
            }
        }
        let (shown, more) = text::cap(&all, MAX_TARGETS);
        for t in shown {
            let hit_cell = if hit.contains(t) {
                "✅ yes"
            } else if failed.contains(t) {
                "🛑 failed"
            } else {
                "no"
            };
            let selected = if step.targets.iter().any(|x| x == t) {
                "yes"
            } else {
                "no"
            };
            let _ = writeln!(s, "| {} | {selected} | {hit_cell} |", md_code(t));
        }
        if more > 0 {
            let _ = writeln!(s, "| … {more} more (truncated) | | |");
        }
        s.push('\n');
        for r in &step.recoveries {
            let _ = writeln!(
                s,
                "- {} recovered after {}",
                md_code_text(&r.workload),
                text::duration(r.after_ms)
            );
        }
        if let Some(intent) = &step.intent {
            let _ = writeln!(s, "- To undo by hand: {}", md_code_text(&intent.revert));
        }
        s.push('\n');
    }
    if !any {
        s.push_str("No targets were selected.\n\n");
    }
    s
}
