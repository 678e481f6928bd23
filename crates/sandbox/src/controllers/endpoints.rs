//! The endpoints and EndpointSlice controllers: for every Service with a selector,
//! a core/v1 `Endpoints` of the same name and one `discovery.k8s.io/v1`
//! `EndpointSlice` (owned by the Service, so it goes with it) listing the pods it
//! selects: ready ones as addresses, the others as not ready, terminating ones left
//! out of Endpoints and marked `terminating` in the slice, as kube-controller-manager
//! does. `kubectl describe service` reads its `Endpoints:` line from them.
//!
//! It must leave alone Services without a selector (their endpoints are the user's)
//! and must not rewrite an object that has not changed, or the control plane would
//! never settle. It redoes only the Services the pod cache marked dirty (one of their
//! pods, the Service itself or its output changed), so a pass costs what changed.

use serde_json::{Value, json};

use super::cache::{PodCache, Selecting, SelectionId};
use super::{def, owner_ref};
use crate::objects::{is_terminating, pod_serving};
use crate::store::{Store, name_of, namespace_of};

pub(super) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub(super) const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub(super) const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// One selected pod with an IP, as both objects list it.
struct Backend {
    ip: Value,
    node: Option<String>,
    target_ref: Value,
    ready: bool,
    terminating: bool,
}

/// Writes the Endpoints and EndpointSlice of every dirty Service; returns how many
/// Services it redid.
pub(super) fn reconcile_endpoints(store: &mut Store, cache: &mut PodCache) -> usize {
    let dirty = cache.take_dirty(Selecting::Service);
    for id in &dirty {
        let Some(service) = store.get("services", &id.0, &id.2).cloned() else {
            continue;
        };
        let (backends, ports) = backends(store, cache, id, &service);
        let before = store.resource_version();
        write_endpoints(store, &service, &backends, &ports);
        cache.own_write(store, before);
        let before = store.resource_version();
        write_slice(store, &service, &backends, &ports);
        cache.own_write(store, before);
    }
    remove_orphaned_endpoints(store);
    dirty.len()
}

/// The selected pods that have an IP, in (namespace, name) order, and the Service's
/// ports on them.
fn backends(
    store: &Store,
    cache: &PodCache,
    id: &SelectionId,
    service: &Value,
) -> (Vec<Backend>, Vec<Value>) {
    let pods: Vec<&Value> = cache
        .selected(id)
        .filter_map(|((ns, name), _)| store.get("pods", ns, name))
        .filter(|p| p["status"]["podIP"].is_string())
        .collect();
    let ports = ports(service, &pods);
    let backends = pods
        .iter()
        .map(|p| Backend {
            ip: p["status"]["podIP"].clone(),
            node: p["spec"]["nodeName"].as_str().map(str::to_owned),
            target_ref: target_ref(p),
            ready: pod_serving(p),
            terminating: is_terminating(p),
        })
        .collect();
    (backends, ports)
}

fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod), "uid": pod["metadata"]["uid"]})
}

/// A Service port's target on the pods: a number as it is, a name through the
/// pods' container ports; None when no pod names it (the port is left out).
fn target_port(port: &Value, pods: &[&Value]) -> Option<Value> {
    match &port["targetPort"] {
        Value::Number(n) => Some(json!(n)),
        Value::String(name) => pods.iter().find_map(|pod| {
            pod["spec"]["containers"]
                .as_array()?
                .iter()
                .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                .find(|p| p["name"] == name.as_str())
                .map(|p| p["containerPort"].clone())
        }),
        _ => Some(port["port"].clone()),
    }
}

fn ports(service: &Value, pods: &[&Value]) -> Vec<Value> {
    service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let mut out = json!({
                "port": target_port(p, pods)?,
                "protocol": p["protocol"].as_str().unwrap_or("TCP"),
            });
            if let Some(name) = p["name"].as_str().filter(|n| !n.is_empty()) {
                out["name"] = json!(name);
            }
            Some(out)
        })
        .collect()
}

