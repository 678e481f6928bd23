//! The one vocabulary for what happened in a run: a [`RunEvent`] becomes the same human
//! line on a live terminal as in the report's event log and JUnit `system-out`, and a
//! phase, verdict, step status or probe sample is called the same thing everywhere.
//!
//! The live progress is just one more reporter (as in nextest): it calls [`line`] like the
//! report timeline does, so someone watching a game day reads the words the write-up will
//! use. Pure: no clock, no I/O, no `Debug` of an enum (variant names are not words).

use super::text::{self, clean_line};
use crate::events::{
    NoteLevel, RunEvent, RunFinished, SampleOutcome, SeriesValue, StepStatus, Verdict,
};
use crate::spec::{AlertProbe, HttpProbe, KubeProbe, Phase, Probe};

/// One line for an event, on one line, with every terminal control written out
/// ([`text::clean`]: names, errors and details come from users, the cluster and
/// Prometheus). Probe samples get a line too; the report leaves
/// them out of its timeline (they are in the charts) and the live view shows them only
/// when verbose.
pub fn line(event: &RunEvent) -> String {
    let text = match event {
        RunEvent::RunStarted(s) => format!(
            "run {} of {} started (seed {}, dry run {})",
            s.run_id, s.experiment, s.seed, s.dry_run
        ),
        RunEvent::StepStarted { step } => format!("step {step} started"),
        RunEvent::TargetsSelected { step, targets } => format!(
            "step {step}: {} target(s) selected: {}",
            targets.len(),
            targets.join(", ")
        ),
        RunEvent::FaultIntent(i) => format!(
            "step {}: {} intent recorded for {} target(s)",
            i.step,
            i.fault,
            i.targets.len()
        ),
        RunEvent::FaultInjected {
            step,
            target,
            detail,
            dry_run: false,
        } => format!("step {step}: injected into {target}: {detail}"),
        // A dry run says what it would have done, never "injected".
        RunEvent::FaultInjected {
            step,
            target,
            detail,
            dry_run: true,
        } => format!("step {step}: {target}: {detail} ({DRY_RUN_ACCEPTED})"),
        RunEvent::FaultInjectFailed {
            step,
            target,
            error,
        } => format!("step {step}: injection into {target} FAILED: {error}"),
        RunEvent::FaultReverted {
            step,
            target,
            detail,
            dry_run: false,
        } => format!("step {step}: reverted {target}: {detail}"),
        RunEvent::FaultReverted {
            step,
            target,
            detail,
            dry_run: true,
        } => format!("step {step}: revert of {target}: {detail} (dry run: nothing changed)"),
        RunEvent::RevertFailed {
            step,
            target,
            error,
        } => format!("step {step}: revert of {target} FAILED: {error}"),
        RunEvent::Recovered {
            step,
            workload,
            after_ms,
            within_ms,
        } => {
            let gate = within_ms.map_or_else(String::new, |within| {
                let word = if *after_ms <= within {
                    "within"
                } else {
                    "OVER"
                };
                format!(" ({word} its objective of {})", text::duration(within))
            });
            format!(
                "step {step}: {workload} recovered after {}{gate}",
                text::duration(*after_ms)
            )
        }
        RunEvent::NotRecovered {
            step,
            workload,
            waited_ms,
            within_ms,
            stopped,
        } => {
            let why = match (stopped, within_ms) {
                (true, _) => "the run was stopped".to_owned(),
                (false, Some(within)) => {
                    format!("its objective of {} failed", text::duration(*within))
                }
                (false, None) => "its recovery was not seen".to_owned(),
            };
            format!(
                "step {step}: {workload} not recovered {} after its last disruption: {why}",
                text::duration(*waited_ms)
            )
        }
        RunEvent::ProbeSample(s) => {
            let mut line = format!(
                "{}{} ({}): sample {}: {}",
                step_prefix(s.step.as_deref()),
                s.hypothesis,
                phase_word(s.phase),
                sample_word(s.outcome),
                values(&s.values)
            );
            if let Some(detail) = &s.detail {
                line.push_str(&format!(" ({detail})"));
            }
            line
        }
        RunEvent::HypothesisVerdict(v) => format!(
            "{}{} ({}): {}: {}",
            step_prefix(v.step.as_deref()),
            v.hypothesis,
            phase_word(v.phase),
            verdict_word(v.verdict),
            v.message
        ),
        RunEvent::StepFinished { step, status } => {
            format!("step {step} finished: {}", status_word(*status))
        }
        RunEvent::StepSkipped { step, reason } => format!("step {step} skipped: {reason}"),
        RunEvent::Note { level, message } => match level {
            NoteLevel::Info => format!("note: {message}"),
            NoteLevel::Warning => format!("warning: {message}"),
        },
        RunEvent::BaselineCompared(c) => match c.regressions.len() {
            0 => format!(
                "compared with run {}: no regression ({})",
                c.baseline, c.limits
            ),
            n => format!(
                "compared with run {}: {n} regression(s) beyond {}: {}",
                c.baseline,
                c.limits,
                c.regressions
                    .iter()
                    .map(|r| format!("{} {} → {}", r.what, r.baseline, r.current))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        },
        RunEvent::EarlierRuns { runs } => {
            format!(
                "{} earlier run(s) of this experiment read for the trend",
                runs.len()
            )
        }
        RunEvent::RunFinished(f) => run_finished(f),
        RunEvent::SilenceIntent(i) => format!(
            "{}silence intent recorded ({}): {} in Alertmanager at {}, until {} ({})",
            step_prefix(i.step.as_deref()),
            silence_scope(i.step.as_deref()),
            i.matchers.join(", "),
            i.alertmanager,
            text::time(i.ends_at),
            i.comment
        ),
        RunEvent::SilenceCreated { step, id, ends_at } => format!(
            "{}silence {id} created; Alertmanager ends it by itself at {} at the latest",
            step_prefix(step.as_deref()),
            text::time(*ends_at)
        ),
        RunEvent::SilenceExpired { step, id, detail } => {
            format!("{}silence {id}: {detail}", step_prefix(step.as_deref()))
        }
        RunEvent::SilenceNotExpired { step, id, error } => format!(
            "{}silence {id} NOT EXPIRED: {error} (it still ends by itself at its endsAt; `shakedown recover` expires it now)",
            step_prefix(step.as_deref())
        ),
        RunEvent::DeliveryFailed {
            to,
            about,
            error,
            attempts,
        } => match attempts {
            0 => format!("not delivered to {to}: {about}: {error}"),
            1 => format!("not delivered to {to}: {about}: {error} (1 attempt)"),
            n => format!("not delivered to {to}: {about}: {error} ({n} attempts)"),
        },
    };
    clean_line(&text)
}

/// The time of day a live line is stamped with: UTC with its `Z`, to the second
/// (`08:00:02Z`). Every report writes UTC with `Z` too (RFC 3339, [`text::time`]), so a
/// time read on the terminal is found as it is in the write-up, whatever the zone of the
/// machine that ran it or the one reading it.
pub fn clock(at: jiff::Timestamp) -> String {
    let whole = jiff::Timestamp::from_second(at.as_second()).unwrap_or(at);
    format!("{}Z", whole.strftime("%H:%M:%S"))
}

/// What a dry-run call's line adds: the API server ran admission and RBAC on it, and
/// changed nothing.
pub const DRY_RUN_ACCEPTED: &str = "dry run: accepted by the API server, nothing changed";

/// What a silence covers: its step, or the whole run.
fn silence_scope(step: Option<&str>) -> &'static str {
    match step {
        Some(_) => "for this step",
        None => "for the whole run",
    }
}

