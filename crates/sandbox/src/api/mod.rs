//! The Kubernetes REST API over the store: URL routing, verbs, list filtering and
//! pagination, and content negotiation (JSON, or `Table` for kubectl). HTTP framing,
//! faults and the request log live in `server`; this module maps a parsed request to
//! a reply.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::State;
use super::objects::{self, prepare_create};
use super::ops;
use super::patch::{self, PatchKind};
use super::resources::{self, ResourceDef};
use super::status::{self, ApiError};
use super::store::{Store, Stored, labels_of, name_of, namespace_of};
use super::table;
use super::watch;
use shakedown_vocab::selector::{FieldSelector, LabelSelector};

/// A request as the API layer sees it.
pub struct ApiRequest {
    pub method: http::Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub accept: String,
    pub content_type: String,
    pub body: Bytes,
}

pub enum Reply {
    Json(u16, Value),
    /// Already-encoded JSON.
    Raw(u16, Bytes),
    Text(u16, &'static str, String),
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
        (Some(name), Some("exec")) if *m == Method::GET || *m == Method::POST => {
            exec_without_upgrade(state, &t, name)
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            req.method, req.path
        ))),
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

/// Sets the apiVersion a multi-version resource is served at.
fn as_served(def: &ResourceDef, mut obj: Value) -> Value {
    obj["apiVersion"] = json!(def.api_version());
    obj
}

fn get(state: &Arc<State>, req: &ApiRequest, t: &Target, name: &str) -> Result<Reply, ApiError> {
    let store = state.store();
    let obj = store
        .get(t.def.store, namespace_or_default(t), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.def.qualified(), name))?;
    drop(store);
    let obj = as_served(t.def, obj);
    if wants_table(req) && t.subresource.is_none() {
        let rv = obj["metadata"]["resourceVersion"].clone();
        return Ok(Reply::Json(
            200,
            table::render(t.def, &[obj], &req.query, rv, None),
        ));
    }
    Ok(Reply::Json(200, obj))
}

/// Field selectors a real API server accepts for each resource.
fn field_supported(def: &ResourceDef, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match def.store {
        "pods" => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        "nodes" => field == "spec.unschedulable",
        "namespaces" => field == "status.phase",
        "replicasets" => field == "status.replicas",
        "events" | "events.k8s.io/events" => {
            field.starts_with("involvedObject.")
                || field.starts_with("regarding.")
                || matches!(field, "reason" | "reportingComponent" | "source" | "type")
        }
        _ => false,
    }
}

/// The value of a field for field-selector matching, as the API server renders it.
pub fn field_value(obj: &Value, field: &str) -> Option<String> {
    let value = match field {
        "source" => &obj["source"]["component"],
        "spec.hostNetwork" if obj["spec"]["hostNetwork"].is_null() => {
            return Some("false".into());
        }
        "spec.unschedulable" if obj["spec"]["unschedulable"].is_null() => {
            return Some("false".into());
        }
        _ => field.split('.').fold(obj, |v, key| &v[key]),
    };
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parsed label and field selectors of a list or watch.
pub struct Filter {
    label: LabelSelector,
    field: FieldSelector,
}

impl Filter {
    pub fn parse(def: &ResourceDef, query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let label = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let field = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        for r in &field.requirements {
            if !field_supported(def, &r.field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    r.field
                )));
            }
        }
        Ok(Self { label, field })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        (self.label.is_empty() || self.label.matches(&labels_of(obj)))
            && self.field.matches(|f| field_value(obj, f))
    }
}

/// Continue tokens: the last key served, and the resourceVersion the list started at.
fn encode_continue(namespace: &str, name: &str, rv: u64) -> String {
    let raw = format!("{rv}\u{0}{namespace}\u{0}{name}");
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect();
    let text = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let mut parts = text.split('\u{0}');
    let rv = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_owned();
    let name = parts.next().ok_or_else(bad)?.to_owned();
    Ok((rv, ns, name))
}

