//! The scheduler: binds each pending pod to a Ready node that matches its node
//! selector and is not cordoned (unless the pod tolerates it), spreading a controller's
//! pods across nodes first and total load second; an unschedulable pod gets the
//! `PodScheduled=False` condition with the reasons kubectl shows.
//!
//! It must not start or stop pods: binding (`spec.nodeName`) is all it writes, and
//! the kubelet takes over from there.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::cache::PodCache;
use super::record_event;
use crate::objects::{condition_is_true, controller_of, node_selector_matches, set_condition};
use crate::store::{Store, labels_of, name_of, namespace_of};

fn tolerates_unschedulable(pod: &Value) -> bool {
    pod["spec"]["tolerations"].as_array().is_some_and(|ts| {
        ts.iter().any(|t| {
            (t["key"] == "node.kubernetes.io/unschedulable"
                || (t["key"].is_null() && t["operator"] == "Exists"))
                && (t["effect"].is_null() || t["effect"] == "NoSchedule")
        })
    })
}

/// Only the pending pods are looked at; the load per node and per owner comes from
/// the cache, which keeps it up to date as pods are bound and removed.
pub(super) fn schedule(store: &mut Store, cache: &PodCache) {
    let pending: Vec<Value> = cache
        .pending()
        .iter()
        .filter_map(|(ns, name)| store.get("pods", ns, name).cloned())
        .collect();
    if pending.is_empty() {
        return;
    }
    let nodes: Vec<(Value, BTreeMap<String, String>)> = store
        .iter("nodes", None, None)
        .map(|n| (n.clone(), labels_of(n)))
        .collect();
    // Spreading ignores pods on their way out, like topology spreading; the load
    // counts every pod bound to a node.
    let mut load = cache.node_load();
    let mut owner_load = cache.owner_load().clone();
    for mut pod in pending {
        let owner = controller_of(&pod)
            .and_then(|r| r["uid"].as_str())
            .unwrap_or("")
            .to_owned();
        let (mut cordoned, mut mismatched) = (0, 0);
        let candidates: Vec<&Value> = nodes
            .iter()
            .filter(|(n, labels)| {
                let ok_sched = n["spec"]["unschedulable"] != true || tolerates_unschedulable(&pod);
                let ok_sel = node_selector_matches(&pod["spec"], labels);
                cordoned += usize::from(!ok_sched);
                mismatched += usize::from(ok_sched && !ok_sel);
                ok_sched && ok_sel && condition_is_true(&n["status"], "Ready")
            })
            .map(|(n, _)| n)
            .collect();
        let best = candidates.into_iter().min_by_key(|n| {
            let name = name_of(n).to_owned();
            (
                owner_load
                    .get(&(name.clone(), owner.clone()))
                    .copied()
                    .unwrap_or(0),
                load.get(&name).copied().unwrap_or(0),
                name,
            )
        });
        match best {
            Some(node) => {
                let node = name_of(node).to_owned();
                *load.entry(node.clone()).or_default() += 1;
                *owner_load.entry((node.clone(), owner)).or_default() += 1;
                pod["spec"]["nodeName"] = json!(node);
                set_condition(&mut pod["status"], "PodScheduled", "True", "", "");
                let stored = store.update("pods", pod);
                record_event(
                    store,
                    &stored,
                    "Normal",
                    "Scheduled",
                    &format!(
                        "Successfully assigned {}/{} to {node}",
                        namespace_of(&stored),
                        name_of(&stored)
                    ),
                    "default-scheduler",
                );
            }
            None => {
                let mut why = Vec::new();
                if cordoned > 0 {
                    why.push(format!("{cordoned} node(s) were unschedulable"));
                }
                if mismatched > 0 {
                    why.push(format!(
                        "{mismatched} node(s) didn't match Pod's node affinity/selector"
                    ));
                }
                let message = format!("0/{} nodes are available: {}.", nodes.len(), why.join(", "));
                set_condition(
                    &mut pod["status"],
                    "PodScheduled",
                    "False",
                    "Unschedulable",
                    &message,
                );
                store.update("pods", pod);
            }
        }
    }
}
