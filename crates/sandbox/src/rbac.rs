//! Who is calling and what they may do, when the sandbox's RBAC is on
//! (`rbac: true` in its config, `shakedown sandbox --rbac`): ServiceAccount bearer
//! tokens (issued by the `serviceaccounts/<name>/token` subresource, as
//! `kubectl create token` asks), the request attributes kube-apiserver derives from a
//! URL (its `RequestInfo`), and the RBAC authorizer over the stored Roles,
//! ClusterRoles and their bindings, with the 403 body a real server sends.
//!
//! The rules follow kube-apiserver's `plugin/pkg/auth/authorizer/rbac/rbac.go` and
//! `pkg/apis/rbac/v1/evaluation_helpers.go`: a rule matches a verb (or `*`), an API
//! group (or `*`), a resource as `resource/subresource` (or `*`, or `*/subresource`),
//! and, when it lists `resourceNames`, only requests that carry one of those names (a
//! list or watch carries one only through `fieldSelector=metadata.name=…`). A
//! RoleBinding grants a ClusterRole's rules in its own namespace only.
//!
//! Requests without credentials are the sandbox's admin (`system:masters`), as the
//! kubeconfig it writes has none: with RBAC off every caller is all-powerful, as
//! before. Tokens are not a security boundary (the sandbox listens on loopback only):
//! they name the ServiceAccount and its uid, so deleting the account revokes them.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::status::{ApiError, quote};
use crate::store::{Store, name_of, namespace_of, uid_of};

/// The group whose members every check allows, as kube-apiserver's privileged-group
/// authorizer does before RBAC is asked.
const MASTERS: &str = "system:masters";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// An authenticated caller, as a SelfSubjectReview reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The sandbox's own admin: requests without credentials.
    pub fn admin() -> Self {
        Self {
            username: crate::audit::SANDBOX_USERNAME.to_owned(),
            uid: String::new(),
            groups: crate::audit::SANDBOX_GROUPS
                .iter()
                .map(|g| (*g).to_owned())
                .collect(),
        }
    }

    fn service_account(namespace: &str, name: &str, uid: &str) -> Self {
        Self {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            uid: uid.to_owned(),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_owned(),
            ],
        }
    }

    fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }

    /// `userInfo` as reviews and audit events write it.
    pub fn to_json(&self) -> Value {
        let mut info = json!({"username": self.username, "groups": self.groups});
        if !self.uid.is_empty() {
            info["uid"] = json!(self.uid);
        }
        info
    }
}

/// What a request asks to do, as kube-apiserver's authorizers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    /// False for a non-resource URL (`/version`, `/healthz`, `/api`).
    pub resource_request: bool,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub namespace: String,
    pub path: String,
}

impl Attributes {
    /// `pods/eviction`, or `pods`.
    fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// The attributes a SelfSubjectAccessReview asks about (its `spec`).
    pub fn from_review(spec: &Value) -> Self {
        let field = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
        let resource = &spec["resourceAttributes"];
        if resource.is_object() {
            return Self {
                verb: field(resource, "verb"),
                resource_request: true,
                group: field(resource, "group"),
                resource: field(resource, "resource"),
                subresource: field(resource, "subresource"),
                name: field(resource, "name"),
                namespace: field(resource, "namespace"),
                path: String::new(),
            };
        }
        let other = &spec["nonResourceAttributes"];
        Self {
            verb: field(other, "verb"),
            path: field(other, "path"),
            ..Self::default()
        }
    }
}

