//! Pod Security admission, as kube-apiserver's built-in `PodSecurity` plugin applies
//! it from a namespace's `pod-security.kubernetes.io/{enforce,warn,audit}` labels:
//! a Pod (or an ephemeral container added to one) that violates `enforce` is refused
//! with 403 `pods "x" is forbidden: violates PodSecurity "restricted:latest": …`;
//! a Pod that passes `enforce` but not `warn` is admitted with a `Warning`; and a
//! workload (Deployment, Job, CronJob, …) is never refused, only warned about from
//! its pod template against `warn` (enforce applies to the pods its controller
//! makes). The words are the plugin's, checks sorted by their ID as it sorts them.
//!
//! It covers the checks a chaos tool's pods meet (capabilities, privilege,
//! non-root, seccomp, host namespaces and paths, volume types); it must not refuse
//! anything a real server admits.

use serde_json::Value;

use crate::status::ApiError;
use crate::store::{Store, labels_of};

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const WARN: &str = "pod-security.kubernetes.io/warn";
const ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";
const WARN_VERSION: &str = "pod-security.kubernetes.io/warn-version";

/// A Pod Security Standard level, least strict first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn parse(label: Option<&String>) -> Level {
        match label.map(String::as_str) {
            Some("restricted") => Level::Restricted,
            Some("baseline") => Level::Baseline,
            // Unset is the default (privileged); an unparsable warn label fails open.
            _ => Level::Privileged,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// One mode's level and version (`restricted:latest`), as the plugin prints it.
struct LevelVersion {
    level: Level,
    version: String,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.name(), self.version)
    }
}

fn mode(store: &Store, namespace: &str, level: &str, version: &str) -> LevelVersion {
    let labels = store
        .get("namespaces", "", namespace)
        .map(labels_of)
        .unwrap_or_default();
    LevelVersion {
        level: Level::parse(labels.get(level)),
        version: labels
            .get(version)
            .cloned()
            .unwrap_or_else(|| "latest".to_owned()),
    }
}

/// A new or changed Pod in `namespace`: refused when it violates `enforce`, else the
/// warning `warn` draws (if any).
pub fn admit_pod(
    store: &Store,
    namespace: &str,
    name: &str,
    pod: &Value,
) -> Result<Option<String>, ApiError> {
    let enforce = mode(store, namespace, ENFORCE, ENFORCE_VERSION);
    let violations = evaluate(enforce.level, &pod["spec"]);
    if !violations.is_empty() {
        return Err(ApiError::forbidden_object(
            "pods",
            name,
            &format!(
                "violates PodSecurity \"{enforce}\": {}",
                violations.join(", ")
            ),
        ));
    }
    Ok(warning(store, namespace, &pod["spec"]))
}

/// The pod template of a workload object, if its kind has one.
pub fn template_spec<'a>(kind: &str, obj: &'a Value) -> Option<&'a Value> {
    let spec = match kind {
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &obj["spec"]["template"]["spec"],
        "CronJob" => &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "PodTemplate" => &obj["template"]["spec"],
        _ => return None,
    };
    spec.is_object().then_some(spec)
}

/// The warning a workload object draws from its namespace's `warn` level (never a
/// refusal: enforcement applies to the pods it makes).
pub fn workload_warning(store: &Store, namespace: &str, kind: &str, obj: &Value) -> Option<String> {
    warning(store, namespace, template_spec(kind, obj)?)
}

fn warning(store: &Store, namespace: &str, spec: &Value) -> Option<String> {
    let warn = mode(store, namespace, WARN, WARN_VERSION);
    let violations = evaluate(warn.level, spec);
    (!violations.is_empty()).then(|| {
        format!(
            "would violate PodSecurity \"{warn}\": {}",
            violations.join(", ")
        )
    })
}

/// Every container of a pod spec: init, regular and ephemeral, in that order.
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |key| spec[key].as_array().into_iter().flatten())
}

fn name(c: &Value) -> &str {
    c["name"].as_str().unwrap_or("")
}

/// `container "a"` or `containers "a", "b"`, as the plugin lists them.
fn listed(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let noun = if names.len() == 1 {
        "container"
    } else {
        "containers"
    };
    format!("{noun} {}", quoted.join(", "))
}

