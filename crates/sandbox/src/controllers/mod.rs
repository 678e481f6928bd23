//! The control plane: one pass of every controller, run on one interval under the
//! store lock, in dependency order (cleanup, Deployment → ReplicaSet → Pod,
//! DaemonSets, StatefulSets, the scheduler, the kubelet and its node Lease, Service
//! endpoints, then status and disruption budgets), plus the pieces those controllers share (pod templates, owner references, events,
//! int-or-percent scaling). Each controller lives in its own module.
//! Everything here writes through the store, so watches see every step.
//!
//! A controller must not reach into another's state: they communicate only through
//! the objects in the store, as real controllers do through the API server. The pod
//! controllers find pods through the shared informer cache (`cache`), synced from the
//! store's change history before each of them runs, so a pass costs what changed, not
//! the number of stored pods. The endpoints and disruption-budget controllers redo only
//! the Services and budgets the cache marked dirty.

mod budgets;
mod cache;
mod daemonsets;
mod deployments;
mod endpoints;
mod gc;
mod jobs;
mod kubelet;
mod node_leases;
mod nodes;
mod replicasets;
mod scheduler;
mod statefulsets;
mod workload_status;

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::config::Timings;
use super::objects::{controller_of, prepare_create};
use super::resources::{self, ResourceDef};
use super::store::{Store, name_of, namespace_of, now_rfc3339};

pub(crate) use cache::PodCache;
use kubelet::Kubelet;
pub use kubelet::STARTUP_DELAY_ANNOTATION;

fn def(store: &str) -> &'static ResourceDef {
    resources::by_store(store).expect("every controller resource is in the table")
}

pub struct ControlPlane {
    pub timings: Timings,
    pub kubelet: Kubelet,
    /// The store's resourceVersion after the last full pass.
    settled_at: u64,
    /// The earliest moment a pod becomes ready or finishes terminating.
    next_deadline: Option<Instant>,
    /// True during the first pass only: the seeded pods start already running.
    warm_start: bool,
    /// When each node's agent last renewed its Lease.
    lease_renewed: HashMap<String, Instant>,
    /// The shared informer cache, synced before each controller that reads it.
    cache: PodCache,
    /// The endpoints controller's rendered pods per Service.
    endpoints: endpoints::Backends,
}

impl ControlPlane {
    pub fn new(timings: Timings) -> Self {
        Self {
            timings,
            kubelet: Kubelet::default(),
            settled_at: 0,
            next_deadline: None,
            warm_start: true,
            lease_renewed: HashMap::new(),
            cache: PodCache::default(),
            endpoints: endpoints::Backends::default(),
        }
    }

    /// One pass of every controller, in dependency order. Skipped when nothing has
    /// changed since the last pass and no kubelet deadline (start-up, shutdown) is
    /// due, so an idle sandbox with thousands of pods costs next to nothing.
    pub fn tick(&mut self, store: &mut Store) {
        let now = Instant::now();
        self.heartbeat(store, now);
        let changed = store.resource_version() != self.settled_at;
        let due = self.next_deadline.is_some_and(|d| d <= now);
        if !changed && !due {
            return;
        }
        let before = store.resource_version();
        gc::finalize_namespaces(store);
        gc::collect_garbage(store, &mut self.cache);
        deployments::reconcile_deployments(store);
        self.cache.sync(store);
        replicasets::reconcile_replicasets(store, &self.cache);
        self.cache.sync(store);
        daemonsets::reconcile_daemonsets(store, &self.cache);
        self.cache.sync(store);
        statefulsets::reconcile_statefulsets(store, &self.cache);
        self.cache.sync(store);
        jobs::reconcile_jobs(store, &mut self.cache);
        jobs::bind_claims(store);
        nodes::reconcile_unschedulable_taints(store);
        self.cache.sync(store);
        scheduler::schedule(store, &self.cache);
        self.cache.sync(store);
        self.run_kubelet(store, now);
        self.cache.sync(store);
        endpoints::reconcile_endpoints(store, &mut self.cache, &mut self.endpoints);
        self.cache.sync(store);
        workload_status::update_workload_status(store, &self.cache);
        budgets::update_budgets(store, &mut self.cache);
        self.warm_start = false;
        // Settled only once a pass changes nothing: a later controller's write (a
        // status) may be what an earlier one (a rollout) waits for.
        if store.resource_version() == before {
            self.settled_at = before;
        }
    }
}

impl ControlPlane {
    /// The shared pod cache, brought up to the store: the workload model counts the
    /// serving pods of its services from it.
    pub(crate) fn pods(&mut self, store: &Store) -> &mut PodCache {
        self.cache.sync(store);
        &mut self.cache
    }

