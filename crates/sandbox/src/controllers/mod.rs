//! The control plane's moving parts, run on one interval under the store lock:
//! garbage collection, Deployment → ReplicaSet → Pod, DaemonSets, the scheduler, the
//! kubelet (start-up delay, graceful termination) and disruption-budget status.
//! Everything here writes through the store, so watches see every step.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shakedown_vocab::duration::parse_duration;

use super::config::Timings;
use super::objects::{
    condition_is_true, controller_of, is_terminating, label_selector, node_selector_matches,
    pod_serving, prepare_create, selector_matches, set_condition,
};
use super::ops;
use super::resources::{self, ResourceDef};
use super::store::{Store, labels_of, name_of, namespace_of, now_rfc3339, uid_of};

/// Pod annotation overriding the start-up delay of one pod.
pub const STARTUP_DELAY_ANNOTATION: &str = "sandbox.shakedown.dev/startup-delay";

fn def(store: &str) -> &'static ResourceDef {
    resources::by_store(store).expect("every controller resource is in the table")
}

/// What the kubelet remembers between ticks (a real kubelet keeps this in memory too).
#[derive(Default)]
pub struct Kubelet {
    started: HashMap<String, Instant>,
    stopping: HashMap<String, Instant>,
    next_ip: HashMap<String, u32>,
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
}

impl ControlPlane {
    pub fn new(timings: Timings) -> Self {
        Self {
            timings,
            kubelet: Kubelet::default(),
            settled_at: 0,
            next_deadline: None,
            warm_start: true,
        }
    }

    /// One pass of every controller, in dependency order. Skipped when nothing has
    /// changed since the last pass and no kubelet deadline (start-up, shutdown) is
    /// due, so an idle sandbox with thousands of pods costs next to nothing.
    pub fn tick(&mut self, store: &mut Store) {
        let now = Instant::now();
        let changed = store.resource_version() != self.settled_at;
        let due = self.next_deadline.is_some_and(|d| d <= now);
        if !changed && !due {
            return;
        }
        let before = store.resource_version();
        finalize_namespaces(store);
        collect_garbage(store);
        reconcile_deployments(store);
        reconcile_replicasets(store);
        reconcile_daemonsets(store);
        schedule(store);
        self.run_kubelet(store, now);
        update_workload_status(store);
        update_budgets(store);
        self.warm_start = false;
        // Settled only once a pass changes nothing: a later controller's write (a
        // status) may be what an earlier one (a rollout) waits for.
        if store.resource_version() == before {
            self.settled_at = before;
        }
    }

    fn run_kubelet(&mut self, store: &mut Store, now: Instant) {
        self.next_deadline = None;
        let nodes: HashMap<String, Value> = store
            .iter("nodes", None, None)
            .map(|n| (name_of(n).to_owned(), n.clone()))
            .collect();
        let mut alive = HashSet::new();
        let mut wake: Option<Instant> = None;
        let pods: Vec<Value> = store
            .iter("pods", None, None)
            .filter(|p| p["spec"]["nodeName"].is_string())
            .filter(|p| {
                alive.insert(uid_of(p).to_owned());
                let ready = match self.kubelet.started.get(uid_of(p)) {
                    Some(started) => {
                        let at = *started + startup_delay(p, self.timings.startup_delay);
                        if at > now {
                            wake = Some(wake.map_or(at, |w| w.min(at)));
                        }
                        at <= now
                    }
                    None => false,
                };
                !settled(p, ready)
            })
            .cloned()
            .collect();
        if let Some(at) = wake {
            self.wake_at(at);
        }
        for pod in pods {
            let uid = uid_of(&pod).to_owned();
            let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
            if is_terminating(&pod) {
                let since = match self.kubelet.stopping.entry(uid) {
                    std::collections::hash_map::Entry::Occupied(e) => *e.get(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        for c in containers_of(&pod) {
                            record_event(
                                store,
                                &pod,
                                "Normal",
                                "Killing",
                                &format!("Stopping container {c}"),
                                "kubelet",
                            );
                        }
                        *e.insert(now)
                    }
                };
                let grace = pod["metadata"]["deletionGracePeriodSeconds"]
                    .as_i64()
                    .unwrap_or(0);
                let exit_after = self
                    .timings
                    .shutdown_delay
                    .min(Duration::from_secs(grace.max(0) as u64));
                if now.duration_since(since) >= exit_after {
                    store.remove("pods", namespace_of(&pod), name_of(&pod));
                } else {
                    self.wake_at(since + exit_after);
                }
                continue;
            }
            let Some(node_obj) = nodes.get(node) else {
                continue;
            };
            let delay = startup_delay(&pod, self.timings.startup_delay);
            // The seeded topology starts warm: a cluster one points shakedown at is
            // already in its steady state, not booting.
            let born = if self.warm_start {
                now.checked_sub(delay).unwrap_or(now)
            } else {
                now
            };
            let started = *self.kubelet.started.entry(uid).or_insert(born);
            let ready = now.duration_since(started) >= delay;
            if !ready {
                self.wake_at(started + delay);
            }
            let starting = pod["status"]["phase"] != "Running";
            let updated = self.pod_status(pod.clone(), node_obj, ready);
            if starting {
                for c in containers_of(&pod) {
                    record_event(
                        store,
                        &pod,
                        "Normal",
                        "Started",
                        &format!("Started container {c}"),
                        "kubelet",
                    );
                }
            }
            store.update("pods", updated);
        }
        self.kubelet.started.retain(|uid, _| alive.contains(uid));
        self.kubelet.stopping.retain(|uid, _| alive.contains(uid));
    }

