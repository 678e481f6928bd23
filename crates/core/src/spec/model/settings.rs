//! The `safety` block (allow-lists and blast-radius caps, and how nested guards narrow
//! them) and the `prometheus` block (where to query, and referenced credentials).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::{Percent, Span, defaults, schema};

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Safety {
    /// Namespaces faults may touch. `kube-system` is always refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::namespaces")]
    pub allowed_namespaces: Vec<String>,
    /// The largest share of matching targets one fault may hit.
    #[serde(default = "defaults::max_target_percent")]
    #[schemars(schema_with = "schema::positive_percent")]
    pub max_target_percent: Percent,
    /// kubeconfig contexts this may run against without `--yes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::names")]
    pub allowed_contexts: Vec<String>,
    /// The most nodes one fault may drain. Unset: all schedulable nodes but one, so a
    /// drain never takes the whole cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
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
/// `Default` is no block at all: no URL, no credentials, the built-in limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = schema::prometheus_rules)]
pub struct PrometheusSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_http_url")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// The largest answer read from Prometheus, in MiB (default 8): a bigger one is an
    /// error, and reading stops there.
    #[serde(
        default,
        rename = "maxResponseMiB",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 1024))]
    pub max_response_mib: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::env_var")]
    pub bearer_token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Extra request headers, e.g. `X-Scope-OrgID` for Mimir.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::headers")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = schema::basic_auth_rules)]
pub struct BasicAuth {
    #[schemars(schema_with = "schema::non_blank")]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::env_var")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub password_file: Option<String>,
}

/// `regression:`: how much worse than an earlier run a run may be before it fails
/// (deviated, exit 1). A recovery time only fails when it grew by more than `recovery`
/// *and* by at least `recoveryFloor`, so noise on tiny numbers never fails a release.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegressionSpec {
    /// The run to compare with: `latest` (the newest earlier run of this experiment in
    /// the output directory), `previous` (the one before it), a run folder or a run id.
    #[serde(default = "defaults::regression_baseline")]
    #[schemars(schema_with = "schema::non_blank")]
    pub baseline: String,
    /// How much a recovery time (per owner, per hypothesis) may grow, as a share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Percent>,
    /// How many points (of 100) the resilience score may drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Percent>,
    /// Growth of a recovery time under this never fails (default `2s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_duration_or_zero")]
    pub recovery_floor: Option<Span>,
}

/// `notify:` one receiver of the run's notifications (and `run --notify URL`, a
/// `webhook`). The URL may itself be a secret (a Slack incoming webhook): then `urlEnv`
/// names the variable that holds it, and it is scrubbed from every output.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = schema::notify_rules)]
pub struct NotifySpec {
    pub kind: NotifyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_http_url")]
    pub url: Option<String>,
    /// The environment variable that holds the URL (a secret Slack URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::env_var")]
    pub url_env: Option<String>,
    /// The environment variable that holds the HMAC-SHA256 key (`webhook` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::env_var")]
    pub secret_env: Option<String>,
    /// The file that holds the HMAC-SHA256 key (`webhook` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_non_blank")]
    pub secret_file: Option<String>,
    /// The events sent; every one when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotifyEvent>,
}

/// How a notification is written: Slack's incoming-webhook JSON, or a CloudEvents 1.0
/// structured JSON event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyKind {
    Slack,
    Webhook,
}

impl NotifyKind {
    pub const NAMES: [&'static str; 2] = ["slack", "webhook"];
}

/// What a notification can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    RunStarted,
    FaultInjected,
    HypothesisDeviated,
    Aborted,
    FaultReverted,
    RevertFailed,
    RunFinished,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 7] = [
        NotifyEvent::RunStarted,
        NotifyEvent::FaultInjected,
        NotifyEvent::HypothesisDeviated,
        NotifyEvent::Aborted,
        NotifyEvent::FaultReverted,
        NotifyEvent::RevertFailed,
        NotifyEvent::RunFinished,
    ];
    pub const NAMES: [&'static str; 7] = [
        "run-started",
        "fault-injected",
        "hypothesis-deviated",
        "aborted",
        "fault-reverted",
        "revert-failed",
        "run-finished",
    ];

    /// Its name in `notify.events` (`fault-injected`).
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Its CloudEvents `type` (`dev.shakedown.fault.injected`).
    pub fn cloud_event_type(self) -> &'static str {
        match self {
            NotifyEvent::RunStarted => "dev.shakedown.run.started",
            NotifyEvent::FaultInjected => "dev.shakedown.fault.injected",
            NotifyEvent::HypothesisDeviated => "dev.shakedown.hypothesis.deviated",
            NotifyEvent::Aborted => "dev.shakedown.run.aborted",
            NotifyEvent::FaultReverted => "dev.shakedown.fault.reverted",
            NotifyEvent::RevertFailed => "dev.shakedown.fault.revert_failed",
            NotifyEvent::RunFinished => "dev.shakedown.run.finished",
        }
    }
}
