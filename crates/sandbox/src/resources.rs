//! The resource table: which kinds the sandbox serves, under which group/version, and
//! how discovery describes them. Routing and discovery both read this one table, so a
//! resource cannot be served without being discoverable (or the other way round).

use serde_json::{Value, json};

/// One served resource (or subresource) in one group/version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    /// Plural name as it appears in URLs (`pods`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Storage bucket. Two group/versions of one resource share a bucket.
    pub store: &'static str,
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
}

/// A subresource as discovery lists it (`pods/eviction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    pub kind: &'static str,
    /// Set when the subresource's body lives in another group (eviction → policy/v1).
    pub group: &'static str,
    pub version: &'static str,
    pub verbs: &'static [&'static str],
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const STATUS: Subresource = Subresource {
    name: "status",
    kind: "",
    group: "",
    version: "",
    verbs: STATUS_VERBS,
};

const SCALABLE: &[Subresource] = &[
    STATUS,
    Subresource {
        name: "scale",
        kind: "Scale",
        group: "autoscaling",
        version: "v1",
        verbs: STATUS_VERBS,
    },
];

const POD_SUBRESOURCES: &[Subresource] = &[
    STATUS,
    Subresource {
        name: "eviction",
        kind: "Eviction",
        group: "policy",
        version: "v1",
        verbs: &["create"],
    },
    Subresource {
        name: "ephemeralcontainers",
        kind: "",
        group: "",
        version: "",
        verbs: STATUS_VERBS,
    },
    Subresource {
        name: "log",
        kind: "Pod",
        group: "",
        version: "",
        verbs: &["get"],
    },
    Subresource {
        name: "exec",
        kind: "PodExecOptions",
        group: "",
        version: "",
        verbs: &["create", "get"],
    },
];

pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        store: "namespaces",
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        store: "nodes",
        verbs: ALL_VERBS,
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        store: "pods",
        verbs: ALL_VERBS,
        subresources: POD_SUBRESOURCES,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        store: "services",
        verbs: ALL_VERBS,
        subresources: &[
            STATUS,
            Subresource {
                name: "proxy",
                kind: "ServiceProxyOptions",
                group: "",
                version: "",
                verbs: &["create", "delete", "get", "patch", "update"],
            },
        ],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        store: "configmaps",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        store: "events",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        store: "deployments",
        verbs: ALL_VERBS,
        subresources: SCALABLE,
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        store: "replicasets",
        verbs: ALL_VERBS,
        subresources: SCALABLE,
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        namespaced: true,
        short_names: &["sts"],
        store: "statefulsets",
        verbs: ALL_VERBS,
        subresources: SCALABLE,
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        short_names: &["ds"],
        store: "daemonsets",
        verbs: ALL_VERBS,
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        namespaced: true,
        short_names: &["pdb"],
        store: "poddisruptionbudgets",
        verbs: ALL_VERBS,
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        // One store with core/v1 Events: two views of the same objects.
        store: "events",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        store: "selfsubjectaccessreviews",
        verbs: &["create"],
        subresources: &[],
    },
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectrulesreviews",
        singular: "selfsubjectrulesreview",
        kind: "SelfSubjectRulesReview",
        namespaced: false,
        short_names: &[],
        store: "selfsubjectrulesreviews",
        verbs: &["create"],
        subresources: &[],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "endpoints",
        singular: "endpoints",
        kind: "Endpoints",
        namespaced: true,
        short_names: &["ep"],
        store: "endpoints",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        singular: "endpointslice",
        kind: "EndpointSlice",
        namespaced: true,
        short_names: &[],
        store: "endpointslices",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "selfsubjectreviews",
        singular: "selfsubjectreview",
        kind: "SelfSubjectReview",
        namespaced: false,
        short_names: &[],
        store: "selfsubjectreviews",
        verbs: &["create"],
        subresources: &[],
    },
    ResourceDef {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        store: "leases",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        store: "serviceaccounts",
        verbs: ALL_VERBS,
        // `kubectl create token`: a TokenRequest for the account's bearer token.
        subresources: &[Subresource {
            name: "token",
            kind: "TokenRequest",
            group: "authentication.k8s.io",
            version: "v1",
            verbs: &["create"],
        }],
    },
    ResourceDef {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        store: "roles",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        store: "rolebindings",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        store: "clusterroles",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short_names: &[],
        store: "clusterrolebindings",
        verbs: ALL_VERBS,
        subresources: &[],
    },
    ResourceDef {
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        store: "jobs",
        verbs: ALL_VERBS,
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "batch",
        version: "v1",
        plural: "cronjobs",
        singular: "cronjob",
        kind: "CronJob",
        namespaced: true,
        short_names: &["cj"],
        store: "cronjobs",
        verbs: ALL_VERBS,
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        kind: "PersistentVolumeClaim",
        namespaced: true,
        short_names: &["pvc"],
        store: "persistentvolumeclaims",
        verbs: ALL_VERBS,
        subresources: &[STATUS],
    },
];

