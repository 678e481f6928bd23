//! `report.md`: the write-up of a game day or a DR drill, and what CI pastes into
//! `$GITHUB_STEP_SUMMARY`.
//!
//! Verdict first, then a verdict table per step, a mermaid `gantt` timeline, per
//! hypothesis min/p50/max, recovery time and an SVG chart (written beside the report, in
//! `charts/`), each owner's recovery against its objective (`recovery.rs`), targets and seed, the resilience score, the event log, and notes. The
//! report stays under [`LIMIT`] bytes: a section that would not fit is cut and marked.
//! Order follows the plan and the journal, so the same journal gives the same bytes.
//!
//! This file assembles the report and keeps it under the limit, and writes the header,
//! score, event log and notes; the verdict, hypothesis and target tables are in
//! `tables.rs`, the mermaid timeline in `timeline.rs`.

mod recovery;
mod tables;
mod timeline;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use self::recovery::recoveries;
use self::tables::{hypotheses, targets, verdicts};
use self::timeline::timeline;
use super::model::{self, RunView};
use super::text::{self, md, md_code};
use super::{CHART_DIR, MARKDOWN_FILE, RenderedFile, svg};
use crate::events::NoteLevel;
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
    let (trend_section, trend_files) = trends(&view);
    let mut out = String::new();
    let sections = [
        header(&view),
        verdicts(&view),
        timeline(&view),
        hypotheses(&view, &charts),
        recoveries(&view),
        trend_section,
        compared(&view),
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
    files.extend(trend_files);
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
        Some(Outcome::Interrupted(_) | Outcome::Halted) => "⏹️",
        Some(Outcome::DryRun) => "🧪",
        _ => "🛑",
    }
}

fn header(view: &RunView) -> String {
    let mut s = String::new();
    let label = view.verdict_label();
    let score = view.score();
    if view.is_dry_run() {
        // The first line says it: a dry run proves the calls are allowed, not resilience.
        let _ = writeln!(
            s,
            "# shakedown report: {} (DRY RUN: nothing was faulted)\n",
            md(view.experiment())
        );
        let _ = writeln!(
            s,
            "{} **{label}** (exit {}): {}. Resilience score **n/a**: a dry run judges no hypothesis.\n",
            verdict_badge(view.outcome()),
            view.exit_code(),
            md(&view.verdict_sentence()),
        );
    } else {
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
    }
    if view.partial && view.finished.is_some() {
        let _ = writeln!(
            s,
            "> ⚠️ **Partial report.** Some of the journal's records could not be read (damaged lines were skipped, or records are missing); what they said is not in this report.\n"
        );
    } else if view.partial {
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

/// `## Recovery trend`: per owner this run disrupted and at least two earlier runs
/// measured, its recovery time over those runs and this one, against its objective.
fn trends(view: &RunView) -> (String, Vec<RenderedFile>) {
    let mut section = String::new();
    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    let this_run = format!("{} (this run)", view.run_id());
    for step in &view.steps {
        for r in &step.recoveries {
            if !seen.insert(r.workload.clone()) {
                continue;
            }
            let mut points: Vec<(String, u64)> = view
                .earlier_runs
                .iter()
                .filter_map(|e| {
                    let label = e.started_at.clone().unwrap_or_else(|| e.run_id.clone());
                    e.owners.get(&r.workload).map(|ms| (label, *ms))
                })
                .collect();
            if points.len() < 2 {
                continue;
            }
            points.push((this_run.clone(), r.after_ms));
            let path = format!("{CHART_DIR}/trend-{}.svg", text::slug(&r.workload));
            let times: Vec<String> = points.iter().map(|p| text::duration(p.1)).collect();
            let _ = writeln!(
                section,
                "{}: {} (oldest first; objective {})\n\n![recovery trend of {}]({path})\n",
                md_code(&r.workload),
                times.join(" → "),
                r.within_ms.map_or_else(|| "none".into(), text::duration),
                md(&r.workload)
            );
            files.push(RenderedFile {
                path: path.into(),
                contents: svg::trend(&r.workload, &points, r.within_ms),
            });
        }
    }
    if section.is_empty() {
        return (section, files);
    }
    (format!("## Recovery trend\n\n{section}"), files)
}

/// `## Compared with <run>`: the regression gate's judgement, when the run had a baseline.
fn compared(view: &RunView) -> String {
    let Some(c) = &view.compared else {
        return String::new();
    };
    let mut s = format!(
        "## Compared with {}\n\nBaseline run {}{}, limits `{}`: ",
        md_code(&c.baseline),
        md_code(&c.baseline),
        c.baseline_started_at
            .as_deref()
            .map(|t| format!(" (started {})", md(t)))
            .unwrap_or_default(),
        md(&c.limits).replace('`', "")
    );
    if c.regressions.is_empty() {
        s.push_str("✅ no regression.\n\n");
        return s;
    }
    let _ = write!(
        s,
        "❌ {} regression(s).\n\n| what | baseline | this run | allowed |\n|---|---|---|---|\n",
        c.regressions.len()
    );
    for r in &c.regressions {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            cell(&r.what),
            cell(&r.baseline),
            cell(&r.current),
            cell(&r.allowed)
        );
    }
    s.push('\n');
    s
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
    use crate::events::Verdict;
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
