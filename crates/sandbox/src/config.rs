//! The sandbox topology and timings: nodes, namespaces, workloads, disruption budgets
//! and the workload model. Loaded from YAML (`shakedown sandbox --config`) or taken
//! from the built-in shop topology. Pure data: seeding the store happens in `seed`.
//!
//! Every key is optional; unknown keys are errors. Durations are written as in specs
//! and PromQL (`250ms`, `2s`, `1m30s`, `1d`): one grammar, `shakedown_vocab::duration`.
//! A duration longer than [`MAX_DURATION`] is an error, not a deadline that overflows
//! the clock later (adding it to an `Instant` panics), and the two intervals the
//! controllers tick at must not be zero (a zero-period timer panics).
//!
//! ```yaml
//! nodes:
//!   - { name: node-a-1, zone: zone-a, labels: { disk: ssd }, unschedulable: false }
//! namespaces: [shop]                  # default and kube-system always exist
//! deployments:
//!   - namespace: shop
//!     name: checkout
//!     replicas: 3
//!     labels: { app: checkout }       # pod labels and selector; default app=<name>
//!     image: registry.k8s.io/pause:3.10
//!     startupDelay: 2s                # overrides timings.startupDelay
//!     nodeSelector: { disk: ssd }
//!     emptyDir: true                  # so `kubectl drain` needs --delete-emptydir-data
//!     service: { requestsPerSecond: 30, capacityPerPod: 15, baseLatency: 50ms }
//! daemonSets:
//!   - { namespace: monitoring, name: node-exporter, image: quay.io/prometheus/node-exporter:v1.9.1 }
//! podDisruptionBudgets:
//!   - { namespace: shop, name: checkout, matchLabels: { app: checkout }, minAvailable: 2 }
//! timings:
//!   startupDelay: 2s                  # scheduled → Ready
//!   shutdownDelay: 1s                 # SIGTERM → gone (capped by the grace period)
//!   controllerInterval: 100ms
//!   watchHistory: 5000                # changes a watch can resume from before 410 Gone
//!   bookmarkInterval: 10s
//!   futureResourceVersionWait: 3s     # a read at a too-new resourceVersion waits, then 504
//! apiFaults:
//!   errorShare: 0.1                   # every 10th matching request…
//!   errorCode: 429                    # …is answered 429 (with Retry-After) or 500
//!   latency: 200ms
//!   dropWatchesAfter: 30s
//!   matching: /eviction               # only requests whose `METHOD /path` contains this
//! auditLog: /tmp/sandbox-audit.jsonl   # audit.k8s.io/v1 Event lines; `--audit-log` overrides
//! rbac: true                          # authorize every request from Roles/bindings (`--rbac`)
//! tls: true                           # serve HTTPS (kubectl sends tokens only over TLS; `--rbac`)
//! accessDenied:                       # SelfSubjectAccessReviews answer `allowed: false`
//!   - { verb: get, resource: replicasets, namespace: shop }  # no namespace: everywhere
//!   - { verb: create, resource: pods/eviction }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use shakedown_vocab::duration::parse_duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read sandbox config {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid sandbox config {path}: {message}")]
    Parse { path: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxConfig {
    #[serde(default)]
    pub nodes: Vec<NodeConfig>,
    /// Namespaces besides the ones workloads live in; `default` and `kube-system`
    /// always exist.
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub deployments: Vec<DeploymentConfig>,
    #[serde(default)]
    pub daemon_sets: Vec<DaemonSetConfig>,
    #[serde(default)]
    pub pod_disruption_budgets: Vec<PdbConfig>,
    #[serde(default)]
    pub timings: Timings,
    /// API misbehaviour from the start; tests can change it at run time.
    #[serde(default)]
    pub api_faults: ApiFaults,
    /// Where to append one `audit.k8s.io/v1` Event line per request (relative paths
    /// are relative to the working directory). `shakedown sandbox --audit-log` overrides.
    #[serde(default)]
    pub audit_log: Option<std::path::PathBuf>,
    /// Permissions a SelfSubjectAccessReview reports as denied, so a client's preflight
    /// can be tested. Only the reviews answer so: the requests themselves are served.
    #[serde(default)]
    pub access_denied: Vec<DeniedAccess>,
    /// Authorize every request, and answer access reviews, from the stored Roles,
    /// ClusterRoles and bindings (`crate::rbac`), for callers who present a
    /// ServiceAccount token; the bootstrap roles (`cluster-admin`, `system:basic-user`,
    /// `system:discovery`) are seeded. Requests without a token stay the all-powerful
    /// admin. Off by default: every caller may do everything.
    #[serde(default)]
    pub rbac: bool,
    /// Serve HTTPS with the sandbox's built-in certificate (`crate::tls`), trusted by
    /// the kubeconfigs it writes: client-go (kubectl) sends a bearer token only over
    /// TLS. Off by default (plain HTTP).
    #[serde(default)]
    pub tls: bool,
}

/// One permission the sandbox's SelfSubjectAccessReviews deny.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeniedAccess {
    pub verb: String,
    /// `replicasets`, or with its subresource: `pods/eviction`.
    pub resource: String,
    /// Only in this namespace; a cluster-wide review is denied too, since it asks for
    /// every namespace. Everywhere when unset.
    #[serde(default)]
    pub namespace: Option<String>,
}

