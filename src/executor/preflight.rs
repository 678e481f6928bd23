//! Checks made before anything is touched: targets exist, RBAC allows every call the
//! run will make, network faults can run where they are aimed, and the Prometheus the plan's PromQL
//! hypotheses need answers. Any failure means exit 3 with zero mutating calls.
//!
//! The permission list is derived from the plan in one place, [`required_permissions`]:
//! every verb × resource × namespace that the faults, their recovery checks, the probes
//! and the run itself call, reads included. A call that the code makes and that list
//! does not hold is a run that can fail half-way (a pod deleted, then every read of its
//! owner refused), so a new API call in `faults`, `probes` or `cluster` adds its line
//! there.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use crate::cluster::Connection;
use crate::faults::network::pod_security_blocker;
use crate::plan::{FaultStep, Plan};
use crate::probes::prometheus::{self, PrometheusEndpoint, PrometheusSettings};
use crate::spec::{Fault, Hypothesis, Probe};

/// One permission: a verb on a resource (and subresource) of an API group, in a
/// namespace, or cluster-wide (`None`), as a SelfSubjectAccessReview asks it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub verb: &'static str,
    /// `""` is the core group.
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    pub namespace: Option<String>,
    /// One object, for rights granted by name (`resourceNames`): a review without the
    /// name would be denied under such a rule although the call it stands for is allowed.
    pub name: Option<&'static str>,
}

impl fmt::Display for Permission {
    /// `get replicasets (apps) in namespace shop`, `patch nodes (cluster-wide)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(sub) = self.subresource {
            write!(f, "/{sub}")?;
        }
        if let Some(name) = self.name {
            write!(f, " {name:?}")?;
        }
        if !self.group.is_empty() {
            write!(f, " ({})", self.group)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " (cluster-wide)"),
        }
    }
}

/// The permissions being collected; each `call` is one kind of API call the run makes.
#[derive(Default)]
struct Needs(BTreeSet<Permission>);

/// Core-group resources are written `""`; everything shakedown reads from `apps`.
const CORE: &str = "";
const APPS: &str = "apps";
const COORDINATION: &str = "coordination.k8s.io";

/// What every run calls besides its faults and probes, settled by the session.
#[derive(Debug, Clone, Copy)]
pub struct RunWide<'a> {
    /// Where the run's locks live (`--lock-namespace`); `None` when it takes none (a
    /// dry run).
    pub lock_namespace: Option<&'a str>,
    /// Where the kill switch's marker is read and watched (`cluster::halt`).
    pub halt_namespace: &'a str,
}

impl Needs {
    fn call(
        &mut self,
        verb: &'static str,
        group: &'static str,
        resource: &'static str,
        ns: Option<&str>,
    ) {
        self.sub(verb, group, resource, None, ns);
    }

    fn sub(
        &mut self,
        verb: &'static str,
        group: &'static str,
        resource: &'static str,
        subresource: Option<&'static str>,
        ns: Option<&str>,
    ) {
        self.0.insert(Permission {
            verb,
            group,
            resource,
            subresource,
            namespace: ns.map(str::to_owned),
            name: None,
        });
    }

    /// `faults::recovery`: a removed pod's owner is found (Pod → ReplicaSet →
    /// Deployment), then the owner (by name) and its namespace's pods are listed and
    /// watched until it is whole.
    fn recovery_in(&mut self, ns: &str) {
        for resource in ["deployments", "replicasets", "statefulsets", "daemonsets"] {
            for verb in ["get", "list", "watch"] {
                self.call(verb, APPS, resource, Some(ns));
            }
        }
        self.call("list", CORE, "pods", Some(ns));
        self.call("watch", CORE, "pods", Some(ns));
    }

    /// `faults::record_event`: a ShakedownFault / ShakedownRevert Event in `ns`.
    fn events_in(&mut self, ns: &str) {
        self.call("create", CORE, "events", Some(ns));
    }

