//! Targets: which pods or nodes a fault may hit, how many, and which are never picked.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Percent, schema};

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
#[schemars(transform = schema::pod_target_rules)]
pub struct PodTarget {
    /// Namespaces to select pods from (`namespace:` for a single one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::namespaces")]
    pub namespaces: Vec<String>,
    /// Kubernetes label selector, e.g. `app=checkout,tier in (web,api)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::label_selector")]
    pub selector: Option<String>,
    /// Field selector, e.g. `status.phase=Running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::field_selector")]
    pub field_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Exclusions>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000))]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = schema::node_target_rules)]
pub struct NodeTarget {
    /// Exact node names. Mutually exclusive with `selector`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::names")]
    pub names: Vec<String>,
    /// Label selector over nodes, e.g. `topology.kubernetes.io/zone=zone-a`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::label_selector")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Exclusions>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000))]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Percent>,
    /// Namespaces, beyond `safety.allowedNamespaces`, whose pods a drain of these nodes
    /// may evict. Everything a drain evicts is its blast radius: without this, a pod of
    /// any other namespace on a picked node stops the run before anything is touched.
    /// `kube-system` can never be listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::namespaces")]
    pub accept_collateral: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exclusions {
    /// Names that are never picked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::names")]
    pub names: Vec<String>,
    /// Objects matching this label selector are never picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::label_selector")]
    pub selector: Option<String>,
}
