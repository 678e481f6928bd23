//! The Pushgateway subscriber: the run's fault windows and results as Prometheus
//! metrics, so dashboards and alert rules that already exist can show game days.
//!
//! Pushed with `PUT` to the group `job=shakedown, experiment=<name>`
//! (`/metrics/job/shakedown/experiment/<name>`), in the text exposition format. A `PUT`
//! replaces the whole group, so every push carries every metric the run has so far, and
//! the next run of the experiment replaces the previous one's at its first push.
//!
//! - `shakedown_fault_active{step,fault,target_kind}`: 0 for each planned fault when
//!   the run starts, 1 from its first injection, 0 again once every injected target is
//!   reverted (it stays 1 while a revert failed: the cluster may still be faulted).
//! - at the end: `shakedown_run_verdict{verdict}` (the exit code; the label is the
//!   verdict's word), `shakedown_run_score` (0–1), `shakedown_run_duration_seconds`,
//!   `shakedown_recovery_seconds{owner}`, `shakedown_hypothesis_recovery_seconds
//!   {hypothesis}` and `shakedown_run_timestamp_seconds` (the run's start).
//!
//! The `experiment` label comes from the grouping key (scrape the Pushgateway with
//! `honor_labels: true` to keep it and `job`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{Method, Request, Subscriber, scrubbed};
use crate::events::{Record, RunEvent, RunStarted};
use crate::report::{self, history};

/// The exposition format's media type.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4";

/// One fault window: which fault, on what kind of target, and what is injected now.
#[derive(Debug, Clone, Default)]
struct Window {
    fault: String,
    target_kind: &'static str,
    active: bool,
    injected: BTreeSet<String>,
}

/// The pushes of one run.
pub struct Pushgateway {
    /// As people read it (`Pushgateway at http://…`).
    name: String,
    experiment: String,
    started: Option<Record>,
    /// Per step id.
    windows: BTreeMap<String, Window>,
    records: Vec<Record>,
    /// The final metrics, once the run finished.
    results: Option<String>,
}

impl Pushgateway {
    pub fn new(name: String, experiment: String) -> Self {
        Self {
            name,
            experiment,
            started: None,
            windows: BTreeMap::new(),
            records: Vec::new(),
            results: None,
        }
    }

    /// The group's path below the Pushgateway's URL.
    pub fn group_path(experiment: &str) -> String {
        format!(
            "metrics/job/shakedown/experiment/{}",
            path_segment(experiment)
        )
    }

    fn push(&self, about: &str) -> Request {
        let mut body = String::from(
            "# HELP shakedown_fault_active 1 while a fault is active, 0 after its revert.\n# TYPE shakedown_fault_active gauge\n",
        );
        for (step, w) in &self.windows {
            let _ = writeln!(
                body,
                "shakedown_fault_active{{step=\"{}\",fault=\"{}\",target_kind=\"{}\"}} {}",
                escape(step),
                escape(&w.fault),
                w.target_kind,
                u8::from(w.active)
            );
        }
        if let Some(results) = &self.results {
            body.push_str(results);
        }
        Request {
            method: Method::Put,
            path: Self::group_path(&self.experiment),
            content_type: TEXT_FORMAT,
            headers: Vec::new(),
            body: scrubbed(body),
            about: about.to_owned(),
        }
    }

    fn planned(&mut self, started: &RunStarted) {
        for step in &started.steps {
            if let Some(fault) = &step.fault {
                self.windows.insert(
                    step.id.clone(),
                    Window {
                        fault: fault.clone(),
                        target_kind: target_kind(fault),
                        ..Window::default()
                    },
                );
            }
        }
    }

    /// The end-of-run metrics, from the run's summary (as `summary.json` says it).
    fn results(&self) -> String {
        let mut out = String::new();
        let Ok(summary) = history::parse("", &report::json::render(&self.records, false)) else {
            return out;
        };
        let mut gauge = |name: &str, help: &str, lines: Vec<(String, f64)>| {
            if lines.is_empty() {
                return;
            }
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        gauge(
            "shakedown_run_verdict",
            "The run's exit code; the label is its verdict.",
            vec![(
                format!("{{verdict=\"{}\"}}", escape(&summary.verdict)),
                f64::from(summary.exit_code),
            )],
        );
        gauge(
            "shakedown_run_score",
            "The run's resilience score, 0 to 1.",
            summary
                .score
                .map(|s| (String::new(), s))
                .into_iter()
                .collect(),
        );
        gauge(
            "shakedown_run_duration_seconds",
            "How long the run took.",
            summary
                .duration_ms
                .map(|ms| (String::new(), ms as f64 / 1000.0))
                .into_iter()
                .collect(),
        );
        gauge(
            "shakedown_recovery_seconds",
            "Per owner, the time from its last disruption until it was whole again.",
            summary
                .owners
                .iter()
                .map(|(owner, r)| {
                    (
                        format!("{{owner=\"{}\"}}", escape(owner)),
                        r.after_ms as f64 / 1000.0,
                    )
                })
                .collect(),
        );
        gauge(
            "shakedown_hypothesis_recovery_seconds",
            "Per hypothesis, the time from the revert until it held again.",
            summary
                .hypotheses
                .iter()
                .filter_map(|(name, ms)| {
                    ms.map(|ms| {
                        (
                            format!("{{hypothesis=\"{}\"}}", escape(name)),
                            ms as f64 / 1000.0,
                        )
                    })
                })
                .collect(),
        );
        let started = self.started.as_ref().map(|r| r.at.as_millisecond());
        gauge(
            "shakedown_run_timestamp_seconds",
            "When the run started, in seconds since the epoch.",
            started
                .map(|ms| (String::new(), ms as f64 / 1000.0))
                .into_iter()
                .collect(),
        );
        out
    }
}

impl Subscriber for Pushgateway {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn requests(&mut self, record: &Record) -> Vec<Request> {
        self.records.push(record.clone());
        match &record.event {
            RunEvent::RunStarted(s) => {
                self.started = Some(record.clone());
                self.planned(s);
                vec![self.push("the run's start")]
            }
            RunEvent::FaultIntent(intent) => {
                let window = self.windows.entry(intent.step.clone()).or_default();
                window.fault.clone_from(&intent.fault);
                window.target_kind = target_kind(&intent.fault);
                Vec::new()
            }
            RunEvent::FaultInjected {
                step,
                target,
                dry_run: false,
                ..
            } => {
                let window = self.windows.entry(step.clone()).or_default();
                window.injected.insert(target.clone());
                if window.active {
                    return Vec::new();
                }
                window.active = true;
                vec![self.push("fault window start")]
            }
            RunEvent::FaultReverted {
                step,
                target,
                dry_run: false,
                ..
            } => {
                let Some(window) = self.windows.get_mut(step) else {
                    return Vec::new();
                };
                window.injected.remove(target);
                if !window.active || !window.injected.is_empty() {
                    return Vec::new();
                }
                window.active = false;
                vec![self.push("fault window end")]
            }
            RunEvent::RunFinished(_) => {
                self.results = Some(self.results());
                vec![self.push("the run's results")]
            }
            _ => Vec::new(),
        }
    }
}

/// `nodes` for a fault that acts on nodes, `pods` otherwise.
fn target_kind(fault: &str) -> &'static str {
    if fault.starts_with("node") {
        "nodes"
    } else {
        "pods"
    }
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A grouping-key value as a URL path segment: experiment names are DNS labels, but
/// anything else is percent-encoded rather than trusted.
fn path_segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
