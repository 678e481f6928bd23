//! `report.md`: the write-up of a game day or a DR drill, and what CI pastes into
//! `$GITHUB_STEP_SUMMARY`.
//!
//! Verdict first, then a verdict table per step, a mermaid `gantt` timeline, per
//! hypothesis min/p50/max, recovery time and an SVG chart (written beside the report, in
//! `charts/`), targets and seed, the resilience score, the event log, and notes. The
//! report stays under [`LIMIT`] bytes: a section that would not fit is cut and marked.
//! Order follows the plan and the journal, so the same journal gives the same bytes.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use jiff::Timestamp;

use super::model::{
    self, CheckOutcome, CheckView, FaultActionKind, RunView, StepState, StepView, phase_word, stats,
};
use super::text::{self, md, md_block, md_code, md_code_text};
use super::{CHART_DIR, MARKDOWN_FILE, RenderedFile, svg};
use crate::events::{NoteLevel, Verdict};
use crate::exit::Outcome;

/// GitHub's `$GITHUB_STEP_SUMMARY` takes at most 1 MiB.
pub const LIMIT: usize = 1024 * 1024;
/// Kept free for the notes section and the truncation markers.
const RESERVE: usize = 64 * 1024;
const MAX_GANTT_TASKS: usize = 150;
const MAX_EVENT_ROWS: usize = 400;
const MAX_TARGETS: usize = 50;
const MAX_CHARTS: usize = 100;
const MAX_NOTES: usize = 100;
const MAX_CELL: usize = 300;

const TRUNCATED: &str = "\n> ✂️ **Truncated:** this section was cut to keep the report under 1 MiB. The journal has everything.\n";

/// The report and its charts (paths relative to the output directory).
pub fn render(records: &[crate::events::Record], truncated: bool) -> Vec<RenderedFile> {
    let view = model::analyze(records, truncated);
    let charts = charts(&view);
    let mut out = String::new();
    let sections = [
        header(&view),
        verdicts(&view),
        timeline(&view),
        hypotheses(&view, &charts),
        targets(&view),
        score(&view),
        event_log(&view),
    ];
    for section in &sections {
        push_section(&mut out, section, LIMIT - RESERVE);
    }
    push_section(&mut out, &notes(&view), LIMIT - 512);
    let mut files = vec![RenderedFile {
        path: MARKDOWN_FILE.into(),
        contents: out,
    }];
    files.extend(charts.into_iter().filter_map(|c| {
        Some(RenderedFile {
            path: c.path.into(),
            contents: c.svg?,
        })
    }));
    files
}

/// Appends `section` if it fits under `limit`; otherwise as much of it as fits (whole
/// lines, with any open code fence closed) and a truncation mark.
fn push_section(out: &mut String, section: &str, limit: usize) {
    if out.len() + section.len() <= limit {
        out.push_str(section);
        return;
    }
    let room = limit.saturating_sub(out.len() + TRUNCATED.len() + 16);
    let mut cut = 0;
    let mut fence_open = false;
    let mut open_at_cut = false;
    for line in section.split_inclusive('\n') {
        if cut + line.len() > room {
            break;
        }
        if line.trim_start().starts_with("```") {
            fence_open = !fence_open;
        }
        cut += line.len();
        open_at_cut = fence_open;
    }
    out.push_str(&section[..cut]);
    if open_at_cut {
        out.push_str("```\n");
    }
    out.push_str(TRUNCATED);
}

struct Chart {
    step: Option<String>,
    hypothesis: String,
    path: String,
    svg: Option<String>,
}

fn charts(view: &RunView) -> Vec<Chart> {
    let mut used = BTreeSet::new();
    let mut charts = Vec::new();
    for (step, h) in view.all_hypotheses() {
        let base = match step {
            Some(s) => format!("step-{}-{}", text::slug(&s.id), text::slug(&h.name)),
            None => format!("experiment-{}", text::slug(&h.name)),
        };
        let mut name = base.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        let svg = if charts.len() < MAX_CHARTS {
            svg::chart(view, step, h)
        } else {
            None
        };
        charts.push(Chart {
            step: step.map(|s| s.id.clone()),
            hypothesis: h.name.clone(),
            path: format!("{CHART_DIR}/{name}.svg"),
            svg,
        });
    }
    charts
}

