//! The typed model of Scenario and Experiment files.
//!
//! Field names and nesting mirror the YAML exactly (camelCase keys), because the JSON
//! Schema printed by `shakedown schema` is derived from these types. Decoding from YAML
//! lives in `read.rs`; these types carry no parsing logic.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Serialize, Serializer};

use super::duration::format_duration;

pub const API_VERSION: &str = "shakedown.dev/v1alpha1";

/// A file is either one scenario (one fault) or an experiment (steps of scenarios).
// One value per loaded file, never in a hot path or a large collection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind")]
pub enum Document {
    Scenario(Scenario),
    Experiment(Experiment),
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Always `shakedown.dev/v1alpha1`.
    pub api_version: ApiVersion,
    pub metadata: Metadata,
    pub spec: ScenarioSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Experiment {
    /// Always `shakedown.dev/v1alpha1`.
    pub api_version: ApiVersion,
    pub metadata: Metadata,
    pub spec: ExperimentSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiVersion;

impl JsonSchema for ApiVersion {
    fn schema_name() -> Cow<'static, str> {
        "ApiVersion".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "const": API_VERSION })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Lowercase letters, digits and `-`, at most 63 characters. Used in report names.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioSpec {
    /// What the fault hits: pods or nodes.
    pub target: Target,
    pub fault: Fault,
    /// Steady-state hypotheses checked before, during and after the fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hypotheses: Vec<Hypothesis>,
    #[serde(default)]
    pub recovery: Recovery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<Safety>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Applies to every step; overrides the scenarios' own allow-lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<Safety>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    /// Hypotheses checked around the whole experiment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hypotheses: Vec<Hypothesis>,
    pub steps: Vec<Step>,
}

/// The targets of a fault. Exactly one of `pods` or `nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Target {
    Pods(PodTarget),
    Nodes(NodeTarget),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One target, picked at random (seeded).
    #[default]
    One,
    /// `count` targets, picked at random.
    Count,
    /// `percent` of the matching targets, rounded up, picked at random.
    Percent,
    /// Every matching target.
    All,
}

impl Mode {
    pub const NAMES: [&'static str; 4] = ["one", "count", "percent", "all"];
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = accept_single_namespace)]
pub struct PodTarget {
    /// Namespaces to select pods from (`namespace:` for a single one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Kubernetes label selector, e.g. `app=checkout,tier in (web,api)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Field selector, e.g. `status.phase=Running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Exclusions>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
}

