//! The typed model of Scenario and Experiment files.
//!
//! Field names and nesting mirror the YAML exactly (camelCase keys), because the JSON
//! Schema printed by `shakedown schema` is derived from these types. Decoding from YAML
//! lives in `read/`; these types carry no parsing logic.
//!
//! This file holds the documents, their specs and steps, and the value types (`Span`,
//! `Percent`) every block uses. Targets, faults, hypotheses and the safety and
//! Prometheus blocks each have their own file, as in `read/`; `defaults.rs` holds the
//! defaults of omitted keys.

pub mod defaults;
mod fault;
mod hypothesis;
mod schema;
mod settings;
mod silence;
mod target;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Serialize, Serializer};

pub use self::fault::*;
pub use self::hypothesis::*;
pub use self::settings::*;
pub use self::silence::*;
pub use self::target::*;
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
    #[schemars(schema_with = "schema::dns_label")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    #[schemars(schema_with = "schema::string_map")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = schema::scenario_spec_rules)]
pub struct ScenarioSpec {
    /// What the fault hits: pods or nodes.
    pub target: Target,
    pub fault: Fault,
    /// The line the fault starts on in the scenario file, so reports can point CI
    /// annotations at it; `None` for a spec built in code. Not part of the YAML.
    #[serde(skip)]
    #[schemars(skip)]
    pub fault_line: Option<u32>,
    /// Steady-state hypotheses checked before, during and after the fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hypotheses: Vec<Hypothesis>,
    #[serde(default)]
    pub recovery: Recovery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<Safety>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    /// Where alert probes read alerts (API v2, after silences and inhibition) and where
    /// `silence` blocks are created; the same connection options as `prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<PrometheusSpec>,
    /// What a step whose fault reached no target (all skipped, already faulted, or
    /// nothing to evict) amounts to: `error` (could not run, exit 3) or `skip`.
    #[serde(default)]
    pub on_empty_targets: OnEmptyTargets,
    /// An Alertmanager silence for this step (the fault and its recovery window, plus
    /// `margin`), created before the fault and expired when the step ends; needs an
    /// `alertmanager:` block here or in an enclosing experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<Silence>,
}

/// A fault that reached no target did not test anything: by default that is an error
/// (the step could not run); a scenario that expects it sometimes says `skip`, and the
/// step is reported as skipped, its hypotheses as not judged, never as held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnEmptyTargets {
    #[default]
    Error,
    Skip,
}

impl OnEmptyTargets {
    pub const NAMES: [&'static str; 2] = ["error", "skip"];
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Applies to every step; overrides the scenarios' own allow-lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<Safety>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    /// Where alert probes read alerts (API v2, after silences and inhibition) and where
    /// `silence` blocks are created; the same connection options as `prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<PrometheusSpec>,
    /// Hypotheses checked around the whole experiment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hypotheses: Vec<Hypothesis>,
    #[schemars(length(min = 1))]
    pub steps: Vec<Step>,
    /// The regression gate: judge every run of this experiment against an earlier one
    /// (`run --baseline` and `--max-regression` override it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<RegressionSpec>,
    /// An Alertmanager silence for the whole run (every step's window, plus `margin`),
    /// created after the baseline and expired when the run ends; needs an
    /// `alertmanager:` block here or in an enclosing experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<Silence>,
    /// Where every file of the run's folder is PUT once the reports are written (and so
    /// after every revert): `url/<run-id>/<file>`. The same connection options as
    /// `prometheus` (bearer token, basic auth, caFile, headers, timeout); `run --upload
    /// URL` overrides the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<PrometheusSpec>,
    /// Who hears about the run as it happens: Slack channels and CloudEvents webhooks
    /// (`run --notify URL` adds webhooks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifySpec>,
    /// A Prometheus Pushgateway the run pushes its fault windows and results to
    /// (`run --pushgateway URL` overrides the URL); the same connection options as
    /// `prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushgateway: Option<PrometheusSpec>,
}

/// One step of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub name: Option<String>,
    /// Wait this long before starting: after the previous step, or after the start of
    /// the enclosing `parallel` group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_duration_or_zero")]
    pub after: Option<Span>,
    /// Run the step this many times in a row.
    #[serde(default = "defaults::repeat")]
    #[schemars(range(min = 1, max = 1000))]
    pub repeat: u32,
    #[serde(flatten)]
    pub action: StepAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StepAction {
    /// Path to a Scenario file, relative to this file.
    #[schemars(schema_with = "schema::non_blank")]
    Scenario(String),
    /// Path to another Experiment file whose steps run here.
    #[schemars(schema_with = "schema::non_blank")]
    Experiment(String),
    /// Do nothing for this long (let the system settle).
    Pause(Span),
    /// Steps that start together; each may have its own `after`.
    #[schemars(schema_with = "schema::parallel")]
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
        // Zero only where a field says so (`schema::duration_or_zero`).
        Schema::try_from(schema::positive_duration()).unwrap_or_default()
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
        Schema::try_from(schema::percent()).unwrap_or_default()
    }
}