/// Group/versions in the order discovery lists them (preferred version first).
pub const GROUPS: &[(&str, &[&str])] = &[
    ("apps", &["v1"]),
    ("events.k8s.io", &["v1"]),
    // policy/v1beta1 is not served since 1.25 (the sandbox reports 1.33).
    ("policy", &["v1"]),
    ("authorization.k8s.io", &["v1"]),
    ("authentication.k8s.io", &["v1"]),
    ("discovery.k8s.io", &["v1"]),
    ("coordination.k8s.io", &["v1"]),
    ("rbac.authorization.k8s.io", &["v1"]),
    ("batch", &["v1"]),
];

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The served definition of a storage bucket, preferring the first (newest) version.
pub fn by_store(store: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.store == store)
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The `group/resource` form used in Status details (`pods`, `deployments.apps`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// `APIResourceList` for one group/version (`/api/v1`, `/apis/apps/v1`).
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for def in defs {
        let mut entry = json!({
            "name": def.plural,
            "singularName": def.singular,
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": def.verbs,
        });
        if !def.short_names.is_empty() {
            entry["shortNames"] = json!(def.short_names);
        }
        // `kubectl get all` expands the "all" category from discovery.
        if matches!(
            def.store,
            "pods"
                | "deployments"
                | "replicasets"
                | "daemonsets"
                | "statefulsets"
                | "jobs"
                | "cronjobs"
        ) {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        for sub in def.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", def.plural, sub.name),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": if sub.kind.is_empty() { def.kind } else { sub.kind },
                "verbs": sub.verbs,
            });
            if !sub.group.is_empty() {
                entry["group"] = json!(sub.group);
                entry["version"] = json!(sub.version);
            }
            resources.push(entry);
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(name, v), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": versions,
        "preferredVersion": versions[0],
    })
}

/// `/apis`: the `APIGroupList`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = GROUPS.iter().map(|(n, v)| api_group(n, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`: one `APIGroup`.
pub fn group(name: &str) -> Option<Value> {
    GROUPS.iter().find(|(n, _)| *n == name).map(|(n, v)| {
        let mut g = api_group(n, v);
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}

/// `/api`: the legacy core group's `APIVersions`.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    })
}

/// The group/version paths OpenAPI v3 is served for (`api/v1`, `apis/apps/v1`, …).
fn openapi_group_versions() -> Vec<(&'static str, &'static str, String)> {
    let mut out = vec![("", "v1", "api/v1".to_owned())];
    for (group, versions) in GROUPS {
        for version in *versions {
            out.push((group, version, format!("apis/{group}/{version}")));
        }
    }
    out
}

/// `/openapi/v3`: the index of per-group-version documents.
pub fn openapi_root() -> Value {
    let paths: serde_json::Map<String, Value> = openapi_group_versions()
        .into_iter()
        .map(|(_, _, path)| {
            let url = format!("/openapi/v3/{path}?hash=shakedown-sandbox");
            (path, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// `/openapi/v3/{gv}`: the group/version's paths and the served kinds' schemas
/// (`crate::openapi`).
pub fn openapi_group_version(path: &str) -> Option<Value> {
    let (group, version, _) = openapi_group_versions()
        .into_iter()
        .find(|(_, _, p)| p == path)?;
    Some(super::openapi::group_version(group, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_v1_lists_eviction_in_the_policy_group_as_kubectl_drain_requires() {
        let list = resource_list("", "v1").expect("core v1 is served");
        let eviction = list["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|e| e["name"] == "pods/eviction"))
            .expect("pods/eviction is listed");
        assert_eq!(eviction["group"], "policy");
        assert_eq!(eviction["version"], "v1");
        assert_eq!(eviction["kind"], "Eviction");
    }

    #[test]
    fn every_group_in_the_group_list_has_a_resource_list() {
        for (group, versions) in GROUPS {
            for version in *versions {
                assert!(resource_list(group, version).is_some(), "{group}/{version}");
            }
        }
    }
}
