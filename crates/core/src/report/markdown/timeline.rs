//! The mermaid `gantt` timeline: a bar per step, its fault window, each hypothesis phase
//! while it was probed, and workload recoveries, with names cleaned of what mermaid would
//! parse.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::MAX_GANTT_TASKS;
use crate::events::{StepStatus, Verdict};
use crate::report::model::{CheckView, RunView, StepState, phase_word};
use crate::report::text;

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

/// `crit` (red) marks a failing bar and nothing else: a check that deviated, erred or had
/// no data. A check that held, or was never concluded (aborted, skipped), is `done`.
fn check_tag(check: &CheckView) -> &'static str {
    match check.verdict.as_ref().map(|v| v.verdict) {
        Some(Verdict::Deviated | Verdict::Error | Verdict::Inconclusive) => "crit",
        _ => "done",
    }
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
            let failed = matches!(
                step.state,
                StepState::Finished(StepStatus::Failed | StepStatus::Aborted)
            );
            let tag = if failed { "crit" } else { "done" };
            add(format!("step {}", step.status_word()), tag, a, b);
        }
        if let (Some((a, b)), Some(kind)) = (step.fault_window(run_end), step.fault_kind()) {
            add(format!("fault {kind}"), "active", a, b);
        }
        for h in &step.hypotheses {
            for c in &h.checks {
                if let (Some(a), Some(b)) = (c.first_at(), c.last_at()) {
                    add(
                        format!("{} {}", phase_word(c.phase), h.name),
                        check_tag(c),
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
                    tag: check_tag(c),
                    start: a,
                    end: b,
                });
            }
        }
    }
    tasks
}

pub(super) fn timeline(view: &RunView) -> String {
    let tasks = gantt_tasks(view);
    let mut s = String::from("## Timeline\n\n");
    if tasks.is_empty() {
        s.push_str("Nothing happened that can be drawn.\n\n");
        return s;
    }
    s.push_str("```mermaid\ngantt\n");
    let _ = writeln!(
        s,
        // Mermaid takes bare times; the title says which zone they are in, UTC as every
        // other time in the reports and the live log.
        "    title {} run {} (times in UTC)",
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
    s.push_str("Bars: each step, its fault window (highlighted), each hypothesis phase while it was probed, and workload recoveries. Red (`crit`) marks what failed: a check that deviated, erred or had no data, or a step that failed or was aborted.\n\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gantt_names_lose_what_mermaid_would_parse() {
        assert_eq!(gantt_text("a: b # c; d, e"), "a b c d e");
        assert_eq!(gantt_text("99%%% up"), "99% up");
    }
}
