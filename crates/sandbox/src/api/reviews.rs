//! The authorization reviews a client asks the API server about itself:
//! SelfSubjectAccessReview (validated, then answered by `crate::rbac` when RBAC is on,
//! else allowed, since the sandbox then authorises every request; `accessDenied`
//! denies either way) and SelfSubjectRulesReview (the caller's rules from its
//! bindings, or those of a user who may do everything, as a cluster-admin sees them
//! on a real server), and SelfSubjectReview (who the caller is).
//!
//! It must not store anything: reviews are answers, not objects.

use serde_json::{Value, json};

use crate::State;
use crate::rbac::{self, Attributes, UserInfo};
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
    state: &State,
    user: &UserInfo,
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
            access_review(state, user, spec),
        )),
        (false, true) => Ok(answer(
            "SelfSubjectAccessReview",
            spec.clone(),
            access_review(state, user, spec),
        )),
    }
}

pub fn self_subject_rules_review(state: &State, user: &UserInfo, body: &Value) -> Value {
    if state.config.rbac && !user.groups.iter().any(|g| g == "system:masters") {
        let namespace = body["spec"]["namespace"].as_str().unwrap_or("");
        let status = rbac::rules_review_status(&state.store(), user, namespace);
        return answer("SelfSubjectRulesReview", body["spec"].clone(), status);
    }
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
pub fn self_subject_review(user: &UserInfo) -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": user.to_json()},
    })
}

/// A SelfSubjectAccessReview's status: what RBAC decides when it is on (allowed
/// otherwise), unless the config's `accessDenied` denies it.
fn access_review(state: &State, user: &UserInfo, spec: &Value) -> Value {
    let config = &state.config;
    let attributes = &spec["resourceAttributes"];
    if attributes.is_object() && config.access_denied.iter().any(|d| d.denies(attributes)) {
        return json!({"allowed": false, "reason": "denied by the sandbox's accessDenied"});
    }
    if !config.rbac {
        // A real server says nothing more when RBAC allows (h5-ssar.txt).
        return json!({"allowed": true});
    }
    let decision = rbac::authorize(&state.store(), user, &Attributes::from_review(spec));
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    status
}
