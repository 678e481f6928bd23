//! Hypotheses: probes (PromQL, HTTP, Kubernetes, alerts), expectations, phases, how
//! several series and missing data are judged, and the recovery deadline after a fault.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Serialize, Serializer};
use shakedown_vocab::duration::format_duration;

use super::{Percent, Span, defaults, schema};

/// A steady-state hypothesis: a probe, an expectation, and where it applies.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = schema::hypothesis_rules)]
pub struct Hypothesis {
    #[schemars(schema_with = "schema::non_blank")]
    pub name: String,
    #[serde(flatten)]
    pub probe: Probe,
    /// `< 0.01`, `>= 3`, `between 0.1 and 0.5`. Optional only for `http` probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
    #[serde(default = "defaults::phases")]
    #[schemars(schema_with = "schema::phases")]
    pub phases: Vec<Phase>,
    /// Sampling interval during the fault.
    #[serde(default = "defaults::every")]
    pub every: Span,
    /// Share of `during` samples that must hold.
    #[serde(default = "defaults::tolerance")]
    pub tolerance: Percent,
    /// A breach during the fault stops the experiment and reverts at once.
    #[serde(default)]
    pub abort: bool,
    /// With `abort`: how many breaching samples in a row abort the fault.
    #[serde(default = "defaults::failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: u32,
    /// With `abort`: how many samples in a row without data or with a probe error abort
    /// the fault (a stop condition that cannot see fails closed).
    #[serde(default = "defaults::error_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub error_threshold: u32,
    /// With several series: must `all` of them hold, or `any`?
    #[serde(default)]
    pub series: SeriesMatch,
    /// What an empty result, NaN or a stale sample means. Never a pass.
    #[serde(default)]
    pub no_data: NoDataPolicy,
    /// Weight in the resilience score.
    #[serde(default = "defaults::weight")]
    #[schemars(schema_with = "schema::positive_number")]
    pub weight: f64,
    /// The line it starts on in its file, so reports can point CI annotations at it;
    /// `None` for a hypothesis built in code. Not part of the YAML.
    #[serde(skip)]
    #[schemars(skip)]
    pub line: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Probe {
    /// A PromQL instant query.
    #[schemars(schema_with = "schema::promql")]
    Promql(String),
    Http(HttpProbe),
    Kube(KubeProbe),
    /// An alert's state, read from Prometheus or, with an `alertmanager:` block, from
    /// Alertmanager (so silences and inhibition count).
    Alert(AlertProbe),
}

/// `alert: {name: CheckoutHighLatency, labels: {service: checkout}}`: the alerts named
/// `name` whose labels include every one of `labels`. A sample counts them; the alert
/// expectations (`firing within 2m`, `resolved within 5m`, `not firing`) judge the count.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertProbe {
    /// The alert rule's name (the `alertname` label).
    #[schemars(schema_with = "schema::non_blank")]
    pub name: String,
    /// Labels the alert must carry, matched exactly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::string_map")]
    pub labels: BTreeMap<String, String>,
    /// Whether a `pending` alert (its `for:` not yet elapsed) is allowed by `not firing`
    /// and `resolved within`. `false`: pending counts as firing there. `firing within`
    /// always waits for `firing`.
    #[serde(default = "defaults::allow_pending")]
    pub allow_pending: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    #[schemars(schema_with = "schema::http_url")]
    pub url: String,
    #[serde(default = "defaults::http_method")]
    #[schemars(extend("enum" = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))]
    pub method: String,
    /// Acceptable status codes: one or a list.
    #[serde(default = "defaults::http_status")]
    #[schemars(schema_with = "schema::status_codes")]
    pub status: Vec<u16>,
    #[serde(default = "defaults::http_timeout")]
    pub timeout: Span,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub body_contains: Option<String>,
}

/// Ready replicas of a workload, or the number of Ready nodes.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = schema::kube_probe_rules)]
pub struct KubeProbe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub statefulset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub namespace: Option<String>,
    /// Label selector over nodes; `""` counts every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::label_selector")]
    pub nodes: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Before,
    During,
    After,
}