fn list(
    state: &Arc<State>,
    req: &ApiRequest,
    def: &'static ResourceDef,
    namespace: Option<&str>,
) -> Result<Reply, ApiError> {
    let filter = Filter::parse(def, &req.query)?;
    let limit: usize = match req.query.get("limit").map(String::as_str) {
        None | Some("") | Some("0") => usize::MAX,
        Some(n) => n
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {n:?}")))?,
    };
    let resume = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let store = state.store();
    if let Some((rv, _, _)) = &resume
        && *rv < store.compacted_version()
    {
        return Err(ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        ));
    }
    let list_rv = resume.as_ref().map_or(store.resource_version(), |r| r.0);
    let after = resume.map(|(_, ns, name)| (ns, name));
    let mut items: Vec<&Stored> = Vec::new();
    let mut more = false;
    for stored in store.iter_stored(def.store, namespace, after) {
        if !filter.matches(&stored.object) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(stored);
    }
    let continue_token = match items.last() {
        Some(last) if more => Some(encode_continue(
            namespace_of(&last.object),
            name_of(&last.object),
            list_rv,
        )),
        _ => None,
    };
    if wants_table(req) {
        let items: Vec<Value> = items
            .iter()
            .map(|s| as_served(def, (*s.object).clone()))
            .collect();
        drop(store);
        let rv = json!(list_rv.to_string());
        return Ok(Reply::Json(
            200,
            table::render(def, &items, &req.query, rv, continue_token),
        ));
    }
    let encoded: Vec<Bytes> = items.iter().map(|s| served_json(def, s)).collect();
    drop(store);
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    // Items are served from their stored encoding: no per-object re-encoding.
    let mut body = format!(
        r#"{{"kind":{},"apiVersion":{},"metadata":{},"items":["#,
        json!(format!("{}List", def.kind)),
        json!(def.api_version()),
        metadata
    )
    .into_bytes();
    body.reserve(encoded.iter().map(|b| b.len() + 1).sum());
    for (i, item) in encoded.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}");
    Ok(Reply::Raw(200, Bytes::from(body)))
}

/// An object's stored JSON, re-encoded only when served under another version.
pub fn served_json(def: &ResourceDef, stored: &Stored) -> Bytes {
    if stored.object["apiVersion"] == def.api_version().as_str() {
        stored.json.clone()
    } else {
        let obj = as_served(def, (*stored.object).clone());
        Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
    }
}

/// A request body in JSON or YAML. Protobuf and CBOR are refused with 415, which
/// client-go answers by retrying in JSON.
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

fn create(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let mut obj = parse_body(req)?;
    check_kind(t.def, &obj)?;
    if t.def.store == "selfsubjectaccessreviews" {
        obj["apiVersion"] = json!(t.def.api_version());
        obj["kind"] = json!(t.def.kind);
        obj["status"] =
            json!({"allowed": true, "reason": "the shakedown sandbox allows every request"});
        return Ok(Reply::Json(201, obj));
    }
    let namespace = namespace_or_default(t).to_owned();
    if t.def.namespaced {
        let body_ns = namespace_of(&obj);
        if !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        obj["metadata"]["namespace"] = json!(namespace);
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    let mut store = state.store();
    if t.def.namespaced {
        match store.get("namespaces", "", &namespace) {
            None => return Err(ApiError::not_found("namespaces", &namespace)),
            Some(ns) if objects::is_terminating(ns) => {
                return Err(ApiError::forbidden(format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    t.def.qualified(),
                    name_of(&obj)
                )));
            }
            Some(_) => {}
        }
    }
    if name_of(&obj).is_empty()
        && let Some(prefix) = obj["metadata"]["generateName"].as_str().map(str::to_owned)
    {
        obj["metadata"]["name"] = json!(format!("{prefix}{}", store.random_suffix()));
    }
    prepare_create(t.def, &mut obj)?;
    let created = store.create(t.def.store, &t.def.qualified(), obj, dry_run)?;
    Ok(Reply::Json(201, as_served(t.def, created)))
}

fn update(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
    sub: Option<&str>,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let namespace = namespace_or_default(t);
    let mut store = state.store();
    let current = store
        .get(t.def.store, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.def.qualified(), name))?;
    let wanted = if req.method == http::Method::PATCH {
        let kind = PatchKind::from_content_type(&req.content_type)?;
        let mut patched = current.clone();
        patch::apply(kind, &mut patched, &req.body)?;
        // A patch that names a resourceVersion is a precondition; one that does not
        // always applies to the latest version.
        let patch_rv = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|b| b["metadata"]["resourceVersion"].as_str().map(str::to_owned));
        if patch_rv.is_none() {
            patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        }
        patched
    } else {
        let body = parse_body(req)?;
        check_kind(t.def, &body)?;
        body
    };
    let merged = objects::merge_update(t.def, sub, &current, wanted)?;
    if dry_run {
        return Ok(Reply::Json(200, as_served(t.def, merged)));
    }
    let stored = store.update(t.def.store, merged);
    finish_if_released(&mut store, t.def, &stored);
    Ok(Reply::Json(200, as_served(t.def, stored)))
}