fn write_endpoints(store: &mut Store, service: &Value, backends: &[Backend], ports: &[Value]) {
    let address = |b: &Backend| {
        let mut a = json!({"ip": b.ip, "targetRef": b.target_ref});
        if let Some(node) = &b.node {
            a["nodeName"] = json!(node);
        }
        a
    };
    let live = || backends.iter().filter(|b| !b.terminating);
    let ready: Vec<Value> = live().filter(|b| b.ready).map(address).collect();
    let not_ready: Vec<Value> = live().filter(|b| !b.ready).map(address).collect();
    let mut subset = json!({});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    let (ns, name) = (namespace_of(service), name_of(service));
    let existing = store.get("endpoints", ns, name).cloned();
    let mut obj = existing.clone().unwrap_or_else(|| {
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns}})
    });
    let labels = &service["metadata"]["labels"];
    if labels.as_object().is_some_and(|l| !l.is_empty()) {
        obj["metadata"]["labels"] = labels.clone();
    }
    let Some(fields) = obj.as_object_mut() else {
        return;
    };
    if subset.as_object().is_some_and(|s| !s.is_empty()) && !ports.is_empty() {
        subset["ports"] = json!(ports);
        fields.insert("subsets".into(), json!([subset]));
    } else {
        fields.remove("subsets");
    }
    save(store, "endpoints", existing.is_some(), obj);
}

fn write_slice(store: &mut Store, service: &Value, backends: &[Backend], ports: &[Value]) {
    let (ns, service_name) = (namespace_of(service), name_of(service));
    let existing = store
        .iter("endpointslices", Some(ns), None)
        .find(|s| {
            s["metadata"]["labels"][SERVICE_NAME_LABEL] == service_name
                && s["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY
        })
        .cloned();
    let mut obj = match &existing {
        Some(slice) => slice.clone(),
        None => {
            let name = format!("{service_name}-{}", store.random_suffix());
            json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {
                    "name": name, "namespace": ns, "generateName": format!("{service_name}-"),
                    "labels": {SERVICE_NAME_LABEL: service_name, MANAGED_BY_LABEL: MANAGED_BY},
                    "ownerReferences": [owner_ref(service)],
                },
                "addressType": "IPv4",
            })
        }
    };
    let endpoints: Vec<Value> = backends
        .iter()
        .map(|b| {
            let mut e = json!({
                "addresses": [b.ip],
                "conditions": {"ready": b.ready && !b.terminating, "serving": b.ready, "terminating": b.terminating},
                "targetRef": b.target_ref,
            });
            if let Some(node) = &b.node {
                e["nodeName"] = json!(node);
            }
            e
        })
        .collect();
    obj["endpoints"] = json!(endpoints);
    obj["ports"] = json!(ports);
    save(store, "endpointslices", existing.is_some(), obj);
}

fn save(store: &mut Store, bucket: &'static str, exists: bool, obj: Value) {
    if exists {
        store.update(bucket, obj);
    } else {
        let _ = store.create(bucket, &def(bucket).qualified(), obj, false);
    }
}