fn cell(s: &str) -> String {
    let cleaned = text::clean_line(s);
    if cleaned.chars().count() > MAX_CELL {
        let cut: String = cleaned.chars().take(MAX_CELL).collect();
        format!("{} … (truncated)", md(&cut))
    } else {
        md(&cleaned)
    }
}

fn verdict_badge(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Passed) => "✅",
        Some(Outcome::Deviated) => "❌",
        Some(Outcome::Interrupted(_)) => "⏹️",
        _ => "🛑",
    }
}

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

fn header(view: &RunView) -> String {
    let mut s = String::new();
    let label = view.verdict_label();
    let score = view.score();
    let _ = writeln!(s, "# shakedown report: {}\n", md(view.experiment()));
    let _ = writeln!(
        s,
        "{} **{label}** (exit {}): {}. Resilience score **{}** ({} of {} checks held).\n",
        verdict_badge(view.outcome()),
        view.exit_code(),
        md(&view.verdict_sentence()),
        score.percent(),
        score.held_checks,
        score.total_checks
    );
    if view.partial {
        let _ = writeln!(
            s,
            "> ⚠️ **Partial report.** The journal ends before the run finished (it was cut short by a crash, or the run is still going). Checks after that point are marked *not run*.\n"
        );
    }
    let _ = writeln!(s, "| run | |\n|---|---|");
    let _ = writeln!(s, "| run id | {} |", md_code(view.run_id()));
    if let Some(r) = &view.started {
        let _ = writeln!(
            s,
            "| experiment | {} ({}) |",
            md(&r.experiment),
            md_code(&r.source)
        );
        let _ = writeln!(s, "| seed | {} |", md_code(&r.seed.to_string()));
        let _ = writeln!(
            s,
            "| context | {} |",
            md(r.context.as_deref().unwrap_or("unknown"))
        );
        let _ = writeln!(
            s,
            "| API server | {} |",
            md(r.api_server.as_deref().unwrap_or("unknown"))
        );
        let _ = writeln!(
            s,
            "| Prometheus | {} |",
            md(r.prometheus_url.as_deref().unwrap_or("none"))
        );
        let _ = writeln!(s, "| dry run | {} |", md(&r.dry_run));
        let _ = writeln!(s, "| shakedown | {} |", md(&r.version));
    }
    if let Some(at) = view.started_at {
        let _ = writeln!(s, "| started | {} |", text::time(at));
    }
    if let Some(ms) = view.duration_ms() {
        let _ = writeln!(s, "| duration | {} |", text::duration(ms));
    }
    s.push('\n');
    s
}

fn step_title(step: &StepView) -> String {
    let mut title = format!("Step {}: {}", md(&step.id), md(&step.name));
    if let Some(f) = step.fault_kind() {
        let _ = write!(title, " · {}", md(f));
    }
    let _ = write!(title, " · {}", md(&step.status_word()));
    title
}

fn verdicts(view: &RunView) -> String {
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
        if let Some(kind) = step.fault_kind() {
            let (inject, revert) = fault_cells(step);
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
        s.push('\n');
    }
    s
}

fn observed(view: &RunView, step: Option<&StepView>, c: &CheckView) -> String {
    match &c.verdict {
        Some(v) => cell(&v.message),
        None => cell(&view.not_run_reason(step)),
    }
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
    } else if step.fault_kind() == Some("pod-delete") {
        "✅ done | nothing to undo (owners recreate pods)".into()
    } else {
        format!("✅ done | {reverted} target(s) reverted")
    };
    (inject, revert)
}

