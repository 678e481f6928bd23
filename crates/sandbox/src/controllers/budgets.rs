//! The disruption controller: the `status` of each PodDisruptionBudget (healthy,
//! desired and expected pods, disruptions allowed), which the eviction API consults.
//!
//! It must not evict or delete pods; it only reports how many may go.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::scaled;
use crate::objects::{
    controller_of, is_terminating, label_selector, pod_serving, selector_matches, set_condition,
};
use crate::store::{Store, name_of, namespace_of};

pub(super) fn update_budgets(store: &mut Store) {
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
            // One look per owner, not per pod: the owner's scale is the same for
            // each of its pods.
            if let Some(r) =
                controller_of(pod).filter(|r| !owners.contains_key(r["uid"].as_str().unwrap_or("")))
            {
                let scale = store
                    .iter(
                        match r["kind"].as_str() {
                            Some("DaemonSet") => "daemonsets",
                            Some("StatefulSet") => "statefulsets",
                            _ => "replicasets",
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
        store.update("poddisruptionbudgets", pdb);
    }
}