/// The attributes of an HTTP request, as kube-apiserver's `RequestInfoFactory` reads
/// them from the method, the path and the query.
pub fn request_attributes(method: &str, path: &str, query: &HashMap<String, String>) -> Attributes {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let non_resource = || Attributes {
        verb: method.to_ascii_lowercase(),
        path: path.to_owned(),
        ..Attributes::default()
    };
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
        _ => return non_resource(),
    };
    let mut verb = match method {
        "POST" => "create",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => return non_resource(),
    }
    .to_owned();
    let mut rest = rest;
    let mut namespace = String::new();
    if rest[0] == "namespaces" && rest.len() > 1 {
        namespace = rest[1].to_owned();
        // `namespaces/<ns>/status` and `/finalize` are the namespace's own
        // subresources; anything else is a resource in the namespace.
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    let at = |i: usize| rest.get(i).map(|s| (*s).to_owned()).unwrap_or_default();
    let mut name = at(1);
    if name.is_empty() && verb == "get" {
        let watch = matches!(query.get("watch").map(String::as_str), Some("1" | "true"));
        verb = if watch { "watch" } else { "list" }.to_owned();
    }
    if name.is_empty() && verb == "delete" {
        verb = "deletecollection".to_owned();
    }
    // A list or watch of one object by name is authorized as that name.
    if matches!(verb.as_str(), "list" | "watch")
        && let Some(named) = query.get("fieldSelector").and_then(|s| exact_name(s))
    {
        name = named;
    }
    Attributes {
        verb,
        resource_request: true,
        group: group.to_owned(),
        resource: at(0),
        subresource: at(2),
        name,
        namespace,
        path: path.to_owned(),
    }
}

/// `metadata.name=x` (or `==`) in a field selector, the one requirement that makes a
/// list or watch name its object.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (key, value) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(k, _)| !k.ends_with('!'))?;
        (key.trim() == "metadata.name").then(|| value.trim().to_owned())
    })
}

/// A check's outcome, with the reason a SelfSubjectAccessReview reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Which binding allowed it, or (when denied) the errors found on the way, such as
    /// a binding to a role that does not exist. Empty when there is nothing to say.
    pub reason: String,
}

/// One rule with where it came from (for the "allowed by" reason).
struct SourcedRule<'a> {
    source: String,
    rule: &'a Value,
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn has(list: &[&str], wanted: &str) -> bool {
    list.contains(&wanted)
}

/// Whether `subject` (a binding's subject) is `user`. A ServiceAccount subject needs
/// its namespace; a User or Group subject matches by name.
fn applies_to(user: &UserInfo, subject: &Value) -> bool {
    let field = |k: &str| subject[k].as_str().unwrap_or("");
    match field("kind") {
        "User" => user.username == field("name"),
        "Group" => user.groups.iter().any(|g| g == field("name")),
        "ServiceAccount" => {
            !field("namespace").is_empty()
                && user.username
                    == format!(
                        "system:serviceaccount:{}:{}",
                        field("namespace"),
                        field("name")
                    )
        }
        _ => false,
    }
}

/// How the "allowed by" reason names a subject.
fn describe_subject(subject: &Value, binding_namespace: &str) -> String {
    let field = |k: &str| subject[k].as_str().unwrap_or("");
    let kind = field("kind");
    match kind {
        "ServiceAccount" => {
            let ns = if field("namespace").is_empty() {
                binding_namespace
            } else {
                field("namespace")
            };
            format!("{kind} {}", quote(&format!("{}/{ns}", field("name"))))
        }
        _ => format!("{kind} {}", quote(field("name"))),
    }
}

