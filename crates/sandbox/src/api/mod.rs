//! The Kubernetes REST API over the store: URL routing, discovery, verb dispatch and
//! request decoding (JSON or YAML bodies, dry run, content negotiation for kubectl's
//! `Table`). HTTP framing, faults and the request log live in `server`; this module
//! maps a parsed request to a reply, and hands each verb to its module: `read`
//! (get, list), `write` (create, update, patch, delete) and `subresources` (eviction,
//! scale, log, exec, the service proxy). Watches are in `watch`.
//!
//! It must not touch the store itself: routing decides who answers, not what.

mod read;
mod reviews;
mod subresources;
mod versions;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::State;
use super::resources::{self, ResourceDef};
use super::status::ApiError;
use super::watch;

pub use read::Filter;
use read::{get, list};
use subresources::{evict, exec_without_upgrade, get_scale, pod_log, service_proxy, update_scale};
pub use versions::{parse_resource_version, validate_watch};
use write::{create, delete, delete_collection, update};

/// A request as the API layer sees it.
pub struct ApiRequest {
    pub method: http::Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub accept: String,
    pub content_type: String,
    pub body: Bytes,
    /// `Warning: 299` texts for the response (unknown fields under the default
    /// `fieldValidation=Warn`), collected while the request is handled.
    pub warnings: std::sync::Mutex<Vec<String>>,
    /// Who sent it (`crate::rbac::authenticate`): what the self-reviews answer about.
    pub user: crate::rbac::UserInfo,
}

/// How a request wants unknown fields treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl ApiRequest {
    pub fn field_validation(&self) -> FieldValidation {
        match self.query.get("fieldValidation").map(String::as_str) {
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            _ => FieldValidation::Warn,
        }
    }

    pub fn warn(&self, text: String) {
        crate::lock(&self.warnings).push(text);
    }

    /// Unknown fields (`unknown field "x"` texts) under this request's validation:
    /// an error under Strict (worded by `strict`), warnings under Warn.
    pub fn unknown_fields(
        &self,
        unknown: &[String],
        strict: impl FnOnce(String) -> ApiError,
    ) -> Result<(), ApiError> {
        if unknown.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field {}", crate::status::quote(f)))
            .collect();
        match self.field_validation() {
            FieldValidation::Strict => Err(strict(texts.join(", "))),
            FieldValidation::Warn => {
                texts.into_iter().for_each(|t| self.warn(t));
                Ok(())
            }
            FieldValidation::Ignore => Ok(()),
        }
    }
}