    fn fault(&mut self, step: &FaultStep) {
        let targets = step.selection.pod_namespaces();
        // `cluster::inventory`, at every (re)pick of targets.
        for ns in targets {
            self.call("list", CORE, "pods", Some(ns));
        }
        match &step.fault {
            Fault::PodDelete(_) => {
                for ns in targets {
                    self.call("get", CORE, "pods", Some(ns));
                    self.call("delete", CORE, "pods", Some(ns));
                    self.events_in(ns);
                    self.recovery_in(ns);
                }
            }
            Fault::NetworkLatency(_) => {
                for ns in targets {
                    // The Pod Security check reads the namespace object itself (which
                    // kube-apiserver authorizes in that namespace).
                    self.call("get", CORE, "namespaces", Some(ns));
                    self.call("get", CORE, "pods", Some(ns));
                    self.call("patch", CORE, "pods", Some(ns));
                    self.sub("patch", CORE, "pods", Some("ephemeralcontainers"), Some(ns));
                    // WebSocket exec is a GET, authorized as `get pods/exec`; from 1.35
                    // (AuthorizePodWebsocketUpgradeCreatePermission) also as `create`.
                    self.sub("get", CORE, "pods", Some("exec"), Some(ns));
                    self.sub("create", CORE, "pods", Some("exec"), Some(ns));
                    self.events_in(ns);
                }
            }
            Fault::NodeDrain(_) => {
                // Inventory, cordon and uncordon, and the pods on each node.
                self.call("list", CORE, "nodes", None);
                self.call("get", CORE, "nodes", None);
                self.call("patch", CORE, "nodes", None);
                self.call("list", CORE, "pods", None);
                // A Node's Events live in `default`.
                self.events_in("default");
                for ns in namespaces_of(&step.collateral) {
                    self.sub("create", CORE, "pods", Some("eviction"), Some(ns));
                    self.recovery_in(ns);
                }
            }
        }
        for hypothesis in &step.hypotheses {
            self.probe(hypothesis, None);
        }
    }

    /// Calls a run makes whatever it faults: the run's locks (`cluster::lease`: listed
    /// to name a holder, created, taken over and renewed with an update, deleted at the
    /// end), and the kill switch's marker, read and watched by name: RBAC grants it by
    /// name (`resourceNames: [shakedown-halt]`), so its reviews carry the name (a
    /// nameless one would be denied). Without the watch a halt would only be polled.
    fn run_wide(&mut self, run: &RunWide) {
        for verb in ["get", "watch"] {
            self.0.insert(Permission {
                verb,
                group: CORE,
                resource: "configmaps",
                subresource: None,
                namespace: Some(run.halt_namespace.to_owned()),
                name: Some(crate::cluster::halt::MARKER_NAME),
            });
        }
        if let Some(locks) = run.lock_namespace {
            for verb in ["list", "get", "create", "update", "delete"] {
                self.call(verb, COORDINATION, "leases", Some(locks));
            }
        }
    }

    /// `probes::kube` reads; PromQL and HTTP probes do not call the API server.
    fn probe(&mut self, hypothesis: &Hypothesis, default_namespace: Option<&str>) {
        let Probe::Kube(kube) = &hypothesis.probe else {
            return;
        };
        let ns = kube.namespace.as_deref().or(default_namespace);
        if kube.deployment.is_some() {
            self.call("get", APPS, "deployments", ns);
        } else if kube.statefulset.is_some() {
            self.call("get", APPS, "statefulsets", ns);
        } else {
            self.call("list", CORE, "nodes", None);
        }
    }
}

/// The namespaces of `namespace/name` pod references, each once.
fn namespaces_of(pods: &[String]) -> BTreeSet<&str> {
    pods.iter()
        .filter_map(|p| p.split_once('/'))
        .map(|(ns, _)| ns)
        .collect()
}

/// Every permission the run of `plan` needs, derived from its faults (their picks and
/// the pods a drain would evict), their recovery checks and its probes.
pub fn required_permissions(plan: &Plan, run: &RunWide) -> BTreeSet<Permission> {
    let mut needs = Needs::default();
    for (_, step) in plan.fault_steps() {
        needs.fault(step);
    }
    for hypothesis in &plan.hypotheses {
        needs.probe(hypothesis, plan.default_namespace.as_deref());
    }
    needs.run_wide(run);
    needs.0
}

/// Returns every problem found; an empty list means "go". Reads only the plan: its
/// picks (from `Plan::pick_targets`) and each fault's resolved namespaces.
pub async fn preflight(conn: &Connection, plan: &Plan, run: &RunWide<'_>) -> Vec<String> {
    let mut problems: Vec<String> = plan
        .unresolved()
        .into_iter()
        .map(|(step, why)| format!("step {} ({}): {why}", step.id, step.name))
        .collect();
    problems.extend(denied(conn, &required_permissions(plan, run)).await);
    let mut netem_namespaces = BTreeSet::new();
    for (_, step) in plan.fault_steps() {
        if matches!(step.fault, Fault::NetworkLatency(_)) {
            netem_namespaces.extend(step.selection.pod_namespaces().iter().cloned());
        }
    }
    for ns in netem_namespaces {
        match pod_security_blocker(&conn.client, &ns).await {
            Ok(Some(why)) => problems.push(why),
            Ok(None) => {}
            Err(e) => problems.push(format!("cannot read namespace {ns}: {e}")),
        }
    }
    problems
}