/// Every rule granted to `user` in `namespace` (cluster-wide bindings only when it
/// is empty), in the order the real authorizer visits them; errors for bindings whose
/// role is missing.
fn rules_for<'a>(
    store: &'a Store,
    user: &UserInfo,
    namespace: &'a str,
) -> (Vec<SourcedRule<'a>>, Vec<String>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut collect = |binding: &'a Value, role: Option<&'a Value>, subject: &Value| {
        let binding_ns = namespace_of(binding);
        let role_ref = &binding["roleRef"];
        let role_kind = role_ref["kind"].as_str().unwrap_or("");
        let role_name = role_ref["name"].as_str().unwrap_or("");
        let Some(role) = role else {
            let plural = if role_kind == "Role" {
                "role"
            } else {
                "clusterrole"
            };
            errors.push(format!(
                "{plural}.{RBAC_GROUP} {} not found",
                quote(role_name)
            ));
            return;
        };
        let source = if binding_ns.is_empty() {
            format!(
                "ClusterRoleBinding {} of {role_kind} {} to {}",
                quote(name_of(binding)),
                quote(role_name),
                describe_subject(subject, "")
            )
        } else {
            format!(
                "RoleBinding {} of {role_kind} {} to {}",
                quote(&format!("{}/{binding_ns}", name_of(binding))),
                quote(role_name),
                describe_subject(subject, binding_ns)
            )
        };
        for rule in role["rules"].as_array().into_iter().flatten() {
            rules.push(SourcedRule {
                source: source.clone(),
                rule,
            });
        }
    };
    let bound = |binding: &Value| {
        binding["subjects"]
            .as_array()
            .and_then(|s| s.iter().find(|s| applies_to(user, s)).cloned())
    };
    for binding in store.iter("clusterrolebindings", None, None) {
        if let Some(subject) = bound(binding) {
            let role = store.get("clusterroles", "", role_name(binding));
            collect(binding, role, &subject);
        }
    }
    if !namespace.is_empty() {
        for binding in store.iter("rolebindings", Some(namespace), None) {
            if let Some(subject) = bound(binding) {
                let role = match binding["roleRef"]["kind"].as_str() {
                    Some("Role") => store.get("roles", namespace, role_name(binding)),
                    _ => store.get("clusterroles", "", role_name(binding)),
                };
                collect(binding, role, &subject);
            }
        }
    }
    (rules, errors)
}

fn role_name(binding: &Value) -> &str {
    binding["roleRef"]["name"].as_str().unwrap_or("")
}

/// `RuleAllows` of `evaluation_helpers.go`.
fn rule_allows(attrs: &Attributes, rule: &Value) -> bool {
    let verbs = strings(&rule["verbs"]);
    if !(has(&verbs, "*") || has(&verbs, &attrs.verb)) {
        return false;
    }
    if !attrs.resource_request {
        return strings(&rule["nonResourceURLs"])
            .iter()
            .any(|url| match url.strip_suffix('*') {
                Some(prefix) => attrs.path.starts_with(prefix),
                None => *url == attrs.path,
            });
    }
    let groups = strings(&rule["apiGroups"]);
    if !(has(&groups, "*") || has(&groups, &attrs.group)) {
        return false;
    }
    let combined = attrs.combined_resource();
    let resources = strings(&rule["resources"]);
    let resource_matches = resources.iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty() && *r == format!("*/{}", attrs.subresource))
    });
    if !resource_matches {
        return false;
    }
    let names = strings(&rule["resourceNames"]);
    names.is_empty() || has(&names, &attrs.name)
}

/// Whether `user` may do what `attrs` asks, from the stored RBAC objects.
pub fn authorize(store: &Store, user: &UserInfo, attrs: &Attributes) -> Decision {
    if user.is_master() {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let (rules, errors) = rules_for(store, user, &attrs.namespace);
    if let Some(found) = rules.iter().find(|r| rule_allows(attrs, r.rule)) {
        return Decision {
            allowed: true,
            reason: format!("RBAC: allowed by {}", found.source),
        };
    }
    let reason = match errors.as_slice() {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => format!("RBAC: [{}]", many.join(", ")),
    };
    Decision {
        allowed: false,
        reason,
    }
}

/// The 403 kube-apiserver answers a denied request with.
pub fn forbidden(user: &UserInfo, attrs: &Attributes, reason: &str) -> ApiError {
    let who = quote(&user.username);
    let mut why = if !attrs.resource_request {
        format!(
            "User {who} cannot {} path {}",
            attrs.verb,
            quote(&attrs.path)
        )
    } else if attrs.namespace.is_empty() {
        format!(
            "User {who} cannot {} resource {} in API group {} at the cluster scope",
            attrs.verb,
            quote(&attrs.combined_resource()),
            quote(&attrs.group)
        )
    } else {
        format!(
            "User {who} cannot {} resource {} in API group {} in the namespace {}",
            attrs.verb,
            quote(&attrs.combined_resource()),
            quote(&attrs.group),
            quote(&attrs.namespace)
        )
    };
    if !reason.is_empty() {
        why = format!("{why}: {reason}");
    }
    let qualified = if attrs.group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.group)
    };
    let message = match (attrs.resource.is_empty(), attrs.name.is_empty()) {
        (true, _) => format!("forbidden: {why}"),
        (false, true) => format!("{qualified} is forbidden: {why}"),
        (false, false) => format!("{qualified} {} is forbidden: {why}", quote(&attrs.name)),
    };
    let mut details = json!({});
    for (key, value) in [
        ("group", &attrs.group),
        ("kind", &attrs.resource),
        ("name", &attrs.name),
    ] {
        if !value.is_empty() {
            details[key] = json!(value);
        }
    }
    ApiError {
        code: 403,
        reason: "Forbidden",
        message,
        details: Some(details),
    }
}

