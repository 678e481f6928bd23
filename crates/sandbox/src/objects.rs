//! Per-kind rules the API server applies on write: defaults, validation (worded as
//! kube-apiserver words it: workload selectors, node taints, ephemeral containers,
//! labels and annotations), and which parts of an object each endpoint may change. Also the small readers controllers
//! share (is this pod ready? does this selector match?).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::events;
use super::resources::ResourceDef;
use super::status::{ApiError, Cause, group_of_kind, quote};
use super::store::{labels_of, now_rfc3339, string_map};
use super::validation;
use shakedown_vocab::selector::LabelSelector;

/// Kinds whose `metadata.generation` tracks spec changes.
fn has_generation(store: &str) -> bool {
    matches!(
        store,
        "deployments"
            | "replicasets"
            | "daemonsets"
            | "statefulsets"
            | "poddisruptionbudgets"
            | "jobs"
            | "cronjobs"
    )
}

/// Kinds with a status subresource: the main endpoint ignores status changes.
pub fn has_status(def: &ResourceDef) -> bool {
    def.subresources.iter().any(|s| s.name == "status")
}

/// RFC 1123 subdomain, the rule for most object names.
pub fn validate_name(kind: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid(
            kind,
            name,
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    }
    if matches!(
        kind,
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
    ) {
        return super::rbac::validate_path_segment_name(kind, name);
    }
    let ok = name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            kind,
            name,
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ))
    }
}

/// Defaults and validation for a new object of `def`'s kind.
pub fn prepare_create(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
    validate_name(def.kind, &name)?;
    validate_metadata(def, &name, obj)?;
    obj["kind"] = json!(def.kind);
    // Events are stored in the core/v1 shape, whichever view wrote them.
    obj["apiVersion"] = json!(if def.store == "events" {
        "v1".to_owned()
    } else {
        def.api_version()
    });
    if has_generation(def.store) {
        obj["metadata"]["generation"] = json!(1);
    }
    match def.store {
        "pods" => default_pod(obj)?,
        "nodes" => check_causes(def, &name, taint_causes(obj, 1))?,
        "deployments" | "replicasets" | "daemonsets" | "statefulsets" => {
            default_workload(def, obj)?
        }
        "poddisruptionbudgets" => validate_pdb(obj)?,
        "events" => events::validate(obj, def.group == "events.k8s.io")?,
        "configmaps" => validate_config_map(obj, &name)?,
        "leases" => super::lease::validate(obj)?,
        "jobs" => super::batch::default_job(obj, &name)?,
        "cronjobs" => super::batch::default_cron_job(obj, &name)?,
        "persistentvolumeclaims" => super::batch::default_claim(obj, &name)?,
        "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings" => {
            super::rbac::validate(def.kind, obj)?
        }
        "namespaces" => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
            let labels = &mut obj["metadata"]["labels"];
            if !labels.is_object() {
                *labels = json!({});
            }
            labels["kubernetes.io/metadata.name"] = json!(name);
        }
        _ => {}
    }
    Ok(())
}

fn default_pod(pod: &mut Value) -> Result<(), ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let containers = pod["spec"]["containers"].as_array_mut();
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        return Err(ApiError::invalid(
            "Pod",
            &name,
            "spec.containers",
            "Required value",
        ));
    };
    for (i, c) in containers.iter_mut().enumerate() {
        if c["name"].as_str().unwrap_or("").is_empty() {
            return Err(ApiError::invalid(
                "Pod",
                &name,
                &format!("spec.containers[{i}].name"),
                "Required value",
            ));
        }
        if c["image"].as_str().unwrap_or("").is_empty() {
            return Err(ApiError::invalid(
                "Pod",
                &name,
                &format!("spec.containers[{i}].image"),
                "Required value",
            ));
        }
        default_container(c);
    }
    let spec = &mut pod["spec"];
    for (key, value) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("serviceAccountName", json!("default")),
        ("serviceAccount", json!("default")),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
    ] {
        if spec[key].is_null() {
            spec[key] = value;
        }
    }
    // The DefaultTolerationSeconds admission plugin adds these to every pod.
    let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    let mut tolerations = tolerations;
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerations.iter().any(|t| t["key"] == key) {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    spec["tolerations"] = json!(tolerations);
    let node_name = spec["nodeName"].clone();
    pod["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    if node_name.is_string() {
        set_condition(&mut pod["status"], "PodScheduled", "True", "", "");
    }
    Ok(())
}

