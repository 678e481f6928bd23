//! API errors as Kubernetes `Status` objects. Every failure the sandbox returns goes
//! through here, so clients see the same `reason`/`code` pairs a real API server sends
//! and their error handling (retry on 429, re-list on 410) is exercised for real.

use serde_json::{Value, json};

/// A failed API call: an HTTP code plus the `Status` body that describes it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(qualified: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"))
            .with_details(details(group_of(qualified), kind_of(qualified), name))
    }

    /// 403 from an admission plugin about one object, as `errors.NewForbidden` words
    /// it: `pods "x" is forbidden: <why>`, with the object in the details.
    pub fn forbidden_object(qualified: &str, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{qualified} \"{name}\" is forbidden: {why}"),
        )
        .with_details(details(group_of(qualified), kind_of(qualified), name))
    }

    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(qualified: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{qualified} \"{name}\" already exists"),
        )
        .with_details(details(group_of(qualified), kind_of(qualified), name))
    }

    pub fn conflict(qualified: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified} \"{name}\": {why}"),
        )
        .with_details(details(group_of(qualified), kind_of(qualified), name))
    }

    /// 422 as `errors.NewInvalid` words it: every cause, the `Kind.group "name"`
    /// prefix, and details without the empty group, kind or name.
    pub fn invalid_causes(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let listed: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = match listed.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut d = details(group, kind, name);
        d["causes"] = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {summary}"),
        )
        .with_details(d)
    }

    /// 422 for one invalid field; the cause's reason follows from how `why` is
    /// worded (`Forbidden: …`, `Required value`, …), as `field.Error` words it.
    pub fn invalid(kind: &str, name: &str, field: &str, why: &str) -> Self {
        let reason = [
            ("Forbidden", "FieldValueForbidden"),
            ("Required value", "FieldValueRequired"),
            ("Duplicate value", "FieldValueDuplicate"),
            ("Not found", "FieldValueNotFound"),
            ("Unsupported value", "FieldValueNotSupported"),
        ]
        .iter()
        .find(|(prefix, _)| why.starts_with(prefix))
        .map_or("FieldValueInvalid", |(_, reason)| reason);
        let cause = Cause {
            reason,
            field: field.to_owned(),
            message: why.to_owned(),
        };
        Self::invalid_causes(group_of_kind(kind), kind, name, vec![cause])
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    /// A PATCH in a content type that is no patch format, worded as the API
    /// server's patch handler words it.
    pub fn unsupported_media_type() -> Self {
        Self::new(415, "UnsupportedMediaType", "415: Unsupported Media Type")
            .with_details(json!({}))
    }

    /// A body in a media type the sandbox does not decode (protobuf, CBOR).
    pub fn unsupported_body(media: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {media:?})"
            ),
        )
    }

    pub fn too_many_requests(message: impl Into<String>, details: Option<Value>) -> Self {
        let err = Self::new(429, "TooManyRequests", message);
        match details {
            Some(d) => err.with_details(d),
            None => err,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 410 Gone: the requested resourceVersion has been compacted away.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 500 without a reason, as the API server reports errors it did not classify
    /// (an unparsable resourceVersion).
    pub fn unclassified(message: impl Into<String>) -> Self {
        Self::new(500, "", message)
    }

    /// 504: a read at a resourceVersion the store has not reached within the wait.
    pub fn too_large_resource_version(wanted: u64, current: u64) -> Self {
        Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {wanted}, current: {current}"),
        )
        .with_details(json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        }))
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        if !self.reason.is_empty() {
            status["reason"] = json!(self.reason);
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// `Status` for a successful call that returns no object (eviction, some deletes).
pub fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

/// Status details as Go serialises them: empty strings are left out.
fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = json!({});
    for (key, value) in [("group", group), ("kind", kind), ("name", name)] {
        if !value.is_empty() {
            d[key] = json!(value);
        }
    }
    d
}

/// One `details.causes` entry, worded as `field.Error` words it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        Self::with("FieldValueRequired", field, "Required value", detail)
    }

    /// `value` is already rendered as Go prints it (`"x"`, `-1`, `map[…]`).
    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Self {
        Self::with(
            "FieldValueInvalid",
            field,
            &format!("Invalid value: {value}"),
            detail,
        )
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self::with("FieldValueForbidden", field, "Forbidden", detail)
    }

    pub fn duplicate(field: impl Into<String>, value: &str) -> Self {
        Self::with(
            "FieldValueDuplicate",
            field,
            &format!("Duplicate value: {}", quote(value)),
            "",
        )
    }

    pub fn not_found(field: impl Into<String>, value: &str) -> Self {
        Self::with(
            "FieldValueNotFound",
            field,
            &format!("Not found: {}", quote(value)),
            "",
        )
    }

    /// `value` is rendered as Go prints it; `supported` are quoted here.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let listed: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        Self::with(
            "FieldValueNotSupported",
            field,
            &format!(
                "Unsupported value: {value}: supported values: {}",
                listed.join(", ")
            ),
            "",
        )
    }

    fn with(reason: &'static str, field: impl Into<String>, head: &str, detail: &str) -> Self {
        let message = if detail.is_empty() {
            head.to_owned()
        } else {
            format!("{head}: {detail}")
        };
        Self {
            reason,
            field: field.into(),
            message,
        }
    }
}

/// A string as Go's `%q` prints it.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The API group of the kinds the sandbox validates (core kinds have none).
pub fn group_of_kind(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" => "apps",
        "PodDisruptionBudget" | "Eviction" => "policy",
        "Scale" => "autoscaling",
        _ => "",
    }
}

fn kind_of(qualified: &str) -> &str {
    qualified.split('.').next().unwrap_or(qualified)
}

fn group_of(qualified: &str) -> &str {
    qualified.split_once('.').map(|(_, g)| g).unwrap_or("")
}

impl ApiError {
    /// A well-formed patch that cannot be applied (a failed `test` op, a missing path).
    pub fn invalid_patch(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }
}