    fn wake_at(&mut self, when: Instant) {
        self.next_deadline = Some(self.next_deadline.map_or(when, |d| d.min(when)));
    }

    fn pod_status(&mut self, mut pod: Value, node: &Value, ready: bool) -> Value {
        let node_name = name_of(node).to_owned();
        let host_ip = node["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
            .and_then(|a| a["address"].as_str())
            .unwrap_or("10.0.0.1")
            .to_owned();
        let status = &mut pod["status"];
        if status["phase"] == "Pending" || status["podIP"].is_null() {
            let cidr = node["spec"]["podCIDR"].as_str().unwrap_or("10.244.0.0/24");
            let prefix = cidr.rsplit_once('.').map_or("10.244.0", |(p, _)| p);
            let n = self.kubelet.next_ip.entry(node_name).or_insert(1);
            *n = *n % 250 + 1;
            status["podIP"] = json!(format!("{prefix}.{n}"));
            status["podIPs"] = json!([{"ip": format!("{prefix}.{n}")}]);
            status["hostIP"] = json!(host_ip);
            status["hostIPs"] = json!([{"ip": host_ip}]);
            status["startTime"] = json!(now_rfc3339());
            status["phase"] = json!("Running");
        }
        let container_statuses: Vec<Value> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let started_at = pod["status"]["startTime"].clone();
                json!({
                    "name": c["name"], "image": c["image"], "imageID": "",
                    "containerID": format!("containerd://{}", uid_of(&pod).replace('-', "")),
                    "ready": ready, "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": started_at}},
                })
            })
            .collect();
        let ephemeral: Vec<Value> = pod["spec"]["ephemeralContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let existing = pod["status"]["ephemeralContainerStatuses"]
                    .as_array()
                    .and_then(|s| s.iter().find(|s| s["name"] == c["name"]).cloned());
                existing.unwrap_or_else(|| {
                    json!({
                        "name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                        "restartCount": 0, "state": {"running": {"startedAt": now_rfc3339()}},
                    })
                })
            })
            .collect();
        let status = &mut pod["status"];
        status["containerStatuses"] = json!(container_statuses);
        if !ephemeral.is_empty() {
            status["ephemeralContainerStatuses"] = json!(ephemeral);
        }
        let flag = if ready { "True" } else { "False" };
        let reason = if ready { "" } else { "ContainersNotReady" };
        set_condition(status, "PodReadyToStartContainers", "True", "", "");
        set_condition(status, "Initialized", "True", "", "");
        set_condition(status, "Ready", flag, reason, "");
        set_condition(status, "ContainersReady", flag, reason, "");
        set_condition(status, "PodScheduled", "True", "", "");
        pod
    }
}

