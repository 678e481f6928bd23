//! Per-kind rules the API server applies on write: defaults, validation, and which
//! parts of an object each endpoint may change. Also the small readers controllers
//! share (is this pod ready? does this selector match?).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::resources::ResourceDef;
use super::status::ApiError;
use super::store::{labels_of, now_rfc3339, string_map};
use shakedown_vocab::selector::LabelSelector;

/// Kinds whose `metadata.generation` tracks spec changes.
fn has_generation(store: &str) -> bool {
    matches!(
        store,
        "deployments" | "replicasets" | "daemonsets" | "poddisruptionbudgets"
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
    obj["kind"] = json!(def.kind);
    obj["apiVersion"] = json!(def.api_version());
    if has_generation(def.store) {
        obj["metadata"]["generation"] = json!(1);
    }
    match def.store {
        "pods" => default_pod(obj)?,
        "deployments" | "replicasets" | "daemonsets" => default_workload(def, obj)?,
        "poddisruptionbudgets" => validate_pdb(obj)?,
        "events" => validate_event(obj, &name)?,
        "leases" => super::lease::validate(obj)?,
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

/// A core/v1 Event that sets `eventTime` is a "new" event: like kube-apiserver's
/// `legacyValidateEvent`, it needs `reportingComponent` and `reportingInstance`.
fn validate_event(event: &Value, name: &str) -> Result<(), ApiError> {
    let set = |field: &str| event[field].as_str().is_some_and(|v| !v.is_empty());
    if !set("eventTime") {
        return Ok(());
    }
    for field in ["reportingComponent", "reportingInstance"] {
        if !set(field) {
            let field = if field == "reportingComponent" {
                // The Go field is ReportingController; the API names it that way.
                "reportingController"
            } else {
                field
            };
            return Err(ApiError::required("Event", name, field));
        }
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
    let selector_value = obj["spec"]["selector"].clone();
    if !selector_value.is_object() {
        return Err(ApiError::invalid(
            def.kind,
            &name,
            "spec.selector",
            "Required value",
        ));
    }
    let selector = label_selector(&selector_value).map_err(|e| {
        ApiError::invalid(
            def.kind,
            &name,
            "spec.selector",
            &format!("Invalid value: {e}"),
        )
    })?;
    let template_labels = string_map(&obj["spec"]["template"]["metadata"]["labels"]);
    if selector.is_empty() || !selector.matches(&template_labels) {
        return Err(ApiError::invalid(
            def.kind,
            &name,
            "spec.template.metadata.labels",
            "Invalid value: `selector` does not match template `labels`",
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
            if def.store == "poddisruptionbudgets" {
                validate_pdb_spec(&name, &new)?;
            }
            if def.store == "leases" {
                super::lease::check_update_precondition(&new, Some(old))?;
                super::lease::validate(&mut new)?;
            }
            new
        }
    };
    let mut merged = merged;
    if has_generation(def.store) && merged["spec"] != old["spec"] {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        merged["metadata"]["generation"] = json!(generation + 1);
    }
    Ok(merged)
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

fn check_ephemeral(name: &str, old_spec: &Value, wanted: &Value) -> Result<(), ApiError> {
    let empty = Vec::new();
    let old = old_spec["ephemeralContainers"].as_array().unwrap_or(&empty);
    let Some(wanted) = wanted.as_array() else {
        return Err(ApiError::invalid(
            "Pod",
            name,
            "spec.ephemeralContainers",
            "Required value",
        ));
    };
    for existing in old {
        let still = wanted.iter().find(|w| w["name"] == existing["name"]);
        if still != Some(existing) {
            return Err(ApiError::invalid(
                "Pod",
                name,
                "spec.ephemeralContainers",
                "Forbidden: existing ephemeral containers may not be changed",
            ));
        }
    }
    let mut names: Vec<&str> = old_spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for (i, c) in wanted.iter().enumerate() {
        let field = format!("spec.ephemeralContainers[{i}]");
        let cname = c["name"].as_str().unwrap_or("");
        if cname.is_empty() || c["image"].as_str().unwrap_or("").is_empty() {
            return Err(ApiError::invalid(
                "Pod",
                name,
                &field,
                "Required value: name and image are required",
            ));
        }
        if names.contains(&cname) {
            return Err(ApiError::invalid(
                "Pod",
                name,
                &format!("{field}.name"),
                &format!("Duplicate value: \"{cname}\""),
            ));
        }
        names.push(cname);
        for forbidden in [
            "ports",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle",
        ] {
            if !c[forbidden].is_null() {
                return Err(ApiError::invalid(
                    "Pod",
                    name,
                    &format!("{field}.{forbidden}"),
                    "Forbidden: cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    Ok(())
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
