//! The authorization reviews a client asks the API server about itself:
//! SelfSubjectAccessReview (validated, then allowed, since the sandbox authorises
//! every request) and SelfSubjectRulesReview (the rules of a user who may do
//! everything, as a cluster-admin sees them on a real server), and
//! SelfSubjectReview (who the caller is).
//!
//! It must not store anything: reviews are answers, not objects.

use serde_json::{Value, json};

use crate::status::{ApiError, Cause};

fn invalid(cause: Cause) -> ApiError {
    ApiError::invalid_causes("authorization.k8s.io", "", "", vec![cause])
}

/// A review as the API server returns it: type meta, a null creationTimestamp and
/// the spec it was asked.
fn answer(kind: &str, spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": status,
    })
}

pub fn self_subject_access_review(
    config: &crate::SandboxConfig,
    body: &Value,
) -> Result<Value, ApiError> {
    let spec = &body["spec"];
    let resource = spec["resourceAttributes"].is_object();
    let non_resource = &spec["nonResourceAttributes"];
    match (resource, non_resource.is_object()) {
        (false, false) => Err(invalid(Cause::invalid(
            "spec.resourceAttributes",
            "\"null\"",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ))),
        (true, true) => Err(invalid(Cause::invalid(
            "spec.nonResourceAttributes",
            &format!(
                "authorization.NonResourceAttributes{{Path:{}, Verb:{}}}",
                crate::status::quote(non_resource["path"].as_str().unwrap_or("")),
                crate::status::quote(non_resource["verb"].as_str().unwrap_or(""))
            ),
            "cannot be specified in combination with resourceAttributes",
        ))),
        (true, false) => Ok(answer(
            "SelfSubjectAccessReview",
            spec.clone(),
            access_review(config, &spec["resourceAttributes"]),
        )),
        (false, true) => Ok(answer(
            "SelfSubjectAccessReview",
            spec.clone(),
            json!({"allowed": true}),
        )),
    }
}

pub fn self_subject_rules_review() -> Value {
    let get = |urls: &[&str]| json!({"nonResourceURLs": urls, "verbs": ["get"]});
    answer(
        "SelfSubjectRulesReview",
        json!({}),
        json!({
            "incomplete": false,
            "nonResourceRules": [
                get(&["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]),
                get(&["/.well-known", "/.well-known/*"]),
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
                get(&["/healthz", "/livez", "/readyz", "/version", "/version/"]),
            ],
            "resourceRules": [
                {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            ],
        }),
    )
}

/// `authentication.k8s.io/v1` SelfSubjectReview (`kubectl auth whoami`): who the
/// sandbox takes the caller to be, the same user its audit log names.
pub fn self_subject_review() -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": {
            "username": crate::audit::SANDBOX_USERNAME,
            "groups": crate::audit::SANDBOX_GROUPS,
        }},
    })
}

/// A SelfSubjectAccessReview's status: allowed, unless the config denies it.
fn access_review(config: &crate::SandboxConfig, attributes: &Value) -> Value {
    match config.access_denied.iter().find(|d| d.denies(attributes)) {
        Some(_) => json!({"allowed": false, "reason": "denied by the sandbox's accessDenied"}),
        // A real server says nothing more when RBAC allows (h5-ssar.txt).
        None => json!({"allowed": true}),
    }
}
