//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for,
//! with the same columns a real API server prints for pods, nodes and workloads.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::objects::{condition_is_true, is_terminating};
use super::resources::ResourceDef;

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
}

const fn col(name: &'static str, kind: &'static str, priority: u8) -> Column {
    Column {
        name,
        kind,
        priority,
    }
}

fn columns(def: &ResourceDef) -> Vec<Column> {
    match def.store {
        "pods" => vec![
            col("Name", "string", 0),
            col("Ready", "string", 0),
            col("Status", "string", 0),
            col("Restarts", "string", 0),
            col("Age", "string", 0),
            col("IP", "string", 1),
            col("Node", "string", 1),
            col("Nominated Node", "string", 1),
            col("Readiness Gates", "string", 1),
        ],
        "nodes" => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Roles", "string", 0),
            col("Age", "string", 0),
            col("Version", "string", 0),
            col("Internal-IP", "string", 1),
            col("External-IP", "string", 1),
            col("OS-Image", "string", 1),
            col("Kernel-Version", "string", 1),
            col("Container-Runtime", "string", 1),
        ],
        "deployments" => vec![
            col("Name", "string", 0),
            col("Ready", "string", 0),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            col("Age", "string", 0),
            col("Containers", "string", 1),
            col("Images", "string", 1),
            col("Selector", "string", 1),
        ],
        "statefulsets" => vec![
            col("Name", "string", 0),
            col("Ready", "string", 0),
            col("Age", "string", 0),
            col("Containers", "string", 1),
            col("Images", "string", 1),
        ],
        "replicasets" => vec![
            col("Name", "string", 0),
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            col("Age", "string", 0),
        ],
        "daemonsets" => vec![
            col("Name", "string", 0),
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            col("Age", "string", 0),
        ],
        "poddisruptionbudgets" => vec![
            col("Name", "string", 0),
            col("Min Available", "string", 0),
            col("Max Unavailable", "string", 0),
            col("Allowed Disruptions", "integer", 0),
            col("Age", "string", 0),
        ],
        "services" => vec![
            col("Name", "string", 0),
            col("Type", "string", 0),
            col("Cluster-IP", "string", 0),
            col("External-IP", "string", 0),
            col("Port(s)", "string", 0),
            col("Age", "string", 0),
            col("Selector", "string", 1),
        ],
        "namespaces" => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Age", "string", 0),
        ],
        "configmaps" => vec![
            col("Name", "string", 0),
            col("Data", "integer", 0),
            col("Age", "string", 0),
        ],
        "events" => vec![
            col("Last Seen", "string", 0),
            col("Type", "string", 0),
            col("Reason", "string", 0),
            col("Object", "string", 0),
            col("Message", "string", 0),
        ],
        "leases" => vec![
            col("Name", "string", 0),
            col("Holder", "string", 0),
            col("Age", "string", 0),
        ],
        "endpoints" => vec![
            col("Name", "string", 0),
            col("Endpoints", "string", 0),
            col("Age", "string", 0),
        ],
        "endpointslices" => vec![
            col("Name", "string", 0),
            col("AddressType", "string", 0),
            col("Ports", "string", 0),
            col("Endpoints", "string", 0),
            col("Age", "string", 0),
        ],
        "jobs" => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Completions", "string", 0),
            col("Duration", "string", 0),
            col("Age", "string", 0),
        ],
        "cronjobs" => vec![
            col("Name", "string", 0),
            col("Schedule", "string", 0),
            col("Timezone", "string", 0),
            col("Suspend", "boolean", 0),
            col("Active", "integer", 0),
            col("Last Schedule", "date", 0),
            col("Age", "date", 0),
        ],
        "persistentvolumeclaims" => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Volume", "string", 0),
            col("Capacity", "string", 0),
            col("Access Modes", "string", 0),
            col("StorageClass", "string", 0),
            col("VolumeAttributesClass", "string", 0),
            col("Age", "date", 0),
            col("VolumeMode", "string", 1),
        ],
        _ => vec![col("Name", "string", 0), col("Age", "string", 0)],
    }
}

