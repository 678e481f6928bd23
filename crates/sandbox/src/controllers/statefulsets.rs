//! The StatefulSet controller: pods with a stable identity, `<set>-<ordinal>`, each
//! labelled with its name and index and the set's revision. Under `OrderedReady`
//! (the default) it creates them in ordinal order, each only once every lower one is
//! Running and Ready, and scales down from the highest ordinal, one at a time; under
//! `Parallel` it creates and deletes at once. A deleted pod comes back under the same
//! name (with a new UID) once the old one is gone. Under the `RollingUpdate` strategy
//! a changed template replaces pods from the highest ordinal down, one at a time.
//!
//! It must not choose nodes (the scheduler does) nor write any status (the workload
//! status controller does).

use serde_json::{Value, json};

use super::cache::{PodCache, PodSummary};
use super::deployments::template_hash;
use super::{def, new_named_pod, record_event};
use crate::objects::is_terminating;
use crate::ops;
use crate::store::{Store, name_of, namespace_of, uid_of};

/// The label a StatefulSet's pods carry with their own name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label with the revision (`<set>-<template hash>`) a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The revision name of a set's current template, as `controller-revision-hash` and
/// `status.updateRevision` show it.
pub fn update_revision(set: &Value) -> String {
    format!(
        "{}-{}",
        name_of(set),
        template_hash(&set["spec"]["template"])
    )
}

/// A pod's ordinal in its set, from its name.
fn ordinal(set: &str, pod: &str) -> Option<usize> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

pub(super) fn reconcile_statefulsets(store: &mut Store, cache: &PodCache) {
    if store.iter("statefulsets", None, None).next().is_none() {
        return;
    }
    let sets: Vec<Value> = store
        .iter("statefulsets", None, None)
        .filter(|s| !is_terminating(s))
        .cloned()
        .collect();
    for set in sets {
        let pods: Vec<&PodSummary> = cache.owned(uid_of(&set)).collect();
        reconcile_one(store, &set, &pods);
    }
}

fn reconcile_one(store: &mut Store, set: &Value, pods: &[&PodSummary]) {
    let name = name_of(set).to_owned();
    let ns = namespace_of(set).to_owned();
    let want = set["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let ordered = set["spec"]["podManagementPolicy"] != "Parallel";
    let revision = update_revision(set);
    let pod_at = |i: usize| pods.iter().find(|p| ordinal(&name, &p.name) == Some(i));

    // Scale up (and recreate deleted pods), lowest ordinal first.
    for i in 0..want {
        match pod_at(i) {
            None => {
                create_pod(store, set, &name, i, &revision);
                if ordered {
                    return;
                }
            }
            // A terminating pod blocks its successor's name until it is gone.
            Some(p) if ordered && (p.terminating || !p.serving) => return,
            Some(_) => {}
        }
    }
    // Scale down from the highest ordinal (and anything that is not an ordinal of ours).
    let mut extra: Vec<&&PodSummary> = pods
        .iter()
        .filter(|p| ordinal(&name, &p.name).is_none_or(|i| i >= want))
        .collect();
    extra.sort_by_key(|p| std::cmp::Reverse(ordinal(&name, &p.name)));
    if ordered && extra.iter().any(|p| p.terminating) {
        return;
    }
    for pod in extra.iter().filter(|p| !p.terminating) {
        delete_pod(store, set, &ns, &pod.name);
        if ordered {
            return;
        }
    }
    if !extra.is_empty() {
        return;
    }
    // A rolling update: the highest outdated pod goes once every pod is ready.
    if set["spec"]["updateStrategy"]["type"] == "OnDelete" {
        return;
    }
    if pods.iter().any(|p| p.terminating || !p.serving) {
        return;
    }
    let outdated = (0..want)
        .rev()
        .filter_map(pod_at)
        .find(|p| store_revision(store, &ns, &p.name).is_some_and(|r| r != revision));
    if let Some(pod) = outdated {
        delete_pod(store, set, &ns, &pod.name);
    }
}

fn store_revision(store: &Store, ns: &str, pod: &str) -> Option<String> {
    store.get("pods", ns, pod)?["metadata"]["labels"][REVISION_LABEL]
        .as_str()
        .map(str::to_owned)
}

fn create_pod(store: &mut Store, set: &Value, name: &str, i: usize, revision: &str) {
    let pod_name = format!("{name}-{i}");
    let labels = [
        (POD_NAME_LABEL, pod_name.clone()),
        (POD_INDEX_LABEL, i.to_string()),
        (REVISION_LABEL, revision.to_owned()),
    ];
    let mut extra = json!({"hostname": pod_name});
    if let Some(service) = set["spec"]["serviceName"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        extra["subdomain"] = json!(service);
    }
    if let Some(created) = new_named_pod(store, set, &pod_name, &labels, &extra) {
        let message = format!(
            "create Pod {} in StatefulSet {name} successful",
            name_of(&created)
        );
        record_event(
            store,
            set,
            "Normal",
            "SuccessfulCreate",
            &message,
            "statefulset-controller",
        );
    }
}

fn delete_pod(store: &mut Store, set: &Value, ns: &str, pod: &str) {
    if ops::delete(store, def("pods"), ns, pod, None, false).is_ok() {
        let message = format!(
            "delete Pod {pod} in StatefulSet {} successful",
            name_of(set)
        );
        record_event(
            store,
            set,
            "Normal",
            "SuccessfulDelete",
            &message,
            "statefulset-controller",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_are_read_from_the_set_name_and_a_number_only() {
        assert_eq!(ordinal("db", "db-0"), Some(0));
        assert_eq!(ordinal("db", "db-12"), Some(12));
        assert_eq!(ordinal("db", "db-x"), None);
        assert_eq!(ordinal("db", "dbx-1"), None);
        assert_eq!(ordinal("db-1", "db-1-0"), Some(0));
    }
}
