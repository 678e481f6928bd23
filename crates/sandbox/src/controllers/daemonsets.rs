//! The DaemonSet controller: one pod per node whose labels match the template's node
//! selector, created already bound to that node; pods on nodes that no longer match
//! are deleted.
//!
//! It must not go through the scheduler, and it must not write DaemonSet status (the
//! workload status controller does).

use serde_json::Value;

use super::cache::{PodCache, PodSummary};
use super::{def, new_pod};
use crate::objects::{is_terminating, node_selector_matches};
use crate::ops;
use crate::store::{Store, labels_of, name_of, namespace_of, uid_of};

pub(super) fn reconcile_daemonsets(store: &mut Store, cache: &PodCache) {
    if store.iter("daemonsets", None, None).next().is_none() {
        return;
    }
    let nodes: Vec<Value> = store.iter("nodes", None, None).cloned().collect();
    let sets: Vec<Value> = store
        .iter("daemonsets", None, None)
        .filter(|d| !is_terminating(d))
        .cloned()
        .collect();
    for ds in sets {
        let ns = namespace_of(&ds).to_owned();
        let pods: Vec<&PodSummary> = cache.owned(uid_of(&ds)).collect();
        let eligible: Vec<&Value> = nodes
            .iter()
            .filter(|n| node_selector_matches(&ds["spec"]["template"]["spec"], &labels_of(n)))
            .collect();
        for node in &eligible {
            let has = pods
                .iter()
                .any(|p| p.node.as_deref() == Some(name_of(node)) && !p.terminating);
            if !has {
                new_pod(store, &ds, Some(name_of(node)));
            }
        }
        for pod in &pods {
            let on = pod.node.as_deref().unwrap_or("");
            if !pod.terminating && !eligible.iter().any(|n| name_of(n) == on) {
                let _ = ops::delete(store, def("pods"), &ns, &pod.name, None, false);
            }
        }
    }
}
