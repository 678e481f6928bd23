//! Decoding of the protobuf request bodies kubectl sends whatever the server prefers:
//! its typed clients POST `application/vnd.kubernetes.protobuf` for the self-reviews
//! (`kubectl auth can-i`, `auth whoami`), `kubectl create token`'s TokenRequest and, from 1.33, for the objects its `create`
//! subcommands build (`create deployment`, `configmap`, `namespace`, `service`,
//! `poddisruptionbudget`). client-go does not fall back to JSON on 415, so a server
//! that refused these would break those commands. They accept JSON back, so only
//! requests are decoded.
//!
//! A body is Kubernetes' protobuf envelope: the magic `k8s\0`, then a
//! `runtime.Unknown` message (`typeMeta` 1, `raw` 2), whose `raw` is the object's own
//! message. Each kind is turned into the JSON the same request would have carried,
//! field by field from the tables below (the field numbers of Kubernetes'
//! `generated.proto`). The Go encoder writes every non-pointer field, even when
//! empty; JSON's `omitempty` leaves those out, so zero values of non-pointer fields
//! are left out here too, while pointer fields (`replicas: 0`) are kept. A field
//! number a table does not know makes the whole body undecodable (the caller
//! answers 415): it must never guess what an unknown field meant.

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// One field of a protobuf message as it came off the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed-width values: no message decoded here has one, so they only fail.
    Fixed,
}

struct Field<'a> {
    number: u64,
    value: Wire<'a>,
}

fn varint(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of a message, in order; None if it is malformed.
fn fields(data: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < data.len() {
        let key = varint(data, &mut at)?;
        let number = key >> 3;
        let value = match key & 7 {
            0 => Wire::Varint(varint(data, &mut at)?),
            1 => {
                at = at.checked_add(8).filter(|end| *end <= data.len())?;
                Wire::Fixed
            }
            5 => {
                at = at.checked_add(4).filter(|end| *end <= data.len())?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(data, &mut at)?).ok()?;
                let end = at.checked_add(len).filter(|end| *end <= data.len())?;
                let bytes = &data[at..end];
                at = end;
                Wire::Bytes(bytes)
            }
            _ => return None,
        };
        out.push(Field { number, value });
    }
    Some(out)
}

fn bytes_of<'a>(fields: &[Field<'a>], number: u64) -> Option<&'a [u8]> {
    fields.iter().rev().find_map(|f| match f.value {
        Wire::Bytes(b) if f.number == number => Some(b),
        _ => None,
    })
}

/// How one field's value is encoded.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    /// Any varint integer (int32 and int64 alike: negative int32s are sign-extended).
    Int,
    Bool,
    Msg(&'static [Def]),
    /// `map<string, string>`: repeated entries of key 1 and value 2.
    StrMap,
    /// `map<string, Quantity>` (resource lists).
    QuantityMap,
    /// `map<string, bytes>` (ConfigMap `binaryData`), base64 in JSON.
    BytesMap,
    /// `intstr.IntOrString`: type 1, intVal 2, strVal 3.
    IntOrString,
    /// `metav1.Time`: seconds 1, nanos 2; the zero time is JSON `null` (left out).
    Time,
    /// A field the server ignores on writes (an object's `status`).
    Ignored,
}

/// One field of a message: its number, JSON name and type; `repeated` fields are
/// lists, `pointer` fields are kept even when zero.
#[derive(Clone, Copy)]
struct Def {
    number: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
    pointer: bool,
}

const fn f(number: u64, name: &'static str, ty: Ty) -> Def {
    Def {
        number,
        name,
        ty,
        repeated: false,
        pointer: false,
    }
}

const fn ptr(number: u64, name: &'static str, ty: Ty) -> Def {
    Def {
        pointer: true,
        ..f(number, name, ty)
    }
}

const fn list(number: u64, name: &'static str, ty: Ty) -> Def {
    Def {
        repeated: true,
        ..f(number, name, ty)
    }
}

use Ty::{Bool, BytesMap, Ignored, Int, IntOrString, Msg, QuantityMap, Str, StrMap, Time};

const OWNER_REFERENCE: &[Def] = &[
    f(1, "kind", Str),
    f(3, "name", Str),
    f(4, "uid", Str),
    f(5, "apiVersion", Str),
    ptr(6, "controller", Bool),
    ptr(7, "blockOwnerDeletion", Bool),
];