impl DeniedAccess {
    /// Whether a review's `spec.resourceAttributes` asks for this permission.
    pub fn denies(&self, attributes: &serde_json::Value) -> bool {
        let field = |k: &str| attributes[k].as_str().unwrap_or("");
        let resource = match field("subresource") {
            "" => field("resource").to_owned(),
            sub => format!("{}/{sub}", field("resource")),
        };
        let namespace = field("namespace");
        self.verb == field("verb")
            && self.resource == resource
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| namespace.is_empty() || ns == namespace)
    }
}

/// Misbehaviour the API can be told to show, for testing a client's resilience.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiFaults {
    /// Share (0.0–1.0) of matching API requests answered with `error_code` instead,
    /// spread evenly (every second request at 0.5), so tests are deterministic.
    #[serde(default)]
    pub error_share: f64,
    /// 429 (with `Retry-After: 1`); anything else means 500.
    #[serde(default)]
    pub error_code: u16,
    /// Added before every matching API response.
    #[serde(default, deserialize_with = "duration_or_zero")]
    pub latency: Duration,
    /// Matching watch streams end after this long, as when a load balancer drops them.
    #[serde(default, deserialize_with = "opt_duration")]
    pub drop_watches_after: Option<Duration>,
    /// Only requests whose `METHOD /path` contains this text are affected
    /// (`/eviction`, `PATCH /api/v1/nodes`); all API requests when unset.
    #[serde(default)]
    pub matching: Option<String>,
}

