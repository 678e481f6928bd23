//! The ReplicaSet controller: creates pods from the template up to `spec.replicas`
//! and, scaling down, deletes the least useful ones first (unscheduled, then unready,
//! then newest).
//!
//! It must not choose nodes (the scheduler does) nor write any status (the workload
//! status controller does).

use serde_json::Value;

use super::cache::{PodCache, PodSummary};
use super::{def, new_pod, record_event};
use crate::objects::is_terminating;
use crate::ops;
use crate::store::{Store, namespace_of, uid_of};

/// Pods to remove first when scaling down: unscheduled, then unready, then newest.
fn deletion_rank(pod: &PodSummary) -> (bool, bool, std::cmp::Reverse<String>) {
    (
        pod.node.is_some(),
        pod.serving,
        std::cmp::Reverse(pod.created.clone()),
    )
}

pub(super) fn reconcile_replicasets(store: &mut Store, cache: &PodCache) {
    let sets: Vec<Value> = store
        .iter("replicasets", None, None)
        .filter(|r| !is_terminating(r))
        .cloned()
        .collect();
    for rs in sets {
        let ns = namespace_of(&rs).to_owned();
        let mut pods: Vec<&PodSummary> = cache
            .owned(uid_of(&rs))
            .filter(|p| !p.terminating)
            .collect();
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        if pods.len() < want {
            for _ in pods.len()..want {
                new_pod(store, &rs, None);
            }
        } else if pods.len() > want {
            pods.sort_by_key(|p| deletion_rank(p));
            for pod in pods.iter().take(pods.len() - want) {
                if ops::delete(store, def("pods"), &ns, &pod.name, None, false).is_ok() {
                    let message = format!("Deleted pod: {}", pod.name);
                    record_event(
                        store,
                        &rs,
                        "Normal",
                        "SuccessfulDelete",
                        &message,
                        "replicaset-controller",
                    );
                }
            }
        }
    }
}
