//! Subresources and proxies: `pods/eviction` (decoded and validated as the API server
//! does: type meta, unknown fields, dryRun values, preconditions; then through the
//! disruption budgets),
//! `scale` of Deployments and ReplicaSets, `pods/log`, `pods/exec` without an upgrade,
//! and the service proxy into the workload model.
//!
//! It must not hold the store lock across a simulated delay: the service proxy
//! returns its latency for the server to wait out.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{ApiRequest, Reply, Target, namespace_or_default, parse_body};
use crate::State;
use crate::ops;
use crate::patch::{self, PatchKind};
use crate::status::{self, ApiError};

pub(super) fn evict(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let body = eviction_body(req)?;
    if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let options = &body["deleteOptions"];
    let body_dry_run = validate_dry_run(&options["dryRun"])?;
    let grace = options["gracePeriodSeconds"].as_i64();
    let mut store = state.store();
    if let Some(pod) = store.get("pods", namespace_or_default(t), name) {
        check_preconditions(pod, &options["preconditions"])?;
    }
    ops::evict(
        &mut store,
        t.def,
        namespace_or_default(t),
        name,
        grace,
        dry_run || body_dry_run,
    )?;
    Ok(Reply::Json(201, status::success(201)))
}

/// The Eviction body, decoded as the API server decodes it: a body without type
/// information is a policy/v1 Eviction, another kind cannot be converted, and
/// unknown fields follow `fieldValidation`.
fn eviction_body(req: &ApiRequest) -> Result<Value, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the object provided is unrecognized (must be of type Eviction): couldn't get version/kind; json parse error: unexpected end of JSON input (<empty>)",
        ));
    }
    let body = parse_body(req)?;
    let api_version = body["apiVersion"].as_str().unwrap_or("policy/v1");
    let version = api_version.rsplit('/').next().unwrap_or(api_version);
    let kind = body["kind"].as_str().unwrap_or("Eviction");
    if kind != "Eviction" {
        return Err(ApiError::bad_request(format!(
            "{kind} in version {} cannot be handled as a Eviction: converting ({version}.{kind}) to (policy.Eviction): unknown conversion",
            status::quote(version)
        )));
    }
    let unknown: Vec<String> = body
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|k| {
            !matches!(
                k.as_str(),
                "apiVersion" | "kind" | "metadata" | "deleteOptions"
            )
        })
        .cloned()
        .collect();
    req.unknown_fields(&unknown, |what| {
        ApiError::bad_request(format!(
            "Eviction in version {} cannot be handled as a Eviction: strict decoding error: {what}",
            status::quote(version)
        ))
    })?;
    Ok(body)
}

/// `DeleteOptions.dryRun`: only `All` is a dry-run value.
pub(super) fn validate_dry_run(value: &Value) -> Result<bool, ApiError> {
    let values: Vec<&str> = match value {
        Value::Null => return Ok(false),
        Value::Array(items) => items.iter().map(|v| v.as_str().unwrap_or("")).collect(),
        _ => vec![""],
    };
    if values.iter().all(|v| *v == "All") {
        return Ok(!values.is_empty());
    }
    let rendered: Vec<String> = values.iter().map(|v| status::quote(v)).collect();
    Err(ApiError::invalid_causes(
        "meta.k8s.io",
        "DeleteOptions",
        "",
        vec![status::Cause::not_supported(
            "dryRun",
            &format!("[]string{{{}}}", rendered.join(", ")),
            &["All"],
        )],
    ))
}

