//! Reads: `get` of one object, `list` with label and field selectors, `limit` and
//! `continue` pagination, and the stored encoding of objects as served. Watches reuse
//! `Filter` (see `watch`).
//!
//! It must not write to the store, and a list must answer from one resourceVersion:
//! a continue token pins the version the first page was read at, and an expired one
//! is refused with 410 as a real API server does.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use shakedown_vocab::selector::{FieldSelector, LabelSelector};

use super::{ApiRequest, Reply, Target, as_served, namespace_or_default, wants_table};
use crate::State;
use crate::resources::ResourceDef;
use crate::status::ApiError;
use crate::store::{Stored, labels_of, name_of, namespace_of};
use crate::table;

pub(super) fn get(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
) -> Result<Reply, ApiError> {
    let store = state.store();
    let obj = store
        .get(t.def.store, namespace_or_default(t), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.def.qualified(), name))?;
    drop(store);
    let obj = as_served(t.def, obj);
    if wants_table(req) && t.subresource.is_none() {
        let rv = obj["metadata"]["resourceVersion"].clone();
        return Ok(Reply::Json(
            200,
            table::render(t.def, &[obj], &req.query, rv, None),
        ));
    }
    Ok(Reply::Json(200, obj))
}

/// Field selectors a real API server accepts for each resource.
fn field_supported(def: &ResourceDef, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match def.store {
        "pods" => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        "nodes" => field == "spec.unschedulable",
        "namespaces" => field == "status.phase",
        "replicasets" => field == "status.replicas",
        "events" | "events.k8s.io/events" => {
            field.starts_with("involvedObject.")
                || field.starts_with("regarding.")
                || matches!(field, "reason" | "reportingComponent" | "source" | "type")
        }
        _ => false,
    }
}

/// The value of a field for field-selector matching, as the API server renders it.
pub fn field_value(obj: &Value, field: &str) -> Option<String> {
    let value = match field {
        "source" => &obj["source"]["component"],
        "spec.hostNetwork" if obj["spec"]["hostNetwork"].is_null() => {
            return Some("false".into());
        }
        "spec.unschedulable" if obj["spec"]["unschedulable"].is_null() => {
            return Some("false".into());
        }
        _ => field.split('.').fold(obj, |v, key| &v[key]),
    };
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parsed label and field selectors of a list or watch.
pub struct Filter {
    label: LabelSelector,
    field: FieldSelector,
}

impl Filter {
    pub fn parse(def: &ResourceDef, query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let label = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let field = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        for r in &field.requirements {
            if !field_supported(def, &r.field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    r.field
                )));
            }
        }
        Ok(Self { label, field })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        (self.label.is_empty() || self.label.matches(&labels_of(obj)))
            && self.field.matches(|f| field_value(obj, f))
    }
}

/// Continue tokens: the last key served, and the resourceVersion the list started at.
fn encode_continue(namespace: &str, name: &str, rv: u64) -> String {
    let raw = format!("{rv}\u{0}{namespace}\u{0}{name}");
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect();
    let text = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let mut parts = text.split('\u{0}');
    let rv = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_owned();
    let name = parts.next().ok_or_else(bad)?.to_owned();
    Ok((rv, ns, name))
}

pub(super) fn list(
    state: &Arc<State>,
    req: &ApiRequest,
    def: &'static ResourceDef,
    namespace: Option<&str>,
) -> Result<Reply, ApiError> {
    let filter = Filter::parse(def, &req.query)?;
    let limit: usize = match req.query.get("limit").map(String::as_str) {
        None | Some("") | Some("0") => usize::MAX,
        Some(n) => n
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {n:?}")))?,
    };
    let resume = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let store = state.store();
    if let Some((rv, _, _)) = &resume
        && *rv < store.compacted_version()
    {
        return Err(ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        ));
    }
    let list_rv = resume.as_ref().map_or(store.resource_version(), |r| r.0);
    let after = resume.map(|(_, ns, name)| (ns, name));
    let mut items: Vec<&Stored> = Vec::new();
    let mut more = false;
    for stored in store.iter_stored(def.store, namespace, after) {
        if !filter.matches(&stored.object) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(stored);
    }
    let continue_token = match items.last() {
        Some(last) if more => Some(encode_continue(
            namespace_of(&last.object),
            name_of(&last.object),
            list_rv,
        )),
        _ => None,
    };
    if wants_table(req) {
        let items: Vec<Value> = items
            .iter()
            .map(|s| as_served(def, (*s.object).clone()))
            .collect();
        drop(store);
        let rv = json!(list_rv.to_string());
        return Ok(Reply::Json(
            200,
            table::render(def, &items, &req.query, rv, continue_token),
        ));
    }
    let encoded: Vec<Bytes> = items.iter().map(|s| served_json(def, s)).collect();
    drop(store);
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    // Items are served from their stored encoding: no per-object re-encoding.
    let mut body = format!(
        r#"{{"kind":{},"apiVersion":{},"metadata":{},"items":["#,
        json!(format!("{}List", def.kind)),
        json!(def.api_version()),
        metadata
    )
    .into_bytes();
    body.reserve(encoded.iter().map(|b| b.len() + 1).sum());
    for (i, item) in encoded.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}");
    Ok(Reply::Raw(200, Bytes::from(body)))
}

/// An object's stored JSON, re-encoded only when served under another version.
pub fn served_json(def: &ResourceDef, stored: &Stored) -> Bytes {
    if stored.object["apiVersion"] == def.api_version().as_str() {
        stored.json.clone()
    } else {
        let obj = as_served(def, (*stored.object).clone());
        Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
    }
}