impl ApiFaults {
    pub fn applies_to(&self, method: &str, path: &str) -> bool {
        self.matching
            .as_ref()
            .is_none_or(|m| format!("{method} {path}").contains(m.as_str()))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
    pub zone: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub unschedulable: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentConfig {
    pub namespace: String,
    pub name: String,
    #[serde(default = "one")]
    pub replicas: u32,
    /// Pod labels; `app: <name>` when empty. Also the selector.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "default_image")]
    pub image: String,
    /// Overrides `timings.startupDelay` for this workload's pods.
    #[serde(default, deserialize_with = "opt_duration")]
    pub startup_delay: Option<Duration>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Gives the pods an emptyDir volume, so `kubectl drain` needs
    /// `--delete-emptydir-data` as it would on a real cluster.
    #[serde(default)]
    pub empty_dir: bool,
    /// The traffic this workload serves in the workload model.
    #[serde(default)]
    pub service: Option<ServiceModel>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceModel {
    pub requests_per_second: f64,
    pub capacity_per_pod: f64,
    #[serde(deserialize_with = "duration")]
    pub base_latency: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaemonSetConfig {
    pub namespace: String,
    pub name: String,
    #[serde(default = "default_image")]
    pub image: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PdbConfig {
    pub namespace: String,
    pub name: String,
    pub match_labels: BTreeMap<String, String>,
    /// An integer or a percentage (`"50%"`), as in the API.
    #[serde(default)]
    pub min_available: Option<serde_json::Value>,
    #[serde(default)]
    pub max_unavailable: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timings {
    /// Time from a pod starting to it passing its readiness probe.
    #[serde(default = "default_startup", deserialize_with = "duration")]
    pub startup_delay: Duration,
    /// Time a terminating pod takes to exit after SIGTERM (capped by its grace period).
    #[serde(default = "default_shutdown", deserialize_with = "duration")]
    pub shutdown_delay: Duration,
    /// How often controllers, scheduler, kubelet and the workload model run.
    #[serde(default = "default_tick", deserialize_with = "interval")]
    pub controller_interval: Duration,
    /// How many changes watches can resume from before they get 410 Gone.
    #[serde(default = "default_history")]
    pub watch_history: usize,
    #[serde(default = "default_bookmark", deserialize_with = "interval")]
    pub bookmark_interval: Duration,
    /// How long a read at a resourceVersion newer than the store's waits for it
    /// before answering 504 `ResourceVersionTooLarge` (3 s on a real API server).
    #[serde(default = "default_future_rv_wait", deserialize_with = "duration")]
    pub future_resource_version_wait: Duration,
    /// How often each node's agent renews its `kube-node-lease` Lease (a kubelet's
    /// default: a quarter of the 40 s lease duration).
    #[serde(default = "default_node_lease_renew", deserialize_with = "interval")]
    pub node_lease_renew_interval: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            startup_delay: default_startup(),
            shutdown_delay: default_shutdown(),
            controller_interval: default_tick(),
            watch_history: default_history(),
            bookmark_interval: default_bookmark(),
            future_resource_version_wait: default_future_rv_wait(),
            node_lease_renew_interval: default_node_lease_renew(),
        }
    }
}

fn one() -> u32 {
    1
}
fn default_image() -> String {
    "registry.k8s.io/pause:3.10".to_owned()
}
fn default_startup() -> Duration {
    Duration::from_secs(2)
}
fn default_shutdown() -> Duration {
    Duration::from_secs(1)
}
fn default_tick() -> Duration {
    Duration::from_millis(100)
}
fn default_history() -> usize {
    5_000
}
fn default_bookmark() -> Duration {
    Duration::from_secs(10)
}
fn default_future_rv_wait() -> Duration {
    Duration::from_secs(3)
}
fn default_node_lease_renew() -> Duration {
    Duration::from_secs(10)
}

/// The longest delay, latency or interval the sandbox accepts: far beyond any test, far
/// below what makes `Instant + duration` overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Parses a sandbox duration and bounds it by [`MAX_DURATION`]; shared with the kubelet,
/// which reads the same words from a pod annotation.
pub fn bounded_duration(text: &str) -> Result<Duration, String> {
    let parsed = parse_duration(text).map_err(|why| format!("duration `{text}`: {why}"))?;
    if parsed > MAX_DURATION {
        return Err(format!(
            "duration `{text}` is too long for the sandbox (at most 365d)"
        ));
    }
    Ok(parsed)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    bounded_duration(&text).map_err(serde::de::Error::custom)
}

/// A timer period: a zero period would make the controllers' timer panic.
fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let period = duration(d)?;
    if period.is_zero() {
        return Err(serde::de::Error::custom(
            "an interval must be longer than 0s",
        ));
    }
    Ok(period)
}

fn duration_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration(d)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

impl SandboxConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn from_yaml(text: &str) -> Result<Self, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The built-in topology: 3 nodes in 2 zones, the `shop` services and a DaemonSet.
    pub fn shop() -> Self {
        Self::from_yaml(DEFAULT_TOPOLOGY).expect("the built-in topology parses")
    }

    /// A topology with nothing in it but `default` and `kube-system`.
    pub fn empty() -> Self {
        Self::from_yaml("{}").expect("the empty topology parses")
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self::shop()
    }
}

impl DeploymentConfig {
    pub fn pod_labels(&self) -> BTreeMap<String, String> {
        if self.labels.is_empty() {
            BTreeMap::from([("app".to_owned(), self.name.clone())])
        } else {
            self.labels.clone()
        }
    }
}

pub const DEFAULT_TOPOLOGY: &str = r#"
nodes:
  - { name: node-a-1, zone: zone-a }
  - { name: node-a-2, zone: zone-a }
  - { name: node-b-1, zone: zone-b }
namespaces: [shop, monitoring]
deployments:
  - namespace: shop
    name: frontend
    replicas: 2
    service: { requestsPerSecond: 40, capacityPerPod: 40, baseLatency: 20ms }
  - namespace: shop
    name: checkout
    replicas: 3
    service: { requestsPerSecond: 30, capacityPerPod: 15, baseLatency: 50ms }
  - namespace: shop
    name: catalog
    replicas: 1
    service: { requestsPerSecond: 20, capacityPerPod: 40, baseLatency: 10ms }
daemonSets:
  - { namespace: monitoring, name: node-exporter, image: "quay.io/prometheus/node-exporter:v1.9.1" }
podDisruptionBudgets:
  - { namespace: shop, name: checkout, matchLabels: { app: checkout }, minAvailable: 2 }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_denial_matches_verb_resource_subresource_and_namespace() {
        let config = SandboxConfig::from_yaml(
            "accessDenied:\n  - { verb: get, resource: replicasets, namespace: shop }\n  - { verb: create, resource: pods/eviction }\n",
        )
        .expect("parses");
        let denied = |attributes: serde_json::Value| {
            config.access_denied.iter().any(|d| d.denies(&attributes))
        };
        let review = |verb: &str, resource: &str, sub: &str, ns: &str| serde_json::json!({"verb": verb, "resource": resource, "subresource": sub, "namespace": ns});
        assert!(denied(review("get", "replicasets", "", "shop")));
        assert!(
            denied(review("get", "replicasets", "", "")),
            "cluster-wide asks for shop too"
        );
        assert!(!denied(review("get", "replicasets", "", "default")));
        assert!(!denied(review("list", "replicasets", "", "shop")));
        assert!(denied(review("create", "pods", "eviction", "any")));
        assert!(!denied(review("create", "pods", "", "any")));
    }

    #[test]
    fn durations_parse_in_the_units_specs_use() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5d"), Ok(Duration::from_secs(5 * 86_400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("1.5s").is_err());
    }