/// A Job's, CronJob's or claim's cells (`kubectl get jobs,cronjobs,pvc`).
fn batch_cells(store: &str, obj: &Value, name: Value, age: Value) -> Option<Vec<Value>> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let or_none = |v: &Value| json!(v.as_str().unwrap_or("<none>"));
    Some(match store {
        "jobs" => vec![
            name,
            json!(if status["active"].as_i64() > Some(0) {
                "Running"
            } else {
                "Pending"
            }),
            json!(format!(
                "{}/{}",
                status["succeeded"].as_i64().unwrap_or(0),
                spec["completions"].as_i64().unwrap_or(1)
            )),
            json!(human_age(status["startTime"].as_str().unwrap_or(""))),
            age,
        ],
        "cronjobs" => vec![
            name,
            json!(text(&spec["schedule"])),
            or_none(&spec["timeZone"]),
            json!(spec["suspend"] == true),
            json!(status["active"].as_array().map_or(0, Vec::len)),
            or_none(&status["lastScheduleTime"]),
            age,
        ],
        "persistentvolumeclaims" => {
            let modes: Vec<&str> = status["accessModes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| match m.as_str()? {
                    "ReadWriteOnce" => Some("RWO"),
                    "ReadOnlyMany" => Some("ROX"),
                    "ReadWriteMany" => Some("RWX"),
                    "ReadWriteOncePod" => Some("RWOP"),
                    _ => None,
                })
                .collect();
            vec![
                name,
                json!(text(&status["phase"])),
                json!(spec["volumeName"].as_str().unwrap_or("")),
                json!(status["capacity"]["storage"].as_str().unwrap_or("")),
                json!(modes.join(",")),
                or_none(&spec["storageClassName"]),
                json!("<unset>"),
                age,
                json!(text(&spec["volumeMode"])),
            ]
        }
        _ => return None,
    })
}

