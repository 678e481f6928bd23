//! Turns a `SandboxConfig` into the objects a fresh cluster holds: namespaces, nodes,
//! and the workload objects the controllers then bring to life.

use serde_json::{Value, json};

use super::config::{DeploymentConfig, NodeConfig, SandboxConfig};
use super::controllers::STARTUP_DELAY_ANNOTATION;
use super::objects::prepare_create;
use super::resources::by_store;
use super::store::Store;

fn put(store: &mut Store, plural: &'static str, mut obj: Value) {
    let Some(def) = by_store(plural) else {
        return;
    };
    if prepare_create(def, &mut obj).is_ok() {
        let _ = store.create(def.store, &def.qualified(), obj, false);
    }
}

pub fn seed(store: &mut Store, config: &SandboxConfig) {
    let mut namespaces = vec![
        "default".to_owned(),
        "kube-system".to_owned(),
        "kube-public".to_owned(),
        "kube-node-lease".to_owned(),
    ];
    let used = config
        .namespaces
        .iter()
        .chain(config.deployments.iter().map(|d| &d.namespace))
        .chain(config.daemon_sets.iter().map(|d| &d.namespace))
        .chain(config.pod_disruption_budgets.iter().map(|p| &p.namespace));
    for ns in used {
        if !namespaces.contains(ns) {
            namespaces.push(ns.clone());
        }
    }
    for ns in namespaces {
        put(store, "namespaces", json!({"metadata": {"name": ns}}));
    }
    for (i, node) in config.nodes.iter().enumerate() {
        put(store, "nodes", node_object(i, node));
    }
    for (i, d) in config.deployments.iter().enumerate() {
        put(store, "deployments", deployment_object(d));
        if d.service.is_some() {
            put(store, "services", service_object(i, d));
        }
    }
    for ds in &config.daemon_sets {
        let labels = json!({"app": ds.name});
        put(
            store,
            "daemonsets",
            json!({
                "metadata": {"name": ds.name, "namespace": ds.namespace, "labels": labels},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": ds.name, "image": ds.image}]}},
                },
            }),
        );
    }
    if config.rbac {
        for (plural, obj) in super::rbac::bootstrap_objects() {
            put(store, plural, obj);
        }
    }
    for pdb in &config.pod_disruption_budgets {
        let mut spec = json!({"selector": {"matchLabels": pdb.match_labels}});
        if let Some(min) = &pdb.min_available {
            spec["minAvailable"] = min.clone();
        }
        if let Some(max) = &pdb.max_unavailable {
            spec["maxUnavailable"] = max.clone();
        }
        put(
            store,
            "poddisruptionbudgets",
            json!({"metadata": {"name": pdb.name, "namespace": pdb.namespace}, "spec": spec}),
        );
    }
}

fn node_object(index: usize, node: &NodeConfig) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": node.zone,
        "topology.kubernetes.io/region": "sandbox",
    });
    for (k, v) in &node.labels {
        labels[k] = json!(v);
    }
    let octet = (index % 250) + 1;
    let mut spec = json!({"podCIDR": format!("10.244.{octet}.0/24"), "podCIDRs": [format!("10.244.{octet}.0/24")], "providerID": format!("shakedown://{}", node.name)});
    if node.unschedulable {
        spec["unschedulable"] = json!(true);
        spec["taints"] = json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": super::store::now_rfc3339()}]);
    }
    let now = super::store::now_rfc3339();
    json!({
        // The TTL controller annotates every node.
        "metadata": {"name": node.name, "labels": labels, "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": spec,
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now},
            ],
            "addresses": [
                {"type": "InternalIP", "address": format!("10.0.{}.{}", index / 250, octet)},
                {"type": "Hostname", "address": node.name},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.33.0", "kubeProxyVersion": "v1.33.0",
                "osImage": "Shakedown Sandbox", "kernelVersion": "6.1.0-sandbox",
                "containerRuntimeVersion": "containerd://2.0.0", "operatingSystem": "linux",
                "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": "",
            },
        },
    })
}

fn deployment_object(d: &DeploymentConfig) -> Value {
    let labels = json!(d.pod_labels());
    let mut container = json!({"name": d.name, "image": d.image});
    let mut pod_spec = json!({"containers": []});
    if d.empty_dir {
        container["volumeMounts"] = json!([{"name": "scratch", "mountPath": "/scratch"}]);
        pod_spec["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
    }
    pod_spec["containers"] = json!([container]);
    if !d.node_selector.is_empty() {
        pod_spec["nodeSelector"] = json!(d.node_selector);
    }
    let mut template = json!({"metadata": {"labels": labels}, "spec": pod_spec});
    if let Some(delay) = d.startup_delay {
        template["metadata"]["annotations"] =
            json!({STARTUP_DELAY_ANNOTATION: format!("{}ms", delay.as_millis())});
    }
    json!({
        "metadata": {"name": d.name, "namespace": d.namespace, "labels": labels},
        "spec": {"replicas": d.replicas, "selector": {"matchLabels": labels}, "template": template},
    })
}

/// A ClusterIP Service in front of a workload that serves traffic in the model.
fn service_object(index: usize, d: &DeploymentConfig) -> Value {
    let ip = format!("10.96.{}.{}", index / 250, index % 250 + 10);
    json!({
        "metadata": {"name": d.name, "namespace": d.namespace, "labels": d.pod_labels()},
        "spec": {
            "type": "ClusterIP",
            "selector": d.pod_labels(),
            "clusterIP": ip,
            "clusterIPs": [ip],
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
        },
        "status": {"loadBalancer": {}},
    })
}