fn containers_of(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

fn startup_delay(pod: &Value, default: Duration) -> Duration {
    pod["metadata"]["annotations"][STARTUP_DELAY_ANNOTATION]
        .as_str()
        .and_then(|d| parse_duration(d).ok())
        .unwrap_or(default)
}

/// A running pod whose status already says what the kubelet would write: skipping
/// it keeps a tick cheap with thousands of pods.
fn settled(pod: &Value, ready: bool) -> bool {
    let status = &pod["status"];
    let ephemeral_specs = pod["spec"]["ephemeralContainers"]
        .as_array()
        .map_or(0, Vec::len);
    let ephemeral_statuses = status["ephemeralContainerStatuses"]
        .as_array()
        .map_or(0, Vec::len);
    !is_terminating(pod)
        && status["phase"] == "Running"
        && condition_is_true(status, "Ready") == ready
        && ephemeral_specs == ephemeral_statuses
}

fn finalize_namespaces(store: &mut Store) {
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

/// Events live an hour, as with the API server's default `--event-ttl`.
const EVENT_TTL_SECONDS: i64 = 3600;

/// Background cascading deletion: an object whose controller owner is gone goes too.
fn collect_garbage(store: &mut Store) {
    let cutoff = jiff::Timestamp::now().as_second() - EVENT_TTL_SECONDS;
    let expired: Vec<(String, String)> = store
        .iter("events", None, None)
        .filter(|e| {
            e["lastTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t.as_second() < cutoff)
        })
        .map(|e| (namespace_of(e).to_owned(), name_of(e).to_owned()))
        .collect();
    for (ns, name) in expired {
        store.remove("events", &ns, &name);
    }
    // The pod garbage collector: pods bound to a node that no longer exists go.
    let nodes: HashSet<String> = store
        .iter("nodes", None, None)
        .map(|n| name_of(n).to_owned())
        .collect();
    let stranded: Vec<(String, String)> = store
        .iter("pods", None, None)
        .filter(|p| {
            p["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !nodes.contains(n))
        })
        .map(|p| (namespace_of(p).to_owned(), name_of(p).to_owned()))
        .collect();
    for (ns, name) in stranded {
        store.remove("pods", &ns, &name);
    }
    let mut uids = HashSet::new();
    for kind in ["deployments", "replicasets", "daemonsets", "nodes"] {
        uids.extend(store.iter(kind, None, None).map(|o| uid_of(o).to_owned()));
    }
    for kind in ["replicasets", "pods"] {
        let orphans: Vec<(String, String)> = store
            .iter(kind, None, None)
            .filter(|o| {
                controller_of(o).is_some_and(|r| !uids.contains(r["uid"].as_str().unwrap_or("")))
            })
            .filter(|o| !is_terminating(o))
            .map(|o| (namespace_of(o).to_owned(), name_of(o).to_owned()))
            .collect();
        for (ns, name) in orphans {
            let _ = ops::delete(store, def(kind), &ns, &name, None, false);
        }
    }
}

fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

/// FNV-1a over the template, encoded like Kubernetes' `rand.SafeEncodeString`.
fn template_hash(template: &Value) -> String {
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut hash: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|d| SAFE[(d as usize * 7 + hash as usize) % SAFE.len()] as char)
        .take(10)
        .collect()
}

/// What controllers need to know about a pod, gathered in one pass per tick so that
/// no controller scans every pod once per owner.
struct PodSummary {
    name: String,
    node: Option<String>,
    serving: bool,
    terminating: bool,
    created: String,
}

fn pods_by_owner(store: &Store) -> HashMap<String, Vec<PodSummary>> {
    let mut index: HashMap<String, Vec<PodSummary>> = HashMap::new();
    for pod in store.iter("pods", None, None) {
        let Some(owner) = controller_of(pod).and_then(|r| r["uid"].as_str()) else {
            continue;
        };
        index.entry(owner.to_owned()).or_default().push(PodSummary {
            name: name_of(pod).to_owned(),
            node: pod["spec"]["nodeName"].as_str().map(str::to_owned),
            serving: pod_serving(pod),
            terminating: is_terminating(pod),
            created: pod["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        });
    }
    index
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

fn reconcile_deployments(store: &mut Store) {
    let deployments: Vec<Value> = store
        .iter("deployments", None, None)
        .filter(|d| !is_terminating(d))
        .cloned()
        .collect();
    for d in deployments {
        let ns = namespace_of(&d).to_owned();
        let hash = template_hash(&d["spec"]["template"]);
        let rs_name = format!("{}-{hash}", name_of(&d));
        let owned: Vec<Value> = owned_by(store, "replicasets", &ns, uid_of(&d))
            .cloned()
            .collect();
        let (current, old): (Vec<Value>, Vec<Value>) =
            owned.into_iter().partition(|rs| name_of(rs) == rs_name);
        let plan = rollout(&d, current.first(), &old);
        for (mut rs, want) in old.into_iter().zip(plan.old) {
            if rs["spec"]["replicas"] != want {
                scaling_event(store, &d, &rs, want);
                rs["spec"]["replicas"] = json!(want);
                store.update("replicasets", rs);
            }
        }
        match current.into_iter().next() {
            Some(mut rs) => {
                if rs["spec"]["replicas"] != plan.new {
                    scaling_event(store, &d, &rs, plan.new);
                    rs["spec"]["replicas"] = json!(plan.new);
                    rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                        json!(d["spec"]["replicas"].as_i64().unwrap_or(1).to_string());
                    store.update("replicasets", rs);
                }
            }
            None => create_replicaset(store, &d, &hash, &rs_name, plan.new, plan.revision),
        }
    }
}

fn scaling_event(store: &mut Store, d: &Value, rs: &Value, to: i64) {
    let from = rs["spec"]["replicas"].as_i64().unwrap_or(0);
    let direction = if to > from { "up" } else { "down" };
    let message = format!(
        "Scaled {direction} replica set {} from {from} to {to}",
        name_of(rs)
    );
    record_event(
        store,
        d,
        "Normal",
        "ScalingReplicaSet",
        &message,
        "deployment-controller",
    );
}

/// Replica counts for one deployment's ReplicaSets this tick.
struct Rollout {
    new: i64,
    /// For each old ReplicaSet, in the order given.
    old: Vec<i64>,
    revision: i64,
}

fn replicas_of(rs: &Value, field: &str) -> i64 {
    match field {
        "spec" => rs["spec"]["replicas"].as_i64().unwrap_or(0),
        other => rs["status"][other].as_i64().unwrap_or(0),
    }
}

/// The Deployment controller's rollout step: `Recreate` empties the old ReplicaSets
/// before the new one scales up; `RollingUpdate` (the default) never exceeds
/// `replicas + maxSurge` pods and never drops below `replicas - maxUnavailable` ready
/// ones, as in `kubernetes/pkg/controller/deployment/rolling.go`.
fn rollout(d: &Value, new: Option<&Value>, old: &[Value]) -> Rollout {
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let revision = old
        .iter()
        .filter_map(|rs| {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse::<i64>().ok())
        })
        .max()
        .unwrap_or(0)
        + 1;
    let new_spec = new.map_or(0, |rs| replicas_of(rs, "spec"));
    let old_specs: Vec<i64> = old.iter().map(|rs| replicas_of(rs, "spec")).collect();
    let old_pods: i64 = old.iter().map(|rs| replicas_of(rs, "replicas")).sum();
    if old_specs.iter().all(|r| *r == 0)
        && (old_pods == 0 || d["spec"]["strategy"]["type"] != "Recreate")
    {
        return Rollout {
            new: replicas,
            old: old_specs,
            revision,
        };
    }
    if d["spec"]["strategy"]["type"] == "Recreate" {
        let new = if old_pods == 0 { replicas } else { 0 };
        return Rollout {
            new,
            old: vec![0; old.len()],
            revision,
        };
    }
    let rolling = &d["spec"]["strategy"]["rollingUpdate"];
    let surge = scaled(&rolling["maxSurge"], replicas, true)
        .unwrap_or(1)
        .max(0);
    let mut unavailable = scaled(&rolling["maxUnavailable"], replicas, false)
        .unwrap_or(0)
        .max(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let total_spec = new_spec + old_specs.iter().sum::<i64>();
    let new_target = replicas.min(new_spec + (replicas + surge - total_spec).max(0));
    if new_target > new_spec {
        // Like the real controller, a sync that scales up does nothing else.
        return Rollout {
            new: new_target,
            old: old_specs,
            revision,
        };
    }
    let all_pods = old_pods + new.map_or(0, |rs| replicas_of(rs, "replicas"));
    let new_unavailable = new_spec - new.map_or(0, |rs| replicas_of(rs, "availableReplicas"));
    let mut budget = (all_pods - (replicas - unavailable) - new_unavailable.max(0)).max(0);
    let mut old_targets = old_specs.clone();
    for target in &mut old_targets {
        let cut = (*target).min(budget);
        *target -= cut;
        budget -= cut;
    }
    Rollout {
        new: new_target,
        old: old_targets,
        revision,
    }
}

fn create_replicaset(
    store: &mut Store,
    d: &Value,
    hash: &str,
    name: &str,
    replicas: i64,
    revision: i64,
) {
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let mut rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": name, "namespace": namespace_of(d),
            "labels": template["metadata"]["labels"],
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": desired.to_string(),
                "deployment.kubernetes.io/revision": revision.to_string(),
            },
            "ownerReferences": [owner_ref(d)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    });
    if prepare_create(def("replicasets"), &mut rs).is_ok()
        && store
            .create("replicasets", "replicasets.apps", rs, false)
            .is_ok()
    {
        let message = format!("Scaled up replica set {name} from 0 to {replicas}");
        record_event(
            store,
            d,
            "Normal",
            "ScalingReplicaSet",
            &message,
            "deployment-controller",
        );
    }
}

fn new_pod(store: &mut Store, owner: &Value, node: Option<&str>) -> Option<Value> {
    let template = &owner["spec"]["template"];
    let ns = namespace_of(owner);
    let name = format!("{}-{}", name_of(owner), store.random_suffix());
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "generateName": format!("{}-", name_of(owner)),
            "labels": template["metadata"]["labels"],
            "ownerReferences": [owner_ref(owner)],
        },
        "spec": template["spec"],
    });
    if let Some(annotations) = template["metadata"]["annotations"].as_object() {
        pod["metadata"]["annotations"] = json!(annotations);
    }
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

/// Pods to remove first when scaling down: unscheduled, then unready, then newest.
fn deletion_rank(pod: &PodSummary) -> (bool, bool, std::cmp::Reverse<String>) {
    (
        pod.node.is_some(),
        pod.serving,
        std::cmp::Reverse(pod.created.clone()),
    )
}

fn reconcile_replicasets(store: &mut Store) {
    let index = pods_by_owner(store);
    let sets: Vec<Value> = store
        .iter("replicasets", None, None)
        .filter(|r| !is_terminating(r))
        .cloned()
        .collect();
    for rs in sets {
        let ns = namespace_of(&rs).to_owned();
        let mut pods: Vec<&PodSummary> = index
            .get(uid_of(&rs))
            .into_iter()
            .flatten()
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

fn reconcile_daemonsets(store: &mut Store) {
    if store.iter("daemonsets", None, None).next().is_none() {
        return;
    }
    let index = pods_by_owner(store);
    let nodes: Vec<Value> = store.iter("nodes", None, None).cloned().collect();
    let sets: Vec<Value> = store
        .iter("daemonsets", None, None)
        .filter(|d| !is_terminating(d))
        .cloned()
        .collect();
    for ds in sets {
        let ns = namespace_of(&ds).to_owned();
        let pods: Vec<&PodSummary> = index.get(uid_of(&ds)).into_iter().flatten().collect();
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

fn tolerates_unschedulable(pod: &Value) -> bool {
    pod["spec"]["tolerations"].as_array().is_some_and(|ts| {
        ts.iter().any(|t| {
            (t["key"] == "node.kubernetes.io/unschedulable"
                || (t["key"].is_null() && t["operator"] == "Exists"))
                && (t["effect"].is_null() || t["effect"] == "NoSchedule")
        })
    })
}

fn schedule(store: &mut Store) {
    let nodes: Vec<(Value, BTreeMap<String, String>)> = store
        .iter("nodes", None, None)
        .map(|n| (n.clone(), labels_of(n)))
        .collect();
    let mut load: HashMap<String, usize> = HashMap::new();
    let mut owner_load: HashMap<(String, String), usize> = HashMap::new();
    let mut pending = Vec::new();
    for pod in store.iter("pods", None, None) {
        match pod["spec"]["nodeName"].as_str() {
            Some(node) => {
                *load.entry(node.to_owned()).or_default() += 1;
                // Spreading ignores pods on their way out, like topology spreading.
                if let Some(owner) = controller_of(pod).filter(|_| !is_terminating(pod)) {
                    let key = (
                        node.to_owned(),
                        owner["uid"].as_str().unwrap_or("").to_owned(),
                    );
                    *owner_load.entry(key).or_default() += 1;
                }
            }
            None if !is_terminating(pod) => pending.push(pod.clone()),
            None => {}
        }
    }
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

fn count_pods(index: &HashMap<String, Vec<PodSummary>>, owner_uid: &str) -> (i64, i64) {
    let (mut total, mut ready) = (0, 0);
    for p in index
        .get(owner_uid)
        .into_iter()
        .flatten()
        .filter(|p| !p.terminating)
    {
        total += 1;
        ready += i64::from(p.serving);
    }
    (total, ready)
}

fn update_workload_status(store: &mut Store) {
    let index = pods_by_owner(store);
    let sets: Vec<Value> = store.iter("replicasets", None, None).cloned().collect();
    for mut rs in sets {
        let (total, ready) = count_pods(&index, uid_of(&rs));
        rs["status"] = json!({
            "replicas": total, "fullyLabeledReplicas": total, "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"],
        });
        strip_zeroes(&mut rs["status"]);
        store.update("replicasets", rs);
    }
    let deployments: Vec<Value> = store.iter("deployments", None, None).cloned().collect();
    for mut d in deployments {
        let ns = namespace_of(&d).to_owned();
        let hash = template_hash(&d["spec"]["template"]);
        let (mut total, mut ready, mut updated) = (0, 0, 0);
        for rs in owned_by(store, "replicasets", &ns, uid_of(&d)) {
            total += rs["status"]["replicas"].as_i64().unwrap_or(0);
            ready += rs["status"]["readyReplicas"].as_i64().unwrap_or(0);
            if rs["metadata"]["labels"]["pod-template-hash"] == hash.as_str() {
                updated += rs["status"]["replicas"].as_i64().unwrap_or(0);
            }
        }
        let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let max_unavailable = scaled(
            &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            want,
            false,
        )
        .unwrap_or(0);
        let mut status = d["status"].clone();
        for (k, v) in [
            ("replicas", total),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("updatedReplicas", updated),
            ("unavailableReplicas", (want - ready).max(0)),
        ] {
            status[k] = json!(v);
        }
        status["observedGeneration"] = d["metadata"]["generation"].clone();
        let available = ready >= want - max_unavailable;
        set_condition(
            &mut status,
            "Available",
            if available { "True" } else { "False" },
            if available {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            },
            if available {
                "Deployment has minimum availability."
            } else {
                "Deployment does not have minimum availability."
            },
        );
        set_condition(
            &mut status,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            "ReplicaSet has successfully progressed.",
        );
        strip_zeroes(&mut status);
        d["status"] = status;
        store.update("deployments", d);
    }
    let sets: Vec<Value> = store.iter("daemonsets", None, None).cloned().collect();
    let nodes: Vec<BTreeMap<String, String>> =
        store.iter("nodes", None, None).map(labels_of).collect();
    for mut ds in sets {
        let desired = nodes
            .iter()
            .filter(|l| node_selector_matches(&ds["spec"]["template"]["spec"], l))
            .count() as i64;
        let (total, ready) = count_pods(&index, uid_of(&ds));
        ds["status"] = json!({
            "desiredNumberScheduled": desired, "currentNumberScheduled": total, "numberMisscheduled": 0,
            "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": total,
            "numberUnavailable": (desired - ready).max(0), "observedGeneration": ds["metadata"]["generation"],
        });
        store.update("daemonsets", ds);
    }
}

/// Kubernetes omits zero-valued integer fields of workload status (`omitempty`).
fn strip_zeroes(status: &mut Value) {
    if let Some(m) = status.as_object_mut() {
        m.retain(|_, v| v.as_i64() != Some(0));
    }
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

fn update_budgets(store: &mut Store) {
    let budgets: Vec<Value> = store
        .iter("poddisruptionbudgets", None, None)
        .cloned()
        .collect();
    for mut pdb in budgets {
        let ns = namespace_of(&pdb).to_owned();
        let selector = pdb["spec"]["selector"].clone();
        let everything = selector.is_null() || selector.as_object().is_some_and(|m| m.is_empty());
        if !everything && label_selector(&selector).is_err() {
            continue;
        }
        let pods: Vec<&Value> = store
            .iter("pods", Some(&ns), None)
            .filter(|p| everything || selector_matches(&selector, p))
            .collect();
        let healthy = pods.iter().filter(|p| pod_serving(p)).count() as i64;
        let mut owners: HashMap<String, i64> = HashMap::new();
        for pod in &pods {
            if let Some(r) = controller_of(pod) {
                let scale = store
                    .iter(
                        if r["kind"] == "DaemonSet" {
                            "daemonsets"
                        } else {
                            "replicasets"
                        },
                        Some(&ns),
                        None,
                    )
                    .find(|o| o["metadata"]["uid"] == r["uid"])
                    .map_or(1, |o| {
                        o["spec"]["replicas"]
                            .as_i64()
                            .or_else(|| o["status"]["desiredNumberScheduled"].as_i64())
                            .unwrap_or(1)
                    });
                owners.insert(r["uid"].as_str().unwrap_or("").to_owned(), scale);
            }
        }
        let scale: i64 = owners.values().sum();
        let spec = &pdb["spec"];
        let (expected, desired) = match (&spec["minAvailable"], &spec["maxUnavailable"]) {
            (Value::Number(n), _) => (pods.len() as i64, n.as_i64().unwrap_or(0)),
            (min @ Value::String(_), _) => (scale, scaled(min, scale, true).unwrap_or(0)),
            (_, max) if !max.is_null() => (
                scale,
                (scale - scaled(max, scale, true).unwrap_or(0)).max(0),
            ),
            _ => (pods.len() as i64, 0),
        };
        let live: HashSet<String> = pods
            .iter()
            .filter(|p| !is_terminating(p))
            .map(|p| name_of(p).to_owned())
            .collect();
        let allowed = (healthy - desired).max(0);
        let mut status = pdb["status"].clone();
        let disrupted: serde_json::Map<String, Value> = status["disruptedPods"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| live.contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if disrupted.is_empty() {
            if let Some(m) = status.as_object_mut() {
                m.remove("disruptedPods");
            }
        } else {
            status["disruptedPods"] = Value::Object(disrupted);
        }
        status["currentHealthy"] = json!(healthy);
        status["desiredHealthy"] = json!(desired);
        status["expectedPods"] = json!(expected);
        status["disruptionsAllowed"] = json!(allowed);
        status["observedGeneration"] = pdb["metadata"]["generation"].clone();
        let (flag, reason) = if allowed > 0 {
            ("True", "SufficientPods")
        } else {
            ("False", "InsufficientPods")
        };
        set_condition(&mut status, "DisruptionAllowed", flag, reason, "");
        pdb["status"] = status;
        store.update("poddisruptionbudgets", pdb);
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

    fn rs(spec: i64, pods: i64, available: i64) -> Value {
        json!({"spec": {"replicas": spec}, "status": {"replicas": pods, "availableReplicas": available}})
    }

    #[test]
    fn a_rolling_update_surges_first_and_keeps_availability() {
        let d = json!({"spec": {"replicas": 4, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}});
        // Start: the old ReplicaSet has 4 ready pods; the sync that surges does nothing else.
        let step = rollout(&d, None, &[rs(4, 4, 4)]);
        assert_eq!((step.new, step.old.clone()), (1, vec![4]));
        // The new pod is not ready yet: only the one allowed unavailable pod may go.
        let step = rollout(&d, Some(&rs(1, 1, 0)), &[rs(4, 4, 4)]);
        assert_eq!((step.new, step.old.clone()), (1, vec![3]));
        // That left room to surge again.
        let step = rollout(&d, Some(&rs(1, 1, 0)), &[rs(3, 3, 3)]);
        assert_eq!((step.new, step.old.clone()), (2, vec![3]));
        // Once new pods are ready, old ones are scaled away.
        let step = rollout(&d, Some(&rs(4, 4, 4)), &[rs(1, 1, 1)]);
        assert_eq!((step.new, step.old), (4, vec![0]));
    }

    #[test]
    fn recreate_empties_the_old_replicaset_before_scaling_up() {
        let d = json!({"spec": {"replicas": 2, "strategy": {"type": "Recreate"}}});
        let step = rollout(&d, None, &[rs(2, 2, 2)]);
        assert_eq!((step.new, step.old.clone()), (0, vec![0]));
        let step = rollout(&d, Some(&rs(0, 0, 0)), &[rs(0, 0, 0)]);
        assert_eq!(step.new, 2);
    }

    #[test]
    fn template_hashes_are_stable_and_distinguish_templates() {
        let a = json!({"spec": {"containers": [{"image": "a"}]}});
        let b = json!({"spec": {"containers": [{"image": "b"}]}});
        assert_eq!(template_hash(&a), template_hash(&a));
        assert_ne!(template_hash(&a), template_hash(&b));
    }
}