const OBJECT_META: &[Def] = &[
    f(1, "name", Str),
    f(2, "generateName", Str),
    f(3, "namespace", Str),
    f(4, "selfLink", Str),
    f(5, "uid", Str),
    f(6, "resourceVersion", Str),
    f(7, "generation", Int),
    f(8, "creationTimestamp", Time),
    ptr(9, "deletionTimestamp", Time),
    ptr(10, "deletionGracePeriodSeconds", Int),
    f(11, "labels", StrMap),
    f(12, "annotations", StrMap),
    list(13, "ownerReferences", Msg(OWNER_REFERENCE)),
    list(14, "finalizers", Str),
];

const LABEL_SELECTOR_REQUIREMENT: &[Def] = &[
    f(1, "key", Str),
    f(2, "operator", Str),
    list(3, "values", Str),
];

const LABEL_SELECTOR: &[Def] = &[
    f(1, "matchLabels", StrMap),
    list(2, "matchExpressions", Msg(LABEL_SELECTOR_REQUIREMENT)),
];

const CONTAINER_PORT: &[Def] = &[
    f(1, "name", Str),
    f(2, "hostPort", Int),
    f(3, "containerPort", Int),
    f(4, "protocol", Str),
    f(5, "hostIP", Str),
];

const ENV_VAR: &[Def] = &[f(1, "name", Str), f(2, "value", Str)];

const RESOURCE_REQUIREMENTS: &[Def] = &[f(1, "limits", QuantityMap), f(2, "requests", QuantityMap)];

const CONTAINER: &[Def] = &[
    f(1, "name", Str),
    f(2, "image", Str),
    list(3, "command", Str),
    list(4, "args", Str),
    f(5, "workingDir", Str),
    list(6, "ports", Msg(CONTAINER_PORT)),
    list(7, "env", Msg(ENV_VAR)),
    f(8, "resources", Msg(RESOURCE_REQUIREMENTS)),
    f(13, "terminationMessagePath", Str),
    f(14, "imagePullPolicy", Str),
    f(16, "stdin", Bool),
    f(17, "stdinOnce", Bool),
    f(18, "tty", Bool),
    f(20, "terminationMessagePolicy", Str),
    ptr(23, "restartPolicy", Str),
];

const TOLERATION: &[Def] = &[
    f(1, "key", Str),
    f(2, "operator", Str),
    f(3, "value", Str),
    f(4, "effect", Str),
    ptr(5, "tolerationSeconds", Int),
];

const POD_SPEC: &[Def] = &[
    list(2, "containers", Msg(CONTAINER)),
    f(3, "restartPolicy", Str),
    ptr(4, "terminationGracePeriodSeconds", Int),
    ptr(5, "activeDeadlineSeconds", Int),
    f(6, "dnsPolicy", Str),
    f(7, "nodeSelector", StrMap),
    f(8, "serviceAccountName", Str),
    f(9, "serviceAccount", Str),
    f(10, "nodeName", Str),
    f(11, "hostNetwork", Bool),
    f(12, "hostPID", Bool),
    f(13, "hostIPC", Bool),
    f(16, "hostname", Str),
    f(17, "subdomain", Str),
    f(19, "schedulerName", Str),
    list(20, "initContainers", Msg(CONTAINER)),
    ptr(21, "automountServiceAccountToken", Bool),
    list(22, "tolerations", Msg(TOLERATION)),
    f(24, "priorityClassName", Str),
    ptr(25, "priority", Int),
];

const POD_TEMPLATE_SPEC: &[Def] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(2, "spec", Msg(POD_SPEC)),
];

const ROLLING_UPDATE_DEPLOYMENT: &[Def] = &[
    ptr(1, "maxUnavailable", IntOrString),
    ptr(2, "maxSurge", IntOrString),
];

const DEPLOYMENT_STRATEGY: &[Def] = &[
    f(1, "type", Str),
    ptr(2, "rollingUpdate", Msg(ROLLING_UPDATE_DEPLOYMENT)),
];

