//! The fault to inject, chosen by `type`: pod-delete, network-latency or node-drain, and
//! their parameters.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use super::{Percent, Span, defaults, schema};

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
#[schemars(transform = schema::pod_delete_rules)]
pub struct PodDelete {
    /// Delete again every `interval` while `duration` lasts. Without both, delete once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    /// Grace period for the deletion; default: the pod's own terminationGracePeriodSeconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_duration_or_zero")]
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
    #[schemars(schema_with = "schema::duration_or_zero")]
    pub jitter: Span,
    /// Correlation of successive delays, in percent.
    #[serde(default)]
    pub correlation: Percent,
    /// Optional packet loss, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Percent>,
    /// Network interface inside the pod.
    #[serde(default = "defaults::interface")]
    #[schemars(schema_with = "schema::interface")]
    pub interface: String,
    pub duration: Span,
    /// Image of the ephemeral injector container; it must contain `tc` (iproute2).
    #[serde(default = "defaults::injector_image")]
    #[schemars(schema_with = "schema::image")]
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
