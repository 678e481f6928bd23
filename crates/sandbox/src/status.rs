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
        Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found")).with_details(
            json!({"name": name, "kind": kind_of(qualified), "group": group_of(qualified)}),
        )
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
        .with_details(
            json!({"name": name, "kind": kind_of(qualified), "group": group_of(qualified)}),
        )
    }

    pub fn conflict(qualified: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified} \"{name}\": {why}"),
        )
        .with_details(
            json!({"name": name, "kind": kind_of(qualified), "group": group_of(qualified)}),
        )
    }

    /// 422 with one cause per invalid field, as field validation reports it.
    pub fn invalid(kind: &str, name: &str, field: &str, why: &str) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {field}: {why}"),
        )
        .with_details(json!({
            "name": name,
            "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": why, "field": field}],
        }))
    }

    /// 422 for a field the API server requires, as `field.Required` words it.
    pub fn required(kind: &str, name: &str, field: &str) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {field}: Required value"),
        )
        .with_details(json!({
            "name": name,
            "kind": kind,
            "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": field}],
        }))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
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

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
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
