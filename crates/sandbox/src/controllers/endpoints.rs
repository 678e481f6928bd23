//! The endpoints and EndpointSlice controllers: for every Service with a selector,
//! a core/v1 `Endpoints` of the same name and one `discovery.k8s.io/v1`
//! `EndpointSlice` (owned by the Service, so it goes with it) listing the pods it
//! selects: ready ones as addresses, the others as not ready, terminating ones left
//! out of Endpoints and marked `terminating` in the slice, as kube-controller-manager
//! does. `kubectl describe service` reads its `Endpoints:` line from them.
//!
//! It must leave alone Services without a selector (their endpoints are the user's)
//! and must not rewrite an object that has not changed, or the control plane would
//! never settle.

use serde_json::{Value, json};

use super::{def, owner_ref};
use crate::objects::{is_terminating, pod_serving, selector_matches};
use crate::store::{Store, name_of, namespace_of};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// One selected pod, as both objects list it.
struct Backend {
    pod: Value,
    ready: bool,
    terminating: bool,
}

pub(super) fn reconcile_endpoints(store: &mut Store) {
    let services: Vec<Value> = store.iter("services", None, None).cloned().collect();
    for service in &services {
        let selector = &service["spec"]["selector"];
        if selector.as_object().is_none_or(|s| s.is_empty()) {
            continue;
        }
        let ns = namespace_of(service);
        let selector = json!({ "matchLabels": selector });
        let backends: Vec<Backend> = store
            .iter("pods", Some(ns), None)
            .filter(|p| selector_matches(&selector, p) && p["status"]["podIP"].is_string())
            .map(|p| Backend {
                pod: p.clone(),
                ready: pod_serving(p),
                terminating: is_terminating(p),
            })
            .collect();
        write_endpoints(store, service, &backends);
        write_slice(store, service, &backends);
    }
    remove_orphaned_endpoints(store);
}

fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod), "uid": pod["metadata"]["uid"]})
}

/// A Service port's target on the pods: a number as it is, a name through the
/// pods' container ports; None when no pod names it (the port is left out).
fn target_port(port: &Value, backends: &[Backend]) -> Option<Value> {
    match &port["targetPort"] {
        Value::Number(n) => Some(json!(n)),
        Value::String(name) => backends.iter().find_map(|b| {
            b.pod["spec"]["containers"]
                .as_array()?
                .iter()
                .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                .find(|p| p["name"] == name.as_str())
                .map(|p| p["containerPort"].clone())
        }),
        _ => Some(port["port"].clone()),
    }
}

fn ports(service: &Value, backends: &[Backend]) -> Vec<Value> {
    service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let mut out = json!({
                "port": target_port(p, backends)?,
                "protocol": p["protocol"].as_str().unwrap_or("TCP"),
            });
            if let Some(name) = p["name"].as_str().filter(|n| !n.is_empty()) {
                out["name"] = json!(name);
            }
            Some(out)
        })
        .collect()
}

fn write_endpoints(store: &mut Store, service: &Value, backends: &[Backend]) {
    let address = |b: &Backend| {
        let mut a = json!({"ip": b.pod["status"]["podIP"], "targetRef": target_ref(&b.pod)});
        if let Some(node) = b.pod["spec"]["nodeName"].as_str() {
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
    let ports = ports(service, backends);
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

fn write_slice(store: &mut Store, service: &Value, backends: &[Backend]) {
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
                "addresses": [b.pod["status"]["podIP"]],
                "conditions": {"ready": b.ready && !b.terminating, "serving": b.ready, "terminating": b.terminating},
                "targetRef": target_ref(&b.pod),
            });
            if let Some(node) = b.pod["spec"]["nodeName"].as_str() {
                e["nodeName"] = json!(node);
            }
            e
        })
        .collect();
    obj["endpoints"] = json!(endpoints);
    obj["ports"] = json!(ports(service, backends));
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