/// Task names in a gantt cannot hold `:` (it starts the task data), `#`, `;` or commas.
fn gantt_text(s: &str) -> String {
    let cleaned: String = text::clean_line(s)
        .chars()
        .map(|c| match c {
            ':' | '#' | ';' | ',' | '`' | '<' | '>' | '"' | '{' | '}' => ' ',
            _ => c,
        })
        .collect();
    let mut squeezed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    // `%%` starts a mermaid comment.
    while squeezed.contains("%%") {
        squeezed = squeezed.replace("%%", "%");
    }
    let short: String = squeezed.chars().take(60).collect();
    if short.is_empty() {
        "item".into()
    } else {
        short
    }
}

fn gantt_time(at: Timestamp) -> String {
    let whole = Timestamp::from_second(at.as_second()).unwrap_or(at);
    whole.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

struct Task {
    section: String,
    name: String,
    tag: &'static str,
    start: Timestamp,
    end: Timestamp,
}

fn gantt_tasks(view: &RunView) -> Vec<Task> {
    let mut tasks = Vec::new();
    let run_end = view.ended_at;
    for step in &view.steps {
        let section = format!("Step {} {}", step.id, step.name);
        let mut add = |name: String, tag, start: Timestamp, end: Timestamp| {
            tasks.push(Task {
                section: section.clone(),
                name,
                tag,
                start,
                end,
            });
        };
        let ran = matches!(step.state, StepState::Running | StepState::Finished(_));
        if let (true, Some(a), Some(b)) = (ran, step.started_at, step.ended_at.or(run_end)) {
            add(format!("step {}", step.status_word()), "done", a, b);
        }
        if let (Some((a, b)), Some(kind)) = (step.fault_window(run_end), step.fault_kind()) {
            add(format!("fault {kind}"), "crit", a, b);
        }
        for h in &step.hypotheses {
            for c in &h.checks {
                if let (Some(a), Some(b)) = (c.first_at(), c.last_at()) {
                    add(
                        format!("{} {}", phase_word(c.phase), h.name),
                        "active",
                        a,
                        b,
                    );
                }
            }
        }
        for r in &step.recoveries {
            let start = Timestamp::from_millisecond(
                r.at.as_millisecond() - i64::try_from(r.after_ms).unwrap_or(0),
            )
            .unwrap_or(r.at);
            add(format!("recovery {}", r.workload), "milestone", start, r.at);
        }
    }
    for h in &view.experiment_hypotheses {
        for c in &h.checks {
            if let (Some(a), Some(b)) = (c.first_at(), c.last_at()) {
                tasks.push(Task {
                    section: "Experiment-wide".into(),
                    name: format!("{} {}", phase_word(c.phase), h.name),
                    tag: "active",
                    start: a,
                    end: b,
                });
            }
        }
    }
    tasks
}

fn timeline(view: &RunView) -> String {
    let tasks = gantt_tasks(view);
    let mut s = String::from("## Timeline\n\n");
    if tasks.is_empty() {
        s.push_str("Nothing happened that can be drawn.\n\n");
        return s;
    }
    s.push_str("```mermaid\ngantt\n");
    let _ = writeln!(
        s,
        "    title {} run {}",
        gantt_text(view.experiment()),
        gantt_text(view.run_id())
    );
    s.push_str("    dateFormat YYYY-MM-DD HH:mm:ss\n    axisFormat %H:%M:%S\n");
    let (shown, more) = text::cap(&tasks, MAX_GANTT_TASKS);
    let mut section = String::new();
    for (i, t) in shown.iter().enumerate() {
        if t.section != section {
            section.clone_from(&t.section);
            let _ = writeln!(s, "    section {}", gantt_text(&section));
        }
        // A zero-length bar does not show; a recovery is drawn as its whole span.
        let end = if t.end.as_second() <= t.start.as_second() {
            Timestamp::from_second(t.start.as_second() + 1).unwrap_or(t.end)
        } else {
            t.end
        };
        let tag = if t.tag == "milestone" { "done" } else { t.tag };
        let _ = writeln!(
            s,
            "    {} :{tag}, t{}, {}, {}",
            gantt_text(&t.name),
            i + 1,
            gantt_time(t.start),
            gantt_time(end)
        );
    }
    s.push_str("```\n\n");
    if more > 0 {
        let _ = writeln!(
            s,
            "> ✂️ **Truncated:** {more} more timeline bars are not drawn. The event log and the journal have them.\n"
        );
    }
    s.push_str("Bars: each step, its fault window (red), each hypothesis phase while it was probed, and workload recoveries.\n\n");
    s
}

fn hypotheses(view: &RunView, charts: &[Chart]) -> String {
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
            s.push_str(&md_block("promql", &h.probe));
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

fn targets(view: &RunView) -> String {
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

fn score(view: &RunView) -> String {
    let sc = view.score();
    format!(
        "## Resilience score\n\n**{}**: {} of {} weighted checks held (weight {} of {}).\n\nThe resilience score is the weighted share of hypothesis checks that held. A check is one hypothesis in one phase (before, during, after) of one step; each counts with its hypothesis's weight. A check that deviated, had no data, errored, was aborted or skipped, or never ran counts as not held.\n\n",
        sc.percent(),
        sc.held_checks,
        sc.total_checks,
        text::number(sc.held_weight),
        text::number(sc.total_weight)
    )
}

fn event_log(view: &RunView) -> String {
    let mut s = String::from("## Event log\n\n| time | since start | event |\n|---|---|---|\n");
    let (shown, more) = text::cap(&view.timeline, MAX_EVENT_ROWS);
    for e in shown {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            text::time(e.at),
            text::offset(view.started_at, e.at),
            cell(&e.text)
        );
    }
    if more > 0 {
        let _ = writeln!(
            s,
            "| | | … {more} more events (truncated; see the journal) |"
        );
    }
    s.push('\n');
    s
}

fn notes(view: &RunView) -> String {
    let mut s = String::from("## Notes\n\n");
    s.push_str("For the facilitator (fill in after the debrief):\n\n- **What we expected:** \n- **What happened:** \n- **What surprised us:** \n- **Follow-ups (owner, due date):** \n\n");
    if !view.notes.is_empty() {
        s.push_str("From the run:\n\n");
        let (shown, more) = text::cap(&view.notes, MAX_NOTES);
        for n in shown {
            let level = match n.level {
                NoteLevel::Info => "ℹ️",
                NoteLevel::Warning => "⚠️",
            };
            let _ = writeln!(
                s,
                "- {} {level} {}",
                text::offset(view.started_at, n.at),
                cell(&n.message)
            );
        }
        if more > 0 {
            let _ = writeln!(s, "- … {more} more notes (truncated; see the journal)");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::words::verdict_word;

    #[test]
    fn a_section_that_does_not_fit_is_cut_on_a_line_and_its_fence_closed() {
        let mut out = "x".repeat(50);
        let section = format!("```\nline one\n{}\n```\n", "y".repeat(500));
        push_section(&mut out, &section, 50 + TRUNCATED.len() + 16 + 13);
        assert!(out.ends_with(TRUNCATED), "{out}");
        assert!(out.contains("```\nline one\n```\n"), "{out}");
        assert!(!out.contains("yyy"), "{out}");
    }

    #[test]
    fn gantt_names_lose_what_mermaid_would_parse() {
        assert_eq!(gantt_text("a: b # c; d, e"), "a b c d e");
        assert_eq!(gantt_text("99%%% up"), "99% up");
    }

    #[test]
    fn verdict_words_cover_every_verdict() {
        for v in [
            Verdict::Passed,
            Verdict::Deviated,
            Verdict::Inconclusive,
            Verdict::Error,
            Verdict::Aborted,
            Verdict::Skipped,
        ] {
            assert!(!verdict_word(v).is_empty());
        }
    }
}
