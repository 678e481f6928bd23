//! How a plan reads: `shakedown plan`'s table and its JSON, one row per fault or pause.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::{Action, Objects, Pick, Plan, PlannedStep, TargetSelection};
use crate::duration::format_duration;
use crate::spec::Fault;

/// One row of the timeline: a fault or a pause (groups and included experiments are
/// where their steps' ids come from, not rows of their own).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "as_duration")]
    pub start: Duration,
    /// When the fault is reverted (or the pause ends).
    #[serde(serialize_with = "as_duration")]
    pub fault_end: Duration,
    /// Latest end: the recovery window used to the full.
    #[serde(serialize_with = "as_duration")]
    pub end: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hypotheses: Vec<String>,
    /// Resolved targets; only present when planned against an inventory. In JSON,
    /// `targets: [...]` or `targetError: "..."` (never Rust's `Ok`/`Err`).
    #[serde(flatten, serialize_with = "picks_fields")]
    pub targets: Option<Result<Vec<String>, String>>,
    /// For a drain: the pods it would evict from those targets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collateral: Vec<String>,
}

fn picks_fields<S: serde::Serializer>(
    picks: &Option<Result<Vec<String>, String>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(None)?;
    match picks {
        Some(Ok(targets)) => map.serialize_entry("targets", targets)?,
        Some(Err(problem)) => map.serialize_entry("targetError", problem)?,
        None => {}
    }
    map.end()
}

fn as_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

impl Plan {
    /// The timeline's rows, in plan order.
    pub fn entries(&self) -> Vec<PlanEntry> {
        fn walk(steps: &[PlannedStep], out: &mut Vec<PlanEntry>) {
            for step in steps {
                match &step.action {
                    Action::Fault(f) => out.push(PlanEntry {
                        id: step.id.clone(),
                        name: step.name.clone(),
                        start: step.start,
                        fault_end: f.fault_end,
                        end: step.end,
                        fault: Some(describe_fault(&f.fault)),
                        target: Some(describe_target(&f.selection)),
                        hypotheses: f.hypotheses.iter().map(|h| h.name.clone()).collect(),
                        targets: f
                            .picks
                            .as_ref()
                            .map(|p| p.clone().map_err(|e| e.to_string())),
                        collateral: f.collateral.clone(),
                    }),
                    Action::Pause(_) => out.push(PlanEntry {
                        id: step.id.clone(),
                        name: step.name.clone(),
                        start: step.start,
                        fault_end: step.end,
                        end: step.end,
                        fault: None,
                        target: None,
                        hypotheses: Vec::new(),
                        targets: None,
                        collateral: Vec::new(),
                    }),
                    Action::Parallel(children) | Action::Sequence(children) => walk(children, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, &mut out);
        out
    }
}

impl Serialize for Plan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Json<'a> {
            name: &'a str,
            /// `Scenario` or `Experiment`; `kind` is the output document's own
            /// (`Plan`, see `crate::output`).
            spec_kind: &'a str,
            source: &'a str,
            seed: u64,
            #[serde(serialize_with = "as_duration")]
            longest: Duration,
            entries: Vec<PlanEntry>,
        }
        Json {
            name: &self.name,
            spec_kind: self.kind,
            source: &self.source,
            seed: self.seed,
            longest: self.longest,
            entries: self.entries(),
        }
        .serialize(s)
    }
}

pub fn describe_fault(fault: &Fault) -> String {
    match fault {
        Fault::PodDelete(f) => match (f.interval, f.duration) {
            (Some(i), Some(d)) => format!(
                "pod-delete every {} for {}",
                format_duration(i.0),
                format_duration(d.0)
            ),
            _ => "pod-delete once".to_owned(),
        },
        Fault::NetworkLatency(f) => format!(
            "network-latency {} ±{} on {} for {}",
            format_duration(f.delay.0),
            format_duration(f.jitter.0),
            f.interface,
            format_duration(f.duration.0)
        ),
        Fault::NodeDrain(f) => format!("node-drain for {}", format_duration(f.duration.0)),
    }
}

pub fn describe_target(selection: &TargetSelection) -> String {
    let (what, selector) = match &selection.objects {
        Objects::Pods {
            namespaces,
            defaulted,
            selector,
            ..
        } => {
            let ns = if *defaulted {
                "the default namespace".to_owned()
            } else {
                namespaces.join(",")
            };
            (format!("pods in {ns}"), selector.as_deref())
        }
        Objects::Nodes { names, .. } if !names.is_empty() => {
            (format!("nodes {}", names.join(",")), None)
        }
        Objects::Nodes { selector, .. } => ("nodes".to_owned(), selector.as_deref()),
    };
    let how = match selection.pick {
        Pick::One => "one".to_owned(),
        Pick::Count(n) => format!("{n} of them"),
        Pick::Percent(p) => format!("{p}% of them"),
        Pick::All => "all".to_owned(),
    };
    match selector {
        Some(s) => format!("{what} matching {s}, {how}"),
        None => format!("{what}, {how}"),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Plan for {} `{}` ({})",
            self.kind, self.name, self.source
        )?;
        writeln!(f, "seed: {} (replay with --seed {})", self.seed, self.seed)?;
        writeln!(
            f,
            "{:<8} {:>8} {:>8} {:>8}  step",
            "id", "start", "revert", "latest"
        )?;
        for e in &self.entries() {
            writeln!(
                f,
                "{:<8} {:>8} {:>8} {:>8}  {}",
                e.id,
                format_duration(e.start),
                format_duration(e.fault_end),
                format_duration(e.end),
                e.name
            )?;
            if let Some(fault) = &e.fault {
                writeln!(f, "{:36}fault:  {fault}", "")?;
            }
            if let Some(target) = &e.target {
                writeln!(f, "{:36}target: {target}", "")?;
            }
            match &e.targets {
                Some(Ok(picked)) => writeln!(f, "{:36}picks:  {}", "", picked.join(", "))?,
                Some(Err(problem)) => writeln!(f, "{:36}picks:  ERROR {problem}", "")?,
                None => {}
            }
            if !e.collateral.is_empty() {
                writeln!(f, "{:36}evicts: {}", "", e.collateral.join(", "))?;
            }
            if !e.hypotheses.is_empty() {
                writeln!(f, "{:36}checks: {}", "", e.hypotheses.join("; "))?;
            }
        }
        writeln!(
            f,
            "longest: {} (every recovery window used in full)",
            format_duration(self.longest)
        )
    }
}