fn default_container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("");
    let tagged = image
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
        || image.contains('@');
    let latest = !tagged || image.ends_with(":latest");
    for (key, value) in [
        (
            "imagePullPolicy",
            json!(if latest { "Always" } else { "IfNotPresent" }),
        ),
        ("terminationMessagePath", json!("/dev/termination-log")),
        ("terminationMessagePolicy", json!("File")),
        ("resources", json!({})),
    ] {
        if c[key].is_null() {
            c[key] = value;
        }
    }
}

fn default_workload(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let causes = workload_causes(def, obj, None);
    if !causes.is_empty() {
        return Err(ApiError::invalid_causes(
            group_of_kind(def.kind),
            def.kind,
            &name,
            causes,
        ));
    }
    let mut template = obj["spec"]["template"].clone();
    template["metadata"]["name"] = json!("template");
    default_pod(&mut template).map_err(|e| ApiError {
        message: e
            .message
            .replace("Pod \"template\"", &format!("{} \"{name}\"", def.kind))
            .replace("spec.", "spec.template.spec."),
        ..e
    })?;
    if let Some(spec) = template["spec"].as_object() {
        obj["spec"]["template"]["spec"] = Value::Object(spec.clone());
    }
    let spec = &mut obj["spec"];
    if def.store != "daemonsets" && spec["replicas"].is_null() {
        spec["replicas"] = json!(1);
    }
    if def.store == "statefulsets" {
        for (key, value) in [
            ("podManagementPolicy", json!("OrderedReady")),
            (
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            ),
            ("revisionHistoryLimit", json!(10)),
            (
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            ),
        ] {
            if spec[key].is_null() {
                spec[key] = value;
            }
        }
    }
    if def.store == "deployments" {
        for (key, value) in [
            (
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            ),
            ("revisionHistoryLimit", json!(10)),
            ("progressDeadlineSeconds", json!(600)),
        ] {
            if spec[key].is_null() {
                spec[key] = value;
            }
        }
    }
    obj["status"] = json!({});
    Ok(())
}

fn validate_pdb(pdb: &mut Value) -> Result<(), ApiError> {
    let name = pdb["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let spec = &pdb["spec"];
    if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
        return Err(ApiError::invalid(
            "PodDisruptionBudget",
            &name,
            "spec",
            "Invalid value: minAvailable and maxUnavailable cannot be both set",
        ));
    }
    if !spec["selector"].is_null() {
        label_selector(&spec["selector"]).map_err(|e| {
            ApiError::invalid(
                "PodDisruptionBudget",
                &name,
                "spec.selector",
                &format!("Invalid value: {e}"),
            )
        })?;
    }
    pdb["status"] = json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0});
    Ok(())
}

/// Label and annotation syntax; empty maps are dropped, as Go's `omitempty` does.
fn validate_metadata(def: &ResourceDef, name: &str, obj: &mut Value) -> Result<(), ApiError> {
    let causes = validation::metadata_maps(obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid_causes(
            group_of_kind(def.kind),
            def.kind,
            name,
            causes,
        ));
    }
    validation::omit_empty_maps(obj);
    Ok(())
}

