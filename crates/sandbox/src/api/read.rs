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

use super::{ApiRequest, Reply, Target, as_served, namespace_or_default, versions, wants_table};
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
    if let Some(rv) = req.query.get("resourceVersion").filter(|rv| !rv.is_empty()) {
        let rv = versions::parse_resource_version(rv)?;
        if rv > store.resource_version() {
            return Err(ApiError::too_large_resource_version(
                rv,
                store.resource_version(),
            ));
        }
    }
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

/// The selector parser's wording for a value set cut off at the end of the text,
/// which is the one mistake clients commonly make; other errors keep ours.
fn go_wording(text: &str, e: &shakedown_vocab::selector::SelectorError) -> String {
    if e.message.starts_with("unclosed value set") && e.offset >= text.chars().count() {
        let expects = if text.trim_end().ends_with(['(', ',']) {
            "',', ')' or identifier"
        } else {
            "',' or ')'"
        };
        return format!("found '', expected: {expects}");
    }
    e.to_string()
}

/// Parsed label and field selectors of a list or watch.
pub struct Filter {
    label: LabelSelector,
    field: FieldSelector,
}

impl Filter {
    pub fn parse(def: &ResourceDef, query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let text = query.get("labelSelector").map_or("", String::as_str);
        let label = LabelSelector::parse(text).map_err(|e| {
            ApiError::bad_request(format!(
                "unable to parse requirement: {}",
                go_wording(text, &e)
            ))
        })?;
        let mut field = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        if def.group == "events.k8s.io" {
            // Events are stored in the core/v1 shape.
            for r in &mut field.requirements {
                r.field = match r.field.as_str() {
                    "reportingController" => "reportingComponent".to_owned(),
                    other => match other.strip_prefix("regarding.") {
                        Some(rest) => format!("involvedObject.{rest}"),
                        None => other.to_owned(),
                    },
                };
            }
        }
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

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.label.is_empty() && self.field.requirements.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        (self.label.is_empty() || self.label.matches(&labels_of(obj)))
            && self.field.matches(|f| field_value(obj, f))
    }
}

pub(super) fn list(
    state: &Arc<State>,
    req: &ApiRequest,
    def: &'static ResourceDef,
    namespace: Option<&str>,
) -> Result<Reply, ApiError> {
    versions::validate_list(&req.query)?;
    let filter = Filter::parse(def, &req.query)?;
    let limit = versions::limit(&req.query)?;
    let resume = versions::decode_continue(&req.query)?;
    let read_at = versions::list_read_at(&req.query, limit != usize::MAX)?;
    let store = state.store();
    if let Some(resume) = &resume
        && resume.rv < store.compacted_version()
    {
        return Err(ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        ));
    }
    let current = store.resource_version();
    let list_rv = match (read_at, &resume) {
        (_, Some(resume)) => resume.rv,
        (versions::ReadAt::Exact(rv) | versions::ReadAt::NotOlderThan(rv), _) if rv > current => {
            return Err(ApiError::too_large_resource_version(rv, current));
        }
        (versions::ReadAt::Exact(rv), _) if rv < store.compacted_version() => {
            return Err(ApiError::expired(
                "The resourceVersion for the provided list is too old.",
            ));
        }
        (versions::ReadAt::Exact(rv), _) => rv,
        _ => current,
    };
    let after = resume.map(|r| (r.namespace, r.name));
    // An exact read of an older version is served from the history; everything
    // else from the current objects.
    let snapshot: Option<Vec<Stored>> = (list_rv != current
        && matches!(read_at, versions::ReadAt::Exact(_)))
    .then(|| store.snapshot_at(def.store, namespace, list_rv));
    let all: Box<dyn Iterator<Item = &Stored>> = match &snapshot {
        Some(items) => Box::new(items.iter().filter(move |s| {
            after.as_ref().is_none_or(|(ns, name)| {
                (namespace_of(&s.object), name_of(&s.object)) > (ns.as_str(), name.as_str())
            })
        })),
        None => Box::new(store.iter_stored(def.store, namespace, after.clone())),
    };
    let mut items: Vec<&Stored> = Vec::new();
    let mut remaining = 0usize;
    for stored in all {
        if !filter.matches(&stored.object) {
            continue;
        }
        if items.len() == limit {
            remaining += 1;
            continue;
        }
        items.push(stored);
    }
    let continue_token = match items.last() {
        Some(last) if remaining > 0 => Some(versions::encode_continue(
            list_rv,
            namespace_of(&last.object),
            name_of(&last.object),
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
    let encoded: Vec<Bytes> = items.iter().map(|s| list_item_json(def, s)).collect();
    drop(store);
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
        // Counted only when nothing is filtered out, as the API server does.
        if filter.is_empty() {
            metadata["remainingItemCount"] = json!(remaining);
        }
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

/// A list item as a real API server serves it: without `apiVersion` and `kind`,
/// which the list carries once.
fn list_item_json(def: &ResourceDef, stored: &Stored) -> Bytes {
    let json = served_json(def, stored);
    if let Some(stripped) = strip_type_meta(&json) {
        return stripped;
    }
    let mut obj = as_served(def, (*stored.object).clone());
    if let Some(m) = obj.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
}

/// `{"apiVersion":"…","kind":"…",REST` → `{REST`, without re-encoding (objects are
/// stored with sorted keys, so type meta usually leads).
fn strip_type_meta(json: &[u8]) -> Option<Bytes> {
    let rest = json.strip_prefix(br#"{"apiVersion":""#)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    let rest = rest[end + 1..].strip_prefix(br#","kind":""#)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    let rest = rest[end + 1..].strip_prefix(b",")?;
    let mut out = Vec::with_capacity(rest.len() + 1);
    out.push(b'{');
    out.extend_from_slice(rest);
    Some(Bytes::from(out))
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
