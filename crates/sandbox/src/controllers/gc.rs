//! Cleanup controllers: the namespace controller (empties a terminating namespace,
//! then lets it go), event expiry (`--event-ttl`), the pod garbage collector (pods
//! bound to a vanished node) and background cascading deletion of orphans.
//!
//! Outside a terminating namespace it must not delete anything that still has a live
//! controller owner, and it deletes through `ops::delete` (graceful, finalizer-aware)
//! wherever the API server would.

use std::collections::HashSet;

use super::cache::{Key, PodCache};
use super::def;
use crate::objects::{controller_of, is_terminating};
use crate::ops;
use crate::resources;
use crate::store::{Store, name_of, namespace_of, uid_of};

pub(super) fn finalize_namespaces(store: &mut Store) {
    let doomed: Vec<String> = store
        .iter("namespaces", None, None)
        .filter(|ns| is_terminating(ns))
        .map(|ns| name_of(ns).to_owned())
        .collect();
    for ns in doomed {
        let mut left = 0;
        for r in resources::RESOURCES
            .iter()
            .filter(|r| r.namespaced && r.version == "v1")
        {
            let names: Vec<String> = store
                .iter(r.store, Some(&ns), None)
                .map(|o| name_of(o).to_owned())
                .collect();
            left += names.len();
            for name in names {
                let _ = ops::delete(store, r, &ns, &name, None, false);
            }
        }
        if left == 0 {
            store.remove("namespaces", "", &ns);
        }
    }
}

/// Events live an hour from when they were stored, as with the API server's default
/// `--event-ttl` (an etcd lease), whatever times the event itself reports.
const EVENT_TTL_SECONDS: i64 = 3600;

/// Background cascading deletion: an object whose controller owner is gone goes too.
/// Pods are found through the cache's owner and node indexes, so a pass costs the
/// number of owners and nodes, not of pods.
pub(super) fn collect_garbage(store: &mut Store, cache: &mut PodCache) {
    cache.sync(store);
    let cutoff = jiff::Timestamp::now().as_second() - EVENT_TTL_SECONDS;
    for (ns, name) in cache.events_before(cutoff) {
        store.remove("events", &ns, &name);
    }
    // The pod garbage collector: pods bound to a node that no longer exists go.
    let nodes: HashSet<String> = store
        .iter("nodes", None, None)
        .map(|n| name_of(n).to_owned())
        .collect();
    let mut stranded: Vec<Key> = cache
        .by_node()
        .filter(|(node, _)| !nodes.contains(*node))
        .flat_map(|(_, keys)| keys.iter().cloned())
        .collect();
    stranded.sort();
    for (ns, name) in stranded {
        store.remove("pods", &ns, &name);
    }
    cache.sync(store);
    let mut uids = HashSet::new();
    for kind in [
        "deployments",
        "replicasets",
        "daemonsets",
        "statefulsets",
        "jobs",
        "nodes",
    ] {
        uids.extend(store.iter(kind, None, None).map(|o| uid_of(o).to_owned()));
    }
    let orphan_sets: Vec<(String, String)> = store
        .iter("replicasets", None, None)
        .filter(|o| {
            controller_of(o).is_some_and(|r| !uids.contains(r["uid"].as_str().unwrap_or("")))
        })
        .filter(|o| !is_terminating(o))
        .map(|o| (namespace_of(o).to_owned(), name_of(o).to_owned()))
        .collect();
    for (ns, name) in orphan_sets {
        let _ = ops::delete(store, def("replicasets"), &ns, &name, None, false);
    }
    let mut orphan_pods: Vec<Key> = cache
        .owners()
        .filter(|owner| !uids.contains(*owner))
        .flat_map(|owner| cache.owned_keys(owner))
        .filter(|key| cache.pod(key).is_some_and(|p| !p.terminating))
        .cloned()
        .collect();
    orphan_pods.sort();
    for (ns, name) in orphan_pods {
        let _ = ops::delete(store, def("pods"), &ns, &name, None, false);
    }
}