/// YAML accepts `namespace: shop` as shorthand for `namespaces: [shop]`; the model keeps
/// only the list, so the schema learns the shorthand here.
fn accept_single_namespace(schema: &mut Schema) {
    if let Some(serde_json::Value::Object(properties)) = schema.get_mut("properties") {
        properties.insert(
            "namespace".into(),
            serde_json::json!({ "type": "string", "description": "A single namespace; shorthand for `namespaces: [name]`." }),
        );
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeTarget {
    /// Exact node names. Mutually exclusive with `selector`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Label selector over nodes, e.g. `topology.kubernetes.io/zone=zone-a`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Exclusions>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
    /// Namespaces, beyond `safety.allowedNamespaces`, whose pods a drain of these nodes
    /// may evict. Everything a drain evicts is its blast radius: without this, a pod of
    /// any other namespace on a picked node stops the run before anything is touched.
    /// `kube-system` can never be listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept_collateral: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exclusions {
    /// Names that are never picked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Objects matching this label selector are never picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// The fault to inject, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Fault {
    PodDelete(PodDelete),
    NetworkLatency(NetworkLatency),
    NodeDrain(NodeDrain),
}

impl Fault {
    pub const TYPES: [&'static str; 3] = ["pod-delete", "network-latency", "node-drain"];

    pub fn type_name(&self) -> &'static str {
        match self {
            Fault::PodDelete(_) => "pod-delete",
            Fault::NetworkLatency(_) => "network-latency",
            Fault::NodeDrain(_) => "node-drain",
        }
    }

    /// How long the fault is active, from first injection to revert.
    pub fn active_for(&self) -> Duration {
        match self {
            Fault::PodDelete(f) => f.duration.map_or(Duration::ZERO, |d| d.0),
            Fault::NetworkLatency(f) => f.duration.0,
            Fault::NodeDrain(f) => f.duration.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodDelete {
    /// Delete again every `interval` while `duration` lasts. Without both, delete once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    /// Grace period for the deletion; default: the pod's own terminationGracePeriodSeconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<Span>,
    /// Delete with grace period 0 (like `kubectl delete --force`).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkLatency {
    /// Added delay per packet, e.g. `200ms`.
    pub delay: Span,
    #[serde(default)]
    pub jitter: Span,
    /// Correlation of successive delays, in percent.
    #[serde(default)]
    pub correlation: Percent,
    /// Optional packet loss, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Percent>,
    /// Network interface inside the pod.
    #[serde(default = "defaults::interface")]
    pub interface: String,
    pub duration: Span,
    /// Image of the ephemeral injector container; it must contain `tc` (iproute2).
    #[serde(default = "defaults::injector_image")]
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeDrain {
    /// How long the nodes stay cordoned and drained before they are uncordoned.
    pub duration: Span,
    /// Give up evicting (PDBs blocking) after this long.
    #[serde(default = "defaults::eviction_timeout")]
    pub eviction_timeout: Span,
    /// Skip DaemonSet-managed pods, like `kubectl drain --ignore-daemonsets`.
    #[serde(default = "defaults::yes")]
    pub ignore_daemon_sets: bool,
    /// Evict pods using emptyDir volumes (their data is lost).
    #[serde(default)]
    pub delete_empty_dir_data: bool,
}

/// A steady-state hypothesis: a probe, an expectation, and where it applies.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hypothesis {
    pub name: String,
    #[serde(flatten)]
    pub probe: Probe,
    /// `< 0.01`, `>= 3`, `between 0.1 and 0.5`. Optional only for `http` probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
    #[serde(default = "defaults::phases")]
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
    /// With several series: must `all` of them hold, or `any`?
    #[serde(default)]
    pub series: SeriesMatch,
    /// What an empty result or NaN means. Never a pass unless you say so.
    #[serde(default)]
    pub no_data: NoDataPolicy,
    /// Weight in the resilience score.
    #[serde(default = "defaults::weight")]
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Probe {
    /// A PromQL instant query.
    Promql(String),
    Http(HttpProbe),
    Kube(KubeProbe),
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    pub url: String,
    #[serde(default = "defaults::http_method")]
    pub method: String,
    /// Acceptable status codes.
    #[serde(default = "defaults::http_status")]
    pub status: Vec<u16>,
    #[serde(default = "defaults::http_timeout")]
    pub timeout: Span,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

/// Ready replicas of a workload, or the number of Ready nodes.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeProbe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statefulset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Label selector over nodes; `""` counts every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    Pass,
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
}

impl Expectation {
    pub fn holds(&self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        match *self {
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
            "description": "`< 0.01`, `<= x`, `> x`, `>= x`, `== x`, `!= x` or `between A and B`",
            "pattern": r"^\s*((<=|>=|==|!=|<|>)\s*\S+|between\s+\S+\s+and\s+\S+)\s*$"
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recovery {
    /// After the revert, `after` hypotheses must hold again within this long.
    #[serde(default = "defaults::recovery_within")]
    pub within: Span,
    /// Wait this long after the revert before the first `after` sample.
    #[serde(default)]
    pub settle: Span,
}

impl Default for Recovery {
    fn default() -> Self {
        Self {
            within: defaults::recovery_within(),
            settle: Span::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Safety {
    /// Namespaces faults may touch. `kube-system` is always refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_namespaces: Vec<String>,
    /// The largest share of matching targets one fault may hit.
    #[serde(default = "defaults::max_target_percent")]
    pub max_target_percent: Percent,
    /// kubeconfig contexts this may run against without `--yes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_contexts: Vec<String>,
    /// The most nodes one fault may drain. Unset: all schedulable nodes but one, so a
    /// drain never takes the whole cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<u32>,
    /// Whether a drain may take the last Ready node of a zone (`topology.kubernetes.io/zone`).
    /// A zone-outage drill says so here; by default a zone always keeps one node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_empty_zone: bool,
}

impl Safety {
    /// The effective safety of something `inner` guards inside a document guarded by
    /// `outer`: the stricter of the two on every limit, so an enclosing experiment can
    /// only narrow what it includes, never widen it. The one place effective safety is
    /// computed: validation and the plan both call it.
    ///
    /// An empty list states no allow-list, so the other side's stands; two lists give
    /// the names on both; the caps are the lower ones; an opt-out (`allowEmptyZone`)
    /// holds only when both say it.
    pub fn narrow(outer: Option<&Safety>, inner: Option<&Safety>) -> Option<Safety> {
        let (outer, inner) = match (outer, inner) {
            (None, None) => return None,
            (Some(only), None) | (None, Some(only)) => return Some(only.clone()),
            (Some(outer), Some(inner)) => (outer, inner),
        };
        fn both(a: &[String], b: &[String]) -> Vec<String> {
            match (a.is_empty(), b.is_empty()) {
                (true, _) => b.to_vec(),
                (_, true) => a.to_vec(),
                _ => b.iter().filter(|x| a.contains(x)).cloned().collect(),
            }
        }
        Some(Safety {
            allowed_namespaces: both(&outer.allowed_namespaces, &inner.allowed_namespaces),
            max_target_percent: Percent(outer.max_target_percent.0.min(inner.max_target_percent.0)),
            allowed_contexts: both(&outer.allowed_contexts, &inner.allowed_contexts),
            max_nodes: match (outer.max_nodes, inner.max_nodes) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            // An opt-out of a protection: every guard must say it.
            allow_empty_zone: outer.allow_empty_zone && inner.allow_empty_zone,
        })
    }

    /// The effective safety of a chain of guards, outermost first.
    pub fn effective<'a>(chain: impl IntoIterator<Item = &'a Safety>) -> Option<Safety> {
        chain.into_iter().fold(None, |outer, inner| {
            Safety::narrow(outer.as_ref(), Some(inner))
        })
    }
}

/// How to reach Prometheus. Secrets are referenced (env var, file), never inlined.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Extra request headers, e.g. `X-Scope-OrgID` for Mimir.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// One step of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Wait this long before starting: after the previous step, or after the start of
    /// the enclosing `parallel` group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Span>,
    /// Run the step this many times in a row.
    #[serde(default = "defaults::repeat")]
    pub repeat: u32,
    #[serde(flatten)]
    pub action: StepAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StepAction {
    /// Path to a Scenario file, relative to this file.
    Scenario(String),
    /// Path to another Experiment file whose steps run here.
    Experiment(String),
    /// Do nothing for this long (let the system settle).
    Pause(Span),
    /// Steps that start together; each may have its own `after`.
    Parallel(Vec<Step>),
}

/// A duration written like `30s`, `2m`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl JsonSchema for Span {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as `30s`, `2m`, `1h30m` or `500ms`",
            "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"
        })
    }
}

/// A percentage, 0 to 100, written `30` or `30%`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(pub f64);

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}%", self.0))
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A percentage between 0 and 100, written `30` or `30%`",
            "anyOf": [
                { "type": "number", "minimum": 0, "maximum": 100 },
                { "type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*%$" }
            ]
        })
    }
}

/// Defaults for omitted keys. The decoder and the JSON Schema both use these, so the
/// documented default is the applied one.
pub mod defaults {
    use std::time::Duration;

    use super::{Percent, Phase, Span};

    pub fn interface() -> String {
        "eth0".into()
    }
    pub fn injector_image() -> String {
        "ghcr.io/nicolaka/netshoot:v0.13".into()
    }
    pub fn eviction_timeout() -> Span {
        Span(Duration::from_secs(120))
    }
    pub fn yes() -> bool {
        true
    }
    pub fn phases() -> Vec<Phase> {
        vec![Phase::Before, Phase::During, Phase::After]
    }
    pub fn every() -> Span {
        Span(Duration::from_secs(5))
    }
    pub fn tolerance() -> Percent {
        Percent(100.0)
    }
    pub fn weight() -> f64 {
        1.0
    }
    pub fn http_method() -> String {
        "GET".into()
    }
    pub fn http_status() -> Vec<u16> {
        vec![200]
    }
    pub fn http_timeout() -> Span {
        Span(Duration::from_secs(5))
    }
    pub fn max_target_percent() -> Percent {
        Percent(100.0)
    }
    pub fn recovery_within() -> Span {
        Span(Duration::from_secs(300))
    }
    pub fn repeat() -> u32 {
        1
    }
}
