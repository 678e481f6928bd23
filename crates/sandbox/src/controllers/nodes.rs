//! The node lifecycle controller's part that shows in a node's spec: a cordoned
//! node (`spec.unschedulable`) carries the `node.kubernetes.io/unschedulable`
//! NoSchedule taint, and loses it when uncordoned.

use serde_json::{Value, json};

use crate::store::{Store, now_rfc3339};

pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

pub(super) fn reconcile_unschedulable_taints(store: &mut Store) {
    let nodes: Vec<Value> = store.iter("nodes", None, None).cloned().collect();
    for mut node in nodes {
        let cordoned = node["spec"]["unschedulable"] == true;
        let taints = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let tainted = taints.iter().any(|t| t["key"] == UNSCHEDULABLE_TAINT);
        if cordoned == tainted {
            continue;
        }
        let mut taints: Vec<Value> = taints
            .into_iter()
            .filter(|t| t["key"] != UNSCHEDULABLE_TAINT)
            .collect();
        if cordoned {
            taints.push(json!({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": now_rfc3339()}));
        }
        match node["spec"].as_object_mut() {
            Some(spec) if taints.is_empty() => {
                spec.remove("taints");
            }
            Some(spec) => {
                spec.insert("taints".into(), Value::Array(taints));
            }
            None => continue,
        }
        store.update("nodes", node);
    }
}