fn unauthorized() -> ApiError {
    ApiError {
        code: 401,
        reason: "Unauthorized",
        message: "Unauthorized".into(),
        details: None,
    }
}

/// The admin's bearer token, in the kubeconfig of a sandbox that serves TLS (kubectl
/// asks for a password over TLS when a kubeconfig has no credentials).
pub const ADMIN_TOKEN: &str = "shakedown-sandbox-admin";

/// Who sent a request with this `Authorization` header. No credentials, or
/// [`ADMIN_TOKEN`]: the admin.
/// A bearer token the sandbox issued: its ServiceAccount, while that account exists
/// with the same uid. Anything else is refused (401) when RBAC is on, and is the
/// admin when it is off (clients that send a token of their own keep working).
pub fn authenticate(store: &Store, rbac: bool, authorization: &str) -> Result<UserInfo, ApiError> {
    let Some(token) = authorization.strip_prefix("Bearer ").map(str::trim) else {
        return Ok(UserInfo::admin());
    };
    if token == ADMIN_TOKEN {
        return Ok(UserInfo::admin());
    }
    match token_subject(store, token) {
        Some(user) => Ok(user),
        None if rbac => Err(unauthorized()),
        None => Ok(UserInfo::admin()),
    }
}

fn token_subject(store: &Store, token: &str) -> Option<UserInfo> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let account = &claims["kubernetes.io"];
    let namespace = account["namespace"].as_str()?;
    let name = account["serviceaccount"]["name"].as_str()?;
    let uid = account["serviceaccount"]["uid"].as_str()?;
    let stored = store.get("serviceaccounts", namespace, name)?;
    (uid_of(stored) == uid).then(|| UserInfo::service_account(namespace, name, uid))
}

/// A bearer token for ServiceAccount `namespace/name`, shaped like the JWT a real
/// server issues (its claims name the account), or 404 when there is no such account.
pub fn issue_token(store: &Store, namespace: &str, name: &str) -> Result<String, ApiError> {
    let account = store
        .get("serviceaccounts", namespace, name)
        .ok_or_else(|| ApiError::not_found("serviceaccounts", name))?;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"shakedown-sandbox"}"#);
    let claims = json!({
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": uid_of(account)},
        },
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    Ok(format!("{header}.{payload}.sandbox"))
}

/// `POST serviceaccounts/<name>/token`: a TokenRequest answered with a token. The
/// sandbox's tokens do not expire; the expiry reported is the one asked for (1 h by
/// default, as kube-apiserver's).
pub fn token_request(
    store: &Store,
    namespace: &str,
    name: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let token = issue_token(store, namespace, name)?;
    let seconds = body["spec"]["expirationSeconds"].as_i64().unwrap_or(3600);
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds.clamp(600, 1 << 32)))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let mut spec = body["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["expirationSeconds"] = json!(seconds);
    if spec["audiences"].is_null() {
        spec["audiences"] = json!(["https://kubernetes.default.svc.cluster.local"]);
    }
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires},
    }))
}