/// Removing the last finalizer of an object being deleted lets it go.
fn finish_if_released(store: &mut Store, def: &ResourceDef, obj: &Value) {
    let no_finalizers = obj["metadata"]["finalizers"]
        .as_array()
        .is_none_or(Vec::is_empty);
    if objects::is_terminating(obj) && no_finalizers && !matches!(def.store, "pods" | "namespaces")
    {
        store.remove(def.store, namespace_of(obj), name_of(obj));
    }
}

/// Grace period and dry-run from the query or a DeleteOptions body (clients use
/// both); preconditions are checked.
struct DeleteOptions {
    grace: Option<i64>,
    dry_run: bool,
    /// `propagationPolicy: Orphan` (or the older `orphanDependents: true`).
    orphan: bool,
}

fn delete_options(
    req: &ApiRequest,
    current: Option<&Value>,
    def: &ResourceDef,
) -> Result<DeleteOptions, ApiError> {
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if let Some(current) = current {
        let pre = &body["preconditions"];
        let name = name_of(current);
        if let Some(uid) = pre["uid"].as_str()
            && uid != current["metadata"]["uid"]
        {
            return Err(ApiError::conflict(
                &def.qualified(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    current["metadata"]["uid"].as_str().unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = pre["resourceVersion"].as_str()
            && rv != current["metadata"]["resourceVersion"]
        {
            return Err(ApiError::conflict(
                &def.qualified(),
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    current["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or("")
                ),
            ));
        }
    }
    let from_query = match req.query.get("gracePeriodSeconds") {
        Some(g) => Some(
            g.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?,
        ),
        None => None,
    };
    let body_dry_run = match &body["dryRun"] {
        Value::Null => false,
        Value::Array(values) if values.iter().all(|v| v == "All") => !values.is_empty(),
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other}: supported values: \"All\""
            )));
        }
    };
    let policy = req
        .query
        .get("propagationPolicy")
        .map(String::as_str)
        .or_else(|| body["propagationPolicy"].as_str());
    Ok(DeleteOptions {
        grace: from_query.or_else(|| body["gracePeriodSeconds"].as_i64()),
        dry_run: body_dry_run || dry_run(&req.query)?,
        orphan: policy == Some("Orphan") || body["orphanDependents"] == true,
    })
}

fn delete(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let namespace = namespace_or_default(t);
    let mut store = state.store();
    let current = store.get(t.def.store, namespace, name).cloned();
    let options = delete_options(req, current.as_ref(), t.def)?;
    if options.orphan
        && !(dry_run || options.dry_run)
        && let Some(owner) = &current
    {
        orphan_dependents(&mut store, owner);
    }
    let deleted = ops::delete(
        &mut store,
        t.def,
        namespace,
        name,
        options.grace,
        dry_run || options.dry_run,
    )?;
    Ok(Reply::Json(200, as_served(t.def, deleted)))
}

/// Orphan propagation: dependents lose their owner reference instead of following
/// the owner into deletion.
fn orphan_dependents(store: &mut Store, owner: &Value) {
    let uid = owner["metadata"]["uid"].clone();
    for kind in ["replicasets", "pods"] {
        let dependents: Vec<Value> = store
            .iter(kind, Some(namespace_of(owner)), None)
            .filter(|o| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .cloned()
            .collect();
        for mut dependent in dependents {
            if let Some(refs) = dependent["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"] != uid);
            }
            store.update(kind, dependent);
        }
    }
}

fn delete_collection(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let filter = Filter::parse(t.def, &req.query)?;
    let options = delete_options(req, None, t.def)?;
    let dry_run = dry_run || options.dry_run;
    let mut store = state.store();
    let keys: Vec<(String, String)> = store
        .iter(t.def.store, t.namespace.as_deref(), None)
        .filter(|o| filter.matches(o))
        .map(|o| (namespace_of(o).to_owned(), name_of(o).to_owned()))
        .collect();
    let mut items = Vec::new();
    for (ns, name) in keys {
        items.push(ops::delete(
            &mut store,
            t.def,
            &ns,
            &name,
            options.grace,
            dry_run,
        )?);
    }
    Ok(Reply::Json(
        200,
        json!({"kind": format!("{}List", t.def.kind), "apiVersion": t.def.api_version(),
               "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": items}),
    ))
}

