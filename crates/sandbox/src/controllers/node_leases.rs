//! Node heartbeats: each node's agent holds the Lease `kube-node-lease/<node>` and
//! renews it on an interval, as a kubelet does (holder the node, 40 s duration, owned
//! by the Node), so `kubectl describe node` shows it. A deleted Lease is recreated on
//! the next pass; a node's Lease goes with its node (the garbage collector's work on
//! a real cluster, through the owner reference).
//!
//! It must not touch the Node object itself: node conditions are the kubelet's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::def;
use crate::objects::prepare_create;
use crate::store::{Store, name_of, uid_of};

pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// A kubelet's `nodeLeaseDurationSeconds`.
const LEASE_DURATION_SECONDS: i64 = 40;

/// Now as a `MicroTime` (RFC 3339, six fractional digits, UTC).
fn micro_now() -> String {
    let now = jiff::Timestamp::now();
    format!(
        "{}.{:06}Z",
        now.strftime("%Y-%m-%dT%H:%M:%S"),
        now.subsec_microsecond()
    )
}

/// Creates or renews every node's Lease that is missing or due, and drops the Leases
/// of nodes that are gone.
pub(super) fn renew(
    store: &mut Store,
    renewed: &mut HashMap<String, Instant>,
    now: Instant,
    interval: Duration,
) {
    let nodes: Vec<(String, String)> = store
        .iter("nodes", None, None)
        .map(|n| (name_of(n).to_owned(), uid_of(n).to_owned()))
        .collect();
    renewed.retain(|node, _| nodes.iter().any(|(n, _)| n == node));
    let orphaned: Vec<String> = store
        .iter("leases", Some(NODE_LEASE_NAMESPACE), None)
        .filter(|l| l["metadata"]["ownerReferences"][0]["kind"] == "Node")
        .filter(|l| !nodes.iter().any(|(n, _)| n == name_of(l)))
        .map(|l| name_of(l).to_owned())
        .collect();
    for lease in orphaned {
        store.remove("leases", NODE_LEASE_NAMESPACE, &lease);
    }
    for (node, uid) in nodes {
        let existing = store.get("leases", NODE_LEASE_NAMESPACE, &node).cloned();
        let due = renewed.get(&node).is_none_or(|at| *at + interval <= now);
        if existing.is_none() || due {
            write_lease(store, existing, &node, &uid);
            renewed.insert(node, now);
        }
    }
}

fn write_lease(store: &mut Store, existing: Option<Value>, node: &str, uid: &str) {
    if let Some(mut lease) = existing {
        lease["spec"]["renewTime"] = json!(micro_now());
        store.update("leases", lease);
        return;
    }
    let mut lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {
            "name": node, "namespace": NODE_LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}],
        },
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": micro_now(),
        },
    });
    if prepare_create(def("leases"), &mut lease).is_ok() {
        let _ = store.create("leases", "leases.coordination.k8s.io", lease, false);
    }
}