/// Merges an update into the stored object the way the endpoint allows:
/// `None` is the main endpoint, `Some("status")` and `Some("ephemeralcontainers")`
/// the subresources.
pub fn merge_update(
    def: &ResourceDef,
    subresource: Option<&str>,
    old: &Value,
    mut new: Value,
) -> Result<Value, ApiError> {
    let name = old["metadata"]["name"].as_str().unwrap_or("").to_owned();
    if new["metadata"]["name"] != old["metadata"]["name"] && !new["metadata"]["name"].is_null() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            new["metadata"]["name"].as_str().unwrap_or("")
        )));
    }
    if let (Some(want), Some(have)) = (
        new["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty()),
        old["metadata"]["resourceVersion"].as_str(),
    ) && want != have
    {
        return Err(ApiError::conflict(
            &def.qualified(),
            &name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    let merged = match subresource {
        Some("status") => {
            let mut merged = old.clone();
            merged["status"] = new["status"].take();
            merged
        }
        Some("ephemeralcontainers") => {
            let mut merged = old.clone();
            let wanted = new["spec"]["ephemeralContainers"].take();
            check_ephemeral(&name, &old["spec"], &wanted)?;
            merged["spec"]["ephemeralContainers"] = wanted;
            merged
        }
        Some(_) => return Err(ApiError::not_found_path()),
        None => {
            // Server-owned metadata is not the client's to change.
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
            ] {
                new["metadata"][key] = old["metadata"][key].clone();
                if new["metadata"][key].is_null()
                    && let Some(m) = new["metadata"].as_object_mut()
                {
                    m.remove(key);
                }
            }
            new["kind"] = old["kind"].clone();
            new["apiVersion"] = old["apiVersion"].clone();
            if has_status(def) {
                new["status"] = old["status"].clone();
            }
            if def.store == "pods" {
                check_pod_spec_update(&name, &old["spec"], &new["spec"])?;
            }
            if matches!(
                def.store,
                "deployments" | "replicasets" | "daemonsets" | "statefulsets"
            ) {
                check_causes(def, &name, workload_causes(def, &new, Some(old)))?;
            }
            if def.store == "nodes" {
                // The API server validates a node's taints twice on update.
                check_causes(def, &name, taint_causes(&new, 2))?;
            }
            if def.store == "poddisruptionbudgets" {
                validate_pdb_spec(&name, &new)?;
            }
            if def.store == "configmaps" {
                validate_config_map(&new, &name)?;
                check_immutable_config_map(&name, old, &new)?;
            }
            if def.store == "leases" {
                super::lease::check_update_precondition(&new, Some(old))?;
                super::lease::validate(&mut new)?;
            }
            if super::rbac::is_rbac_store(def.store) {
                super::rbac::validate(def.kind, &new)?;
                super::rbac::check_role_ref_unchanged(def.kind, &name, old, &new)?;
            }
            new
        }
    };
    let mut merged = merged;
    validate_metadata(def, &name, &mut merged)?;
    if def.store == "events" {
        events::validate(&merged, def.group == "events.k8s.io")?;
    }
    if has_generation(def.store) && merged["spec"] != old["spec"] {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        merged["metadata"]["generation"] = json!(generation + 1);
    }
    Ok(merged)
}

fn check_causes(def: &ResourceDef, name: &str, causes: Vec<Cause>) -> Result<(), ApiError> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_causes(
            group_of_kind(def.kind),
            def.kind,
            name,
            causes,
        ))
    }
}

/// A Go `map[string]string` as `%#v` prints it.
fn go_string_map(value: &Value) -> String {
    let map = string_map(value);
    if map.is_empty() && value.is_null() {
        return "map[string]string(nil)".into();
    }
    let pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
        .collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

/// A `metav1.LabelSelector` as `%#v` prints it.
fn go_label_selector(selector: &Value) -> String {
    let expressions: Vec<String> = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let values: Vec<String> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| quote(v.as_str().unwrap_or("")))
                .collect();
            format!(
                "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:[]string{{{}}}}}",
                quote(e["key"].as_str().unwrap_or("")),
                quote(e["operator"].as_str().unwrap_or("")),
                values.join(", ")
            )
        })
        .collect();
    let expressions = if selector["matchExpressions"].is_null() {
        "[]v1.LabelSelectorRequirement(nil)".to_owned()
    } else {
        format!(
            "[]v1.LabelSelectorRequirement{{{}}}",
            expressions.join(", ")
        )
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{expressions}}}",
        go_string_map(&selector["matchLabels"])
    )
}