/// Asks the API server about each permission; one problem per denial, naming it.
async fn denied(conn: &Connection, needed: &BTreeSet<Permission>) -> Vec<String> {
    let api: Api<SelfSubjectAccessReview> = Api::all(conn.client.clone());
    let mut problems = Vec::new();
    for permission in needed {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(permission.verb.into()),
                    group: Some(permission.group.into()).filter(|g: &String| !g.is_empty()),
                    resource: Some(permission.resource.into()),
                    subresource: permission.subresource.map(str::to_owned),
                    namespace: permission.namespace.clone(),
                    name: permission.name.map(str::to_owned),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        let params = PostParams::default();
        match crate::cluster::with_retries(deadline, || api.create(&params, &review)).await {
            Ok(answer) if answer.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(answer) => {
                let reason = answer.status.and_then(|s| s.reason).unwrap_or_default();
                let reason = if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                };
                problems.push(format!("RBAC denies {permission}{reason}"));
            }
            Err(e) => problems.push(format!("cannot check RBAC for {permission}: {e}")),
        }
    }
    problems
}

/// The hypotheses of a plan that query Prometheus: PromQL ones, and alert ones when no
/// Alertmanager is configured; experiment-wide and every fault step's.
pub fn promql_hypotheses(plan: &Plan) -> Vec<&Hypothesis> {
    plan.prometheus_hypotheses()
        .into_iter()
        .map(|(_, h)| h)
        .collect()
}

/// Every hypothesis of a plan: experiment-wide and every fault step's.
fn plan_hypotheses(plan: &Plan) -> Vec<&Hypothesis> {
    plan.hypotheses
        .iter()
        .chain(
            plan.fault_steps()
                .into_iter()
                .flat_map(|(_, s)| &s.hypotheses),
        )
        .collect()
}

/// Whether the plan creates any Alertmanager silence (the run's or a step's).
fn has_silence(plan: &Plan) -> bool {
    plan.silence.is_some() || plan.fault_steps().iter().any(|(_, s)| s.silence.is_some())
}

/// Asks the Alertmanager a plan's alert probes read and its silences are created in
/// (`/api/v2/status`), the way their samples and calls will: a problem for each way it
/// cannot be used. A plan with neither alert hypotheses nor silences is not asked about;
/// alert probes without an `alertmanager:` block read Prometheus instead.
pub async fn alertmanager_preflight(plan: &Plan) -> Vec<String> {
    let silences = has_silence(plan);
    let Some(spec) = &plan.alertmanager else {
        return if silences {
            vec![
                "the plan creates a silence, but has no `alertmanager:` block to create it in"
                    .into(),
            ]
        } else {
            Vec::new()
        };
    };
    if !silences
        && !plan_hypotheses(plan)
            .iter()
            .any(|h| matches!(h.probe, Probe::Alert(_)))
    {
        return Vec::new();
    }
    let endpoint = match PrometheusEndpoint::alertmanager(spec) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            return vec![format!(
                "Alertmanager cannot be used: {}",
                shakedown_vocab::error_chain(&e)
            )];
        }
    };
    match endpoint.get_json("api/v2/status", &[], false).await {
        Ok(status) if status.get("versionInfo").is_some() || status.get("cluster").is_some() => {
            Vec::new()
        }
        Ok(_) => vec![format!(
            "Alertmanager at {} answered /api/v2/status without a status: is this an Alertmanager API v2? (check the URL and its path prefix)",
            endpoint.display_url()
        )],
        Err(e) => vec![e.to_string()],
    }
}