    /// The node agents' Lease renewals, on every tick (they cost one look at the
    /// nodes). They are the agents' own writes: on their own they must not wake the
    /// controllers, or a pass slower than the renew interval would never settle.
    fn heartbeat(&mut self, store: &mut Store, now: Instant) {
        let settled = store.resource_version() == self.settled_at;
        let interval = self.timings.node_lease_renew_interval;
        node_leases::renew(store, &mut self.lease_renewed, now, interval);
        if settled {
            self.settled_at = store.resource_version();
        }
    }
}

fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

fn owned_by<'a>(
    store: &'a Store,
    kind: &str,
    namespace: &'a str,
    owner_uid: &'a str,
) -> impl Iterator<Item = &'a Value> + 'a {
    store
        .iter(kind, Some(namespace), None)
        .filter(move |o| controller_of(o).is_some_and(|r| r["uid"] == owner_uid))
}

/// A pod named `name` from its owner's template, owned by it (not yet stored).
fn pod_from_template(owner: &Value, name: &str) -> Value {
    let template = &owner["spec"]["template"];
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace_of(owner),
            "labels": template["metadata"]["labels"],
            "ownerReferences": [owner_ref(owner)],
        },
        "spec": template["spec"],
    });
    if let Some(annotations) = template["metadata"]["annotations"].as_object() {
        pod["metadata"]["annotations"] = json!(annotations);
    }
    pod
}

/// A pod with a fixed name (a StatefulSet's), extra labels and spec fields; the
/// caller records the event.
fn new_named_pod(
    store: &mut Store,
    owner: &Value,
    name: &str,
    labels: &[(&str, String)],
    spec: &Value,
) -> Option<Value> {
    let mut pod = pod_from_template(owner, name);
    if !pod["metadata"]["labels"].is_object() {
        pod["metadata"]["labels"] = json!({});
    }
    for (key, value) in labels {
        pod["metadata"]["labels"][*key] = json!(value);
    }
    for (key, value) in spec.as_object().into_iter().flatten() {
        pod["spec"][key] = value.clone();
    }
    prepare_create(def("pods"), &mut pod).ok()?;
    store.create("pods", "pods", pod, false).ok()
}

fn new_pod(store: &mut Store, owner: &Value, node: Option<&str>) -> Option<Value> {
    let name = format!("{}-{}", name_of(owner), store.random_suffix());
    let mut pod = pod_from_template(owner, &name);
    pod["metadata"]["generateName"] = json!(format!("{}-", name_of(owner)));
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
        let tolerations = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut tolerations = tolerations;
        for key in [
            "node.kubernetes.io/unschedulable",
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/memory-pressure",
        ] {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoSchedule"}));
        }
        pod["spec"]["tolerations"] = json!(tolerations);
    }
    prepare_create(def("pods"), &mut pod).ok()?;
    let created = store.create("pods", "pods", pod, false).ok()?;
    let component = if owner["kind"] == "DaemonSet" {
        "daemonset-controller"
    } else {
        "replicaset-controller"
    };
    record_event(
        store,
        owner,
        "Normal",
        "SuccessfulCreate",
        &format!("Created pod: {}", name_of(&created)),
        component,
    );
    Some(created)
}

/// A core/v1 Event about an object, as `kubectl describe` shows them.
pub fn record_event(
    store: &mut Store,
    about: &Value,
    kind: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ns = namespace_of(about).to_owned();
    let name = format!("{}.{}", name_of(about), store.random_suffix());
    let now = now_rfc3339();
    let mut event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {
            "apiVersion": about["apiVersion"], "kind": about["kind"], "name": about["metadata"]["name"],
            "namespace": ns, "uid": about["metadata"]["uid"], "resourceVersion": about["metadata"]["resourceVersion"],
        },
        "reason": reason, "message": message, "type": kind,
        "source": {"component": component}, "reportingComponent": component,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    });
    event["metadata"]["creationTimestamp"] = json!(now);
    let _ = store.create("events", "events", event, false);
}

/// An int-or-percent against a total (`intstr.GetScaledValueFromIntOrPercent`).
fn scaled(value: &Value, total: i64, round_up: bool) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let pct: f64 = s.strip_suffix('%')?.parse().ok()?;
            let raw = pct * total as f64 / 100.0;
            Some(if round_up { raw.ceil() } else { raw.floor() } as i64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_scale_like_intstr() {
        assert_eq!(scaled(&json!("50%"), 3, true), Some(2));
        assert_eq!(scaled(&json!("25%"), 3, false), Some(0));
        assert_eq!(scaled(&json!(2), 3, true), Some(2));
    }
}
