//! Writes: create (with generateName and namespace checks), update and patch (with
//! resourceVersion preconditions), delete with DeleteOptions (grace period, dry run,
//! preconditions, orphan propagation) and deletecollection.
//!
//! It must not bypass `objects`' validation and merge rules or `ops`' graceful
//! deletion: this module only decodes the request and applies what they decide.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    ApiRequest, Filter, Reply, Target, as_served, check_kind, dry_run, namespace_or_default,
    parse_body,
};
use crate::State;
use crate::objects::{self, prepare_create};
use crate::ops;
use crate::patch::{self, PatchKind};
use crate::resources::ResourceDef;
use crate::status::ApiError;
use crate::store::{Store, name_of, namespace_of};

pub(super) fn create(
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

pub(super) fn update(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
    sub: Option<&str>,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let namespace = namespace_or_default(t);
    // The lease strategy allows create-on-update: a PUT to a missing Lease creates it.
    let creates = t.def.store == "leases"
        && req.method == http::Method::PUT
        && sub.is_none()
        && !state.store().contains(t.def.store, namespace, name);
    if creates {
        let body = parse_body(req)?;
        crate::lease::check_update_precondition(&body, None)?;
        return create(state, req, t, dry_run);
    }
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

pub(super) fn delete(
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

pub(super) fn delete_collection(
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
