//! The kubelet: gives scheduled pods an IP, starts their containers after the
//! start-up delay (a per-pod annotation may override it), marks them Ready, and runs
//! graceful termination. It remembers start and stop times between ticks, as a real
//! kubelet keeps them in memory.
//!
//! It must not schedule, create or delete pods on anyone's behalf: it only reports
//! the status of pods already bound to a node, and removes a terminating pod once its
//! grace period (capped by the shutdown delay) is over.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cache::Key;
use super::{ControlPlane, StoreGuard, let_requests_in, record_event};
use crate::objects::{condition_is_true, is_terminating, set_condition};
use crate::store::{Store, name_of, namespace_of, now_rfc3339, uid_of};

/// Pod annotation overriding the start-up delay of one pod.
pub const STARTUP_DELAY_ANNOTATION: &str = "sandbox.shakedown.dev/startup-delay";

/// An image from a registry under `.invalid` (RFC 2606: it never resolves) never pulls:
/// an ephemeral container with one stays waiting (`ErrImagePull`), as on a real node, so
/// tests can hold an injector before it starts.
fn never_pulls(image: &Value) -> bool {
    image
        .as_str()
        .and_then(|i| i.split_once('/'))
        .is_some_and(|(registry, _)| {
            registry
                .split(':')
                .next()
                .is_some_and(|h| h.ends_with(".invalid"))
        })
}

/// Pods the kubelet looks at before it lets waiting requests in: at ~0.1-0.2 ms a
/// pod, the store is held a few ms at a time while a thousand pods start.
pub(super) const KUBELET_BATCH: usize = 50;

/// What the kubelet remembers between ticks (a real kubelet keeps this in memory too).
#[derive(Default)]
pub struct Kubelet {
    started: HashMap<String, Instant>,
    stopping: HashMap<String, Instant>,
    next_ip: HashMap<String, u32>,
    /// When to look at a pod again although nothing wrote it: its start-up delay or
    /// its grace period ends then. The earliest is the control plane's next deadline.
    timers: BTreeSet<(Instant, Key)>,
    timer_of: HashMap<Key, Instant>,
}

impl Kubelet {
    /// Keeps the earlier of a pod's timers.
    fn set_timer(&mut self, key: &Key, at: Instant) {
        if let Some(&old) = self.timer_of.get(key) {
            if old <= at {
                return;
            }
            self.timers.remove(&(old, key.clone()));
        }
        self.timers.insert((at, key.clone()));
        self.timer_of.insert(key.clone(), at);
    }
}

impl ControlPlane {
    /// Looks only at the pods written since its last pass and at those whose timer
    /// (start-up done, grace period over) is due; everything else is unchanged since
    /// the kubelet last saw it. After a cache rebuild, and on the first pass, it looks
    /// at every pod. It hands the store to waiting requests after every
    /// `KUBELET_BATCH` pods, and returns false when the controllers were held
    /// meanwhile; the pods it did not reach are due on the next pass.
    pub(super) fn run_kubelet(
        &mut self,
        store: &mut StoreGuard<'_>,
        held: &AtomicUsize,
        now: Instant,
    ) -> bool {
        let work = self.cache.take_kubelet_work();
        for uid in &work.gone {
            self.kubelet.started.remove(uid);
            self.kubelet.stopping.remove(uid);
        }
        let everything = work.everything || self.warm_start;
        let mut candidates = if everything {
            self.cache.all_pods()
        } else {
            work.changed
        };
        while let Some((at, key)) = self.kubelet.timers.first().cloned() {
            if at > now {
                break;
            }
            self.kubelet.timers.remove(&(at, key.clone()));
            self.kubelet.timer_of.remove(&key);
            candidates.insert(key);
        }
        if everything {
            let alive: HashSet<String> = self.cache.uids().into_iter().map(str::to_owned).collect();
            self.kubelet.started.retain(|uid, _| alive.contains(uid));
            self.kubelet.stopping.retain(|uid, _| alive.contains(uid));
        }
        // The nodes as of the first pod that needs one: a pod is bound to a node that
        // existed when it was scheduled, and a node's address and CIDR do not change.
        let mut nodes: Option<HashMap<String, Value>> = None;
        let candidates: Vec<Key> = candidates.into_iter().collect();
        let mut finished = true;
        for (i, batch) in candidates.chunks(KUBELET_BATCH).enumerate() {
            if i > 0 && !let_requests_in(store, held) {
                // Due at once on the next pass, which the deadline below wakes.
                for key in candidates.iter().skip(i * KUBELET_BATCH) {
                    self.kubelet.set_timer(key, now);
                }
                finished = false;
                break;
            }
            for key in batch {
                self.visit_pod(store, key, &mut nodes, now);
            }
        }
        self.next_deadline = self.kubelet.timers.first().map(|(at, _)| *at);
        finished
    }

    /// What a node's kubelet does for one pod it was told about: start it (an IP, its
    /// containers, Ready after the start-up delay) or finish its termination.
    fn visit_pod(
        &mut self,
        store: &mut Store,
        key: &Key,
        nodes: &mut Option<HashMap<String, Value>>,
        now: Instant,
    ) {
        self.clear_timer(key);
        let Some(p) = store.get("pods", &key.0, &key.1) else {
            return;
        };
        if !p["spec"]["nodeName"].is_string() {
            return;
        }
        let ready = match self.kubelet.started.get(uid_of(p)) {
            Some(started) => {
                let at = *started + startup_delay(p, self.timings.startup_delay);
                if at > now {
                    self.kubelet.set_timer(key, at);
                }
                at <= now
            }
            None => false,
        };
        if settled(p, ready) {
            return;
        }
        let pod = p.clone();
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
                self.kubelet.set_timer(key, since + exit_after);
            }
            return;
        }
        let nodes = nodes.get_or_insert_with(|| {
            store
                .iter("nodes", None, None)
                .map(|n| (name_of(n).to_owned(), n.clone()))
                .collect()
        });
        let Some(node_obj) = nodes.get(node) else {
            return;
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
            self.kubelet.set_timer(key, started + delay);
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

    fn clear_timer(&mut self, key: &Key) {
        if let Some(at) = self.kubelet.timer_of.remove(key) {
            self.kubelet.timers.remove(&(at, key.clone()));
        }
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
                    let state = if never_pulls(&c["image"]) {
                        json!({"waiting": {"reason": "ErrImagePull", "message": format!(
                            "failed to pull image {}: the registry does not resolve", c["image"]
                        )}})
                    } else {
                        json!({"running": {"startedAt": now_rfc3339()}})
                    };
                    json!({
                        "name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                        "restartCount": 0, "state": state,
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
        .and_then(|d| crate::config::bounded_duration(d).ok())
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