/// `DeleteOptions.preconditions` against the stored object, worded as the
/// storage layer words a mismatch.
pub(super) fn check_preconditions(obj: &Value, preconditions: &Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let kind = obj["kind"].as_str().unwrap_or("");
    for (key, label, hint) in [
        ("uid", "UID", "deleted and then recreated"),
        ("resourceVersion", "ResourceVersion", "modified"),
    ] {
        if let Some(want) = preconditions[key].as_str() {
            let have = obj["metadata"][key].as_str().unwrap_or("");
            if want != have {
                return Err(ApiError::conflict(
                    kind,
                    name,
                    &format!(
                        "the {label} in the precondition ({want}) does not match the {label} in record ({have}). The object might have been {hint}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The `autoscaling/v1` Scale view of a Deployment or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let selector = crate::store::string_map(&obj["spec"]["selector"]["matchLabels"])
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"]},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

pub(super) fn get_scale(state: &Arc<State>, t: &Target, name: &str) -> Result<Reply, ApiError> {
    let store = state.store();
    let obj = store
        .get(t.def.store, namespace_or_default(t), name)
        .ok_or_else(|| ApiError::not_found(&t.def.qualified(), name))?;
    Ok(Reply::Json(200, scale_of(obj)))
}

pub(super) fn update_scale(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let mut store = state.store();
    let current = store
        .get(t.def.store, namespace_or_default(t), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.def.qualified(), name))?;
    let mut scale = scale_of(&current);
    if req.method == http::Method::PATCH {
        patch::apply(
            PatchKind::from_content_type(&req.content_type)?,
            &mut scale,
            &req.body,
        )?;
    } else {
        scale = parse_body(req)?;
    }
    let replicas = scale["spec"]["replicas"]
        .as_i64()
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "Scale",
                name,
                "spec.replicas",
                "Invalid value: must be greater than or equal to 0",
            )
        })?;
    if let Some(rv) = scale["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && current["metadata"]["resourceVersion"] != rv
    {
        return Err(ApiError::conflict(
            &t.def.qualified(),
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    let mut updated = current.clone();
    updated["spec"]["replicas"] = json!(replicas);
    if updated["spec"] != current["spec"] {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        updated["metadata"]["generation"] = json!(generation + 1);
    }
    if dry_run {
        return Ok(Reply::Json(200, scale_of(&updated)));
    }
    let stored = store.update(t.def.store, updated);
    Ok(Reply::Json(200, scale_of(&stored)))
}

/// The API server's service proxy, for services in the workload model: each call is
/// one request to the simulated service. A delay is returned, not slept, so the
/// server can wait it out without holding any lock.
pub(super) fn service_proxy(
    state: &Arc<State>,
    namespace: &str,
    service: &str,
) -> Result<Reply, ApiError> {
    // `name`, `name:port` and `scheme:name:port` all address the service.
    let parts: Vec<&str> = service.split(':').collect();
    let name = match parts.as_slice() {
        [scheme, name, _] if matches!(*scheme, "http" | "https") => *name,
        [name, ..] => *name,
        [] => service,
    };
    let store = state.store();
    let outcome = crate::lock(&state.workload).probe(&store, namespace, name);
    drop(store);
    let (code, delay) = outcome.ok_or_else(|| ApiError::not_found("services", name))?;
    let body = if code == 200 {
        "ok\n"
    } else {
        "service unavailable: over capacity\n"
    };
    Ok(Reply::Delayed(delay, code, body.to_owned()))
}

/// `pods/log`: simulated containers write nothing, so the log is empty; a missing
/// pod or container is reported as a real API server would.
pub(super) fn pod_log(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
) -> Result<Reply, ApiError> {
    let store = state.store();
    let pod = store
        .get("pods", namespace_or_default(t), name)
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    let containers: Vec<&str> = ["containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    match req.query.get("container") {
        Some(c) if !containers.contains(&c.as_str()) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() > 1 => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: {containers:?}"
        ))),
        _ => Ok(Reply::Text(200, "text/plain", String::new())),
    }
}

/// Exec without a WebSocket/SPDY upgrade: a real API server refuses it the same way.
pub(super) fn exec_without_upgrade(
    state: &Arc<State>,
    t: &Target,
    name: &str,
) -> Result<Reply, ApiError> {
    let store = state.store();
    if !store.contains("pods", namespace_or_default(t), name) {
        return Err(ApiError::not_found("pods", name));
    }
    drop(store);
    Err(ApiError::bad_request("Upgrade request required"))
}