impl Phase {
    pub const NAMES: [&'static str; 3] = ["before", "during", "after"];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesMatch {
    #[default]
    All,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NoDataPolicy {
    #[default]
    Inconclusive,
    Fail,
}

impl NoDataPolicy {
    pub const NAMES: [&'static str; 2] = ["inconclusive", "fail"];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum CompareOp {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

/// What an observed value must satisfy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expectation {
    Compare(CompareOp, f64),
    /// Inclusive on both ends.
    Between(f64, f64),
    /// `firing within 2m` (alert probes, `during`): fires within this long of the
    /// injection; the time to detect is measured.
    Firing(Span),
    /// `resolved within 5m` (alert probes, `after`): no longer firing within this long
    /// of the revert; the time to resolve is measured.
    Resolved(Span),
    /// `not firing` (alert probes, any phase): e.g. no page for a loss the service absorbs.
    NotFiring,
}

impl Expectation {
    /// Whether this is one of the alert expectations, which only alert probes take.
    pub fn is_alert(&self) -> bool {
        matches!(
            self,
            Expectation::Firing(_) | Expectation::Resolved(_) | Expectation::NotFiring
        )
    }

    /// The value is a count of matching alerts for the alert expectations.
    pub fn holds(&self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        match *self {
            Expectation::Firing(_) => value > 0.0,
            Expectation::Resolved(_) | Expectation::NotFiring => value == 0.0,
            Expectation::Compare(op, bound) => match op {
                CompareOp::Lt => value < bound,
                CompareOp::Le => value <= bound,
                CompareOp::Gt => value > bound,
                CompareOp::Ge => value >= bound,
                CompareOp::Eq => value == bound,
                CompareOp::Ne => value != bound,
            },
            Expectation::Between(low, high) => (low..=high).contains(&value),
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Compare(op, v) => {
                let op = match op {
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Eq => "==",
                    CompareOp::Ne => "!=",
                };
                write!(f, "{op} {v}")
            }
            Expectation::Between(a, b) => write!(f, "between {a} and {b}"),
            Expectation::Firing(within) => {
                write!(f, "firing within {}", format_duration(within.0))
            }
            Expectation::Resolved(within) => {
                write!(f, "resolved within {}", format_duration(within.0))
            }
            Expectation::NotFiring => f.write_str("not firing"),
        }
    }
}

impl Serialize for Expectation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Expectation {
    fn schema_name() -> Cow<'static, str> {
        "Expectation".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "`< 0.01`, `<= x`, `> x`, `>= x`, `== x`, `!= x` or `between A and B`; for alert probes `firing within 2m`, `resolved within 5m` or `not firing`",
            "pattern": schema::expectation_pattern()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recovery {
    /// After the revert, `after` hypotheses must hold again within this long; and the
    /// recovery-time objective of every disrupted owner (Deployment, StatefulSet,
    /// ReplicaSet, DaemonSet), counted from its own last disruption, unless `owners`
    /// names it. Exceeding it fails the run as deviated.
    #[serde(default = "defaults::recovery_within")]
    pub within: Span,
    /// Wait this long after the revert before the first `after` sample.
    #[serde(default)]
    #[schemars(schema_with = "schema::duration_or_zero")]
    pub settle: Span,
    /// The recovery-time objective of named owners, keyed `kind/namespace/name`
    /// (`deployment/shop/checkout: 60s`); it replaces `within` for that owner.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {
        "pattern": OWNER_KEY_PATTERN,
        "description": "`kind/namespace/name`, kind one of deployment, statefulset, replicaset, daemonset"
    }))]
    pub owners: BTreeMap<String, Span>,
    /// How many held `after` samples in a row make a hypothesis recovered; its time to
    /// recover runs from the revert to the first of them.
    #[serde(default = "defaults::recovery_consecutive")]
    #[schemars(range(min = 1))]
    pub consecutive: u32,
}

/// The shape of a `recovery.owners` key: `kind/namespace/name`, lowercase kind.
pub const OWNER_KEY_PATTERN: &str = "^(deployment|statefulset|replicaset|daemonset)/[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$";

/// The kinds of owner whose recovery is measured, as written in an `owners` key.
pub const OWNER_KINDS: [&str; 4] = ["deployment", "statefulset", "replicaset", "daemonset"];

impl Recovery {
    /// The recovery-time objective of `owner` (`kind/namespace/name`, lowercase kind).
    pub fn objective(&self, owner: &str) -> Span {
        self.owners.get(owner).copied().unwrap_or(self.within)
    }

    /// The longest objective: how long to keep watching owners after the revert.
    pub fn longest(&self) -> Span {
        self.owners.values().copied().fold(self.within, Span::max)
    }
}

impl Default for Recovery {
    fn default() -> Self {
        Self {
            within: defaults::recovery_within(),
            settle: Span::default(),
            owners: BTreeMap::new(),
            consecutive: defaults::recovery_consecutive(),
        }
    }
}