/// The Endpoints and the managed slices of a deleted Service go with it (the
/// garbage collector would take the slices by their owner reference).
fn remove_orphaned_endpoints(store: &mut Store) {
    let gone = |o: &Value, service: &str| !store.contains("services", namespace_of(o), service);
    let key = |o: &Value| (namespace_of(o).to_owned(), name_of(o).to_owned());
    let endpoints: Vec<(String, String)> = store
        .iter("endpoints", None, None)
        .filter(|e| gone(e, name_of(e)))
        .map(key)
        .collect();
    let slices: Vec<(String, String)> = store
        .iter("endpointslices", None, None)
        .filter(|s| {
            let labels = &s["metadata"]["labels"];
            labels[MANAGED_BY_LABEL] == MANAGED_BY
                && gone(s, labels[SERVICE_NAME_LABEL].as_str().unwrap_or(""))
        })
        .map(key)
        .collect();
    for (ns, name) in endpoints {
        store.remove("endpoints", &ns, &name);
    }
    for (ns, name) in slices {
        store.remove("endpointslices", &ns, &name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, app: &str, ip: u8, ready: bool) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": format!("10.0.0.{ip}"),
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        })
    }

    fn service(name: &str, app: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"app": app}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]},
        })
    }

    /// One pass from the cache kept across passes; how many Services it redid.
    fn pass(store: &mut Store, cache: &mut PodCache) -> usize {
        cache.sync(store);
        let redone = reconcile_endpoints(store, cache);
        cache.sync(store);
        redone
    }

    /// What a controller starting from scratch (a fresh cache, every Service dirty)
    /// would write is what is stored: it writes nothing.
    fn assert_matches_scratch(store: &mut Store) {
        let rv = store.resource_version();
        let mut fresh = PodCache::default();
        fresh.sync(store);
        reconcile_endpoints(store, &mut fresh);
        assert_eq!(
            store.resource_version(),
            rv,
            "a from-scratch pass rewrote endpoints"
        );
    }

    fn addresses(store: &Store, service: &str) -> Vec<String> {
        let subsets = &store.get("endpoints", "shop", service).unwrap()["subsets"];
        let mut out: Vec<String> = ["addresses", "notReadyAddresses"]
            .iter()
            .flat_map(|k| subsets[0][k].as_array().cloned().unwrap_or_default())
            .map(|a| a["targetRef"]["name"].as_str().unwrap().to_owned())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn incrementally_kept_endpoints_match_ones_computed_from_scratch() {
        let mut store = Store::new(1000);
        for (i, (name, app)) in [("a", "web"), ("b", "web"), ("c", "api")]
            .iter()
            .enumerate()
        {
            store
                .create("pods", "pods", pod(name, app, i as u8, true), false)
                .unwrap();
        }
        for (name, app) in [("web", "web"), ("api", "api")] {
            store
                .create("services", "services", service(name, app), false)
                .unwrap();
        }
        let mut cache = PodCache::default();
        assert_eq!(pass(&mut store, &mut cache), 2);
        assert_matches_scratch(&mut store);
        assert_eq!(addresses(&store, "web"), ["a", "b"]);
        let steps: Vec<Box<dyn Fn(&mut Store)>> = vec![
            Box::new(|s| {
                s.remove("pods", "shop", "a");
            }),
            Box::new(|s| {
                s.create("pods", "pods", pod("d", "web", 4, false), false)
                    .unwrap();
            }),
            Box::new(|s| {
                s.update("pods", pod("c", "web", 2, true));
            }),
            Box::new(|s| {
                let mut leaving = pod("b", "web", 1, true);
                leaving["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                s.update("pods", leaving);
            }),
            Box::new(|s| {
                s.update("services", service("api", "web"));
            }),
            // Someone else's edit of the output is put right.
            Box::new(|s| {
                let mut edited = s.get("endpoints", "shop", "web").cloned().unwrap();
                edited["subsets"] = json!([]);
                s.update("endpoints", edited);
            }),
        ];
        for step in steps {
            step(&mut store);
            pass(&mut store, &mut cache);
            assert_matches_scratch(&mut store);
        }
        assert_eq!(addresses(&store, "web"), ["c", "d"], "b is terminating");
        assert_eq!(addresses(&store, "api"), ["c", "d"]);
        let slice = store
            .iter("endpointslices", Some("shop"), None)
            .find(|s| s["metadata"]["labels"][SERVICE_NAME_LABEL] == "web")
            .unwrap();
        assert_eq!(slice["endpoints"].as_array().unwrap().len(), 3);
        assert_eq!(
            slice["ports"],
            json!([{"port": 8080, "protocol": "TCP", "name": "web"}])
        );
    }

    /// The bug this pins: every pass rebuilt every Service's endpoints from every pod
    /// of its namespace, so one DELETE among 1,000 pods cost a scan of all of them.
    #[test]
    fn a_pass_after_one_pod_delete_redoes_only_its_service() {
        let mut store = Store::new(1000);
        for i in 0..20u8 {
            let app = if i % 2 == 0 { "web" } else { "api" };
            store
                .create("pods", "pods", pod(&format!("p{i}"), app, i, true), false)
                .unwrap();
        }
        for (name, app) in [("web", "web"), ("api", "api")] {
            store
                .create("services", "services", service(name, app), false)
                .unwrap();
        }
        let mut cache = PodCache::default();
        assert_eq!(pass(&mut store, &mut cache), 2);
        assert_eq!(
            pass(&mut store, &mut cache),
            0,
            "its own writes do not count"
        );
        store.remove("pods", "shop", "p4");
        assert_eq!(pass(&mut store, &mut cache), 1);
        assert_eq!(addresses(&store, "web").len(), 9);
        assert_eq!(pass(&mut store, &mut cache), 0);
        assert_matches_scratch(&mut store);
    }
}