    #[test]
    fn the_default_topology_matches_the_issue() {
        let shop = SandboxConfig::shop();
        assert_eq!(shop.nodes.len(), 3);
        let zones: std::collections::BTreeSet<_> = shop.nodes.iter().map(|n| &n.zone).collect();
        assert_eq!(zones.len(), 2);
        let checkout = shop
            .deployments
            .iter()
            .find(|d| d.name == "checkout")
            .unwrap();
        assert_eq!(checkout.replicas, 3);
        assert_eq!(shop.pod_disruption_budgets[0].min_available, Some(2.into()));
        assert_eq!(shop.daemon_sets.len(), 1);
    }

    #[test]
    fn api_faults_load_from_yaml_and_scope_by_request() {
        let config = SandboxConfig::from_yaml(
            "apiFaults: { errorShare: 0.25, errorCode: 429, latency: 50ms, matching: /eviction }",
        )
        .unwrap();
        let faults = config.api_faults;
        assert_eq!((faults.error_share, faults.error_code), (0.25, 429));
        assert_eq!(faults.latency, Duration::from_millis(50));
        assert!(faults.applies_to("POST", "/api/v1/namespaces/shop/pods/p/eviction"));
        assert!(!faults.applies_to("GET", "/api/v1/nodes"));
    }

    #[test]
    fn the_documented_example_parses() {
        let source = include_str!("config.rs");
        let example: String = source
            .lines()
            .skip_while(|l| !l.starts_with("//! ```yaml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| {
                format!(
                    "{}\n",
                    l.trim_start_matches("//!").strip_prefix(' ').unwrap_or("")
                )
            })
            .collect();
        let config = SandboxConfig::from_yaml(&example).expect("the module docs' example");
        assert_eq!(
            config.deployments[0].startup_delay,
            Some(Duration::from_secs(2))
        );
        assert_eq!(config.api_faults.matching.as_deref(), Some("/eviction"));
    }

    /// Regression: `startupDelay: 100000000000d` parsed, then panicked the kubelet when
    /// it added the delay to an `Instant`.
    #[test]
    fn a_huge_duration_is_an_error_not_a_panic() {
        for yaml in [
            "timings: { startupDelay: 100000000000d }",
            "timings: { startupDelay: 1000000000000d }",
            "timings: { shutdownDelay: 366d }",
            "apiFaults: { latency: 100000000000d }",
            "apiFaults: { dropWatchesAfter: 9999y }",
            "deployments: [{ namespace: shop, name: x, startupDelay: 100000000000d }]",
        ] {
            let err = SandboxConfig::from_yaml(yaml).unwrap_err();
            assert!(err.contains("too l"), "{yaml}: {err}");
        }
        let year = SandboxConfig::from_yaml("timings: { startupDelay: 365d }").unwrap();
        assert_eq!(year.timings.startup_delay, MAX_DURATION);
    }

    /// Regression: a zero controller or bookmark interval panicked tokio's timer.
    #[test]
    fn a_zero_interval_is_an_error_not_a_panic() {
        for yaml in [
            "timings: { controllerInterval: 0s }",
            "timings: { bookmarkInterval: 0ms }",
        ] {
            let err = SandboxConfig::from_yaml(yaml).unwrap_err();
            assert!(err.contains("longer than 0s"), "{yaml}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = SandboxConfig::from_yaml("nodez: []").unwrap_err();
        assert!(err.contains("nodez"), "{err}");
    }
}