fn step_prefix(step: Option<&str>) -> String {
    step.map_or(String::new(), |s| format!("step {s}: "))
}

fn run_finished(f: &RunFinished) -> String {
    let mut line = format!(
        "run finished: {}{} (exit {})",
        status_word(f.status),
        if f.deviated { ", deviated" } else { "" },
        f.code()
    );
    if let Some(message) = &f.message {
        line.push_str(&format!(": {message}"));
    }
    line
}

/// What one sample saw: a bare number, or `{label="value"} number` per series; `(empty)`
/// for an empty vector and `NaN` for a missing value.
pub fn values(values: &[SeriesValue]) -> String {
    if values.is_empty() {
        return "(empty)".into();
    }
    let shown: Vec<String> = values
        .iter()
        .map(|v| {
            let value = v.value.map_or("NaN".into(), text::number);
            if v.labels.is_empty() {
                value
            } else {
                let labels: Vec<String> = v
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                format!("{{{}}} {value}", labels.join(","))
            }
        })
        .collect();
    clean_line(&shown.join(" "))
}

/// A probe in its own words, as every report and the live view show it: PromQL is the
/// query itself (shown as code), a Kubernetes probe is the object and what is counted
/// (`deployment shop/checkout ready replicas`), an HTTP probe is the request and the
/// statuses it accepts (`GET https://shop/health (status 200)`). The executor stores this
/// text in the journal; [`probe_text`] reads it back.
pub fn probe(probe: &Probe) -> String {
    match probe {
        Probe::Promql(query) => query.clone(),
        Probe::Http(http) => http_probe(http),
        Probe::Kube(kube) => kube_probe(kube),
        Probe::Alert(alert) => alert_probe(alert),
    }
}

