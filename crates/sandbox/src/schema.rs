//! Just enough of the Kubernetes types' schemas to decode a body the way the API
//! server does: which top-level and `spec` fields a kind has (the rest are unknown
//! fields, which `fieldValidation` turns into warnings or errors), and which of
//! them are booleans or integers (a string there cannot be decoded at all).
//!
//! Kinds not listed here are not checked. It must not change what it checks.

use serde_json::Value;

const OBJECT_ROOT: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

const POD_SPEC: &[&str] = &[
    "volumes",
    "initContainers",
    "containers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "resources",
];
const NODE_SPEC: &[&str] = &[
    "podCIDR",
    "podCIDRs",
    "providerID",
    "unschedulable",
    "taints",
    "configSource",
    "externalID",
];
const DEPLOYMENT_SPEC: &[&str] = &[
    "replicas",
    "selector",
    "template",
    "strategy",
    "minReadySeconds",
    "revisionHistoryLimit",
    "paused",
    "progressDeadlineSeconds",
];
const REPLICASET_SPEC: &[&str] = &["replicas", "minReadySeconds", "selector", "template"];
const DAEMONSET_SPEC: &[&str] = &[
    "selector",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "revisionHistoryLimit",
];
const STATEFULSET_SPEC: &[&str] = &[
    "replicas",
    "selector",
    "template",
    "volumeClaimTemplates",
    "serviceName",
    "podManagementPolicy",
    "updateStrategy",
    "revisionHistoryLimit",
    "minReadySeconds",
    "persistentVolumeClaimRetentionPolicy",
    "ordinals",
];
const PDB_SPEC: &[&str] = &[
    "minAvailable",
    "selector",
    "maxUnavailable",
    "unhealthyPodEvictionPolicy",
];

/// The Go type names of a kind's spec, for decoding errors.
fn spec_type(kind: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match kind {
        "Pod" => ("PodSpec", POD_SPEC),
        "Node" => ("NodeSpec", NODE_SPEC),
        "Deployment" => ("DeploymentSpec", DEPLOYMENT_SPEC),
        "ReplicaSet" => ("ReplicaSetSpec", REPLICASET_SPEC),
        "DaemonSet" => ("DaemonSetSpec", DAEMONSET_SPEC),
        "StatefulSet" => ("StatefulSetSpec", STATEFULSET_SPEC),
        "PodDisruptionBudget" => ("PodDisruptionBudgetSpec", PDB_SPEC),
        _ => return None,
    })
}

/// Scalar spec fields and their Go types.
fn scalar_type(kind: &str, field: &str) -> Option<&'static str> {
    Some(match (kind, field) {
        (
            "Pod",
            "hostNetwork"
            | "hostPID"
            | "hostIPC"
            | "shareProcessNamespace"
            | "automountServiceAccountToken"
            | "enableServiceLinks"
            | "setHostnameAsFQDN"
            | "hostUsers",
        )
        | ("Node", "unschedulable")
        | ("Deployment", "paused") => "bool",
        ("Pod", "terminationGracePeriodSeconds" | "activeDeadlineSeconds") => "int64",
        ("Pod", "priority")
        | (
            "Deployment" | "ReplicaSet",
            "replicas" | "minReadySeconds" | "revisionHistoryLimit" | "progressDeadlineSeconds",
        )
        | ("DaemonSet", "minReadySeconds" | "revisionHistoryLimit")
        | ("StatefulSet", "replicas" | "minReadySeconds" | "revisionHistoryLimit") => "int32",
        _ => return None,
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The decoding error Go's JSON decoder reports for a wrongly typed spec field.
pub fn type_error(kind: &str, obj: &Value) -> Option<String> {
    let (go_type, _) = spec_type(kind)?;
    for (field, value) in obj["spec"].as_object()? {
        let Some(want) = scalar_type(kind, field) else {
            continue;
        };
        let fits = match want {
            "bool" => value.is_boolean(),
            _ => value.is_i64(),
        };
        if !fits && !value.is_null() {
            return Some(format!(
                "json: cannot unmarshal {} into Go struct field {go_type}.spec.{field} of type {want}",
                json_kind(value)
            ));
        }
    }
    None
}

/// Fields of `obj` its kind does not have, as dotted paths (`bogus`, `spec.x`).
pub fn unknown_fields(kind: &str, obj: &Value) -> Vec<String> {
    let Some((_, spec_fields)) = spec_type(kind) else {
        return Vec::new();
    };
    let mut unknown: Vec<String> = obj
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|k| !OBJECT_ROOT.contains(&k.as_str()))
        .cloned()
        .collect();
    unknown.extend(
        obj["spec"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|k| !spec_fields.contains(&k.as_str()))
            .map(|k| format!("spec.{k}")),
    );
    unknown
}

/// Drops what `unknown_fields` found, as decoding into the Go type does.
pub fn drop_fields(obj: &mut Value, paths: &[String]) {
    for path in paths {
        let (parent, key) = match path.split_once('.') {
            Some((parent, key)) => (&mut obj[parent], key),
            None => (&mut *obj, path.as_str()),
        };
        if let Some(m) = parent.as_object_mut() {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_string_for_a_boolean_is_a_decoding_error() {
        let node = json!({"spec": {"unschedulable": "yes"}});
        assert_eq!(
            type_error("Node", &node).as_deref(),
            Some(
                "json: cannot unmarshal string into Go struct field NodeSpec.spec.unschedulable of type bool"
            )
        );
        assert_eq!(
            type_error("Node", &json!({"spec": {"unschedulable": true}})),
            None
        );
    }

    #[test]
    fn unknown_fields_are_found_at_the_top_and_in_the_spec() {
        let mut pod =
            json!({"apiVersion": "v1", "bogus": 1, "spec": {"containers": [], "bogusField": 1}});
        let unknown = unknown_fields("Pod", &pod);
        assert_eq!(unknown, ["bogus", "spec.bogusField"]);
        drop_fields(&mut pod, &unknown);
        assert_eq!(pod, json!({"apiVersion": "v1", "spec": {"containers": []}}));
    }
}
