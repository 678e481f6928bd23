//! Store operations with API-server semantics that both the HTTP layer and the
//! controllers need: graceful pod deletion and the eviction decision.

use serde_json::{Value, json};

use super::objects::{is_terminating, pod_serving, selector_matches};
use super::resources::ResourceDef;
use super::status::ApiError;
use super::store::{Store, name_of};

/// Deletes an object. Pods on a node, and objects with finalizers, are only marked
/// (deletionTimestamp) and removed later by the kubelet or controller, as in Kubernetes.
/// Returns the object as the API returns it.
pub fn delete(
    store: &mut Store,
    def: &ResourceDef,
    namespace: &str,
    name: &str,
    grace_override: Option<i64>,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let Some(current) = store.get(def.store, namespace, name).cloned() else {
        return Err(ApiError::not_found(&def.qualified(), name));
    };
    let has_finalizers = current["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let graceful = match def.store {
        "pods" => pod_grace(&current, grace_override),
        "namespaces" => Some(0),
        _ if has_finalizers => Some(0),
        _ => None,
    };
    let Some(grace) = graceful else {
        if dry_run {
            return Ok(current);
        }
        return store
            .remove(def.store, namespace, name)
            .ok_or_else(|| ApiError::not_found(&def.qualified(), name));
    };
    let mut marked = current.clone();
    let already = is_terminating(&current);
    let shorter = current["metadata"]["deletionGracePeriodSeconds"]
        .as_i64()
        .is_none_or(|g| grace < g);
    if already && !shorter {
        return Ok(current);
    }
    let deadline = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace.max(0));
    marked["metadata"]["deletionTimestamp"] =
        json!(deadline.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
    if def.store == "namespaces" {
        marked["status"]["phase"] = json!("Terminating");
    }
    if dry_run {
        return Ok(marked);
    }
    Ok(store.update(def.store, marked))
}

/// `None` means "remove now": unscheduled or finished pods, or a zero grace period.
fn pod_grace(pod: &Value, grace_override: Option<i64>) -> Option<i64> {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if pod["spec"]["nodeName"].is_null() || matches!(phase, "Succeeded" | "Failed") {
        return None;
    }
    let grace = grace_override
        .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30);
    (grace > 0).then_some(grace)
}

/// The Eviction subresource: delete the pod unless that would break its disruption
/// budget, in which case answer 429 as the real API server does.
pub fn evict(
    store: &mut Store,
    pods: &ResourceDef,
    namespace: &str,
    name: &str,
    grace: Option<i64>,
    dry_run: bool,
) -> Result<(), ApiError> {
    let Some(pod) = store.get("pods", namespace, name).cloned() else {
        return Err(ApiError::not_found("pods", name));
    };
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    let ignores_budget =
        is_terminating(&pod) || matches!(phase, "Succeeded" | "Failed" | "Pending");
    if !ignores_budget {
        let budgets: Vec<Value> = store
            .iter("poddisruptionbudgets", Some(namespace), None)
            .filter(|pdb| budget_selects(pdb, &pod))
            .cloned()
            .collect();
        if budgets.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(pdb) = budgets.into_iter().next() {
            check_budget(store, &pdb, &pod, dry_run)?;
        }
    }
    delete(store, pods, namespace, name, grace, dry_run).map(|_| ())
}

fn budget_selects(pdb: &Value, pod: &Value) -> bool {
    let selector = &pdb["spec"]["selector"];
    // policy/v1: an empty selector selects every pod in the namespace.
    if selector.is_null() || selector.as_object().is_some_and(|m| m.is_empty()) {
        return true;
    }
    selector_matches(selector, pod)
}

fn check_budget(
    store: &mut Store,
    pdb: &Value,
    pod: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let status = &pdb["status"];
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(1);
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    let pdb_name = name_of(pdb).to_owned();
    if observed < generation {
        return Err(ApiError::too_many_requests(
            "Cannot evict pod as it would violate the pod's disruption budget.",
            Some(
                json!({"causes": [{"reason": "DisruptionBudget", "message": format!("The disruption budget {pdb_name} is still being processed by the server.")}]}),
            ),
        ));
    }
    let current = status["currentHealthy"].as_i64().unwrap_or(0);
    let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
    // unhealthyPodEvictionPolicy IfHealthyBudget: an unready pod may go when the
    // budget is met, without spending a disruption.
    if !pod_serving(pod) && current >= desired {
        return Ok(());
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed <= 0 {
        return Err(ApiError::too_many_requests(
            "Cannot evict pod as it would violate the pod's disruption budget.",
            Some(
                json!({"causes": [{"reason": "DisruptionBudget", "message": format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently")}]}),
            ),
        ));
    }
    if !dry_run {
        let mut spent = pdb.clone();
        spent["status"]["disruptionsAllowed"] = json!(allowed - 1);
        spent["status"]["disruptedPods"][name_of(pod)] = json!(super::store::now_rfc3339());
        store.update("poddisruptionbudgets", spent);
    }
    Ok(())
}