const DEPLOYMENT_SPEC: &[Def] = &[
    ptr(1, "replicas", Int),
    ptr(2, "selector", Msg(LABEL_SELECTOR)),
    f(3, "template", Msg(POD_TEMPLATE_SPEC)),
    f(4, "strategy", Msg(DEPLOYMENT_STRATEGY)),
    f(5, "minReadySeconds", Int),
    ptr(6, "revisionHistoryLimit", Int),
    f(7, "paused", Bool),
    ptr(9, "progressDeadlineSeconds", Int),
];

const SERVICE_PORT: &[Def] = &[
    f(1, "name", Str),
    f(2, "protocol", Str),
    f(3, "port", Int),
    f(4, "targetPort", IntOrString),
    f(5, "nodePort", Int),
    ptr(6, "appProtocol", Str),
];

const SERVICE_SPEC: &[Def] = &[
    list(1, "ports", Msg(SERVICE_PORT)),
    f(2, "selector", StrMap),
    f(3, "clusterIP", Str),
    f(4, "type", Str),
    list(5, "externalIPs", Str),
    f(7, "sessionAffinity", Str),
    f(8, "loadBalancerIP", Str),
    list(9, "loadBalancerSourceRanges", Str),
    f(10, "externalName", Str),
    f(11, "externalTrafficPolicy", Str),
    f(12, "healthCheckNodePort", Int),
    f(13, "publishNotReadyAddresses", Bool),
];

const PDB_SPEC: &[Def] = &[
    ptr(1, "minAvailable", IntOrString),
    ptr(2, "selector", Msg(LABEL_SELECTOR)),
    ptr(3, "maxUnavailable", IntOrString),
    ptr(4, "unhealthyPodEvictionPolicy", Str),
];

const NAMESPACE_SPEC: &[Def] = &[list(1, "finalizers", Str)];

/// An object of `spec` and `status` (status ignored: writes never set it).
const fn object_with(spec: &'static [Def]) -> [Def; 3] {
    [
        f(1, "metadata", Msg(OBJECT_META)),
        f(2, "spec", Msg(spec)),
        f(3, "status", Ignored),
    ]
}

const DEPLOYMENT: &[Def] = &object_with(DEPLOYMENT_SPEC);
const SERVICE: &[Def] = &object_with(SERVICE_SPEC);
const PDB: &[Def] = &object_with(PDB_SPEC);
const NAMESPACE: &[Def] = &object_with(NAMESPACE_SPEC);
const POD: &[Def] = &object_with(POD_SPEC);
const CONFIG_MAP: &[Def] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(2, "data", StrMap),
    f(3, "binaryData", BytesMap),
    ptr(4, "immutable", Bool),
];

/// The message table of each kind decoded from protobuf.
fn object_table(api_version: &str, kind: &str) -> Option<&'static [Def]> {
    Some(match (api_version, kind) {
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "Service") => SERVICE,
        ("v1", "Pod") => POD,
        ("policy/v1", "PodDisruptionBudget") => PDB,
        _ => return None,
    })
}

/// Whether a decoded JSON value is what `omitempty` leaves out.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// A message decoded by its table; None if malformed or holding a field it lacks.
fn message(data: &[u8], table: &[Def]) -> Option<Value> {
    let mut out = Map::new();
    for field in fields(data)? {
        let def = table.iter().find(|d| d.number == field.number)?;
        let value = scalar(def.ty, &field.value)?;
        if def.repeated {
            let entry = out
                .entry(def.name)
                .or_insert_with(|| Value::Array(Vec::new()));
            entry.as_array_mut()?.push(value);
        } else if matches!(def.ty, StrMap | QuantityMap | BytesMap) {
            // A map's entries arrive one field each.
            let entry = out
                .entry(def.name)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(pair) = value {
                entry.as_object_mut()?.extend(pair);
            }
        } else if matches!(def.ty, Ignored) || (!def.pointer && is_empty(&value)) {
            out.remove(def.name);
        } else {
            out.insert(def.name.to_owned(), value);
        }
    }
    Some(Value::Object(out))
}

