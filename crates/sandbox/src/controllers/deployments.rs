//! The Deployment controller: one ReplicaSet per pod-template hash, and the rollout
//! step (`RollingUpdate` within maxSurge/maxUnavailable, or `Recreate`) that moves
//! replicas from the old ReplicaSets to the new one, with the events kubectl shows.
//!
//! It must not touch pods: it only creates and scales ReplicaSets, and the
//! ReplicaSet controller turns their replica counts into pods.

use serde_json::{Value, json};

use super::{def, owned_by, owner_ref, record_event, scaled};
use crate::objects::{is_terminating, prepare_create};
use crate::store::{Store, name_of, namespace_of, uid_of};

/// FNV-1a over the template, encoded like Kubernetes' `rand.SafeEncodeString`.
pub(super) fn template_hash(template: &Value) -> String {
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

pub(super) fn reconcile_deployments(store: &mut Store) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