pub enum Reply {
    Json(u16, Value),
    /// Already-encoded JSON.
    Raw(u16, Bytes),
    Text(u16, &'static str, String),
    /// A binary answer in its own media type (OpenAPI v2 in protobuf).
    Binary(u16, &'static str, Bytes),
    /// A plain-text answer after a simulated service latency.
    Delayed(std::time::Duration, u16, String),
    /// A watch: newline-delimited JSON events until the stream ends.
    Stream(tokio::sync::mpsc::Receiver<Bytes>),
}

/// Where a resource URL points.
struct Target {
    def: &'static ResourceDef,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

pub fn route(state: &Arc<State>, req: &ApiRequest) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get = req.method == http::Method::GET;
    match segments.as_slice() {
        ["version"] if get => Ok(Reply::Json(200, version())),
        ["healthz" | "livez" | "readyz"] if get => Ok(Reply::Text(200, "text/plain", "ok".into())),
        ["metrics"] if get => Ok(Reply::Text(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics_text(),
        )),
        ["api"] if get => Ok(Reply::Json(200, resources::core_versions())),
        ["apis"] if get => Ok(Reply::Json(200, resources::group_list())),
        ["openapi", "v3"] if get => Ok(Reply::Json(200, resources::openapi_root())),
        ["openapi", "v2"] if get => openapi_v2(req),
        ["openapi", "v3", rest @ ..] if get => {
            json_or_404(resources::openapi_group_version(&rest.join("/")))
        }
        ["api", "v1"] if get => json_or_404(resources::resource_list("", "v1")),
        ["apis", group] if get => json_or_404(resources::group(group)),
        ["apis", group, version] if get => json_or_404(resources::resource_list(group, version)),
        [
            "api",
            "v1",
            "namespaces",
            namespace,
            "services",
            service,
            "proxy",
            ..,
        ] => service_proxy(state, namespace, service),
        ["api", "v1", rest @ ..] => {
            let target = parse_target("", "v1", rest)?;
            resource_request(state, req, target)
        }
        ["apis", group, version, rest @ ..] => {
            let target = parse_target(group, version, rest)?;
            resource_request(state, req, target)
        }
        _ => Err(ApiError::not_found_path()),
    }
}

/// `/openapi/v2` in JSON, or in gnostic's protobuf form for the clients that ask for
/// it (kubectl before 1.28 reads only that); anything else is told 406.
fn openapi_v2(req: &ApiRequest) -> Result<Reply, ApiError> {
    if crate::openapi::V2_PROTOBUF_ACCEPTED
        .iter()
        .any(|m| req.accept.contains(m))
    {
        return Ok(Reply::Binary(
            200,
            crate::openapi::V2_PROTOBUF,
            crate::openapi::v2_protobuf().clone(),
        ));
    }
    let accepts_json = req.accept.is_empty()
        || req
            .accept
            .split(',')
            .map(|m| m.split(';').next().unwrap_or("").trim())
            .any(|m| matches!(m, "application/json" | "*/*" | "application/*"));
    if accepts_json {
        Ok(Reply::Json(200, crate::openapi::v2().clone()))
    } else {
        Err(ApiError::not_acceptable())
    }
}

fn json_or_404(value: Option<Value>) -> Result<Reply, ApiError> {
    value
        .map(|v| Reply::Json(200, v))
        .ok_or_else(ApiError::not_found_path)
}

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0",
        "gitCommit": "shakedown-sandbox",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn parse_target(group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let owned = |s: Option<&&str>| s.map(|s| (*s).to_owned());
    if let ["namespaces", ns, plural, tail @ ..] = rest
        && let Some(def) = resources::find(group, version, plural).filter(|d| d.namespaced)
    {
        if tail.len() > 2 {
            return Err(ApiError::not_found_path());
        }
        return Ok(Target {
            def,
            namespace: Some((*ns).to_owned()),
            name: owned(tail.first()),
            subresource: owned(tail.get(1)),
        });
    }
    let [plural, tail @ ..] = rest else {
        return Err(ApiError::not_found_path());
    };
    let def = resources::find(group, version, plural).ok_or_else(ApiError::not_found_path)?;
    if tail.len() > 2 || (def.namespaced && !tail.is_empty()) {
        return Err(ApiError::not_found_path());
    }
    Ok(Target {
        def,
        namespace: None,
        name: owned(tail.first()),
        subresource: owned(tail.get(1)),
    })
}

fn resource_request(state: &Arc<State>, req: &ApiRequest, t: Target) -> Result<Reply, ApiError> {
    use http::Method;
    let dry_run = dry_run(&req.query)?;
    let sub = t.subresource.as_deref();
    if let Some(sub) = sub
        && !t.def.subresources.iter().any(|s| s.name == sub)
    {
        return Err(ApiError::not_found_path());
    }
    let m = &req.method;
    // Create-only kinds (the reviews) cannot be read, listed or watched.
    if sub.is_none() && !t.def.verbs.contains(&"get") && *m != Method::POST {
        return Err(ApiError::method_not_allowed());
    }
    match (t.name.as_deref(), sub) {
        (None, _) if *m == Method::GET => {
            if matches!(
                req.query.get("watch").map(String::as_str),
                Some("1" | "true")
            ) {
                let faults = state.faults();
                let drop_after = faults
                    .drop_watches_after
                    .filter(|_| faults.applies_to("GET", &req.path));
                watch::start(
                    state,
                    t.def,
                    t.namespace.as_deref(),
                    &req.query,
                    wants_table(req),
                    drop_after,
                )
                .map(Reply::Stream)
            } else {
                list(state, req, t.def, t.namespace.as_deref())
            }
        }
        (None, _) if *m == Method::POST => create(state, req, &t, dry_run),
        (None, _) if *m == Method::DELETE => delete_collection(state, req, &t, dry_run),
        (Some(name), None | Some("status" | "ephemeralcontainers")) if *m == Method::GET => {
            get(state, req, &t, name)
        }
        (Some(name), sub @ (None | Some("status" | "ephemeralcontainers")))
            if *m == Method::PUT || *m == Method::PATCH =>
        {
            update(state, req, &t, name, sub, dry_run)
        }
        (Some(name), Some("scale")) if *m == Method::GET => get_scale(state, &t, name),
        (Some(name), Some("log")) if *m == Method::GET => pod_log(state, req, &t, name),
        (Some(name), Some("scale")) if *m == Method::PUT || *m == Method::PATCH => {
            update_scale(state, req, &t, name, dry_run)
        }
        (Some(name), None) if *m == Method::DELETE => delete(state, req, &t, name, dry_run),
        (Some(name), Some("eviction")) if *m == Method::POST => {
            evict(state, req, &t, name, dry_run)
        }
        (Some(name), Some("token")) if *m == Method::POST => {
            let body = parse_body(req)?;
            let store = state.store();
            let answer = crate::rbac::token_request(&store, namespace_or_default(&t), name, &body)?;
            Ok(Reply::Json(201, answer))
        }
        (Some(name), Some("exec")) if *m == Method::GET || *m == Method::POST => {
            exec_without_upgrade(state, &t, name)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn dry_run(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dry run value: {other:?}: supported values: \"All\""
        ))),
    }
}

fn namespace_or_default(t: &Target) -> &str {
    t.namespace.as_deref().unwrap_or("")
}

fn wants_table(req: &ApiRequest) -> bool {
    req.accept.contains("as=Table")
}

/// An object as `def`'s group/version serves it: the apiVersion of a multi-version
/// resource, or the events.k8s.io/v1 view of a stored Event.
pub fn as_served(def: &ResourceDef, mut obj: Value) -> Value {
    if def.group == "events.k8s.io" {
        return crate::events::to_v1(&obj);
    }
    obj["apiVersion"] = json!(def.api_version());
    obj
}

/// A written object in the shape it is stored in (the core/v1 shape for Events).
fn as_stored(def: &ResourceDef, obj: Value) -> Value {
    match (def.store, def.group) {
        ("events", "events.k8s.io") => crate::events::from_v1(&obj),
        ("events", _) => crate::events::normalize_core(obj),
        _ => obj,
    }
}

/// A request body in JSON or YAML, or in protobuf for the kinds kubectl's typed
/// clients send that way (`crate::protobuf`). Other protobuf bodies and CBOR are
/// refused with 415.
fn parse_body(req: &ApiRequest) -> Result<Value, ApiError> {
    let media = req.content_type.split(';').next().unwrap_or("").trim();
    let value: Value = match media {
        "" | "application/json" | "*/*" => serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        })?,
        "application/yaml" => serde_saphyr::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as YAML: {e}"
            ))
        })?,
        "application/vnd.kubernetes.protobuf" => {
            crate::protobuf::decode(&req.body).ok_or_else(|| ApiError::unsupported_body(media))?
        }
        other => {
            return Err(ApiError::unsupported_body(other));
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

fn check_kind(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    let kind = obj["kind"].as_str().unwrap_or(def.kind);
    if kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the resource ({})",
            def.kind
        )));
    }
    Ok(())
}
