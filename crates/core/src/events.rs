//! The run's event stream: what the executor emits and every sink consumes.
//!
//! These are plain data (serde), no I/O. The journal stores them one per line; reports
//! are pure functions of a `Vec<Record>`, so `shakedown report` can re-render any run,
//! including one cut short by a crash. Add fields with `#[serde(default)]` so older
//! journals still read.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::exit::Outcome;
use crate::spec::Phase;

/// One journal line: a sequence number, when it happened, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub at: Timestamp,
    #[serde(flatten)]
    pub event: RunEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RunEvent {
    RunStarted(RunStarted),
    StepStarted {
        step: String,
    },
    /// The concrete objects a fault will hit (pods as `namespace/name`, nodes by name).
    TargetsSelected {
        step: String,
        targets: Vec<String>,
    },
    /// The ledger entry, written (and fsynced) before the first mutating call of a fault.
    FaultIntent(FaultIntent),
    /// One mutating call went through. With `dry_run` the API server accepted it with
    /// `dryRun=All` and changed nothing: `detail` then says what it *would* do.
    FaultInjected {
        step: String,
        target: String,
        detail: String,
        #[serde(default, skip_serializing_if = "is_false")]
        dry_run: bool,
    },
    FaultInjectFailed {
        step: String,
        target: String,
        error: String,
    },
    /// A target's fault is undone (or needed no undoing). With `dry_run` nothing had been
    /// faulted: the revert's calls were sent with `dryRun=All` and `detail` says what it
    /// would do.
    FaultReverted {
        step: String,
        target: String,
        detail: String,
        #[serde(default, skip_serializing_if = "is_false")]
        dry_run: bool,
    },
    /// The cluster may still be faulted: `recover` must be told what.
    RevertFailed {
        step: String,
        target: String,
        error: String,
    },
    /// A disrupted workload is back to its desired ready state, `after_ms` after its own
    /// last disruption. `within_ms` is its recovery-time objective, the gate it was judged
    /// against (absent in journals written before the gate existed).
    Recovered {
        step: String,
        workload: String,
        after_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within_ms: Option<u64>,
    },
    /// A disrupted workload was still not whole when shakedown stopped watching it,
    /// `waited_ms` after its own last disruption: its recovery-time objective failed,
    /// unless `stopped` (a signal cut the wait short, so nothing was judged).
    NotRecovered {
        step: String,
        workload: String,
        waited_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "is_false")]
        stopped: bool,
    },
    ProbeSample(ProbeSample),
    HypothesisVerdict(HypothesisVerdict),
    StepFinished {
        step: String,
        status: StepStatus,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    Note {
        level: NoteLevel,
        message: String,
    },
    /// The regression gate's judgement against an earlier run (`run --baseline`), made
    /// just before `RunFinished`: each regression failed the run (deviated).
    BaselineCompared(BaselineCompared),
    /// The recovery times of this experiment's earlier runs (from their summary.json),
    /// oldest first, so the report can draw a trend and re-render it from the journal.
    EarlierRuns {
        runs: Vec<EarlierRun>,
    },
    RunFinished(RunFinished),
    /// Written (and fsynced) before an Alertmanager silence is created, like a fault's
    /// intent: `recover` expires it from here if the run dies. `step` is `None` for the
    /// experiment's silence (the whole run).
    SilenceIntent(SilenceIntent),
    /// Alertmanager took the silence: its id, and when it ends by itself.
    SilenceCreated {
        #[serde(default)]
        step: Option<String>,
        id: String,
        ends_at: Timestamp,
    },
    /// The silence is expired (or had ended already: `detail` says which).
    SilenceExpired {
        #[serde(default)]
        step: Option<String>,
        id: String,
        detail: String,
    },
    /// The silence could not be expired: it stays until its `endsAt`, or until
    /// `recover` expires it. The run exits 4.
    SilenceNotExpired {
        #[serde(default)]
        step: Option<String>,
        id: String,
        error: String,
    },
    /// A notification or a Pushgateway push that did not get through (`run::outbound`):
    /// delivery is off the critical path, so the run went on; this says who missed what.
    DeliveryFailed {
        /// The receiver, without credentials (`webhook https://…`, `Pushgateway at …`).
        to: String,
        /// What was not delivered (`fault injected`, `3 events (queue full)`).
        about: String,
        error: String,
        #[serde(default)]
        attempts: u32,
    },
}

/// A silence about to be created, as `recover` and the reports need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceIntent {
    #[serde(default)]
    pub step: Option<String>,
    /// The Alertmanager's URL as shown to people (never credentials).
    pub alertmanager: String,
    /// In the string form: `alertname="CheckoutHighLatency"`.
    pub matchers: Vec<String>,
    pub comment: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

/// One earlier run of the same experiment, as a trend needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EarlierRun {
    pub run_id: String,
    #[serde(default)]
    pub started_at: Option<String>,
    /// Per owner, its recovery time in ms.
    #[serde(default)]
    pub owners: BTreeMap<String, u64>,
}

/// This run against its baseline (`run --baseline`, see `report::history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineCompared {
    /// The baseline's run id.
    pub baseline: String,
    #[serde(default)]
    pub baseline_started_at: Option<String>,
    /// The limits, as given (`recovery=20%,score=5`).
    pub limits: String,
    #[serde(default)]
    pub regressions: Vec<Regression>,
}

