//! Notifications: the run's important moments, as Slack incoming-webhook messages or
//! CloudEvents 1.0 structured JSON, to the receivers of `notify:` and `run --notify`.
//!
//! Events: run started (with the plan), fault injected, hypothesis deviated, aborted
//! (a step aborted or interrupted: abort key, stop condition, signal, kill switch),
//! fault reverted, revert failed (with every target left faulted so far), run finished
//! (verdict, score, recovery times, where the report is). A `slack` message is one line
//! in the report's words (`report::words`); a `webhook` event carries the same line in
//! `data.text` next to the fields.
//!
//! A webhook with a signing key gets `X-Shakedown-Signature: sha256=<hex>`: the
//! HMAC-SHA256 of the exact body bytes, lowercase hex ([`SIGNATURE_HEADER`]). The body
//! is scrubbed of every registered secret before it is signed.

use std::collections::BTreeMap;

use aws_lc_rs::hmac;
use serde_json::{Value, json};

use super::{Method, Request, Subscriber, scrubbed};
use crate::events::{Record, RunEvent, RunFinished, RunStarted, StepStatus, Verdict};
use crate::report::{self, history, text, words};
use crate::spec::{NotifyEvent, NotifyKind};

/// The header a signed webhook carries: `sha256=` and the HMAC's lowercase hex.
pub const SIGNATURE_HEADER: &str = "X-Shakedown-Signature";
/// CloudEvents' structured-mode media type.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// One receiver of notifications.
pub struct Notifier {
    kind: NotifyKind,
    /// As people read it: `webhook https://…` (a secret URL is scrubbed where shown).
    name: String,
    /// Sent events; every one when empty.
    events: Vec<NotifyEvent>,
    key: Option<hmac::Key>,
    /// Where this run's reports are written.
    report_dir: String,
    started: Option<RunStarted>,
    /// Every record so far but probe samples: the run finished message's summary.
    records: Vec<Record>,
    /// Targets whose revert failed so far: what is left faulted.
    left: Vec<String>,
}

impl Notifier {
    /// `key` signs a webhook's bodies (register it with the redactor first).
    pub fn new(
        kind: NotifyKind,
        name: String,
        events: Vec<NotifyEvent>,
        key: Option<&[u8]>,
        report_dir: String,
    ) -> Self {
        Self {
            kind,
            name,
            events,
            key: key.map(|k| hmac::Key::new(hmac::HMAC_SHA256, k)),
            report_dir,
            started: None,
            records: Vec::new(),
            left: Vec::new(),
        }
    }