/// `alert CheckoutHighLatency{service="checkout"}`, with `(pending counts)` when a
/// pending alert is not allowed.
pub fn alert_probe(alert: &AlertProbe) -> String {
    let labels: Vec<String> = alert
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let labels = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", labels.join(", "))
    };
    let pending = if alert.allow_pending {
        ""
    } else {
        " (pending counts)"
    };
    format!("alert {}{labels}{pending}", alert.name)
}

/// `GET https://shop/health (status 200 or 204, body contains "ok")`.
pub fn http_probe(http: &HttpProbe) -> String {
    let statuses: Vec<String> = http.status.iter().map(u16::to_string).collect();
    let mut accepts = vec![format!("status {}", statuses.join(" or "))];
    if let Some(needle) = &http.body_contains {
        accepts.push(format!("body contains {needle:?}"));
    }
    format!(
        "{} {} ({})",
        http.method.to_ascii_uppercase(),
        http.url,
        accepts.join(", ")
    )
}

/// `deployment shop/checkout ready replicas`, `ready schedulable nodes matching zone=a`.
pub fn kube_probe(kube: &KubeProbe) -> String {
    let object = |kind: &str, name: &str| match kube.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{kind} {ns}/{name} ready replicas"),
        _ => format!("{kind} {name} ready replicas"),
    };
    match (&kube.deployment, &kube.statefulset, &kube.nodes) {
        (Some(d), _, _) => object("deployment", d),
        (_, Some(s), _) => object("statefulset", s),
        (_, _, Some(selector)) if !selector.is_empty() => {
            format!("{NODES_PROBE} matching {selector}")
        }
        _ => NODES_PROBE.into(),
    }
}

const NODES_PROBE: &str = "ready schedulable nodes";
const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// A probe's stored text, as a renderer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeText {
    /// A PromQL query: a renderer shows it as code.
    Promql(String),
    /// A Kubernetes or HTTP probe in words ([`probe`]): shown as a sentence.
    Words(String),
}

/// Reads back a probe's text from the journal. The word forms of [`probe`] are never
/// valid PromQL (two bare words in a row), so telling them apart is exact. Journals
/// written before the probes had words held Rust's `KubeProbe { … }` debug text: that is
/// put into words here, so `shakedown report` re-renders an old run properly too.
pub fn probe_text(stored: &str) -> ProbeText {
    let text = stored.trim();
    if let Some(fields) = text.strip_prefix("KubeProbe {") {
        let field = |name: &str| debug_field(fields, name);
        return ProbeText::Words(kube_probe(&KubeProbe {
            deployment: field("deployment"),
            statefulset: field("statefulset"),
            namespace: field("namespace"),
            nodes: field("nodes"),
        }));
    }
    let first = text.split_whitespace().next().unwrap_or("");
    let second = text.split_whitespace().nth(1).unwrap_or("");
    let is_http = HTTP_METHODS.iter().any(|m| first.eq_ignore_ascii_case(m))
        && (second.starts_with("http://") || second.starts_with("https://"));
    let is_kube = [
        "deployment ",
        "statefulset ",
        NODES_PROBE,
        "ready replicas of ",
    ]
    .iter()
    .any(|p| text.starts_with(p))
        || text.starts_with("Ready schedulable nodes");
    if is_http || is_kube {
        ProbeText::Words(clean_line(text))
    } else {
        ProbeText::Promql(stored.to_owned())
    }
}

/// `name: Some("value")` out of a `Debug` struct body; `None` for `None` or absent.
fn debug_field(fields: &str, name: &str) -> Option<String> {
    let start = fields.find(&format!("{name}: Some(\""))? + name.len() + ": Some(\"".len();
    let rest = fields.get(start..)?;
    let end = rest.find("\")")?;
    Some(rest.get(..end)?.replace("\\\"", "\""))
}

/// A check's verdict as people say it: a hypothesis *held* or *deviated*. (The JSON
/// summary keeps its machine keys; see `model::verdict_key`.)
pub fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "held",
        Verdict::Deviated => "deviated",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Error => "error",
        Verdict::Aborted => "aborted",
        Verdict::Skipped => "skipped",
    }
}

