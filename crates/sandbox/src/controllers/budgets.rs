//! The disruption controller: the `status` of each PodDisruptionBudget (healthy,
//! desired and expected pods, disruptions allowed), which the eviction API consults.
//!
//! It must not evict or delete pods; it only reports how many may go. It redoes only
//! the budgets the pod cache marked dirty, so a pass costs what changed.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::cache::{PodCache, PodSummary, Selecting, owner_scale};
use super::scaled;
use crate::objects::{label_selector, set_condition};
use crate::store::Store;

/// Recomputes the status of every budget the pod cache marked dirty (one of its pods,
/// an owner's scale or the budget itself changed); returns how many it redid.
pub(super) fn update_budgets(store: &mut Store, cache: &mut PodCache) -> usize {
    let dirty = cache.take_dirty(Selecting::Budget);
    for (id, _) in &dirty {
        let Some(mut pdb) = store.get("poddisruptionbudgets", &id.0, &id.2).cloned() else {
            continue;
        };
        let ns = id.0.as_str();
        let selector = &pdb["spec"]["selector"];
        let everything = selector.is_null() || selector.as_object().is_some_and(|m| m.is_empty());
        if !everything && label_selector(selector).is_err() {
            continue;
        }
        let pods: Vec<&PodSummary> = cache.selected(id).map(|(_, p)| p).collect();
        let healthy = pods.iter().filter(|p| p.serving).count() as i64;
        let mut owners: HashMap<&str, i64> = HashMap::new();
        for pod in &pods {
            // One look per owner, not per pod: the owner's scale is the same for
            // each of its pods.
            if let Some(uid) = pod.owner.as_deref().filter(|uid| !owners.contains_key(uid)) {
                let kind = match pod.owner_kind.as_str() {
                    "DaemonSet" => "daemonsets",
                    "StatefulSet" => "statefulsets",
                    _ => "replicasets",
                };
                let scale = store
                    .iter(kind, Some(ns), None)
                    .find(|o| o["metadata"]["uid"] == uid)
                    .map_or(1, |o| owner_scale(o).unwrap_or(1));
                owners.insert(uid, scale);
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
        let live: HashSet<&str> = pods
            .iter()
            .filter(|p| !p.terminating)
            .map(|p| p.name.as_str())
            .collect();
        let allowed = (healthy - desired).max(0);
        let mut status = pdb["status"].clone();
        let disrupted: serde_json::Map<String, Value> = status["disruptedPods"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| live.contains(k.as_str()))
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
        // A metav1.Condition: its message is always present, and it records the
        // generation it was computed for.
        if let Some(condition) = status["conditions"]
            .as_array_mut()
            .and_then(|cs| cs.iter_mut().find(|c| c["type"] == "DisruptionAllowed"))
        {
            condition["message"] = json!("");
            condition["observedGeneration"] = pdb["metadata"]["generation"].clone();
        }
        pdb["status"] = status;
        let before = store.resource_version();
        store.update("poddisruptionbudgets", pdb);
        cache.own_write(store, before);
    }
    dirty.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One change to the store between two passes.
    type Step<'a> = Box<dyn Fn(&mut Store) + 'a>;

    fn pod(name: &str, app: &str, owner: &str, ready: bool) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": app},
                "ownerReferences": [{"kind": "ReplicaSet", "uid": owner, "controller": true}]},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        })
    }

    fn replica_set(name: &str, replicas: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": "shop"}, "spec": {"replicas": replicas}})
    }

    fn budget(name: &str, app: &str, spec: Value) -> Value {
        let mut pdb = json!({"metadata": {"name": name, "namespace": "shop", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": app}}}});
        for (k, v) in spec.as_object().unwrap() {
            pdb["spec"][k] = v.clone();
        }
        pdb
    }

    /// One pass from the cache kept across passes; how many budgets it redid.
    fn pass(store: &mut Store, cache: &mut PodCache) -> usize {
        cache.sync(store);
        let redone = update_budgets(store, cache);
        cache.sync(store);
        redone
    }

    /// A controller starting from scratch (every budget dirty) writes nothing new.
    fn assert_matches_scratch(store: &mut Store) {
        let rv = store.resource_version();
        let mut fresh = PodCache::default();
        fresh.sync(store);
        update_budgets(store, &mut fresh);
        assert_eq!(
            store.resource_version(),
            rv,
            "a from-scratch pass rewrote a budget"
        );
    }

    fn status(store: &Store, name: &str) -> Value {
        store.get("poddisruptionbudgets", "shop", name).unwrap()["status"].clone()
    }

    /// Two ReplicaSets (`web` of 4 and `api` of 2 replicas), their pods, and budgets
    /// over each; returns the ReplicaSets' uids.
    fn bench(store: &mut Store) -> (String, String) {
        let web = store
            .create(
                "replicasets",
                "replicasets.apps",
                replica_set("web", 4),
                false,
            )
            .unwrap();
        let api = store
            .create(
                "replicasets",
                "replicasets.apps",
                replica_set("api", 2),
                false,
            )
            .unwrap();
        let (web, api) = (uid_of(&web), uid_of(&api));
        for i in 0..4 {
            store
                .create(
                    "pods",
                    "pods",
                    pod(&format!("web-{i}"), "web", &web, true),
                    false,
                )
                .unwrap();
        }
        for i in 0..2 {
            store
                .create(
                    "pods",
                    "pods",
                    pod(&format!("api-{i}"), "api", &api, true),
                    false,
                )
                .unwrap();
        }
        for pdb in [
            budget("web", "web", json!({"minAvailable": "50%"})),
            budget("api", "api", json!({"maxUnavailable": 1})),
        ] {
            store
                .create(
                    "poddisruptionbudgets",
                    "poddisruptionbudgets.policy",
                    pdb,
                    false,
                )
                .unwrap();
        }
        (web, api)
    }

    fn uid_of(obj: &Value) -> String {
        obj["metadata"]["uid"].as_str().unwrap().to_owned()
    }

    #[test]
    fn incrementally_kept_budget_status_matches_one_computed_from_scratch() {
        let mut store = Store::new(1000);
        let (web, api) = bench(&mut store);
        let mut cache = PodCache::default();
        assert_eq!(pass(&mut store, &mut cache), 2);
        assert_matches_scratch(&mut store);
        let steps: Vec<Step> = vec![
            Box::new(|s| {
                s.remove("pods", "shop", "web-0");
            }),
            Box::new(|s| {
                s.update("pods", pod("web-1", "web", &web, false));
            }),
            // An eviction's bookkeeping, then its pod going away.
            Box::new(|s| {
                let mut pdb = s
                    .get("poddisruptionbudgets", "shop", "web")
                    .cloned()
                    .unwrap();
                pdb["status"]["disruptedPods"] =
                    json!({"web-2": "2026-01-01T00:00:00Z", "web-3": "2026-01-01T00:00:00Z"});
                s.update("poddisruptionbudgets", pdb);
            }),
            Box::new(|s| {
                let mut leaving = pod("web-2", "web", &web, true);
                leaving["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                s.update("pods", leaving);
            }),
            // A newcomer, ready.
            Box::new(|s| {
                s.create("pods", "pods", pod("web-4", "web", &web, true), false)
                    .unwrap();
            }),
            // A label change moves a pod between budgets.
            Box::new(|s| {
                s.update("pods", pod("api-1", "web", &api, true));
            }),
            // The owner's scale, which a percentage counts from.
            Box::new(|s| {
                let mut rs = s.get("replicasets", "shop", "web").cloned().unwrap();
                rs["spec"]["replicas"] = json!(10);
                s.update("replicasets", rs);
            }),
            // A selector change, with a new generation.
            Box::new(|s| {
                let mut pdb = s
                    .get("poddisruptionbudgets", "shop", "api")
                    .cloned()
                    .unwrap();
                pdb["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
                pdb["metadata"]["generation"] = json!(2);
                s.update("poddisruptionbudgets", pdb);
            }),
        ];
        for step in steps {
            step(&mut store);
            pass(&mut store, &mut cache);
            assert_matches_scratch(&mut store);
        }
        let web_status = status(&store, "web");
        // web-1 (not ready), web-2 (terminating), web-3, web-4, api-1 (now app=web)
        // selected; the owners' scales are 10 + 2.
        assert_eq!(web_status["currentHealthy"], 3);
        assert_eq!(web_status["expectedPods"], 12);
        assert_eq!(web_status["desiredHealthy"], 6);
        assert_eq!(web_status["disruptionsAllowed"], 0);
        assert_eq!(
            web_status["disruptedPods"],
            json!({"web-3": "2026-01-01T00:00:00Z"})
        );
        let api_status = status(&store, "api");
        assert_eq!(api_status["observedGeneration"], 2);
        assert_eq!(api_status["expectedPods"], 12);
        assert_eq!(api_status["desiredHealthy"], 11);
    }

    /// The bug this pins: every pass recounted every budget over every pod of its
    /// namespace, so one DELETE among 1,000 pods cost a scan of all of them.
    #[test]
    fn a_pass_after_one_pod_delete_redoes_only_its_budget() {
        let mut store = Store::new(1000);
        bench(&mut store);
        let mut cache = PodCache::default();
        assert_eq!(pass(&mut store, &mut cache), 2);
        assert_eq!(
            pass(&mut store, &mut cache),
            0,
            "its own writes do not count"
        );
        store.remove("pods", "shop", "api-0");
        assert_eq!(pass(&mut store, &mut cache), 1);
        assert_eq!(status(&store, "api")["currentHealthy"], 1);
        assert_eq!(pass(&mut store, &mut cache), 0);
        assert_matches_scratch(&mut store);
    }
}
