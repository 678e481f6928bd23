//! The control plane: one pass of every controller, run on one interval, in
//! dependency order (cleanup, Deployment → ReplicaSet → Pod, DaemonSets,
//! StatefulSets, the scheduler, the kubelet and its node Lease, Service endpoints,
//! then status and disruption budgets), plus the pieces those controllers share (pod
//! templates, owner references, events, int-or-percent scaling). Each controller
//! lives in its own module. Everything here writes through the store, so watches see
//! every step.
//!
//! A pass holds the store lock only for one controller at a time (and the kubelet
//! for one batch of pods): between them it hands the lock to any waiting request, as
//! real controllers each write through the API server. During a 1,000-pod churn a
//! whole pass takes a few hundred ms; an API server that stalled that long would not
//! be the floor the benchmarks measure against.
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use super::config::Timings;
use super::objects::{controller_of, prepare_create};
use super::resources::{self, ResourceDef};
use super::store::{Store, name_of, namespace_of, now_rfc3339};

pub(crate) use cache::PodCache;
use kubelet::Kubelet;
pub use kubelet::STARTUP_DELAY_ANNOTATION;

/// The store as a pass holds it.
pub(crate) type StoreGuard<'a> = parking_lot::MutexGuard<'a, Store>;

/// Hands the store to a request waiting for it, if any (fairly: std's mutex would
/// let this thread take it straight back), and takes it back. False when the
/// controllers were held meanwhile (`SandboxHandle::hold_controllers`): the pass
/// must stop before it writes again.
fn let_requests_in(store: &mut StoreGuard<'_>, held: &AtomicUsize) -> bool {
    parking_lot::MutexGuard::bump(store);
    held.load(Ordering::Acquire) == 0
}

/// A controller run as one step of a pass, with the store held for it alone.
type Step = fn(&mut ControlPlane, &mut Store);

/// The steps before the kubelet, in dependency order. Each controller that reads the
/// pod cache syncs it first: requests may have written since the step before.
const BEFORE_KUBELET: &[Step] = &[
    |plane, store| {
        gc::finalize_namespaces(store);
        gc::collect_garbage(store, &mut plane.cache);
        deployments::reconcile_deployments(store);
    },
    |plane, store| {
        plane.cache.sync(store);
        replicasets::reconcile_replicasets(store, &plane.cache);
    },
    |plane, store| {
        plane.cache.sync(store);
        daemonsets::reconcile_daemonsets(store, &plane.cache);
    },
    |plane, store| {
        plane.cache.sync(store);
        statefulsets::reconcile_statefulsets(store, &plane.cache);
    },
    |plane, store| {
        plane.cache.sync(store);
        jobs::reconcile_jobs(store, &mut plane.cache);
        jobs::bind_claims(store);
        nodes::reconcile_unschedulable_taints(store);
    },
    |plane, store| {
        plane.cache.sync(store);
        scheduler::schedule(store, &plane.cache);
    },
];

/// The steps after the kubelet.
const AFTER_KUBELET: &[Step] = &[
    |plane, store| {
        plane.cache.sync(store);
        endpoints::reconcile_endpoints(store, &mut plane.cache, &mut plane.endpoints);
    },
    |plane, store| {
        plane.cache.sync(store);
        workload_status::update_workload_status(store, &plane.cache);
        budgets::update_budgets(store, &mut plane.cache);
    },
];

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
    ///
    /// `held` is the count of `hold_controllers` guards: the pass looks at it each
    /// time it takes the store back from a request, and stops there when it is set
    /// (the next pass redoes what was left; nothing is marked settled).
    pub fn tick(&mut self, store: &mut StoreGuard<'_>, held: &AtomicUsize) {
        let now = Instant::now();
        self.heartbeat(store, now);
        let changed = store.resource_version() != self.settled_at;
        let due = self.next_deadline.is_some_and(|d| d <= now);
        if !changed && !due {
            return;
        }
        let before = store.resource_version();
        for (i, step) in BEFORE_KUBELET.iter().enumerate() {
            if i > 0 && !let_requests_in(store, held) {
                return;
            }
            step(self, store);
        }
        if !let_requests_in(store, held) || !self.run_kubelet(store, held, now) {
            return;
        }
        for step in AFTER_KUBELET {
            if !let_requests_in(store, held) {
                return;
            }
            step(self, store);
        }
        self.warm_start = false;
        // Settled only once a pass changes nothing, requests included: a later
        // controller's write (a status) may be what an earlier one (a rollout) waits
        // for, and a request answered between two steps may be what one of them
        // already looked past.
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
    use crate::config::SandboxConfig;
    use kubelet::KUBELET_BATCH;

    /// One node and a Deployment `shop/web` of `replicas` pods that start at once.
    fn shop(replicas: u32) -> parking_lot::Mutex<Store> {
        let config = SandboxConfig::from_yaml(&format!(
            "nodes: [{{ name: node-1, zone: zone-a }}]\n\
             deployments: [{{ namespace: shop, name: web, replicas: {replicas}, startupDelay: 0s }}]\n"
        ))
        .expect("the topology parses");
        let mut store = Store::new(10_000);
        crate::seed::seed(&mut store, &config);
        parking_lot::Mutex::new(store)
    }

    fn pods(store: &Store) -> Vec<&Value> {
        store.iter("pods", Some("shop"), None).collect()
    }

    fn running(store: &Store) -> usize {
        pods(store)
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count()
    }

    #[test]
    fn a_pass_held_meanwhile_stops_at_its_next_hand_over_and_the_next_one_finishes() {
        let store = shop(120);
        let mut plane = ControlPlane::new(Timings::default());
        let held = AtomicUsize::new(1);
        plane.tick(&mut store.lock(), &held);
        {
            let store = store.lock();
            assert_eq!(store.iter("replicasets", Some("shop"), None).count(), 1);
            assert!(
                pods(&store).is_empty(),
                "no controller ran after the hand-over"
            );
        }
        held.store(0, Ordering::Release);
        plane.tick(&mut store.lock(), &held);
        assert_eq!(running(&store.lock()), 120);
    }

    #[test]
    fn pods_the_kubelet_did_not_reach_before_a_hold_are_started_on_the_next_pass() {
        let store = shop(0);
        let mut plane = ControlPlane::new(Timings::default());
        let held = AtomicUsize::new(0);
        // A whole pass first: after it the kubelet no longer looks at every pod.
        plane.tick(&mut store.lock(), &held);
        {
            let mut store = store.lock();
            let mut web = store
                .get("deployments", "shop", "web")
                .expect("seeded")
                .clone();
            web["spec"]["replicas"] = json!(3 * KUBELET_BATCH);
            store.update("deployments", web);
        }
        let mut guard = store.lock();
        for step in BEFORE_KUBELET {
            step(&mut plane, &mut guard);
        }
        held.store(1, Ordering::Release);
        assert!(!plane.run_kubelet(&mut guard, &held, Instant::now()));
        assert_eq!(running(&guard), KUBELET_BATCH);
        assert!(plane.next_deadline.is_some_and(|d| d <= Instant::now()));
        held.store(0, Ordering::Release);
        plane.tick(&mut guard, &held);
        assert_eq!(running(&guard), 3 * KUBELET_BATCH);
    }

    #[test]
    fn percentages_scale_like_intstr() {
        assert_eq!(scaled(&json!("50%"), 3, true), Some(2));
        assert_eq!(scaled(&json!("25%"), 3, false), Some(0));
        assert_eq!(scaled(&json!(2), 3, true), Some(2));
    }
}
