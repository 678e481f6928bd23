//! Workload status: the `status` of ReplicaSets, Deployments (replica counts and the
//! Available/Progressing conditions), StatefulSets (counts and revisions) and DaemonSets, counted from the pods each owns,
//! in the shape the real controllers write it.
//!
//! It must not change any spec or create or delete anything: it only reports.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::cache::PodCache;
use super::deployments::template_hash;
use super::statefulsets::{REVISION_LABEL, update_revision};
use super::{owned_by, scaled};
use crate::objects::{node_selector_matches, set_condition};
use crate::store::{Store, labels_of, namespace_of, uid_of};

/// An owner's pods that are not terminating, and how many serve: counted by the
/// cache as pods change, not by walking the owner's pods on every pass.
fn count_pods(cache: &PodCache, owner_uid: &str) -> (i64, i64) {
    cache.owner_counts(owner_uid)
}

pub(super) fn update_workload_status(store: &mut Store, cache: &PodCache) {
    let sets: Vec<Value> = store.iter("replicasets", None, None).cloned().collect();
    for mut rs in sets {
        let (total, ready) = count_pods(cache, uid_of(&rs));
        rs["status"] = json!({
            "replicas": total, "fullyLabeledReplicas": total, "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"],
        });
        strip_zeroes(&mut rs["status"]);
        store.update("replicasets", rs);
    }
    let deployments: Vec<Value> = store.iter("deployments", None, None).cloned().collect();
    for mut d in deployments {
        let ns = namespace_of(&d).to_owned();
        let hash = template_hash(&d["spec"]["template"]);
        let (mut total, mut ready, mut updated) = (0, 0, 0);
        for rs in owned_by(store, "replicasets", &ns, uid_of(&d)) {
            total += rs["status"]["replicas"].as_i64().unwrap_or(0);
            ready += rs["status"]["readyReplicas"].as_i64().unwrap_or(0);
            if rs["metadata"]["labels"]["pod-template-hash"] == hash.as_str() {
                updated += rs["status"]["replicas"].as_i64().unwrap_or(0);
            }
        }
        let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let max_unavailable = scaled(
            &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            want,
            false,
        )
        .unwrap_or(0);
        let mut status = d["status"].clone();
        for (k, v) in [
            ("replicas", total),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("updatedReplicas", updated),
            ("unavailableReplicas", (want - ready).max(0)),
        ] {
            status[k] = json!(v);
        }
        status["observedGeneration"] = d["metadata"]["generation"].clone();
        let available = ready >= want - max_unavailable;
        set_condition(
            &mut status,
            "Available",
            if available { "True" } else { "False" },
            if available {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            },
            if available {
                "Deployment has minimum availability."
            } else {
                "Deployment does not have minimum availability."
            },
        );
        set_condition(
            &mut status,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            "ReplicaSet has successfully progressed.",
        );
        strip_zeroes(&mut status);
        d["status"] = status;
        store.update("deployments", d);
    }
    stateful_set_status(store, cache);
    let sets: Vec<Value> = store.iter("daemonsets", None, None).cloned().collect();
    let nodes: Vec<BTreeMap<String, String>> =
        store.iter("nodes", None, None).map(labels_of).collect();
    for mut ds in sets {
        let desired = nodes
            .iter()
            .filter(|l| node_selector_matches(&ds["spec"]["template"]["spec"], l))
            .count() as i64;
        let (total, ready) = count_pods(cache, uid_of(&ds));
        ds["status"] = json!({
            "desiredNumberScheduled": desired, "currentNumberScheduled": total, "numberMisscheduled": 0,
            "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": total,
            "numberUnavailable": (desired - ready).max(0), "observedGeneration": ds["metadata"]["generation"],
        });
        store.update("daemonsets", ds);
    }
}

/// A StatefulSet's counts, and its revisions: `currentRevision` stays the old one
/// until every pod runs the update revision.
fn stateful_set_status(store: &mut Store, cache: &PodCache) {
    let sets: Vec<Value> = store.iter("statefulsets", None, None).cloned().collect();
    for mut set in sets {
        let update = update_revision(&set);
        let revisions: Vec<(&str, bool)> = cache
            .owned(uid_of(&set))
            .filter(|p| !p.terminating)
            .map(|p| {
                let revision = p.labels.get(REVISION_LABEL).map_or("", String::as_str);
                (revision, p.serving)
            })
            .collect();
        let total = revisions.len() as i64;
        let ready = revisions.iter().filter(|(_, r)| *r).count() as i64;
        let updated = revisions.iter().filter(|(r, _)| *r == update).count() as i64;
        let mut current = set["status"]["currentRevision"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if current.is_empty() || updated == total {
            current = update.clone();
        }
        let current_count = revisions.iter().filter(|(r, _)| *r == current).count() as i64;
        let mut status = json!({
            "replicas": total, "readyReplicas": ready, "availableReplicas": ready,
            "currentReplicas": current_count, "updatedReplicas": updated,
            "currentRevision": current, "updateRevision": update,
            "observedGeneration": set["metadata"]["generation"], "collisionCount": 0,
        });
        strip_zeroes(&mut status);
        // `replicas` and `collisionCount` are not omitempty in StatefulSetStatus.
        status["replicas"] = json!(total);
        status["collisionCount"] = json!(0);
        set["status"] = status;
        store.update("statefulsets", set);
    }
}

/// Kubernetes omits zero-valued integer fields of workload status (`omitempty`).
fn strip_zeroes(status: &mut Value) {
    if let Some(m) = status.as_object_mut() {
        m.retain(|_, v| v.as_i64() != Some(0));
    }
}