/// One way a run is worse than its baseline by more than allowed, with both values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Regression {
    /// `recovery deployment/shop/checkout`, `recovery hypothesis: …` or `score`.
    pub what: String,
    pub baseline: String,
    pub current: String,
    pub allowed: String,
}

/// Everything a report needs to say where and how the run happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    pub run_id: String,
    /// Experiment (or scenario) name, used as the JUnit classname prefix.
    pub experiment: String,
    pub source: String,
    pub seed: u64,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub api_server: Option<String>,
    /// Without credentials (they are never logged).
    #[serde(default)]
    pub prometheus_url: Option<String>,
    pub dry_run: String,
    pub version: String,
    /// The planned steps, so a report can list the ones that never ran.
    pub steps: Vec<PlannedStep>,
    /// Experiment-wide hypotheses, checked around all the steps.
    #[serde(default)]
    pub hypotheses: Vec<PlannedHypothesis>,
    /// The experiment's (or scenario's) `metadata.labels`, carried into summary.json.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedStep {
    /// Plan entry id (`1`, `3#2`, `4.1`).
    pub id: String,
    pub name: String,
    /// Scenario name, for JUnit `<testsuite>` and `classname`.
    #[serde(default)]
    pub scenario: Option<String>,
    #[serde(default)]
    pub fault: Option<String>,
    #[serde(default)]
    pub hypotheses: Vec<PlannedHypothesis>,
    /// The scenario file the step runs, as loaded: what JUnit's `file` points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line of the fault in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_line: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedHypothesis {
    pub name: String,
    /// The PromQL, URL or Kubernetes object probed.
    pub probe: String,
    pub expectation: String,
    pub phases: Vec<Phase>,
    #[serde(default = "one")]
    pub weight: f64,
    /// Share of `during` samples that must hold, in percent.
    #[serde(default = "hundred")]
    pub tolerance: f64,
    #[serde(default)]
    pub abort: bool,
    /// Sampling interval in milliseconds.
    #[serde(default)]
    pub every_ms: u64,
    /// Where it is written: a line of its step's `file`, or of the run's `source` for an
    /// experiment-wide hypothesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn hundred() -> f64 {
    100.0
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultIntent {
    pub step: String,
    /// `pod-delete`, `network-latency`, `node-drain`.
    pub fault: String,
    pub targets: Vec<String>,
    /// The fault's parameters as given (never secrets).
    pub params: serde_json::Value,
    /// How to undo it by hand if everything else fails.
    pub revert: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSample {
    /// `None` for experiment-wide hypotheses.
    #[serde(default)]
    pub step: Option<String>,
    pub hypothesis: String,
    pub phase: Phase,
    /// The evaluation time the query was pinned to.
    pub eval_time: Timestamp,
    pub query: String,
    /// One value per series; `None` is NaN or missing.
    pub values: Vec<SeriesValue>,
    pub outcome: SampleOutcome,
    #[serde(default)]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesValue {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SampleOutcome {
    Pass,
    Fail,
    /// Empty vector, NaN, or a partial (warning) response: never a pass by default.
    NoData,
    /// Prometheus unreachable or returned an error.
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HypothesisVerdict {
    #[serde(default)]
    pub step: Option<String>,
    pub hypothesis: String,
    pub phase: Phase,
    pub verdict: Verdict,
    pub expectation: String,
    /// A short observed-vs-expected, e.g. `0.043 > 0.01 in 7/12 samples`.
    pub message: String,
    pub samples: u32,
    pub passed: u32,
    /// `after` phase: from the revert to the first passing sample (for `resolved
    /// within`, the time to resolve).
    #[serde(default)]
    pub recovery_ms: Option<u64>,
    /// `firing within` (`during`): the time to detect, from the injection to the first
    /// sample that saw the alert firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Passed,
    /// The system is not resilient (exit 1).
    Deviated,
    Inconclusive,
    /// Prometheus unreachable or erroring (exit 3, never a pass).
    Error,
    Aborted,
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    Completed,
    Failed,
    Aborted,
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NoteLevel {
    Info,
    Warning,
}

/// Chaos Toolkit's vocabulary: `completed`, `failed`, `aborted`, `interrupted`, with a
/// separate `deviated` flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFinished {
    pub status: StepStatus,
    pub deviated: bool,
    /// `outcome.code()`, kept so readers of older journals (and `jq`) still find it.
    pub exit_code: u8,
    /// How the run ended. Journals written before this field have only `exit_code`; read
    /// [`RunFinished::resolved_outcome`] rather than either field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub message: Option<String>,
}

impl RunFinished {
    /// The outcome this record stands for: its own, or (an older journal) the one its
    /// exit code names; `None` for a code no outcome has (a hand-edited journal).
    pub fn resolved_outcome(&self) -> Option<Outcome> {
        self.outcome.or_else(|| Outcome::from_code(self.exit_code))
    }

    /// The exit code this record stands for: its outcome's, else the recorded number.
    pub fn code(&self) -> u8 {
        self.outcome.map_or(self.exit_code, Outcome::code)
    }
}