fn text(value: &Wire<'_>) -> Option<String> {
    match value {
        Wire::Bytes(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        _ => None,
    }
}

/// One value of type `ty`; a map entry decodes to a one-key object.
fn scalar(ty: Ty, value: &Wire<'_>) -> Option<Value> {
    Some(match (ty, value) {
        (Str, _) => json!(text(value)?),
        (Int, Wire::Varint(v)) => json!(*v as i64),
        (Bool, Wire::Varint(v)) => json!(*v != 0),
        (Msg(table), Wire::Bytes(b)) => message(b, table)?,
        (Ignored, _) => Value::Null,
        (StrMap | QuantityMap | BytesMap, Wire::Bytes(b)) => {
            let entry = fields(b)?;
            let key = std::str::from_utf8(bytes_of(&entry, 1).unwrap_or_default()).ok()?;
            let raw = bytes_of(&entry, 2).unwrap_or_default();
            let value = match ty {
                StrMap => json!(std::str::from_utf8(raw).ok()?),
                // `resource.Quantity` is a message of one string, field 1.
                QuantityMap => {
                    json!(std::str::from_utf8(bytes_of(&fields(raw)?, 1).unwrap_or_default()).ok()?)
                }
                _ => json!(base64::engine::general_purpose::STANDARD.encode(raw)),
            };
            json!({ key: value })
        }
        (IntOrString, Wire::Bytes(b)) => {
            let parts = fields(b)?;
            let varint_of = |n: u64| {
                parts.iter().rev().find_map(|p| match p.value {
                    Wire::Varint(v) if p.number == n => Some(v),
                    _ => None,
                })
            };
            if varint_of(1).unwrap_or(0) == 1 {
                json!(std::str::from_utf8(bytes_of(&parts, 3).unwrap_or_default()).ok()?)
            } else {
                json!(varint_of(2).unwrap_or(0) as i64 as i32)
            }
        }
        (Time, Wire::Bytes(b)) => {
            let parts = fields(b)?;
            let seconds = parts.iter().rev().find_map(|p| match p.value {
                Wire::Varint(v) if p.number == 1 => Some(v as i64),
                _ => None,
            });
            match seconds {
                None | Some(0) => Value::Null,
                Some(s) => json!(
                    jiff::Timestamp::from_second(s)
                        .ok()?
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string()
                ),
            }
        }
        _ => return None,
    })
}

/// A message of string fields as a JSON object, named by number; empty ones left out.
fn strings(data: &[u8], names: &[(u64, &str)]) -> Option<Value> {
    let fields = fields(data)?;
    let mut out = Map::new();
    for (number, name) in names {
        if let Some(bytes) = bytes_of(&fields, *number) {
            let text = std::str::from_utf8(bytes).ok()?;
            if !text.is_empty() {
                out.insert((*name).to_owned(), json!(text));
            }
        }
    }
    Some(Value::Object(out))
}

/// The JSON object a protobuf request body stands for, when it is one of the kinds
/// this module knows; None otherwise (the caller answers 415).
pub fn decode(body: &[u8]) -> Option<Value> {
    let envelope = fields(body.strip_prefix(MAGIC)?)?;
    let type_meta = strings(bytes_of(&envelope, 1)?, &[(1, "apiVersion"), (2, "kind")])?;
    let raw = bytes_of(&envelope, 2).unwrap_or_default();
    let api_version = type_meta["apiVersion"].as_str()?;
    let kind = type_meta["kind"].as_str()?;
    if let Some(table) = object_table(api_version, kind) {
        let mut out = message(raw, table)?;
        let object = out.as_object_mut()?;
        object.insert("apiVersion".into(), json!(api_version));
        object.insert("kind".into(), json!(kind));
        object.entry("metadata").or_insert_with(|| json!({}));
        return Some(out);
    }
    let object = fields(raw)?;
    let spec = match (api_version, kind) {
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            access_review_spec(bytes_of(&object, 2).unwrap_or_default())?
        }
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => strings(
            bytes_of(&object, 2).unwrap_or_default(),
            &[(1, "namespace")],
        )?,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => Value::Null,
        // `kubectl create token`: TokenRequestSpec's `audiences` (1, repeated); its
        // varint `expirationSeconds` is skipped (the sandbox's tokens never expire).
        ("authentication.k8s.io/v1", "TokenRequest") => {
            let spec = fields(bytes_of(&object, 2).unwrap_or_default())?;
            let audiences: Vec<&str> = spec
                .iter()
                .filter(|f| f.number == 1)
                .map(|f| match f.value {
                    Wire::Bytes(b) => std::str::from_utf8(b).ok(),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            if audiences.is_empty() {
                json!({})
            } else {
                json!({"audiences": audiences})
            }
        }
        _ => return None,
    };
    let mut out = json!({"apiVersion": api_version, "kind": kind, "metadata": {}});
    if !spec.is_null() {
        out["spec"] = spec;
    }
    Some(out)
}

/// `SelfSubjectAccessReviewSpec`: `resourceAttributes` 1, `nonResourceAttributes` 2;
/// each present only when the client set it (they are pointers in Go).
fn access_review_spec(data: &[u8]) -> Option<Value> {
    let spec = fields(data)?;
    let mut out = Map::new();
    if let Some(bytes) = bytes_of(&spec, 1) {
        let attributes = strings(
            bytes,
            &[
                (1, "namespace"),
                (2, "verb"),
                (3, "group"),
                (4, "version"),
                (5, "resource"),
                (6, "subresource"),
                (7, "name"),
            ],
        )?;
        out.insert("resourceAttributes".into(), attributes);
    }
    if let Some(bytes) = bytes_of(&spec, 2) {
        out.insert(
            "nonResourceAttributes".into(),
            strings(bytes, &[(1, "path"), (2, "verb")])?,
        );
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delimited(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from(number << 3 | 2).unwrap_or(0)];
        out.push(u8::try_from(bytes.len()).unwrap_or(0));
        out.extend_from_slice(bytes);
        out
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut type_meta = delimited(1, api_version.as_bytes());
        type_meta.extend(delimited(2, kind.as_bytes()));
        let mut body = MAGIC.to_vec();
        body.extend(delimited(1, &type_meta));
        body.extend(delimited(2, raw));
        body
    }

    #[test]
    fn an_access_review_decodes_to_its_json_form_without_empty_strings() {
        let mut attributes = delimited(1, b"shop");
        attributes.extend(delimited(2, b"delete"));
        attributes.extend(delimited(3, b""));
        attributes.extend(delimited(5, b"pods"));
        let spec = delimited(1, &attributes);
        let mut raw = delimited(1, b"");
        raw.extend(delimited(2, &spec));
        let body = envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", &raw);
        assert_eq!(
            decode(&body),
            Some(json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "metadata": {},
                "spec": {"resourceAttributes": {"namespace": "shop", "verb": "delete", "resource": "pods"}},
            }))
        );
    }

    #[test]
    fn unknown_kinds_and_broken_bodies_are_not_decoded() {
        assert_eq!(decode(&envelope("v1", "Secret", &[])), None);
        assert_eq!(decode(b"{\"kind\":\"Pod\"}"), None);
        let mut truncated = envelope("authentication.k8s.io/v1", "SelfSubjectReview", &[]);
        truncated.truncate(10);
        assert_eq!(decode(&truncated), None);
        assert_eq!(
            decode(&envelope(
                "authentication.k8s.io/v1",
                "SelfSubjectReview",
                &[]
            ))
            .map(|v| v["kind"].clone()),
            Some(json!("SelfSubjectReview"))
        );
    }

    /// `kubectl.1.33 create deployment web --image=nginx`, as sent on the wire.
    const KUBECTL_CREATE_DEPLOYMENT: &[u8] = &[
        0x6b, 0x38, 0x73, 0x00, 0x0a, 0x15, 0x0a, 0x07, 0x61, 0x70, 0x70, 0x73, 0x2f, 0x76, 0x31,
        0x12, 0x0a, 0x44, 0x65, 0x70, 0x6c, 0x6f, 0x79, 0x6d, 0x65, 0x6e, 0x74, 0x12, 0xab, 0x01,
        0x0a, 0x1f, 0x0a, 0x03, 0x77, 0x65, 0x62, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00,
        0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x5a, 0x0a, 0x0a, 0x03, 0x61, 0x70, 0x70, 0x12, 0x03,
        0x77, 0x65, 0x62, 0x12, 0x7a, 0x08, 0x01, 0x12, 0x0c, 0x0a, 0x0a, 0x0a, 0x03, 0x61, 0x70,
        0x70, 0x12, 0x03, 0x77, 0x65, 0x62, 0x1a, 0x60, 0x0a, 0x1c, 0x0a, 0x00, 0x12, 0x00, 0x1a,
        0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x5a, 0x0a, 0x0a, 0x03,
        0x61, 0x70, 0x70, 0x12, 0x03, 0x77, 0x65, 0x62, 0x12, 0x40, 0x12, 0x22, 0x0a, 0x05, 0x6e,
        0x67, 0x69, 0x6e, 0x78, 0x12, 0x05, 0x6e, 0x67, 0x69, 0x6e, 0x78, 0x2a, 0x00, 0x42, 0x00,
        0x6a, 0x00, 0x72, 0x00, 0x80, 0x01, 0x00, 0x88, 0x01, 0x00, 0x90, 0x01, 0x00, 0xa2, 0x01,
        0x00, 0x1a, 0x00, 0x32, 0x00, 0x42, 0x00, 0x4a, 0x00, 0x52, 0x00, 0x58, 0x00, 0x60, 0x00,
        0x68, 0x00, 0x82, 0x01, 0x00, 0x8a, 0x01, 0x00, 0x9a, 0x01, 0x00, 0xc2, 0x01, 0x00, 0x22,
        0x02, 0x0a, 0x00, 0x28, 0x00, 0x38, 0x00, 0x1a, 0x0c, 0x08, 0x00, 0x10, 0x00, 0x18, 0x00,
        0x20, 0x00, 0x28, 0x00, 0x38, 0x00, 0x1a, 0x00, 0x22, 0x00,
    ];

    /// `kubectl.1.33 create service nodeport s1 --tcp=80:8080`, as sent on the wire.
    const KUBECTL_CREATE_SERVICE: &[u8] = &[
        0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0d, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x07, 0x53, 0x65, 0x72,
        0x76, 0x69, 0x63, 0x65, 0x12, 0x65, 0x0a, 0x1d, 0x0a, 0x02, 0x73, 0x31, 0x12, 0x00, 0x1a,
        0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x5a, 0x09, 0x0a, 0x03,
        0x61, 0x70, 0x70, 0x12, 0x02, 0x73, 0x31, 0x12, 0x40, 0x0a, 0x1b, 0x0a, 0x07, 0x38, 0x30,
        0x2d, 0x38, 0x30, 0x38, 0x30, 0x12, 0x03, 0x54, 0x43, 0x50, 0x18, 0x50, 0x22, 0x07, 0x08,
        0x00, 0x10, 0x90, 0x3f, 0x1a, 0x00, 0x28, 0x00, 0x12, 0x09, 0x0a, 0x03, 0x61, 0x70, 0x70,
        0x12, 0x02, 0x73, 0x31, 0x1a, 0x00, 0x22, 0x08, 0x4e, 0x6f, 0x64, 0x65, 0x50, 0x6f, 0x72,
        0x74, 0x3a, 0x00, 0x42, 0x00, 0x52, 0x00, 0x5a, 0x00, 0x60, 0x00, 0x68, 0x00, 0x1a, 0x02,
        0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
    ];

    #[test]
    fn kubectl_create_deployment_decodes_to_the_json_kubectl_would_send() {
        assert_eq!(
            decode(KUBECTL_CREATE_DEPLOYMENT),
            Some(json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
                    },
                },
            }))
        );
    }

    #[test]
    fn kubectl_create_service_decodes_ports_and_an_integer_target_port() {
        let service = decode(KUBECTL_CREATE_SERVICE).expect("decodes");
        assert_eq!(
            service["spec"],
            json!({
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "s1"},
                "type": "NodePort",
            })
        );
        assert_eq!(
            service["metadata"],
            json!({"name": "s1", "labels": {"app": "s1"}})
        );
    }

    #[test]
    fn a_pointer_zero_is_kept_and_an_unknown_field_refuses_the_body() {
        // DeploymentSpec { replicas: 0 } is `replicas: 0`, not an absent field.
        let spec = [0x08, 0x00];
        let raw = delimited(2, &spec);
        let zero = decode(&envelope("apps/v1", "Deployment", &raw)).expect("decodes");
        assert_eq!(zero["spec"], json!({"replicas": 0}));
        // Field 99 of a DeploymentSpec is not in the table: never guessed.
        let unknown = [0x98, 0x06, 0x01];
        let raw = delimited(2, &unknown);
        assert_eq!(decode(&envelope("apps/v1", "Deployment", &raw)), None);
    }
}