/// One sample against the expectation, in the words of the `noData` policy
/// (`pass`, `fail`, `inconclusive`): a sample passes or fails, a check holds or deviates.
pub fn sample_word(outcome: SampleOutcome) -> &'static str {
    match outcome {
        SampleOutcome::Pass => "pass",
        SampleOutcome::Fail => "fail",
        SampleOutcome::NoData => "no data",
        SampleOutcome::Error => "error",
    }
}

/// Chaos Toolkit's statuses, lower case.
pub fn status_word(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Completed => "completed",
        StepStatus::Failed => "failed",
        StepStatus::Aborted => "aborted",
        StepStatus::Interrupted => "interrupted",
    }
}

pub fn phase_word(phase: Phase) -> &'static str {
    match phase {
        Phase::Before => "before",
        Phase::During => "during",
        Phase::After => "after",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{HypothesisVerdict, ProbeSample};

    /// A silence's lines name it, say whose it is (a step's or the run's), and say what
    /// to do when it could not be expired.
    #[test]
    fn silence_lines_say_whose_it_is_and_what_recovers_it() {
        let ends_at: jiff::Timestamp = "2026-12-02T10:05:00Z".parse().expect("time");
        let intent = RunEvent::SilenceIntent(crate::events::SilenceIntent {
            step: None,
            alertmanager: "http://am:9093".into(),
            matchers: vec![r#"alertname="X""#.into()],
            comment: "shakedown run r1: game day".into(),
            starts_at: ends_at,
            ends_at,
        });
        let text = line(&intent);
        assert!(
            text.starts_with("silence intent recorded (for the whole run)"),
            "{text}"
        );
        assert!(
            text.contains(r#"alertname="X" in Alertmanager at http://am:9093"#),
            "{text}"
        );
        let failed = RunEvent::SilenceNotExpired {
            step: Some("2".into()),
            id: "abc".into(),
            error: "unreachable".into(),
        };
        let text = line(&failed);
        assert!(
            text.starts_with("step 2: silence abc NOT EXPIRED: unreachable"),
            "{text}"
        );
        assert!(text.contains("shakedown recover"), "{text}");
    }

    fn verdict(verdict: Verdict) -> RunEvent {
        RunEvent::HypothesisVerdict(HypothesisVerdict {
            step: Some("1".into()),
            hypothesis: "errors below 1%".into(),
            phase: Phase::During,
            verdict,
            expectation: "< 0.01".into(),
            message: "0.043 > 0.01 in 7/12 samples".into(),
            samples: 12,
            passed: 5,
            recovery_ms: None,
            detect_ms: None,
        })
    }

    #[test]
    fn lines_use_the_report_words_not_variant_names() {
        assert_eq!(
            line(&verdict(Verdict::Deviated)),
            "step 1: errors below 1% (during): deviated: 0.043 > 0.01 in 7/12 samples"
        );
        assert!(line(&verdict(Verdict::Passed)).contains("(during): held:"));
        let finished = RunEvent::StepFinished {
            step: "2".into(),
            status: StepStatus::Completed,
        };
        assert_eq!(line(&finished), "step 2 finished: completed");
        let failed = RunEvent::FaultInjectFailed {
            step: "1".into(),
            target: "node/a".into(),
            error: "forbidden".into(),
        };
        assert_eq!(
            line(&failed),
            "step 1: injection into node/a FAILED: forbidden"
        );
        let run = RunEvent::RunFinished(RunFinished {
            status: StepStatus::Interrupted,
            deviated: false,
            exit_code: 130,
            outcome: None,
            message: Some("interrupted by SIGINT".into()),
        });
        assert_eq!(
            line(&run),
            "run finished: interrupted (exit 130): interrupted by SIGINT"
        );
    }

    /// Regression: a server dry run printed "injected into … cordoned".
    #[test]
    fn a_dry_run_says_what_it_would_do_never_injected() {
        let injected = RunEvent::FaultInjected {
            step: "1".into(),
            target: "node/a".into(),
            detail: "would cordon".into(),
            dry_run: true,
        };
        assert_eq!(
            line(&injected),
            "step 1: node/a: would cordon (dry run: accepted by the API server, nothing changed)"
        );
        let reverted = RunEvent::FaultReverted {
            step: "1".into(),
            target: "node/a".into(),
            detail: "would uncordon".into(),
            dry_run: true,
        };
        assert_eq!(
            line(&reverted),
            "step 1: revert of node/a: would uncordon (dry run: nothing changed)"
        );
        let real = RunEvent::FaultInjected {
            step: "1".into(),
            target: "node/a".into(),
            detail: "cordoned".into(),
            dry_run: false,
        };
        assert_eq!(line(&real), "step 1: injected into node/a: cordoned");
        let json = serde_json::to_string(&real).unwrap_or_default();
        assert!(
            !json.contains("dryRun"),
            "a real run's journal is unchanged: {json}"
        );
    }

    #[test]
    fn a_sample_line_says_what_was_seen_and_why() {
        let sample = RunEvent::ProbeSample(ProbeSample {
            step: None,
            hypothesis: "up".into(),
            phase: Phase::Before,
            eval_time: jiff::Timestamp::UNIX_EPOCH,
            query: "up".into(),
            values: Vec::new(),
            outcome: SampleOutcome::NoData,
            detail: Some("empty vector".into()),
        });
        assert_eq!(
            line(&sample),
            "up (before): sample no data: (empty) (empty vector)"
        );
    }

    #[test]
    fn lines_from_the_cluster_cannot_reach_the_terminal_raw() {
        let note = RunEvent::Note {
            level: NoteLevel::Warning,
            message: "\u{1b}[31mred\u{1b}[0m\nsecond line".into(),
        };
        assert_eq!(line(&note), "warning: \\x1b[31mred\\x1b[0m second line");
        let name = RunEvent::HypothesisVerdict(HypothesisVerdict {
            step: None,
            hypothesis: "ok\r\u{1b}[2K\u{1b}[1Afake PASSED \u{202e}lol".into(),
            phase: Phase::After,
            verdict: Verdict::Passed,
            expectation: "< 1".into(),
            message: "0 < 1\u{7}".into(),
            samples: 1,
            passed: 1,
            recovery_ms: None,
            detect_ms: None,
        });
        let shown = line(&name);
        assert_eq!(
            shown,
            "ok\\r\\x1b[2K\\x1b[1Afake PASSED \\u202elol (after): held: 0 < 1\\x07"
        );
        assert!(!shown.chars().any(|c| c.is_control() || c == '\u{202e}'));
    }

    fn kube(deployment: Option<&str>, namespace: Option<&str>, nodes: Option<&str>) -> KubeProbe {
        KubeProbe {
            deployment: deployment.map(Into::into),
            statefulset: None,
            namespace: namespace.map(Into::into),
            nodes: nodes.map(Into::into),
        }
    }

    /// Regression: the kube probe was printed as Rust debug
    /// (`KubeProbe { deployment: Some("checkout"), … }`) where the PromQL would be.
    #[test]
    fn probes_are_said_in_their_own_words_never_rust_debug() {
        let checkout = kube(Some("checkout"), Some("shop"), None);
        assert_eq!(
            probe(&Probe::Kube(checkout.clone())),
            "deployment shop/checkout ready replicas"
        );
        assert_eq!(
            kube_probe(&kube(None, None, Some("zone=a"))),
            "ready schedulable nodes matching zone=a"
        );
        assert_eq!(
            kube_probe(&kube(None, None, Some(""))),
            "ready schedulable nodes"
        );
        let http = HttpProbe {
            url: "https://shop.example/health".into(),
            method: "get".into(),
            status: vec![200, 204],
            timeout: crate::spec::Span(std::time::Duration::from_secs(2)),
            body_contains: Some("ok".into()),
        };
        assert_eq!(
            probe(&Probe::Http(http)),
            "GET https://shop.example/health (status 200 or 204, body contains \"ok\")"
        );
        assert_eq!(probe(&Probe::Promql("up".into())), "up");

        // Read back: words stay words, PromQL stays code, old journals' debug is worded.
        assert_eq!(
            probe_text("deployment shop/checkout ready replicas"),
            ProbeText::Words("deployment shop/checkout ready replicas".into())
        );
        assert_eq!(
            probe_text("GET https://shop.example/health (status 200)"),
            ProbeText::Words("GET https://shop.example/health (status 200)".into())
        );
        assert_eq!(
            probe_text("sum(rate(x[1m]))"),
            ProbeText::Promql("sum(rate(x[1m]))".into())
        );
        assert_eq!(
            probe_text(&format!("{checkout:?}")),
            ProbeText::Words("deployment shop/checkout ready replicas".into())
        );
        // A metric named like a kind is still PromQL.
        assert_eq!(
            probe_text("deployment_replicas > 1"),
            ProbeText::Promql("deployment_replicas > 1".into())
        );
    }

    #[test]
    fn live_times_are_utc_and_say_so() {
        let at: jiff::Timestamp = "2027-01-15T08:00:02.750Z".parse().unwrap_or_default();
        assert_eq!(clock(at), "08:00:02Z");
        assert!(text::time(at).ends_with('Z'));
    }
}