fn evict(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let body = parse_body(req)?;
    let api_version = body["apiVersion"].as_str().unwrap_or("");
    let kind = body["kind"].as_str().unwrap_or("");
    // A body without type information decodes as the endpoint's default (policy/v1).
    if !matches!(api_version, "" | "policy/v1" | "policy/v1beta1")
        || !matches!(kind, "" | "Eviction")
    {
        return Err(ApiError::bad_request(format!(
            "the body must be a policy/v1 or policy/v1beta1 Eviction, got {api_version:?} {:?}",
            body["kind"].as_str().unwrap_or("")
        )));
    }
    if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let dry_run = dry_run
        || body["deleteOptions"]["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    let grace = body["deleteOptions"]["gracePeriodSeconds"].as_i64();
    let mut store = state.store();
    ops::evict(
        &mut store,
        t.def,
        namespace_or_default(t),
        name,
        grace,
        dry_run,
    )?;
    Ok(Reply::Json(201, status::success(201)))
}

/// The `autoscaling/v1` Scale view of a Deployment or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let selector = super::store::string_map(&obj["spec"]["selector"]["matchLabels"])
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"]},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

fn get_scale(state: &Arc<State>, t: &Target, name: &str) -> Result<Reply, ApiError> {
    let store = state.store();
    let obj = store
        .get(t.def.store, namespace_or_default(t), name)
        .ok_or_else(|| ApiError::not_found(&t.def.qualified(), name))?;
    Ok(Reply::Json(200, scale_of(obj)))
}

fn update_scale(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let mut store = state.store();
    let current = store
        .get(t.def.store, namespace_or_default(t), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.def.qualified(), name))?;
    let mut scale = scale_of(&current);
    if req.method == http::Method::PATCH {
        patch::apply(
            PatchKind::from_content_type(&req.content_type)?,
            &mut scale,
            &req.body,
        )?;
    } else {
        scale = parse_body(req)?;
    }
    let replicas = scale["spec"]["replicas"]
        .as_i64()
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "Scale",
                name,
                "spec.replicas",
                "Invalid value: must be greater than or equal to 0",
            )
        })?;
    if let Some(rv) = scale["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && current["metadata"]["resourceVersion"] != rv
    {
        return Err(ApiError::conflict(
            &t.def.qualified(),
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    let mut updated = current.clone();
    updated["spec"]["replicas"] = json!(replicas);
    if updated["spec"] != current["spec"] {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        updated["metadata"]["generation"] = json!(generation + 1);
    }
    if dry_run {
        return Ok(Reply::Json(200, scale_of(&updated)));
    }
    let stored = store.update(t.def.store, updated);
    Ok(Reply::Json(200, scale_of(&stored)))
}

/// The API server's service proxy, for services in the workload model: each call is
/// one request to the simulated service. A delay is returned, not slept, so the
/// server can wait it out without holding any lock.
fn service_proxy(state: &Arc<State>, namespace: &str, service: &str) -> Result<Reply, ApiError> {
    // `name`, `name:port` and `scheme:name:port` all address the service.
    let parts: Vec<&str> = service.split(':').collect();
    let name = match parts.as_slice() {
        [scheme, name, _] if matches!(*scheme, "http" | "https") => *name,
        [name, ..] => *name,
        [] => service,
    };
    let store = state.store();
    let outcome = super::lock(&state.workload).probe(&store, namespace, name);
    drop(store);
    let (code, delay) = outcome.ok_or_else(|| ApiError::not_found("services", name))?;
    let body = if code == 200 {
        "ok\n"
    } else {
        "service unavailable: over capacity\n"
    };
    Ok(Reply::Delayed(delay, code, body.to_owned()))
}

/// `pods/log`: simulated containers write nothing, so the log is empty; a missing
/// pod or container is reported as a real API server would.
fn pod_log(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
) -> Result<Reply, ApiError> {
    let store = state.store();
    let pod = store
        .get("pods", namespace_or_default(t), name)
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    let containers: Vec<&str> = ["containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    match req.query.get("container") {
        Some(c) if !containers.contains(&c.as_str()) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() > 1 => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: {containers:?}"
        ))),
        _ => Ok(Reply::Text(200, "text/plain", String::new())),
    }
}

/// Exec without a WebSocket/SPDY upgrade: a real API server refuses it the same way.
fn exec_without_upgrade(state: &Arc<State>, t: &Target, name: &str) -> Result<Reply, ApiError> {
    let store = state.store();
    if !store.contains("pods", namespace_or_default(t), name) {
        return Err(ApiError::not_found("pods", name));
    }
    drop(store);
    Err(ApiError::bad_request("Upgrade request required"))
}
