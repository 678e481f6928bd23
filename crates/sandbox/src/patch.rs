//! The three patch formats of the Kubernetes API: JSON patch (RFC 6902), JSON merge
//! patch (RFC 7386) and strategic merge patch. Strategic merge covers the list fields
//! clients actually patch (containers, ephemeral containers, conditions, …), keyed the
//! way the Kubernetes struct tags (`patchMergeKey`) say.

use serde_json::{Map, Value};

use super::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    /// Server-side apply. Approximated by a merge patch: the sandbox keeps no field
    /// ownership, so conflicts between managers are never reported.
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            _ => Err(ApiError::unsupported_media_type()),
        }
    }
}

/// Applies `body` to `target` in place.
pub fn apply(kind: PatchKind, target: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    match kind {
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(target, &patch).map_err(|e| {
                ApiError::invalid_patch(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })
        }
        PatchKind::Merge | PatchKind::Apply => {
            let patch = parse_object(body)?;
            json_patch::merge(target, &patch);
            Ok(())
        }
        PatchKind::Strategic => {
            let patch = parse_object(body)?;
            strategic_merge(target, &patch);
            Ok(())
        }
    }
}

fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        // Apply bodies may be YAML.
        Err(json_err) => serde_saphyr::from_slice(body)
            .map_err(|_| ApiError::bad_request(format!("invalid patch body: {json_err}")))?,
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("patch body must be a JSON object"));
    }
    Ok(value)
}

/// The merge key of a list field, per the Kubernetes API's `patchMergeKey` tags.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses"
        | "ephemeralContainerStatuses" => "name",
        "volumeMounts" => "mountPath",
        "ports" => "containerPort",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "addresses" => "type",
        _ => return None,
    })
}

/// Strategic merge patch: maps merge recursively, `null` deletes, lists with a merge
/// key merge element-wise (`$patch: delete` removes one), other lists are replaced.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = Value::Object(without_directives(patch_map));
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    for (key, value) in patch_map {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (target[field].as_array_mut(), value.as_array()) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        let Some(target_map) = target.as_object_mut() else {
            return;
        };
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Object(_) => {
                let slot = target_map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(slot, value);
            }
            Value::Array(items) => match merge_key(key) {
                Some(merge_key) => {
                    let slot = target_map
                        .entry(key.clone())
                        .or_insert_with(|| Value::Array(vec![]));
                    merge_list(slot, items, merge_key);
                }
                None => {
                    target_map.insert(key.clone(), value.clone());
                }
            },
            _ => {
                target_map.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_list(target: &mut Value, items: &[Value], key: &str) {
    if !target.is_array() {
        *target = Value::Array(vec![]);
    }
    let Some(list) = target.as_array_mut() else {
        return;
    };
    let original = list.clone();
    for item in items {
        let id = &item[key];
        let position = list.iter().position(|t| !id.is_null() && &t[key] == id);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut list[i], item),
            (None, false) => {
                let mut fresh = Value::Object(Map::new());
                strategic_merge(&mut fresh, item);
                list.push(fresh);
            }
        }
    }
    *list = patch_order(std::mem::take(list), items, &original, key);
}

/// The order strategic merge gives a merged list (apimachinery's
/// `normalizeElementOrder`): the patch's items in patch order, with the server-only
/// items slotted in where the live list had them relative to patched ones; items the
/// live list did not have come before server-only items that follow them.
fn patch_order(merged: Vec<Value>, patch: &[Value], original: &[Value], key: &str) -> Vec<Value> {
    let patch_index = |v: &Value| patch.iter().position(|p| p[key] == v[key]);
    let live_index = |v: &Value| original.iter().position(|o| o[key] == v[key]);
    let (mut patched, server_only): (Vec<Value>, Vec<Value>) =
        merged.into_iter().partition(|v| patch_index(v).is_some());
    patched.sort_by_key(|v| patch_index(v));
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patched.into_iter().peekable(),
    );
    let mut out = Vec::new();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                matches!((live_index(l), live_index(r)), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

fn without_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_puts_new_ephemeral_containers_first_as_the_api_server_does() {
        let mut pod = json!({"spec": {"ephemeralContainers": [{"name": "a", "image": "x"}]}});
        let patch = json!({"spec": {"ephemeralContainers": [{"name": "b", "image": "y"}]}});
        strategic_merge(&mut pod, &patch);
        let names: Vec<_> = pod["spec"]["ephemeralContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "a"]);
    }

    #[test]
    fn strategic_merge_null_removes_a_field_as_uncordon_needs() {
        let mut node = json!({"spec": {"unschedulable": true, "podCIDR": "10.0.0.0/24"}});
        strategic_merge(&mut node, &json!({"spec": {"unschedulable": null}}));
        assert_eq!(node, json!({"spec": {"podCIDR": "10.0.0.0/24"}}));
    }

    #[test]
    fn strategic_merge_deletes_list_elements_and_replaces_unkeyed_lists() {
        let mut pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "tolerations": [{"key": "x"}]}});
        let patch = json!({"spec": {
            "containers": [{"name": "a", "$patch": "delete"}],
            "$setElementOrder/containers": [{"name": "b"}],
            "tolerations": [{"key": "y"}],
        }});
        strategic_merge(&mut pod, &patch);
        assert_eq!(
            pod,
            json!({"spec": {"containers": [{"name": "b"}], "tolerations": [{"key": "y"}]}})
        );
    }

    #[test]
    fn json_patch_errors_are_unprocessable() {
        let mut obj = json!({"a": 1});
        let err = apply(
            PatchKind::Json,
            &mut obj,
            br#"[{"op":"test","path":"/a","value":2}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
    }
}