/// Queries the Prometheus a plan needs once, the way its samples will: a problem for
/// each way it cannot be used (unreachable, TLS, 401/403/404, not a Prometheus API).
/// A plan without PromQL hypotheses needs none and is not asked about. `settings.spec`
/// is filled from the plan; the flags in `settings` win, as in the run.
pub async fn prometheus_preflight(plan: &Plan, settings: &PrometheusSettings) -> Vec<String> {
    if promql_hypotheses(plan).is_empty() {
        return Vec::new();
    }
    let settings = PrometheusSettings {
        spec: plan.prometheus.clone(),
        ..settings.clone()
    };
    match prometheus::endpoint(&settings) {
        Err(e) => vec![format!(
            "Prometheus cannot be used: {}",
            shakedown_vocab::error_chain(&e)
        )],
        Ok(endpoint) => match endpoint.check().await {
            Ok(()) => Vec::new(),
            Err(e) => vec![e.to_string()],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Inventory, NodeInfo, PlanSettings, PodInfo};

    fn plan_of(name: &str, body: &str) -> Plan {
        let dir = std::env::temp_dir().join(format!("shakedown-preflight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join(format!("{name}.yaml"));
        let text = format!(
            "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  safety: {{allowedNamespaces: [shop, web]}}\n{body}"
        );
        std::fs::write(&path, text).expect("write");
        let loaded = crate::spec::load(&path).expect("the scenario loads");
        let settings = PlanSettings {
            seed: 1,
            default_namespace: Some("shop".into()),
        };
        crate::plan::plan(&loaded, &settings)
    }

    const TEST_RUN: RunWide = RunWide {
        lock_namespace: Some("locks"),
        halt_namespace: "default",
    };

    fn names(needs: &BTreeSet<Permission>) -> Vec<String> {
        needs.iter().map(ToString::to_string).collect()
    }

    /// Regression (issue 13, defect 3): with read access to ReplicaSets removed, a
    /// pod-delete ran anyway; every read of the pod's owner was then refused.
    #[test]
    fn a_pod_delete_needs_its_reads_too_owners_recovery_and_probes() {
        let plan = plan_of(
            "pd",
            "  target: {pods: {selector: app=checkout}}\n  fault: {type: pod-delete}\n  hypotheses:\n    - {name: ready, kube: {deployment: checkout, namespace: shop}, expect: \">= 2\"}\n",
        );
        let needs = names(&required_permissions(&plan, &TEST_RUN));
        for expected in [
            "list pods in namespace shop",
            "get pods in namespace shop",
            "delete pods in namespace shop",
            "create events in namespace shop",
            "get replicasets (apps) in namespace shop",
            "get deployments (apps) in namespace shop",
            "get statefulsets (apps) in namespace shop",
            "get daemonsets (apps) in namespace shop",
            // Recovery is watched: the namespace's pods, the owner by name.
            "watch pods in namespace shop",
            "list deployments (apps) in namespace shop",
            "watch deployments (apps) in namespace shop",
            // The run's locks, whatever the run faults.
            "create leases (coordination.k8s.io) in namespace locks",
            "update leases (coordination.k8s.io) in namespace locks",
            "delete leases (coordination.k8s.io) in namespace locks",
        ] {
            assert!(
                needs.contains(&expected.to_owned()),
                "{expected} missing from {needs:?}"
            );
        }
        // The halt marker is granted by name: its reviews carry the name (a nameless
        // one would be denied), and no other ConfigMap right is asked.
        assert_eq!(
            needs
                .iter()
                .filter(|n| n.contains("configmaps"))
                .collect::<Vec<_>>(),
            [
                "get configmaps \"shakedown-halt\" in namespace default",
                "watch configmaps \"shakedown-halt\" in namespace default"
            ],
            "{needs:?}"
        );
        assert!(
            !needs
                .iter()
                .any(|n| n.contains("nodes") || n.contains("eviction")),
            "a pod-delete needs no node or eviction rights: {needs:?}"
        );
    }

    #[test]
    fn a_drain_needs_eviction_and_recovery_reads_in_every_namespace_it_evicts_from() {
        let mut plan = plan_of(
            "drain",
            "  target: {nodes: {names: [node-1]}}\n  fault: {type: node-drain, duration: 1m}\n",
        );
        let node = |name: &str, zone: &str| NodeInfo {
            name: name.into(),
            labels: [("topology.kubernetes.io/zone".to_owned(), zone.to_owned())].into(),
            unschedulable: false,
            ready: true,
        };
        let pod = |ns: &str, name: &str| PodInfo {
            namespace: ns.into(),
            name: name.into(),
            phase: "Running".into(),
            node_name: "node-1".into(),
            controller_kind: Some("ReplicaSet".into()),
            ..PodInfo::default()
        };
        plan.pick_targets(&Inventory {
            pods: vec![pod("shop", "checkout-1"), pod("web", "frontend-1")],
            nodes: vec![
                node("node-1", "a"),
                node("node-2", "a"),
                node("node-3", "a"),
            ],
        });
        assert!(plan.unresolved().is_empty(), "{:?}", plan.unresolved());
        let needs = names(&required_permissions(&plan, &TEST_RUN));
        for expected in [
            "list nodes (cluster-wide)",
            "get nodes (cluster-wide)",
            "patch nodes (cluster-wide)",
            "list pods (cluster-wide)",
            "create events in namespace default",
            "create pods/eviction in namespace shop",
            "create pods/eviction in namespace web",
            "get replicasets (apps) in namespace web",
            "list pods in namespace web",
        ] {
            assert!(
                needs.contains(&expected.to_owned()),
                "{expected} missing from {needs:?}"
            );
        }
    }
}
