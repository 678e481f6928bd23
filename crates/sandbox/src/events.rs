//! Events: core/v1 and events.k8s.io/v1 are two views of one stored Event, as in
//! kube-apiserver. Objects are stored in the core/v1 shape; this module converts
//! between the views and validates a write the way `ValidateEventCreate` does for
//! the version it came in (legacy rules for core/v1, strict ones for
//! events.k8s.io/v1).
//!
//! It must not touch the store.

use serde_json::{Map, Value, json};

use super::status::{ApiError, Cause, quote};
use super::validation::qualified_name;

pub const EVENTS_V1: &str = "events.k8s.io/v1";

/// core/v1 field ↔ events.k8s.io/v1 field, for the fields that were renamed.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

const SAME: &[&str] = &[
    "metadata",
    "eventTime",
    "series",
    "reportingInstance",
    "action",
    "reason",
    "related",
    "type",
];

fn renamed(obj: &Value, to_v1: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for key in SAME {
        if let Some(v) = obj.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }
    for (core, v1) in RENAMED {
        let (from, to) = if to_v1 { (core, v1) } else { (v1, core) };
        if let Some(v) = obj.get(*from) {
            out.insert((*to).to_owned(), v.clone());
        }
    }
    out
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// The stored (core/v1) Event with the fields Go always serialises: null times, an
/// empty source, empty reporting fields; the `omitempty` ones are left out when empty.
pub fn normalize_core(mut event: Value) -> Value {
    if let Some(m) = event.as_object_mut() {
        for key in [
            "count", "action", "reason", "message", "type", "series", "related",
        ] {
            if m.get(key).is_some_and(empty) {
                m.remove(key);
            }
        }
        for key in ["eventTime", "firstTimestamp", "lastTimestamp"] {
            let slot = m.entry(key).or_insert(Value::Null);
            if slot.as_str() == Some("") {
                *slot = Value::Null;
            }
        }
        m.entry("source").or_insert_with(|| json!({}));
        m.entry("involvedObject").or_insert_with(|| json!({}));
        for key in ["reportingComponent", "reportingInstance"] {
            m.entry(key).or_insert_with(|| json!(""));
        }
    }
    event["apiVersion"] = json!("v1");
    event["kind"] = json!("Event");
    event
}

/// The events.k8s.io/v1 view of a stored Event.
pub fn to_v1(core: &Value) -> Value {
    let mut out = renamed(core, true);
    for key in [
        "reportingController",
        "reportingInstance",
        "note",
        "action",
        "reason",
        "type",
    ] {
        if out.get(key).is_some_and(empty) {
            out.remove(key);
        }
    }
    if out.get("deprecatedCount").is_some_and(empty) {
        out.remove("deprecatedCount");
    }
    for key in [
        "eventTime",
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
    ] {
        out.entry(key).or_insert(Value::Null);
    }
    out.entry("deprecatedSource").or_insert_with(|| json!({}));
    out.entry("regarding").or_insert_with(|| json!({}));
    out.insert("apiVersion".into(), json!(EVENTS_V1));
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

/// An events.k8s.io/v1 body in the stored (core/v1) shape.
pub fn from_v1(v1: &Value) -> Value {
    normalize_core(Value::Object(renamed(v1, false)))
}

fn set(event: &Value, key: &str) -> bool {
    !empty(&event[key])
}

fn str_of<'a>(event: &'a Value, key: &str) -> &'a str {
    event[key].as_str().unwrap_or("")
}

/// `ValidateEventCreate` on the stored shape; `strict` for events.k8s.io/v1 writes.
pub fn validate(event: &Value, strict: bool) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let namespace = event["metadata"]["namespace"].as_str().unwrap_or("");
    let involved_ns = str_of(&event["involvedObject"], "namespace");
    let mismatch = || {
        Cause::invalid(
            "involvedObject.namespace",
            &quote(involved_ns),
            "does not match event.namespace",
        )
    };
    if !set(event, "eventTime") {
        let agrees = if involved_ns.is_empty() {
            matches!(namespace, "" | "default")
        } else {
            namespace == involved_ns
        };
        if !agrees {
            causes.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && !matches!(namespace, "default" | "kube-system") {
            causes.push(mismatch());
        }
        let controller = str_of(event, "reportingComponent");
        if controller.is_empty() {
            causes.push(Cause::required("reportingController", ""));
        }
        for msg in qualified_name(controller) {
            causes.push(Cause::invalid(
                "reportingController",
                &quote(controller),
                &msg,
            ));
        }
        for (key, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
            let value = str_of(event, key);
            if value.is_empty() {
                causes.push(Cause::required(key, ""));
            }
            if value.len() > limit {
                causes.push(Cause::invalid(
                    key,
                    "\"\"",
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
        if str_of(event, "message").len() > 1024 {
            causes.push(Cause::invalid(
                "message",
                "\"\"",
                "can have at most 1024 characters",
            ));
        }
    }
    if strict {
        if !set(event, "eventTime") {
            causes.push(Cause::required("eventTime", ""));
        }
        let kind = str_of(event, "type");
        if !matches!(kind, "Normal" | "Warning") {
            causes.push(Cause::invalid(
                "type",
                "\"\"",
                &format!("has invalid value: {kind}"),
            ));
        }
        for key in ["firstTimestamp", "lastTimestamp", "count"] {
            if set(event, key) {
                causes.push(Cause::invalid(key, "\"\"", "needs to be unset"));
            }
        }
        let source = &event["source"];
        if set(source, "component") || set(source, "host") {
            causes.push(Cause::invalid("source", "\"\"", "needs to be unset"));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        let name = event["metadata"]["name"].as_str().unwrap_or("");
        Err(ApiError::invalid_causes("", "Event", name, causes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_views_convert_into_each_other() {
        let v1 = json!({"apiVersion": EVENTS_V1, "kind": "Event", "metadata": {"name": "e", "namespace": "shop"},
            "regarding": {"kind": "Pod", "name": "x", "namespace": "shop"}, "note": "n", "reason": "R",
            "type": "Normal", "eventTime": "2026-12-02T05:30:50.809461Z", "reportingController": "a/b",
            "reportingInstance": "i", "action": "A"});
        let core = from_v1(&v1);
        assert_eq!(core["involvedObject"]["name"], "x");
        assert_eq!(core["message"], "n");
        assert_eq!(core["reportingComponent"], "a/b");
        assert_eq!(core["firstTimestamp"], Value::Null);
        let back = to_v1(&core);
        for key in [
            "regarding",
            "note",
            "reason",
            "type",
            "eventTime",
            "reportingController",
            "action",
        ] {
            assert_eq!(back[key], v1[key], "{key}");
        }
        assert_eq!(back["deprecatedSource"], json!({}));
    }

    #[test]
    fn a_new_style_core_event_needs_every_reporting_field() {
        let mut event = normalize_core(json!({"metadata": {"name": "e", "namespace": "shop"},
            "involvedObject": {"namespace": "shop"}, "reason": "R", "eventTime": "2026-12-02T05:30:50Z",
            "reportingComponent": "shakedown"}));
        let err = validate(&event, false).unwrap_err();
        let fields: Vec<&str> = err.details.as_ref().unwrap()["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["reportingInstance", "action"]);
        event["reportingInstance"] = json!("i");
        event["action"] = json!("A");
        assert!(validate(&event, false).is_ok());
    }
}