/// Kubernetes' `duration.HumanDuration`, e.g. `45s`, `3m12s`, `5h`, `2d3h`.
pub fn human_age(created: &str) -> String {
    let Ok(then) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - then.as_second()).max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    match () {
        _ if secs < 120 => format!("{secs}s"),
        _ if m < 10 => format!("{m}m{}s", secs % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if d < 8 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

fn int(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = json!(obj["metadata"]["name"]);
    let age = json!(human_age(
        obj["metadata"]["creationTimestamp"].as_str().unwrap_or("")
    ));
    let status = &obj["status"];
    let spec = &obj["spec"];
    match def.store {
        "pods" => {
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let ready = status["containerStatuses"]
                .as_array()
                .map_or(0, |cs| cs.iter().filter(|c| c["ready"] == true).count());
            let phase = if is_terminating(obj) {
                "Terminating".to_owned()
            } else if status["phase"] == "Pending" && spec["nodeName"].is_string() {
                "ContainerCreating".to_owned()
            } else {
                status["phase"].as_str().unwrap_or("Unknown").to_owned()
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(phase),
                json!("0"),
                age,
                json!(text(&status["podIP"])),
                json!(text(&spec["nodeName"])),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "nodes" => {
            let mut state = if condition_is_true(status, "Ready") {
                "Ready"
            } else {
                "NotReady"
            }
            .to_owned();
            if spec["unschedulable"] == true {
                state.push_str(",SchedulingDisabled");
            }
            let ip = status["addresses"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
                .map_or("<none>".to_owned(), |a| text(&a["address"]));
            let info = &status["nodeInfo"];
            vec![
                name,
                json!(state),
                json!("<none>"),
                age,
                json!(text(&info["kubeletVersion"])),
                json!(ip),
                json!("<none>"),
                json!(text(&info["osImage"])),
                json!(text(&info["kernelVersion"])),
                json!(text(&info["containerRuntimeVersion"])),
            ]
        }
        "deployments" => {
            let containers = &spec["template"]["spec"]["containers"];
            let list = |key: &str| {
                containers
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| text(&c[key]))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let selector = super::store::string_map(&spec["selector"]["matchLabels"])
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    status["readyReplicas"].as_i64().unwrap_or(0),
                    spec["replicas"].as_i64().unwrap_or(0)
                )),
                int(&status["updatedReplicas"]),
                int(&status["availableReplicas"]),
                age,
                json!(list("name")),
                json!(list("image")),
                json!(selector),
            ]
        }
        "statefulsets" => {
            let containers = &spec["template"]["spec"]["containers"];
            let list = |key: &str| {
                containers
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| text(&c[key]))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    status["readyReplicas"].as_i64().unwrap_or(0),
                    spec["replicas"].as_i64().unwrap_or(0)
                )),
                age,
                json!(list("name")),
                json!(list("image")),
            ]
        }
        "replicasets" => vec![
            name,
            int(&spec["replicas"]),
            int(&status["replicas"]),
            int(&status["readyReplicas"]),
            age,
        ],
        "daemonsets" => vec![
            name,
            int(&status["desiredNumberScheduled"]),
            int(&status["currentNumberScheduled"]),
            int(&status["numberReady"]),
            int(&status["updatedNumberScheduled"]),
            int(&status["numberAvailable"]),
            age,
        ],
        "poddisruptionbudgets" => vec![
            name,
            json!(if spec["minAvailable"].is_null() {
                "N/A".into()
            } else {
                text(&spec["minAvailable"])
            }),
            json!(if spec["maxUnavailable"].is_null() {
                "N/A".into()
            } else {
                text(&spec["maxUnavailable"])
            }),
            int(&status["disruptionsAllowed"]),
            age,
        ],
        "namespaces" => vec![name, json!(text(&status["phase"])), age],
        "configmaps" => {
            let count = |field: &str| obj[field].as_object().map_or(0, |m| m.len());
            vec![name, json!(count("data") + count("binaryData")), age]
        }
        "services" => {
            let ports = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{}/{}",
                        text(&p["port"]),
                        p["protocol"].as_str().unwrap_or("TCP")
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            let selector = super::store::string_map(&spec["selector"])
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                name,
                json!(text(&spec["type"])),
                json!(text(&spec["clusterIP"])),
                json!("<none>"),
                json!(ports),
                age,
                json!(selector),
            ]
        }
        "events" => {
            // core/v1 or events.k8s.io/v1
            let involved = if obj["regarding"].is_object() {
                &obj["regarding"]
            } else {
                &obj["involvedObject"]
            };
            let last = obj["lastTimestamp"].as_str().unwrap_or("");
            vec![
                json!(human_age(last)),
                json!(text(&obj["type"])),
                json!(text(&obj["reason"])),
                json!(format!(
                    "{}/{}",
                    involved["kind"].as_str().unwrap_or("").to_lowercase(),
                    involved["name"].as_str().unwrap_or("")
                )),
                json!(text(if obj["note"].is_string() {
                    &obj["note"]
                } else {
                    &obj["message"]
                })),
            ]
        }
        "leases" => vec![name, json!(text(&spec["holderIdentity"])), age],
        "endpoints" => vec![name, json!(endpoints_cell(obj)), age],
        "endpointslices" => {
            let ports: Vec<String> = list(&obj["ports"]).map(|p| p["port"].to_string()).collect();
            let addresses: Vec<String> = list(&obj["endpoints"])
                .flat_map(|e| list(&e["addresses"]).map(text).collect::<Vec<_>>())
                .collect();
            vec![
                name,
                json!(text(&obj["addressType"])),
                json!(if ports.is_empty() {
                    "<unset>".to_owned()
                } else {
                    ports.join(",")
                }),
                json!(at_most_three(&addresses, "<unset>")),
                age,
            ]
        }
        other => batch_cells(other, obj, name.clone(), age.clone()).unwrap_or(vec![name, age]),
    }
}

fn row_object(obj: &Value, include: &str) -> Value {
    match include {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }),
    }
}

pub fn render(
    def: &ResourceDef,
    items: &[Value],
    query: &HashMap<String, String>,
    resource_version: Value,
    continue_token: Option<String>,
) -> Value {
    let include = query
        .get("includeObject")
        .map_or("Metadata", String::as_str);
    let column_definitions: Vec<Value> = columns(def)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": "",
                "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| json!({"cells": cells(def, obj), "object": row_object(obj, include)}))
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

fn list(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// kubectl's printer shows three endpoints, then `+ N more...`.
fn at_most_three(items: &[String], empty: &str) -> String {
    match items.len() {
        0 => empty.to_owned(),
        1..=3 => items.join(","),
        n => format!("{} + {} more...", items[..3].join(","), n - 3),
    }
}

/// An Endpoints' `ip:port` pairs, ready addresses only, as `kubectl get ep` shows them.
fn endpoints_cell(obj: &Value) -> String {
    let pairs: Vec<String> = list(&obj["subsets"])
        .flat_map(|subset| {
            let ports: Vec<String> = list(&subset["ports"])
                .map(|p| p["port"].to_string())
                .collect();
            list(&subset["addresses"])
                .flat_map(|a| ports.iter().map(move |p| format!("{}:{p}", text(&a["ip"]))))
                .collect::<Vec<_>>()
        })
        .collect();
    at_most_three(&pairs, "<none>")
}
