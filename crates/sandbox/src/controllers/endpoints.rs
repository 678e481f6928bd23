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
//! pods, the Service itself or its output changed), and re-renders only the pods that
//! changed; assembling and writing the two objects still costs their size.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::cache::{Key, PodCache, Selecting, SelectionId, Touched};
use super::{def, owner_ref};
use crate::objects::{is_terminating, pod_serving};
use crate::store::{Store, name_of, namespace_of};

pub(super) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub(super) const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub(super) const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// One selected pod with an IP, as both objects list it, rendered when it changed.
struct Backend {
    /// Its entry in the Endpoints' addresses.
    address: Value,
    /// Its entry in the EndpointSlice.
    endpoint: Value,
    ready: bool,
    terminating: bool,
}

impl Backend {
    fn of(pod: &Value) -> Self {
        let (ready, terminating) = (pod_serving(pod), is_terminating(pod));
        let ip = &pod["status"]["podIP"];
        let mut address = json!({"ip": ip, "targetRef": target_ref(pod)});
        let mut endpoint = json!({
            "addresses": [ip],
            "conditions": {"ready": ready && !terminating, "serving": ready, "terminating": terminating},
            "targetRef": target_ref(pod),
        });
        if let Some(node) = pod["spec"]["nodeName"].as_str() {
            address["nodeName"] = json!(node);
            endpoint["nodeName"] = json!(node);
        }
        Self {
            address,
            endpoint,
            ready,
            terminating,
        }
    }
}

/// The controller's memory between passes: per Service, its selected pods that have
/// an IP, each as both objects list it, so a pass re-renders only the pods that
/// changed (as the real controller keeps its EndpointSlice tracker). Assembling and
/// writing the two objects still costs their size.
#[derive(Default)]
pub(super) struct Backends {
    by_service: HashMap<SelectionId, BTreeMap<Key, Backend>>,
}

/// Writes the Endpoints and EndpointSlice of every dirty Service; returns how many
/// Services it redid.
pub(super) fn reconcile_endpoints(
    store: &mut Store,
    cache: &mut PodCache,
    backends: &mut Backends,
) -> usize {
    let dirty = cache.take_dirty(Selecting::Service);
    backends.by_service.retain(|id, _| cache.has_selection(id));
    for (id, touched) in &dirty {
        let Some(service) = store.get("services", &id.0, &id.2).cloned() else {
            continue;
        };
        let rendered = backends.by_service.entry(id.clone()).or_default();
        rerender(store, cache, id, touched, rendered);
        let pods: Vec<&Value> = if service_ports_need_pods(&service) {
            rendered
                .keys()
                .filter_map(|(ns, name)| store.get("pods", ns, name))
                .collect()
        } else {
            Vec::new()
        };
        let ports = ports(&service, &pods);
        let before = store.resource_version();
        write_endpoints(store, &service, rendered, &ports);
        cache.own_write(store, before);
        let before = store.resource_version();
        write_slice(store, &service, rendered, &ports);
        cache.own_write(store, before);
    }
    remove_orphaned_endpoints(store);
    dirty.len()
}

/// Brings a Service's rendered pods up to date: all of them when its selection was
/// recomputed, else only the pods that changed.
fn rerender(
    store: &Store,
    cache: &PodCache,
    id: &SelectionId,
    touched: &Touched,
    rendered: &mut BTreeMap<Key, Backend>,
) {
    let keys: Vec<Key> = if touched.all {
        rendered.clear();
        cache.selected(id).map(|(key, _)| key.clone()).collect()
    } else {
        touched.pods.iter().cloned().collect()
    };
    for key in keys {
        rendered.remove(&key);
        if !cache.is_selected(id, &key) {
            continue;
        }
        if let Some(pod) = store
            .get("pods", &key.0, &key.1)
            .filter(|p| p["status"]["podIP"].is_string())
        {
            rendered.insert(key, Backend::of(pod));
        }
    }
}

/// A named `targetPort` is looked up on the pods' containers.
fn service_ports_need_pods(service: &Value) -> bool {
    service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["targetPort"].is_string())
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

fn write_endpoints(
    store: &mut Store,
    service: &Value,
    backends: &BTreeMap<Key, Backend>,
    ports: &[Value],
) {
    let live = || backends.values().filter(|b| !b.terminating);
    let ready: Vec<Value> = live()
        .filter(|b| b.ready)
        .map(|b| b.address.clone())
        .collect();
    let not_ready: Vec<Value> = live()
        .filter(|b| !b.ready)
        .map(|b| b.address.clone())
        .collect();
    let mut subset = json!({});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    let (ns, name) = (namespace_of(service), name_of(service));
    // The old addresses are replaced, so they are not copied.
    let existing = store
        .get("endpoints", ns, name)
        .map(|e| without(e, &["subsets"]));
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

fn write_slice(
    store: &mut Store,
    service: &Value,
    backends: &BTreeMap<Key, Backend>,
    ports: &[Value],
) {
    let (ns, service_name) = (namespace_of(service), name_of(service));
    let existing = store
        .iter("endpointslices", Some(ns), None)
        .find(|s| {
            s["metadata"]["labels"][SERVICE_NAME_LABEL] == service_name
                && s["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY
        })
        .map(|s| without(s, &["endpoints", "ports"]));
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
    let endpoints: Vec<Value> = backends.values().map(|b| b.endpoint.clone()).collect();
    obj["endpoints"] = json!(endpoints);
    obj["ports"] = json!(ports);
    save(store, "endpointslices", existing.is_some(), obj);
}

/// A copy of an object without the fields about to be rewritten (the big ones).
fn without(obj: &Value, fields: &[&str]) -> Value {
    match obj.as_object() {
        Some(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !fields.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => obj.clone(),
    }
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

    /// One change to the store between two passes.
    type Step<'a> = Box<dyn Fn(&mut Store) + 'a>;

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
    fn pass(store: &mut Store, cache: &mut PodCache, backends: &mut Backends) -> usize {
        cache.sync(store);
        let redone = reconcile_endpoints(store, cache, backends);
        cache.sync(store);
        redone
    }

    /// What a controller starting from scratch (a fresh cache, every Service dirty)
    /// would write is what is stored: it writes nothing.
    fn assert_matches_scratch(store: &mut Store) {
        let rv = store.resource_version();
        let mut fresh = PodCache::default();
        fresh.sync(store);
        reconcile_endpoints(store, &mut fresh, &mut Backends::default());
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
        let (mut cache, mut kept) = (PodCache::default(), Backends::default());
        assert_eq!(pass(&mut store, &mut cache, &mut kept), 2);
        assert_matches_scratch(&mut store);
        assert_eq!(addresses(&store, "web"), ["a", "b"]);
        let steps: Vec<Step> = vec![
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
            pass(&mut store, &mut cache, &mut kept);
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
        let (mut cache, mut kept) = (PodCache::default(), Backends::default());
        assert_eq!(pass(&mut store, &mut cache, &mut kept), 2);
        assert_eq!(
            pass(&mut store, &mut cache, &mut kept),
            0,
            "its own writes do not count"
        );
        store.remove("pods", "shop", "p4");
        assert_eq!(pass(&mut store, &mut cache, &mut kept), 1);
        assert_eq!(addresses(&store, "web").len(), 9);
        assert_eq!(pass(&mut store, &mut cache, &mut kept), 0);
        assert_matches_scratch(&mut store);
    }
}