/// A SelfSubjectRulesReview's status for `user` in `namespace`: every rule its
/// bindings grant there, as the real authorizer's `RulesFor` lists them.
pub fn rules_review_status(store: &Store, user: &UserInfo, namespace: &str) -> Value {
    let (rules, errors) = rules_for(store, user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for SourcedRule { rule, .. } in rules {
        if rule["nonResourceURLs"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            non_resource_rules.push(json!({
                "verbs": rule["verbs"],
                "nonResourceURLs": rule["nonResourceURLs"],
            }));
        } else {
            let mut out = json!({"verbs": rule["verbs"]});
            for key in ["apiGroups", "resources", "resourceNames"] {
                if rule[key].as_array().is_some_and(|a| !a.is_empty()) {
                    out[key] = rule[key].clone();
                }
            }
            resource_rules.push(out);
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}

/// Validation a real server applies to RBAC objects: a binding's `roleRef` names a
/// Role or ClusterRole (a ClusterRoleBinding only a ClusterRole), and every rule has
/// verbs and either resources (with API groups) or non-resource URLs (ClusterRoles only).
pub fn validate(kind: &str, obj: &Value) -> Result<(), ApiError> {
    let name = name_of(obj).to_owned();
    let mut causes = Vec::new();
    match kind {
        "RoleBinding" | "ClusterRoleBinding" => {
            let role_ref = &obj["roleRef"];
            let ref_kind = role_ref["kind"].as_str().unwrap_or("");
            let allowed: &[&str] = if kind == "RoleBinding" {
                &["Role", "ClusterRole"]
            } else {
                &["ClusterRole"]
            };
            if !allowed.contains(&ref_kind) {
                causes.push(crate::status::Cause::not_supported(
                    "roleRef.kind",
                    &quote(ref_kind),
                    allowed,
                ));
            }
            if role_ref["name"].as_str().unwrap_or("").is_empty() {
                causes.push(crate::status::Cause::required("roleRef.name", ""));
            }
            for (i, subject) in obj["subjects"].as_array().into_iter().flatten().enumerate() {
                let sa = subject["kind"] == "ServiceAccount";
                if sa
                    && subject["namespace"].as_str().unwrap_or("").is_empty()
                    && kind != "RoleBinding"
                {
                    causes.push(crate::status::Cause::required(
                        format!("subjects[{i}].namespace"),
                        "",
                    ));
                }
            }
        }
        "Role" | "ClusterRole" => {
            for (i, rule) in obj["rules"].as_array().into_iter().flatten().enumerate() {
                if strings(&rule["verbs"]).is_empty() {
                    causes.push(crate::status::Cause::required(
                        format!("rules[{i}].verbs"),
                        "verbs must contain at least one value",
                    ));
                }
                let urls = !strings(&rule["nonResourceURLs"]).is_empty();
                if urls && kind == "Role" {
                    causes.push(crate::status::Cause::invalid(
                        format!("rules[{i}].nonResourceURLs"),
                        &format!("{}", rule["nonResourceURLs"]),
                        "namespaced rules cannot apply to non-resource URLs",
                    ));
                }
                if !urls && strings(&rule["resources"]).is_empty() {
                    causes.push(crate::status::Cause::required(
                        format!("rules[{i}].resources"),
                        "resource rules must supply at least one resource",
                    ));
                }
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_causes(RBAC_GROUP, kind, &name, causes))
    }
}

/// RBAC objects' names are path segments (`system:basic-user` is one), not DNS
/// subdomains: anything but `.`, `..` and names holding `/` or `%`.
pub fn validate_path_segment_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let why = match name {
        "." | ".." => Some(format!("may not be '{name}'")),
        _ if name.contains('/') => Some("may not contain '/'".to_owned()),
        _ if name.contains('%') => Some("may not contain '%'".to_owned()),
        _ => None,
    };
    match why {
        None => Ok(()),
        Some(why) => Err(ApiError::invalid(
            kind,
            name,
            "metadata.name",
            &format!("Invalid value: {}: {why}", quote(name)),
        )),
    }
}

/// The roles and bindings every kube-apiserver bootstraps, which an RBAC-enabled
/// sandbox seeds: `cluster-admin` for `system:masters`, and for every authenticated
/// caller the self-reviews (`system:basic-user`) and discovery
/// (`system:discovery`, `system:public-info-viewer`).
pub fn bootstrap_objects() -> Vec<(&'static str, Value)> {
    let urls = |urls: &[&str]| json!({"verbs": ["get"], "nonResourceURLs": urls});
    let cluster_role = |name: &str, rules: Value| json!({"metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}, "rules": rules});
    let binding = |name: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": g}))
            .collect();
        json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            "subjects": subjects,
        })
    };
    let public = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    vec![
        (
            "clusterroles",
            cluster_role(
                "cluster-admin",
                json!([
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]},
                ]),
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:basic-user",
                json!([
                    {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
                    {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                ]),
            ),
        ),
        (
            "clusterroles",
            cluster_role(
                "system:discovery",
                json!([urls(&[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/"
                ])]),
            ),
        ),
        (
            "clusterroles",
            cluster_role("system:public-info-viewer", json!([urls(&public)])),
        ),
        ("clusterrolebindings", binding("cluster-admin", &[MASTERS])),
        (
            "clusterrolebindings",
            binding("system:basic-user", &["system:authenticated"]),
        ),
        (
            "clusterrolebindings",
            binding("system:discovery", &["system:authenticated"]),
        ),
        (
            "clusterrolebindings",
            binding(
                "system:public-info-viewer",
                &["system:authenticated", "system:unauthenticated"],
            ),
        ),
    ]
}

/// A binding's `roleRef` cannot change: a real server refuses the update (delete and
/// recreate the binding instead).
pub fn check_role_ref_unchanged(
    kind: &str,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if !kind.ends_with("Binding") || old["roleRef"] == new["roleRef"] {
        return Ok(());
    }
    let field = |k: &str| new["roleRef"][k].as_str().unwrap_or("").to_owned();
    let shown = format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        quote(&field("apiGroup")),
        quote(&field("kind")),
        quote(&field("name"))
    );
    Err(ApiError::invalid_causes(
        RBAC_GROUP,
        kind,
        name,
        vec![crate::status::Cause::invalid(
            "roleRef",
            &shown,
            "cannot change roleRef",
        )],
    ))
}

/// Whether a stored object is one of RBAC's kinds.
pub fn is_rbac_store(store: &str) -> bool {
    matches!(
        store,
        "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: &str, path: &str, query: &[(&str, &str)]) -> Attributes {
        let query = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        request_attributes(method, path, &query)
    }

    fn put(store: &mut Store, plural: &'static str, obj: Value) {
        let def = crate::resources::by_store(plural).expect("served");
        let mut obj = obj;
        crate::objects::prepare_create(def, &mut obj).expect("valid");
        store
            .create(def.store, &def.qualified(), obj, false)
            .expect("stored");
    }

    fn sa() -> UserInfo {
        UserInfo::service_account("chaos", "runner", "u1")
    }

    fn shop_store() -> Store {
        let mut store = Store::new(100);
        put(
            &mut store,
            "clusterroles",
            json!({"metadata": {"name": "target"}, "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
                {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["marker"], "verbs": ["get", "list", "watch"]},
            ]}),
        );
        put(
            &mut store,
            "rolebindings",
            json!({"metadata": {"name": "target", "namespace": "shop"},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "target"},
                "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "chaos"}]}),
        );
        store
    }

    #[test]
    fn request_attributes_follow_kube_apiservers_request_info() {
        let a = attrs("GET", "/api/v1/namespaces/shop/pods", &[]);
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()),
            ("list", "pods", "shop")
        );
        let a = attrs("GET", "/api/v1/namespaces/shop/pods", &[("watch", "true")]);
        assert_eq!(a.verb, "watch");
        let a = attrs("POST", "/api/v1/namespaces/shop/pods/p/eviction", &[]);
        assert_eq!(
            (
                a.verb.as_str(),
                a.combined_resource().as_str(),
                a.name.as_str()
            ),
            ("create", "pods/eviction", "p")
        );
        let a = attrs("GET", "/api/v1/namespaces/shop", &[]);
        assert_eq!(
            (
                a.verb.as_str(),
                a.resource.as_str(),
                a.name.as_str(),
                a.namespace.as_str()
            ),
            ("get", "namespaces", "shop", "shop")
        );
        let a = attrs("DELETE", "/apis/apps/v1/namespaces/shop/deployments", &[]);
        assert_eq!(
            (a.verb.as_str(), a.group.as_str()),
            ("deletecollection", "apps")
        );
        let a = attrs(
            "GET",
            "/api/v1/namespaces/default/configmaps",
            &[("fieldSelector", "metadata.name=marker"), ("watch", "1")],
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "marker"));
        let a = attrs("GET", "/version", &[]);
        assert!(!a.resource_request);
        assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", "/version"));
        assert!(!attrs("GET", "/api/v1", &[]).resource_request);
    }

    #[test]
    fn a_cluster_role_bound_by_a_role_binding_grants_only_in_that_namespace() {
        let store = shop_store();
        let allowed =
            |method, path: &str| authorize(&store, &sa(), &attrs(method, path, &[])).allowed;
        assert!(allowed("DELETE", "/api/v1/namespaces/shop/pods/p"));
        assert!(!allowed("DELETE", "/api/v1/namespaces/web/pods/p"));
        assert!(
            !allowed("DELETE", "/api/v1/namespaces/shop/pods"),
            "deletecollection is another verb"
        );
        assert!(allowed("POST", "/api/v1/namespaces/shop/pods/p/eviction"));
        assert!(
            !allowed("POST", "/api/v1/namespaces/shop/pods"),
            "pods/eviction grants no pod create"
        );
        assert!(!allowed(
            "PATCH",
            "/api/v1/namespaces/shop/pods/p/ephemeralcontainers"
        ));
        let decision = authorize(
            &store,
            &sa(),
            &attrs("DELETE", "/api/v1/namespaces/shop/pods/p", &[]),
        );
        assert_eq!(
            decision.reason,
            "RBAC: allowed by RoleBinding \"target/shop\" of ClusterRole \"target\" to ServiceAccount \"runner/chaos\""
        );
    }

    #[test]
    fn resource_names_never_match_a_nameless_list_or_watch() {
        let store = shop_store();
        let allowed = |query: &[(&str, &str)]| {
            authorize(
                &store,
                &sa(),
                &attrs("GET", "/api/v1/namespaces/shop/configmaps", query),
            )
            .allowed
        };
        assert!(!allowed(&[]));
        assert!(!allowed(&[("watch", "1")]));
        assert!(allowed(&[
            ("fieldSelector", "metadata.name=marker"),
            ("watch", "1")
        ]));
        assert!(!allowed(&[("fieldSelector", "metadata.name=other")]));
        let named = |name: &str| {
            authorize(
                &store,
                &sa(),
                &attrs(
                    "GET",
                    &format!("/api/v1/namespaces/shop/configmaps/{name}"),
                    &[],
                ),
            )
            .allowed
        };
        assert!(named("marker"));
        assert!(!named("other"));
    }

    #[test]
    fn wildcards_match_verbs_groups_and_subresources() {
        let rule = json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]});
        assert!(rule_allows(
            &attrs(
                "PATCH",
                "/apis/apps/v1/namespaces/s/deployments/d/status",
                &[]
            ),
            &rule
        ));
        assert!(!rule_allows(
            &attrs("PATCH", "/apis/apps/v1/namespaces/s/deployments/d", &[]),
            &rule
        ));
        let all = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]});
        assert!(rule_allows(
            &attrs("POST", "/api/v1/namespaces/s/pods/p/exec", &[]),
            &all
        ));
        let urls = json!({"nonResourceURLs": ["/apis/*", "/version"], "verbs": ["get"]});
        assert!(rule_allows(&attrs("GET", "/apis/apps", &[]), &urls));
        assert!(rule_allows(&attrs("GET", "/version", &[]), &urls));
        assert!(!rule_allows(&attrs("GET", "/metrics", &[]), &urls));
        assert!(
            !rule_allows(&attrs("GET", "/api/v1/pods", &[]), &urls),
            "URL rules never grant resources"
        );
    }

    #[test]
    fn a_denial_reads_like_kube_apiservers_403() {
        let store = shop_store();
        let a = attrs("DELETE", "/api/v1/namespaces/web/pods/x", &[]);
        let decision = authorize(&store, &sa(), &a);
        let err = forbidden(&sa(), &a, &decision.reason);
        assert_eq!(
            err.message,
            "pods \"x\" is forbidden: User \"system:serviceaccount:chaos:runner\" cannot delete resource \"pods\" in API group \"\" in the namespace \"web\""
        );
        assert_eq!(err.details, Some(json!({"kind": "pods", "name": "x"})));
        let a = attrs("GET", "/apis/apps/v1/deployments", &[]);
        assert_eq!(
            forbidden(&sa(), &a, "").message,
            "deployments.apps is forbidden: User \"system:serviceaccount:chaos:runner\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
        let a = attrs("GET", "/metrics", &[]);
        let err = forbidden(&sa(), &a, "");
        assert_eq!(
            err.message,
            "forbidden: User \"system:serviceaccount:chaos:runner\" cannot get path \"/metrics\""
        );
        assert_eq!(err.details, Some(json!({})));
    }

    #[test]
    fn a_binding_to_a_missing_role_is_named_in_the_denial() {
        let mut store = shop_store();
        put(
            &mut store,
            "rolebindings",
            json!({"metadata": {"name": "ghost", "namespace": "shop"},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "ghost"},
                "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "chaos"}]}),
        );
        let decision = authorize(
            &store,
            &sa(),
            &attrs("GET", "/api/v1/namespaces/shop/pods", &[]),
        );
        assert!(!decision.allowed);
        assert_eq!(
            decision.reason,
            "RBAC: role.rbac.authorization.k8s.io \"ghost\" not found"
        );
    }

    #[test]
    fn a_bindings_role_ref_cannot_change() {
        let old = json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "a"}});
        let new = json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "b"}});
        let err = check_role_ref_unchanged("RoleBinding", "x", &old, &new).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains("cannot change roleRef"),
            "{}",
            err.message
        );
        assert!(check_role_ref_unchanged("RoleBinding", "x", &old, &old).is_ok());
    }

    #[test]
    fn tokens_name_their_service_account_until_it_is_deleted() {
        let mut store = Store::new(100);
        assert!(issue_token(&store, "chaos", "runner").is_err());
        put(
            &mut store,
            "serviceaccounts",
            json!({"metadata": {"name": "runner", "namespace": "chaos"}}),
        );
        let token = issue_token(&store, "chaos", "runner").expect("issued");
        let user = authenticate(&store, true, &format!("Bearer {token}")).expect("known");
        assert_eq!(user.username, "system:serviceaccount:chaos:runner");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:chaos",
                "system:authenticated"
            ]
        );
        assert_eq!(
            authenticate(&store, true, "").expect("admin"),
            UserInfo::admin()
        );
        assert_eq!(
            authenticate(&store, true, "Bearer nonsense")
                .unwrap_err()
                .code,
            401
        );
        assert_eq!(
            authenticate(&store, false, "Bearer nonsense").expect("admin"),
            UserInfo::admin()
        );
        store.remove("serviceaccounts", "chaos", "runner");
        assert_eq!(
            authenticate(&store, true, &format!("Bearer {token}"))
                .unwrap_err()
                .code,
            401
        );
    }

    #[test]
    fn bootstrap_roles_let_every_authenticated_caller_review_itself_and_discover() {
        let mut store = Store::new(100);
        for (plural, obj) in bootstrap_objects() {
            let plural = crate::resources::by_store(plural).expect("served").store;
            put(&mut store, plural, obj);
        }
        let allowed =
            |method, path: &str| authorize(&store, &sa(), &attrs(method, path, &[])).allowed;
        assert!(allowed(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        ));
        assert!(allowed(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews"
        ));
        assert!(allowed("GET", "/apis/apps/v1"));
        assert!(allowed("GET", "/version"));
        assert!(!allowed("GET", "/metrics"));
        assert!(!allowed("GET", "/api/v1/namespaces/shop/pods"));
    }
}
