//! Writes: create (with generateName and namespace checks), update and patch (with
//! resourceVersion preconditions), server-side apply (which creates what does not
//! exist and needs a `fieldManager`), delete with DeleteOptions (grace period, dry
//! run and its values, preconditions, propagation policy) and deletecollection.
//! Bodies decode as into the Go types: a wrongly typed field is refused, unknown
//! fields are dropped with a warning or refused, as `fieldValidation` says.
//!
//! It must not bypass `objects`' validation and merge rules or `ops`' graceful
//! deletion: this module only decodes the request and applies what they decide.

use std::sync::Arc;

use serde_json::{Value, json};

use super::reviews;
use super::subresources::{check_preconditions, validate_dry_run};
use super::{
    ApiRequest, Filter, Reply, Target, as_served, as_stored, check_kind, dry_run,
    namespace_or_default, parse_body,
};
use crate::State;
use crate::objects::{self, prepare_create};
use crate::ops;
use crate::patch::{self, PatchKind};
use crate::pod_security;
use crate::resources::ResourceDef;
use crate::schema;
use crate::status::{ApiError, Cause, quote};
use crate::store::{Store, name_of, namespace_of};

pub(super) fn create(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    if req.body.is_empty() {
        let media = req.content_type.split(';').next().unwrap_or("").trim();
        let why = if media.contains("protobuf") {
            "empty data"
        } else {
            "couldn't get version/kind; json parse error: unexpected end of JSON input"
        };
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): {why} (<empty>)",
            t.def.kind
        )));
    }
    let obj = parse_body(req)?;
    check_kind(t.def, &obj)?;
    let mut obj = as_stored(t.def, obj);
    match t.def.store {
        "selfsubjectaccessreviews" => {
            return Ok(Reply::Json(
                201,
                reviews::self_subject_access_review(state, &req.user, &obj)?,
            ));
        }
        "selfsubjectrulesreviews" => {
            return Ok(Reply::Json(
                201,
                reviews::self_subject_rules_review(state, &req.user, &obj),
            ));
        }
        "selfsubjectreviews" => {
            return Ok(Reply::Json(201, reviews::self_subject_review(&req.user)));
        }
        _ => {}
    }
    decode_checks(req, t.def, &mut obj)?;
    create_object(state, req, t, obj, dry_run)
}

/// What decoding a whole object (a create or a PUT) into its Go type does: a wrongly
/// typed field cannot be decoded, unknown fields follow `fieldValidation`.
fn decode_checks(req: &ApiRequest, def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{kind} in version {v} cannot be handled as a {kind}: {why}",
            kind = def.kind,
            v = quote(def.version)
        ))
    };
    if let Some(err) = schema::type_error(def.kind, obj) {
        return Err(cannot(err));
    }
    let unknown = schema::unknown_fields(def.kind, obj);
    req.unknown_fields(&unknown, |what| {
        cannot(format!("strict decoding error: {what}"))
    })?;
    schema::drop_fields(obj, &unknown);
    Ok(())
}

/// Stores a new object (already decoded, in its stored shape) in `t`'s namespace.
fn create_object(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    mut obj: Value,
    dry_run: bool,
) -> Result<Reply, ApiError> {
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
    admit_pod_security(&store, req, t.def, &obj)?;
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
    let patch_kind = if req.method == http::Method::PATCH {
        Some(PatchKind::from_content_type(&req.content_type)?)
    } else {
        None
    };
    if patch_kind == Some(PatchKind::Apply)
        && req.query.get("fieldManager").is_none_or(|m| m.is_empty())
    {
        return Err(ApiError::invalid_causes(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![Cause::required(
                "fieldManager",
                "is required for apply patch",
            )],
        ));
    }
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
    let Some(current) = store.get(t.def.store, namespace, name).cloned() else {
        drop(store);
        if patch_kind == Some(PatchKind::Apply) && sub.is_none() {
            return apply_create(state, req, t, name, dry_run);
        }
        return Err(ApiError::not_found(&t.def.qualified(), name));
    };
    let wanted = if let Some(kind) = patch_kind {
        let served = as_served(t.def, current.clone());
        let mut patched = served.clone();
        patch::apply(kind, &mut patched, &req.body)?;
        if sub.is_none() {
            patch_decode_checks(req, t.def, &served, &mut patched)?;
        }
        // A patch that names a resourceVersion is a precondition; one that does not
        // always applies to the latest version.
        let patch_rv = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|b| b["metadata"]["resourceVersion"].as_str().map(str::to_owned));
        if patch_rv.is_none() {
            patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        }
        as_stored(t.def, patched)
    } else {
        let mut body = parse_body(req)?;
        check_kind(t.def, &body)?;
        if sub.is_none() {
            decode_checks(req, t.def, &mut body)?;
        }
        as_stored(t.def, body)
    };
    let merged = objects::merge_update(t.def, sub, &current, wanted)?;
    if pod_security_relevant(t.def, sub, &current, &merged) {
        admit_pod_security(&store, req, t.def, &merged)?;
    }
    if dry_run {
        return Ok(Reply::Json(200, as_served(t.def, merged)));
    }
    let stored = store.update(t.def.store, merged);
    finish_if_released(&mut store, t.def, &stored);
    Ok(Reply::Json(200, as_served(t.def, stored)))
}