fn quoted_list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The violations of `spec` at `level`, each `reason (detail)`, in check-ID order.
pub fn evaluate(level: Level, spec: &Value) -> Vec<String> {
    let mut found: Vec<(&str, String)> = Vec::new();
    if level >= Level::Baseline {
        if level == Level::Baseline {
            found.extend(capabilities_baseline(spec).map(|v| ("capabilities_baseline", v)));
        }
        found.extend(host_namespaces(spec).map(|v| ("hostNamespaces", v)));
        if level == Level::Baseline {
            found.extend(host_path_volumes(spec).map(|v| ("hostPathVolumes", v)));
        }
        found.extend(privileged(spec).map(|v| ("privileged", v)));
    }
    if level == Level::Restricted {
        found.extend(allow_privilege_escalation(spec).map(|v| ("allowPrivilegeEscalation", v)));
        found.extend(capabilities_restricted(spec).map(|v| ("capabilities_restricted", v)));
        found.extend(restricted_volumes(spec).map(|v| ("restrictedVolumes", v)));
        found.extend(run_as_non_root(spec).map(|v| ("runAsNonRoot", v)));
        found.extend(run_as_user(spec).map(|v| ("runAsUser", v)));
        found.extend(seccomp_restricted(spec).map(|v| ("seccompProfile_restricted", v)));
    }
    found.sort_by(|a, b| a.0.cmp(b.0));
    found.into_iter().map(|(_, v)| v).collect()
}

fn allow_privilege_escalation(spec: &Value) -> Option<String> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| c["securityContext"]["allowPrivilegeEscalation"] != false)
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            listed(&bad)
        )
    })
}

fn added_capabilities(c: &Value) -> Vec<String> {
    c["securityContext"]["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Baseline allows only the container runtime's default capabilities to be added.
fn capabilities_baseline(spec: &Value) -> Option<String> {
    const DEFAULTS: &[&str] = &[
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ];
    let mut bad = Vec::new();
    let mut caps: Vec<String> = Vec::new();
    for c in containers(spec) {
        let added: Vec<String> = added_capabilities(c)
            .into_iter()
            .filter(|a| !DEFAULTS.contains(&a.as_str()))
            .collect();
        if !added.is_empty() {
            bad.push(name(c));
            caps.extend(added);
        }
    }
    caps.sort();
    caps.dedup();
    (!bad.is_empty()).then(|| {
        format!(
            "non-default capabilities ({} must not include {} in securityContext.capabilities.add)",
            listed(&bad),
            quoted_list(&caps)
        )
    })
}

fn capabilities_restricted(spec: &Value) -> Option<String> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps: Vec<String> = Vec::new();
    for c in containers(spec) {
        let drops_all = c["securityContext"]["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "ALL"));
        if !drops_all {
            missing_drop.push(name(c));
        }
        let added: Vec<String> = added_capabilities(c)
            .into_iter()
            .filter(|a| a != "NET_BIND_SERVICE")
            .collect();
        if !added.is_empty() {
            adding.push(name(c));
            caps.extend(added);
        }
    }
    caps.sort();
    caps.dedup();
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            listed(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            listed(&adding),
            quoted_list(&caps)
        ));
    }
    (!details.is_empty()).then(|| format!("unrestricted capabilities ({})", details.join("; ")))
}

fn host_namespaces(spec: &Value) -> Option<String> {
    let set: Vec<&str> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| spec[*k] == true)
        .collect();
    (!set.is_empty()).then(|| {
        let each: Vec<String> = set.iter().map(|k| format!("{k}=true")).collect();
        format!("host namespaces ({})", each.join(", "))
    })
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["volumes"].as_array().into_iter().flatten()
}

fn host_path_volumes(spec: &Value) -> Option<String> {
    let bad: Vec<String> = volumes(spec)
        .filter(|v| v["hostPath"].is_object())
        .map(|v| format!("\"{}\"", v["name"].as_str().unwrap_or("")))
        .collect();
    let noun = if bad.len() == 1 { "volume" } else { "volumes" };
    (!bad.is_empty()).then(|| format!("hostPath volumes ({noun} {})", bad.join(", ")))
}

fn privileged(spec: &Value) -> Option<String> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| c["securityContext"]["privileged"] == true)
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "privileged ({} must not set securityContext.privileged=true)",
            listed(&bad)
        )
    })
}

/// Restricted allows only these volume sources.
fn restricted_volumes(spec: &Value) -> Option<String> {
    const ALLOWED: &[&str] = &[
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
        "image",
    ];
    let mut bad = Vec::new();
    let mut kinds: Vec<String> = Vec::new();
    for v in volumes(spec) {
        let sources: Vec<String> = v
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|k| *k != "name" && !ALLOWED.contains(&k.as_str()))
            .cloned()
            .collect();
        if !sources.is_empty() {
            bad.push(format!("\"{}\"", v["name"].as_str().unwrap_or("")));
            kinds.extend(sources);
        }
    }
    kinds.sort();
    kinds.dedup();
    let noun = if bad.len() == 1 { "volume" } else { "volumes" };
    (!bad.is_empty()).then(|| {
        format!(
            "restricted volume types ({noun} {} {} {})",
            bad.join(", "),
            if bad.len() == 1 { "uses" } else { "use" },
            if kinds.len() == 1 {
                format!("restricted volume type \"{}\"", kinds[0])
            } else {
                format!("restricted volume types {}", quoted_list(&kinds))
            }
        )
    })
}