/// `ValidateDeploymentSpec` (and the ReplicaSet and DaemonSet ones) as far as the
/// sandbox checks: replicas, the selector, the template's labels, and on update the
/// selector's immutability (apps/v1).
fn workload_causes(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = &obj["spec"];
    if let Some(replicas) = spec["replicas"].as_i64().filter(|r| *r < 0) {
        causes.push(Cause::invalid(
            "spec.replicas",
            &replicas.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    let selector = &spec["selector"];
    let parsed = if selector.is_object() {
        match label_selector(selector) {
            Ok(s) if s.is_empty() && def.store == "deployments" => {
                causes.push(Cause::invalid(
                    "spec.selector",
                    &go_label_selector(selector),
                    "empty selector is invalid for deployment",
                ));
                None
            }
            Ok(s) => Some(s),
            Err(e) => {
                causes.push(Cause::invalid(
                    "spec.selector",
                    &go_label_selector(selector),
                    &e,
                ));
                None
            }
        }
    } else {
        causes.push(Cause::required("spec.selector", ""));
        None
    };
    let template_labels = &spec["template"]["metadata"]["labels"];
    if !parsed.is_some_and(|s| !s.is_empty() && s.matches(&string_map(template_labels))) {
        causes.push(Cause::invalid(
            "spec.template.metadata.labels",
            &go_string_map(template_labels),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(old) = old
        && def.store == "statefulsets"
    {
        causes.extend(stateful_set_update_causes(&old["spec"], spec));
    } else if let Some(old) = old
        && old["spec"]["selector"] != *selector
    {
        let shown = if selector.is_object() {
            go_label_selector(selector)
        } else {
            quote("null")
        };
        causes.push(Cause::invalid(
            "spec.selector",
            &shown,
            "field is immutable",
        ));
    }
    causes
}

/// `ValidateStatefulSetUpdate`: only replicas, ordinals, the template, the update
/// strategy, the PVC retention policy and minReadySeconds may change.
fn stateful_set_update_causes(old: &Value, new: &Value) -> Vec<Cause> {
    const MUTABLE: &[&str] = &[
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ];
    let rest = |spec: &Value| -> serde_json::Map<String, Value> {
        spec.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !MUTABLE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if rest(old) == rest(new) {
        return Vec::new();
    }
    vec![Cause::forbidden(
        "spec",
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    )]
}

/// `validateNodeTaints`, whose paths say `metadata.taints` (as the API server's do),
/// reported `times` times as the API server repeats them.
fn taint_causes(node: &Value, times: usize) -> Vec<Cause> {
    let mut once = Vec::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (i, taint) in node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("metadata.taints[{i}]");
        let key = taint["key"].as_str().unwrap_or("");
        for msg in validation::qualified_name(key) {
            once.push(Cause::invalid(format!("{path}.key"), &quote(key), &msg));
        }
        let value = taint["value"].as_str().unwrap_or("");
        let problems = validation::label_value(value);
        if !problems.is_empty() {
            once.push(Cause::invalid(
                format!("{path}.value"),
                &quote(value),
                &problems.join(";"),
            ));
        }
        let effect = taint["effect"].as_str().unwrap_or("");
        if effect.is_empty() {
            once.push(Cause::required(format!("{path}.effect"), ""));
        } else if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            once.push(Cause::not_supported(
                format!("{path}.effect"),
                &quote(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
        if seen.contains(&(key, effect)) {
            let mut duplicate = Cause::duplicate(path.clone(), key);
            duplicate.message = format!(
                "Duplicate value: {}: taints must be unique by key and effect pair",
                quote(key)
            );
            once.push(duplicate);
        }
        seen.push((key, effect));
    }
    let mut causes = Vec::new();
    for _ in 0..times {
        causes.extend(once.iter().cloned());
    }
    causes
}

/// kube-apiserver's `ValidateConfigMap`: every key is a config key (`[-._a-zA-Z0-9]+`,
/// not `.` or `..`, at most 253 characters), no key is in both `data` and `binaryData`,
/// `data` values are strings, and the whole payload fits in 1 MiB.
fn validate_config_map(obj: &Value, name: &str) -> Result<(), ApiError> {
    const MAX_BYTES: usize = 1024 * 1024;
    let mut total = 0;
    for field in ["data", "binaryData"] {
        let entries = match &obj[field] {
            Value::Null => continue,
            Value::Object(entries) => entries,
            other => {
                return Err(ApiError::bad_request(format!(
                    "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal {} into Go struct field ConfigMap.{field} of type map[string]string",
                    json_type(other)
                )));
            }
        };
        for (key, value) in entries {
            let path = format!("{field}[{key}]");
            if !is_config_key(key) {
                return Err(ApiError::invalid(
                    "ConfigMap",
                    name,
                    &path,
                    &format!(
                        "Invalid value: \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
                    ),
                ));
            }
            if field == "binaryData" && obj["data"].get(key).is_some() {
                return Err(ApiError::invalid(
                    "ConfigMap",
                    name,
                    &path,
                    &format!("Invalid value: \"{key}\": duplicate of key present in data"),
                ));
            }
            let Some(text) = value.as_str() else {
                return Err(ApiError::bad_request(format!(
                    "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal {} into Go struct field ConfigMap.{field} of type string",
                    json_type(value)
                )));
            };
            total += key.len() + text.len();
        }
    }
    if total > MAX_BYTES {
        return Err(ApiError::invalid(
            "ConfigMap",
            name,
            "[]",
            &format!("Too long: must have at most {MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && !key.starts_with("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Go's name for a JSON value's type, as `encoding/json` words a decode error.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// An `immutable: true` ConfigMap keeps its data, and stays immutable.
fn check_immutable_config_map(name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
    if old["immutable"] != true {
        return Ok(());
    }
    let forbidden = |field: &str| {
        ApiError::invalid(
            "ConfigMap",
            name,
            field,
            "Forbidden: field is immutable when `immutable` is set",
        )
    };
    if new["immutable"] != true {
        return Err(forbidden("immutable"));
    }
    for field in ["data", "binaryData"] {
        if old[field] != new[field] {
            return Err(forbidden(field));
        }
    }
    Ok(())
}

fn validate_pdb_spec(name: &str, pdb: &Value) -> Result<(), ApiError> {
    let spec = &pdb["spec"];
    if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
        return Err(ApiError::invalid(
            "PodDisruptionBudget",
            name,
            "spec",
            "Invalid value: minAvailable and maxUnavailable cannot be both set",
        ));
    }
    Ok(())
}

/// A pod's spec is immutable but for a few fields; ephemeral containers only change
/// through their subresource. A real API server answers 422 otherwise.
fn check_pod_spec_update(name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
    let normalise = |spec: &Value| {
        let mut spec = spec.clone();
        if let Some(m) = spec.as_object_mut() {
            m.remove("activeDeadlineSeconds");
            m.remove("tolerations");
            m.remove("terminationGracePeriodSeconds");
        }
        if let Some(containers) = spec["containers"].as_array_mut() {
            for c in containers {
                if let Some(m) = c.as_object_mut() {
                    m.remove("image");
                }
            }
        }
        spec
    };
    if normalise(old) == normalise(new) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "Pod",
            name,
            "spec",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ))
    }
}

/// The ephemeralcontainers subresource's rules: each new container is valid (as
/// `validateEphemeralContainers` checks it), and existing ones are neither removed
/// nor changed. Every problem is reported, as field validation does.
fn check_ephemeral(name: &str, old_spec: &Value, wanted: &Value) -> Result<(), ApiError> {
    let empty = Vec::new();
    let old = old_spec["ephemeralContainers"].as_array().unwrap_or(&empty);
    let wanted = wanted.as_array().unwrap_or(&empty);
    let regular: Vec<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| old_spec[*k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    let mut causes = Vec::new();
    let mut seen: Vec<&str> = regular.clone();
    for (i, c) in wanted.iter().enumerate() {
        let field = format!("spec.ephemeralContainers[{i}]");
        let cname = c["name"].as_str().unwrap_or("");
        if cname.is_empty() {
            causes.push(Cause::required(format!("{field}.name"), ""));
        } else if let Some(why) = dns1123_label_problem(cname) {
            causes.push(Cause::invalid(format!("{field}.name"), &quote(cname), &why));
        } else if seen.contains(&cname) {
            causes.push(Cause::duplicate(format!("{field}.name"), cname));
        }
        seen.push(cname);
        if c["image"].as_str().unwrap_or("").is_empty() {
            causes.push(Cause::required(format!("{field}.image"), ""));
        }
        for forbidden in [
            "ports",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle",
            "resources",
            "resizePolicy",
        ] {
            if !c[forbidden].is_null() {
                causes.push(Cause::forbidden(
                    format!("{field}.{forbidden}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        if let Some(target) = c["targetContainerName"].as_str().filter(|t| !t.is_empty())
            && !regular.contains(&target)
        {
            causes.push(Cause::not_found(
                format!("{field}.targetContainerName"),
                target,
            ));
        }
    }
    for existing in old {
        let ename = existing["name"].as_str().unwrap_or("");
        let verb = match wanted.iter().find(|w| w["name"] == existing["name"]) {
            None => "removed",
            Some(now) if now != existing => "changed",
            Some(_) => continue,
        };
        causes.push(Cause::forbidden(
            "spec.ephemeralContainers",
            &format!(
                "existing ephemeral containers {} may not be {verb}\n",
                quote(ename)
            ),
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_causes("", "Pod", name, causes))
    }
}

/// Why `value` is not a lowercase RFC 1123 label, worded as apimachinery words it.
pub fn dns1123_label_problem(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = !bytes.is_empty()
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum);
    let mut problems = Vec::new();
    if value.len() > 63 {
        problems.push("must be no more than 63 characters".to_owned());
    }
    if !ok {
        problems.push("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_owned());
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// Sets (or refreshes) a condition, keeping its transition time when the status holds.
pub fn set_condition(status: &mut Value, kind: &str, value: &str, reason: &str, message: &str) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    let mut fresh = json!({"type": kind, "status": value});
    if !reason.is_empty() {
        fresh["reason"] = json!(reason);
    }
    if !message.is_empty() {
        fresh["message"] = json!(message);
    }
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(existing) if existing["status"] == value => {
            fresh["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            if !existing["lastProbeTime"].is_null() {
                fresh["lastProbeTime"] = existing["lastProbeTime"].clone();
            }
            *existing = fresh;
        }
        Some(existing) => {
            fresh["lastTransitionTime"] = json!(now_rfc3339());
            *existing = fresh;
        }
        None => {
            fresh["lastTransitionTime"] = json!(now_rfc3339());
            conditions.push(fresh);
        }
    }
}

pub fn condition_is_true(status: &Value, kind: &str) -> bool {
    status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

pub fn is_terminating(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

/// Ready and not on its way out: what counts as healthy for PDBs and traffic.
pub fn pod_serving(pod: &Value) -> bool {
    !is_terminating(pod) && condition_is_true(&pod["status"], "Ready")
}

/// A `metav1.LabelSelector` (matchLabels + matchExpressions) as the shared selector type.
pub fn label_selector(value: &Value) -> Result<LabelSelector, String> {
    let mut terms = Vec::new();
    for (k, v) in string_map(&value["matchLabels"]) {
        terms.push(format!("{k}={v}"));
    }
    for expr in value["matchExpressions"].as_array().into_iter().flatten() {
        let key = expr["key"].as_str().unwrap_or("");
        let values: Vec<&str> = expr["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        terms.push(match expr["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        });
    }
    LabelSelector::parse(&terms.join(",")).map_err(|e| e.to_string())
}

pub fn selector_matches(selector: &Value, obj: &Value) -> bool {
    label_selector(selector).is_ok_and(|s| s.matches(&labels_of(obj)))
}

/// The controller owner reference (`controller: true`), if any.
pub fn controller_of(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
}

/// `nodeSelector` and required node affinity (terms ORed, expressions ANDed) against a
/// node's labels. `matchFields` and the `Gt`/`Lt` operators are not simulated.
pub fn node_selector_matches(pod_spec: &Value, node_labels: &BTreeMap<String, String>) -> bool {
    let selector_ok = string_map(&pod_spec["nodeSelector"])
        .iter()
        .all(|(k, v)| node_labels.get(k) == Some(v));
    let terms = &pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    let affinity_ok = match terms.as_array() {
        None => true,
        Some(terms) => terms.iter().any(|term| {
            let as_selector = json!({"matchExpressions": term["matchExpressions"]});
            label_selector(&as_selector).is_ok_and(|s| s.matches(node_labels))
        }),
    };
    selector_ok && affinity_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    #[test]
    fn deployments_whose_selector_misses_the_template_are_invalid() {
        let def = find("apps", "v1", "deployments").unwrap();
        let mut d = json!({"metadata": {"name": "x"}, "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let err = prepare_create(def, &mut d).unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn adding_an_ephemeral_container_through_the_pod_itself_is_forbidden() {
        let def = find("", "v1", "pods").unwrap();
        let old = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let mut new = old.clone();
        new["spec"]["ephemeralContainers"] = json!([{"name": "e", "image": "tc"}]);
        assert_eq!(
            merge_update(def, None, &old, new.clone()).unwrap_err().code,
            422
        );
        let merged = merge_update(def, Some("ephemeralcontainers"), &old, new).unwrap();
        assert_eq!(merged["spec"]["ephemeralContainers"][0]["name"], "e");
    }

    #[test]
    fn a_stale_resource_version_is_a_conflict() {
        let def = find("", "v1", "nodes").unwrap();
        let old = json!({"metadata": {"name": "n", "resourceVersion": "5"}});
        let new = json!({"metadata": {"name": "n", "resourceVersion": "4"}});
        let err = merge_update(def, None, &old, new).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
    }

    #[test]
    fn required_node_affinity_terms_are_ored() {
        let spec = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-b"]}]},
            {"matchExpressions": [{"key": "disk", "operator": "Exists"}]},
        ]}}}});
        let zone_a = BTreeMap::from([(
            "topology.kubernetes.io/zone".to_owned(),
            "zone-a".to_owned(),
        )]);
        let mut zone_a_ssd = zone_a.clone();
        zone_a_ssd.insert("disk".into(), "ssd".into());
        let zone_b = BTreeMap::from([(
            "topology.kubernetes.io/zone".to_owned(),
            "zone-b".to_owned(),
        )]);
        assert!(!node_selector_matches(&spec, &zone_a));
        assert!(node_selector_matches(&spec, &zone_a_ssd));
        assert!(node_selector_matches(&spec, &zone_b));
    }

    #[test]
    fn match_expressions_become_selector_requirements() {
        let sel = json!({"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]});
        let pod = json!({"metadata": {"labels": {"app": "a", "tier": "api"}}});
        assert!(selector_matches(&sel, &pod));
        let other = json!({"metadata": {"labels": {"app": "a", "tier": "db"}}});
        assert!(!selector_matches(&sel, &other));
    }
}