/// A patched object decodes into its Go type, or the patch is invalid: a wrongly
/// typed field always, unknown fields (ones the patch added) under Strict.
fn patch_decode_checks(
    req: &ApiRequest,
    def: &ResourceDef,
    before: &Value,
    patched: &mut Value,
) -> Result<(), ApiError> {
    let invalid = |why: String| {
        ApiError::invalid_causes(
            "",
            "",
            "",
            vec![Cause::invalid("patch", &quote(&patched.to_string()), &why)],
        )
    };
    if let Some(err) = schema::type_error(def.kind, patched) {
        return Err(invalid(err));
    }
    let known_before = schema::unknown_fields(def.kind, before);
    let unknown: Vec<String> = schema::unknown_fields(def.kind, patched)
        .into_iter()
        .filter(|f| !known_before.contains(f))
        .collect();
    req.unknown_fields(&unknown, |what| {
        invalid(format!("strict decoding error: {what}"))
    })?;
    schema::drop_fields(patched, &unknown);
    Ok(())
}

/// Server-side apply of an object that does not exist creates it.
fn apply_create(
    state: &Arc<State>,
    req: &ApiRequest,
    t: &Target,
    name: &str,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let mut obj = json!({});
    patch::apply(PatchKind::Apply, &mut obj, &req.body)?;
    check_kind(t.def, &obj)?;
    if name_of(&obj) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            name_of(&obj)
        )));
    }
    decode_checks(req, t.def, &mut obj)?;
    create_object(state, req, t, as_stored(t.def, obj), dry_run)
}

/// Pod Security admission (`crate::pod_security`), after validation as in the real
/// server: a Pod violating its namespace's `enforce` level is refused; a Pod or a
/// workload's pod template violating `warn` draws the plugin's warning.
fn admit_pod_security(
    store: &Store,
    req: &ApiRequest,
    def: &ResourceDef,
    obj: &Value,
) -> Result<(), ApiError> {
    let namespace = namespace_of(obj);
    if namespace.is_empty() {
        return Ok(());
    }
    let warning = if def.store == "pods" {
        pod_security::admit_pod(store, namespace, name_of(obj), obj)?
    } else {
        pod_security::workload_warning(store, namespace, def.kind, obj)
    };
    if let Some(text) = warning {
        req.warn(text);
    }
    Ok(())
}

/// Whether an update is one Pod Security looks at: a workload's spec, or a Pod's
/// containers (added ephemeral containers, changed images), as the plugin decides.
fn pod_security_relevant(def: &ResourceDef, sub: Option<&str>, old: &Value, new: &Value) -> bool {
    if def.store != "pods" {
        return sub.is_none();
    }
    // Borrowed (name, image) pairs: this runs on every pod update, kept cheap.
    fn images(pod: &Value) -> Vec<(&Value, &Value)> {
        ["initContainers", "containers", "ephemeralContainers"]
            .iter()
            .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
            .map(|c| (&c["name"], &c["image"]))
            .collect()
    }
    matches!(sub, None | Some("ephemeralcontainers")) && images(old) != images(new)
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
        let mut typed = current.clone();
        typed["kind"] = json!(def.kind);
        check_preconditions(&typed, &body["preconditions"]).map_err(|e| ApiError {
            // Deletes name the resource (`pods`), as the storage layer does.
            message: e.message.replacen(def.kind, &def.qualified(), 1),
            ..ApiError::conflict(&def.qualified(), name_of(current), "")
        })?;
    }
    let from_query = match req.query.get("gracePeriodSeconds") {
        Some(g) => Some(
            g.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?,
        ),
        None => None,
    };
    let body_dry_run = validate_dry_run(&body["dryRun"])?;
    let policy = req
        .query
        .get("propagationPolicy")
        .map(String::as_str)
        .or_else(|| body["propagationPolicy"].as_str());
    if let Some(policy) = policy.filter(|p| !matches!(*p, "Foreground" | "Background" | "Orphan")) {
        return Err(ApiError::invalid_causes(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            vec![Cause::not_supported(
                "propagationPolicy",
                &quote(policy),
                &["Foreground", "Background", "Orphan", "nil"],
            )],
        ));
    }
    // A negative grace period means one second on the delete path.
    let grace = from_query
        .or_else(|| body["gracePeriodSeconds"].as_i64())
        .map(|g| if g < 0 { 1 } else { g });
    Ok(DeleteOptions {
        grace,
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