fn run_as_non_root(spec: &Value) -> Option<String> {
    let pod = &spec["securityContext"]["runAsNonRoot"];
    let pod_set = *pod == true;
    let mut setters: Vec<String> = Vec::new();
    if *pod == false {
        setters.push("pod".to_owned());
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match &c["securityContext"]["runAsNonRoot"] {
            Value::Bool(false) => explicit.push(name(c)),
            Value::Bool(true) => {}
            _ if !pod_set => implicit.push(name(c)),
            _ => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(listed(&explicit));
    }
    if !setters.is_empty() {
        return Some(format!(
            "runAsNonRoot != true ({} must not set securityContext.runAsNonRoot=false)",
            setters.join(" and ")
        ));
    }
    (!implicit.is_empty()).then(|| {
        format!(
            "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
            listed(&implicit)
        )
    })
}

fn run_as_user(spec: &Value) -> Option<String> {
    let mut setters = Vec::new();
    if spec["securityContext"]["runAsUser"] == 0 {
        setters.push("pod".to_owned());
    }
    let bad: Vec<&str> = containers(spec)
        .filter(|c| c["securityContext"]["runAsUser"] == 0)
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(listed(&bad));
    }
    (!setters.is_empty()).then(|| {
        format!(
            "runAsUser=0 ({} must not set runAsUser=0)",
            setters.join(" and ")
        )
    })
}

fn seccomp_restricted(spec: &Value) -> Option<String> {
    let valid = |t: &Value| t == "RuntimeDefault" || t == "Localhost";
    let pod = &spec["securityContext"]["seccompProfile"];
    let mut setters: Vec<String> = Vec::new();
    let mut bad_values: Vec<String> = Vec::new();
    let mut pod_set = false;
    if pod.is_object() {
        if valid(&pod["type"]) {
            pod_set = true;
        } else {
            setters.push("pod".to_owned());
            bad_values.push(pod["type"].as_str().unwrap_or("").to_owned());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        let own = &c["securityContext"]["seccompProfile"];
        if own.is_object() {
            if !valid(&own["type"]) {
                explicit.push(name(c));
                bad_values.push(own["type"].as_str().unwrap_or("").to_owned());
            }
        } else if !pod_set {
            implicit.push(name(c));
        }
    }
    if !explicit.is_empty() {
        setters.push(listed(&explicit));
    }
    bad_values.sort();
    bad_values.dedup();
    if !setters.is_empty() {
        return Some(format!(
            "seccompProfile ({} must not set securityContext.seccompProfile.type to {})",
            setters.join(" and "),
            quoted_list(&bad_values)
        ));
    }
    (!implicit.is_empty()).then(|| {
        format!(
            "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            listed(&implicit)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hardened() -> Value {
        json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "x"}}],
        })
    }

    #[test]
    fn a_hardened_pod_passes_restricted() {
        assert_eq!(
            evaluate(Level::Restricted, &hardened()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_bare_pod_fails_restricted_in_the_plugins_order_and_words() {
        let spec = json!({"containers": [{"name": "app"}]});
        assert_eq!(
            evaluate(Level::Restricted, &spec),
            [
                "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)",
                "unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"])",
                "runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true)",
                "seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            ]
        );
        assert_eq!(evaluate(Level::Baseline, &spec), Vec::<String>::new());
    }

    #[test]
    fn net_admin_breaks_baseline_but_not_privileged() {
        let mut spec = hardened();
        spec["ephemeralContainers"] = json!([{"name": "netem", "securityContext":
            {"capabilities": {"add": ["NET_ADMIN"]}}}]);
        assert_eq!(
            evaluate(Level::Baseline, &spec),
            [
                "non-default capabilities (container \"netem\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)"
            ]
        );
        assert!(evaluate(Level::Privileged, &spec).is_empty());
    }

    #[test]
    fn a_cronjob_template_is_found_under_its_job_template() {
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": hardened()}}}}});
        assert_eq!(template_spec("CronJob", &cron), Some(&hardened()));
        assert_eq!(template_spec("ConfigMap", &cron), None);
    }
}