    fn wanted(&self, event: NotifyEvent) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }

    /// The message of one record: its line in words and its fields.
    fn message(&self, kind: NotifyEvent, record: &Record) -> (String, Option<String>, Value) {
        let line = words::line(&record.event);
        match &record.event {
            RunEvent::RunStarted(s) => {
                let plan = plan_summary(s);
                (
                    format!("{line}: {plan}"),
                    Some(s.run_id.clone()),
                    json!({ "plan": plan, "steps": s.steps, "seed": s.seed, "dryRun": s.dry_run }),
                )
            }
            RunEvent::FaultInjected {
                step,
                target,
                detail,
                dry_run,
            }
            | RunEvent::FaultReverted {
                step,
                target,
                detail,
                dry_run,
            } => (
                line,
                Some(target.clone()),
                json!({ "step": step, "target": target, "detail": detail, "dryRun": dry_run }),
            ),
            RunEvent::HypothesisVerdict(v) => (
                line,
                Some(v.hypothesis.clone()),
                json!({
                    "step": v.step, "hypothesis": v.hypothesis, "phase": v.phase,
                    "expectation": v.expectation, "observed": v.message,
                }),
            ),
            RunEvent::StepFinished { step, status } => (
                line,
                Some(step.clone()),
                json!({ "step": step, "status": words::status_word(*status) }),
            ),
            RunEvent::RevertFailed {
                step,
                target,
                error,
            } => (
                format!(
                    "{line}; left faulted: {}; run `shakedown recover`",
                    self.left.join(", ")
                ),
                Some(target.clone()),
                json!({
                    "step": step, "target": target, "error": error,
                    "leftFaulted": self.left, "recover": "shakedown recover",
                }),
            ),
            RunEvent::RunFinished(f) => self.finished(f, line),
            _ => (line, None, json!({ "kind": kind.name() })),
        }
    }

    /// The run finished message: verdict, score, recovery times, where the report is.
    fn finished(&self, f: &RunFinished, line: String) -> (String, Option<String>, Value) {
        let summary = history::parse("", &report::json::render(&self.records, false)).ok();
        let report = format!(
            "{}/{}",
            self.report_dir.trim_end_matches('/'),
            report::MARKDOWN_FILE
        );
        let mut message = line;
        let (mut owners, mut hypotheses) = (BTreeMap::new(), BTreeMap::new());
        let mut score = None;
        if let Some(s) = &summary {
            score = s.score;
            for (owner, r) in &s.owners {
                owners.insert(owner.clone(), r.after_ms as f64 / 1000.0);
            }
            for (name, ms) in &s.hypotheses {
                if let Some(ms) = ms {
                    hypotheses.insert(name.clone(), *ms as f64 / 1000.0);
                }
            }
            if let Some(score) = s.score {
                message.push_str(&format!("; score {:.0}%", score * 100.0));
            }
            if !s.owners.is_empty() {
                let times: Vec<String> = s
                    .owners
                    .iter()
                    .map(|(o, r)| format!("{o} {}", text::duration(r.after_ms)))
                    .collect();
                message.push_str(&format!("; recovered: {}", times.join(", ")));
            }
        }
        message.push_str(&format!("; report: {report}"));
        let data = json!({
            "verdict": summary.as_ref().map(|s| s.verdict.clone()),
            "exitCode": f.code(),
            "deviated": f.deviated,
            "status": words::status_word(f.status),
            "score": score,
            "durationSeconds": summary.as_ref().and_then(|s| s.duration_ms).map(|ms| ms as f64 / 1000.0),
            "recoverySeconds": owners,
            "hypothesisRecoverySeconds": hypotheses,
            "message": f.message,
            "report": report,
        });
        let subject = self.started.as_ref().map(|s| s.run_id.clone());
        (message, subject, data)
    }

    fn request(&self, kind: NotifyEvent, record: &Record) -> Request {
        let (line, subject, mut data) = self.message(kind, record);
        let experiment = self.started.as_ref().map_or("", |s| s.experiment.as_str());
        let run_id = self.started.as_ref().map_or("", |s| s.run_id.as_str());
        let (body, content_type) = match self.kind {
            NotifyKind::Slack => (
                json!({ "text": format!("shakedown `{experiment}`: {line}") }).to_string(),
                "application/json",
            ),
            NotifyKind::Webhook => {
                if let Value::Object(map) = &mut data {
                    map.insert("runId".into(), run_id.into());
                    map.insert("experiment".into(), experiment.into());
                    map.insert("text".into(), line.into());
                }
                let mut event = json!({
                    "specversion": "1.0",
                    "id": format!("{run_id}-{}", record.seq),
                    "source": format!("/shakedown/{experiment}"),
                    "type": kind.cloud_event_type(),
                    "time": record.at.to_string(),
                    "datacontenttype": "application/json",
                    "data": data,
                });
                if let (Some(subject), Value::Object(map)) = (subject, &mut event) {
                    map.insert("subject".into(), subject.into());
                }
                (event.to_string(), CLOUDEVENTS_JSON)
            }
        };
        let body = scrubbed(body);
        let headers = self
            .key
            .as_ref()
            .map(|key| vec![(SIGNATURE_HEADER.to_owned(), signature(key, &body))])
            .unwrap_or_default();
        Request {
            method: Method::Post,
            path: String::new(),
            content_type,
            headers,
            body,
            about: kind.name().replace('-', " "),
        }
    }
}

impl Subscriber for Notifier {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn requests(&mut self, record: &Record) -> Vec<Request> {
        if let RunEvent::RunStarted(s) = &record.event {
            self.started = Some(s.clone());
        }
        if let RunEvent::RevertFailed { target, .. } = &record.event {
            self.left.push(target.clone());
        }
        self.records.push(record.clone());
        match classify(&record.event) {
            Some(kind) if self.wanted(kind) => vec![self.request(kind, record)],
            _ => Vec::new(),
        }
    }
}

/// Which notification a record is, if any.
pub fn classify(event: &RunEvent) -> Option<NotifyEvent> {
    Some(match event {
        RunEvent::RunStarted(_) => NotifyEvent::RunStarted,
        RunEvent::FaultInjected { .. } => NotifyEvent::FaultInjected,
        RunEvent::HypothesisVerdict(v) if v.verdict == Verdict::Deviated => {
            NotifyEvent::HypothesisDeviated
        }
        RunEvent::StepFinished {
            status: StepStatus::Aborted | StepStatus::Interrupted,
            ..
        } => NotifyEvent::Aborted,
        RunEvent::FaultReverted { .. } => NotifyEvent::FaultReverted,
        RunEvent::RevertFailed { .. } => NotifyEvent::RevertFailed,
        RunEvent::RunFinished(_) => NotifyEvent::RunFinished,
        _ => return None,
    })
}

/// The plan in one line: each step with its fault, and how many hypotheses are checked.
fn plan_summary(s: &RunStarted) -> String {
    let steps: Vec<String> = s
        .steps
        .iter()
        .map(|step| match &step.fault {
            Some(fault) => format!("{} {} ({fault})", step.id, step.name),
            None => format!("{} {}", step.id, step.name),
        })
        .collect();
    let hypotheses =
        s.hypotheses.len() + s.steps.iter().map(|st| st.hypotheses.len()).sum::<usize>();
    format!(
        "{} step(s): {}; {hypotheses} hypothesis check(s)",
        s.steps.len(),
        steps.join(", ")
    )
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` with `key`.
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}
