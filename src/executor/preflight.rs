//! Checks made before anything is touched: targets exist, RBAC allows every verb the
//! plan needs, network faults can run where they are aimed, and the Prometheus the
//! plan's PromQL hypotheses need answers. Any failure means exit 3 with zero mutating
//! calls.

use std::collections::BTreeSet;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use crate::cluster::Connection;
use crate::faults::network::pod_security_blocker;
use crate::plan::Plan;
use crate::probes::prometheus::{self, PrometheusSettings};
use crate::spec::{Fault, Hypothesis, Probe};

/// One permission: verb, resource, subresource, namespace (None = cluster-scoped).
type Permission = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<String>,
);

/// Returns every problem found; an empty list means "go". Reads only the plan: its
/// picks (from `Plan::pick_targets`) and each fault's resolved namespaces.
pub async fn preflight(conn: &Connection, plan: &Plan) -> Vec<String> {
    let mut problems: Vec<String> = plan
        .unresolved()
        .into_iter()
        .map(|(step, why)| format!("step {} ({}): {why}", step.id, step.name))
        .collect();
    let mut needed = BTreeSet::new();
    let mut netem_namespaces = BTreeSet::new();
    for (_, step) in plan.fault_steps() {
        let namespaces = step.selection.pod_namespaces();
        for ns in namespaces {
            needed.insert(("list", "pods", None, Some(ns.clone())));
            needed.insert(("create", "events", None, Some(ns.clone())));
        }
        match &step.fault {
            Fault::PodDelete(_) => {
                for ns in namespaces {
                    needed.insert(("delete", "pods", None, Some(ns.clone())));
                }
            }
            Fault::NetworkLatency(_) => {
                for ns in namespaces {
                    needed.insert(("patch", "pods", None, Some(ns.clone())));
                    needed.insert((
                        "patch",
                        "pods",
                        Some("ephemeralcontainers"),
                        Some(ns.clone()),
                    ));
                    needed.insert(("create", "pods", Some("exec"), Some(ns.clone())));
                    netem_namespaces.insert(ns.clone());
                }
            }
            Fault::NodeDrain(_) => {
                needed.insert(("patch", "nodes", None, None));
                needed.insert(("list", "pods", None, None));
                needed.insert(("create", "pods", Some("eviction"), None));
            }
        }
    }
    problems.extend(denied(conn, &needed).await);
    for ns in netem_namespaces {
        match pod_security_blocker(&conn.client, &ns).await {
            Ok(Some(why)) => problems.push(why),
            Ok(None) => {}
            Err(e) => problems.push(format!("cannot read namespace {ns}: {e}")),
        }
    }
    problems
}

async fn denied(conn: &Connection, needed: &BTreeSet<Permission>) -> Vec<String> {
    let api: Api<SelfSubjectAccessReview> = Api::all(conn.client.clone());
    let mut problems = Vec::new();
    for (verb, resource, subresource, namespace) in needed {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some((*verb).into()),
                    resource: Some((*resource).into()),
                    subresource: subresource.map(str::to_owned),
                    namespace: namespace.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let what = format!(
            "{verb} {resource}{}{}",
            subresource.map(|s| format!("/{s}")).unwrap_or_default(),
            namespace
                .as_ref()
                .map(|n| format!(" in {n}"))
                .unwrap_or_else(|| " (cluster-wide)".into())
        );
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        let params = PostParams::default();
        match crate::cluster::with_retries(deadline, || api.create(&params, &review)).await {
            Ok(answer) if answer.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(answer) => {
                let reason = answer.status.and_then(|s| s.reason).unwrap_or_default();
                problems.push(format!("RBAC denies {what} {reason}").trim_end().to_owned());
            }
            Err(e) => problems.push(format!("cannot check RBAC for {what}: {e}")),
        }
    }
    problems
}

/// The PromQL hypotheses of a plan: experiment-wide and every fault step's.
pub fn promql_hypotheses(plan: &Plan) -> Vec<&Hypothesis> {
    plan.hypotheses
        .iter()
        .chain(
            plan.fault_steps()
                .into_iter()
                .flat_map(|(_, s)| &s.hypotheses),
        )
        .filter(|h| matches!(h.probe, Probe::Promql(_)))
        .collect()
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
