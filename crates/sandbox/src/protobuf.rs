//! Decoding of the few protobuf request bodies kubectl sends whatever the server
//! prefers: its typed clients POST `application/vnd.kubernetes.protobuf` for the
//! self-reviews (`kubectl auth can-i`, `auth can-i --list`, `auth whoami`) and for
//! `kubectl create token`'s TokenRequest, with no
//! fallback to JSON on 415. They accept JSON back, so only requests are decoded.
//!
//! A body is Kubernetes' protobuf envelope: the magic `k8s\0`, then a
//! `runtime.Unknown` message (`typeMeta` 1, `raw` 2), whose `raw` is the object's own
//! message. Each kind is turned into the JSON the same request would have carried:
//! empty strings (which the Go encoder always writes) are left out, as JSON's
//! `omitempty` leaves them out. Any other kind is refused as before (415): it must
//! not decode objects it does not know field by field.

use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// One field of a protobuf message: its number and its length-delimited bytes
/// (varints and fixed-width values are skipped: the messages read here have none).
struct Field<'a> {
    number: u64,
    bytes: &'a [u8],
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

/// The length-delimited fields of a message, in order; None if it is malformed.
fn fields(data: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < data.len() {
        let key = varint(data, &mut at)?;
        let number = key >> 3;
        match key & 7 {
            0 => {
                varint(data, &mut at)?;
            }
            1 => at = at.checked_add(8).filter(|end| *end <= data.len())?,
            5 => at = at.checked_add(4).filter(|end| *end <= data.len())?,
            2 => {
                let len = usize::try_from(varint(data, &mut at)?).ok()?;
                let end = at.checked_add(len).filter(|end| *end <= data.len())?;
                out.push(Field {
                    number,
                    bytes: &data[at..end],
                });
                at = end;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn field<'a>(fields: &[Field<'a>], number: u64) -> Option<&'a [u8]> {
    fields
        .iter()
        .rev()
        .find(|f| f.number == number)
        .map(|f| f.bytes)
}

/// A message of string fields as a JSON object, named by number; empty ones left out.
fn strings(data: &[u8], names: &[(u64, &str)]) -> Option<Value> {
    let fields = fields(data)?;
    let mut out = Map::new();
    for (number, name) in names {
        if let Some(bytes) = field(&fields, *number) {
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
    let type_meta = strings(field(&envelope, 1)?, &[(1, "apiVersion"), (2, "kind")])?;
    let raw = field(&envelope, 2).unwrap_or_default();
    let api_version = type_meta["apiVersion"].as_str()?;
    let kind = type_meta["kind"].as_str()?;
    let object = fields(raw)?;
    let spec = match (api_version, kind) {
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            access_review_spec(field(&object, 2).unwrap_or_default())?
        }
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => {
            strings(field(&object, 2).unwrap_or_default(), &[(1, "namespace")])?
        }
        ("authentication.k8s.io/v1", "SelfSubjectReview") => Value::Null,
        // `kubectl create token`: TokenRequestSpec's `audiences` (1, repeated); its
        // varint `expirationSeconds` is skipped (the sandbox's tokens never expire).
        ("authentication.k8s.io/v1", "TokenRequest") => {
            let spec = fields(field(&object, 2).unwrap_or_default())?;
            let audiences: Vec<&str> = spec
                .iter()
                .filter(|f| f.number == 1)
                .map(|f| std::str::from_utf8(f.bytes).ok())
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
    if let Some(bytes) = field(&spec, 1) {
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
    if let Some(bytes) = field(&spec, 2) {
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
        assert_eq!(decode(&envelope("v1", "Pod", &[])), None);
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
}
