//! The report's recovery table: per disrupted owner, the time from its own last
//! disruption to whole again, its recovery-time objective, and whether it met it. This
//! is the number a DR drill's auditor reads, so an owner that never recovered is a row
//! too, not a missing line.

use std::fmt::Write as _;

use crate::report::model::{RecoveryGate, RunView};
use crate::report::text::{self, md, md_code};

/// `## Recovery`, or nothing when no step disrupted an owner.
pub(super) fn recoveries(view: &RunView) -> String {
    let mut rows = String::new();
    for step in &view.steps {
        let gates = step.recovery_gates();
        // Journals written before the gate existed: the measured time, no objective.
        let ungated = step.recoveries.iter().filter(|r| r.within_ms.is_none());
        for r in ungated {
            let _ = writeln!(
                rows,
                "| {} | {} | {} | — | — |",
                md(&step.id),
                md_code(&r.workload),
                text::duration(r.after_ms)
            );
        }
        for gate in &gates {
            let _ = writeln!(
                rows,
                "| {} | {} | {} | {} | {} |",
                md(&step.id),
                md_code(&gate.workload),
                measured_cell(gate),
                md(&gate.allowed()),
                gate_cell(gate)
            );
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "## Recovery\n\nEach disrupted owner, from its own last disruption to all its desired replicas ready again, against its recovery-time objective (`recovery.within`, `recovery.owners`).\n\n| step | owner | time to recover | objective | gate |\n|---|---|---|---|---|\n{rows}\n"
    )
}

fn measured_cell(gate: &RecoveryGate) -> String {
    match (gate.measured_ms, gate.waited_ms) {
        (Some(ms), _) => text::duration(ms),
        (None, waited) => format!(
            "not recovered after {}",
            text::duration(waited.unwrap_or(0))
        ),
    }
}

fn gate_cell(gate: &RecoveryGate) -> &'static str {
    match gate.passed {
        Some(true) => "✅ met",
        Some(false) => "❌ missed",
        None => "⏭️ not judged (stopped)",
    }
}
