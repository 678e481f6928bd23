//! The sandbox's audit log (`shakedown sandbox --audit-log FILE`): one JSON line per
//! request, in the shape of kube-apiserver's `audit.k8s.io/v1` `Event`, so a user
//! rehearsing a game day can see, and later grep, exactly which calls a run makes.
//!
//! Writes are logged at level `Request` (with the request object), reads at
//! `Metadata`, as a common audit policy does. Each line is written and flushed as its
//! request completes, so `tail -f` shows the run as it happens. A watch gets two
//! lines, as on a real server: `ResponseStarted` when its stream starts (it may run
//! for minutes) and `ResponseComplete` when it ends. The verb and `objectRef` are derived from the path and method the way
//! kube-apiserver's `RequestInfoFactory` derives them.
//!
//! It must not change how a request is answered: a failed write is reported once on
//! stderr, and the request is served anyway.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::{RequestRecord, lock};

/// The identity the sandbox attributes every request to: it has no authentication,
/// and answers as if the caller were a cluster administrator.
pub const SANDBOX_USERNAME: &str = "shakedown-sandbox-admin";
/// The groups of [`SANDBOX_USERNAME`].
pub const SANDBOX_GROUPS: &[&str] = &["system:masters", "system:authenticated"];

#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log {}", .path.display())]
pub struct AuditLogError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// An open audit log file.
pub struct AuditLog {
    file: Mutex<File>,
    path: PathBuf,
    failed: AtomicBool,
    sequence: AtomicU64,
    /// Distinguishes this sandbox's audit IDs from another's in the same file.
    instance: u64,
}

impl AuditLog {
    /// Opens (appending to) `path`; an unwritable path is an error now, not at the
    /// first request.
    pub fn open(path: &Path) -> Result<Self, AuditLogError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| AuditLogError {
                path: path.to_owned(),
                source,
            })?;
        let instance = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32);
        Ok(Self {
            file: Mutex::new(file),
            path: path.to_owned(),
            failed: AtomicBool::new(false),
            sequence: AtomicU64::new(0),
            instance,
        })
    }

    /// A fresh audit ID, formatted as a UUID like the API server's.
    pub fn next_id(&self) -> String {
        audit_id(self.instance, self.sequence.fetch_add(1, Ordering::Relaxed))
    }

    /// Writes one event line for `record` at `stage` and flushes it.
    pub fn write(&self, record: &RequestRecord, audit_id: &str, stage: Stage) {
        let mut line = event(record, audit_id, stage).to_string();
        line.push('\n');
        let mut file = lock(&self.file);
        let written = file.write_all(line.as_bytes()).and_then(|()| file.flush());
        if let Err(err) = written
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            eprintln!(
                "shakedown sandbox: cannot write the audit log {}: {err} (further errors are not reported)",
                self.path.display()
            );
        }
    }
}

/// A version-4-shaped UUID made from the sandbox instance and a sequence number:
/// unique within and across sandboxes without a random-number dependency.
fn audit_id(instance: u64, sequence: u64) -> String {
    let a = instance;
    let b = sequence;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// What kube-apiserver's `RequestInfoFactory` reads from a request: the verb and,
/// for resource requests, what it names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub verb: String,
    /// None for non-resource paths (`/version`, `/apis`, `/openapi/v2`, `/metrics`).
    pub object: Option<ObjectRef>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub subresource: String,
}

/// Verb and object of a request, as kube-apiserver computes them (its
/// `request.RequestInfoFactory.NewRequestInfo`).
pub fn request_info(method: &str, path: &str, query: &str) -> RequestInfo {
    let non_resource = || RequestInfo {
        verb: method.to_ascii_lowercase(),
        object: None,
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, mut rest) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return non_resource(),
    };
    let mut verb = match method {
        "POST" => "create",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    }
    .to_owned();
    // The deprecated `/watch/` path prefix.
    if rest[0] == "watch" {
        if verb == "get" {
            verb = "watch".into();
        }
        rest = &rest[1..];
    }
    let mut object = ObjectRef {
        group: group.to_owned(),
        version: version.to_owned(),
        ..ObjectRef::default()
    };
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        object.namespace = rest[1].to_owned();
        // `namespaces/<name>/status` and `/finalize` are the namespace's own.
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    object.resource = rest.first().copied().unwrap_or("").to_owned();
    object.name = rest.get(1).copied().unwrap_or("").to_owned();
    object.subresource = rest.get(2).copied().unwrap_or("").to_owned();
    let query = crate::server::parse_query(query);
    let watching = matches!(query.get("watch").map(String::as_str), Some("1" | "true"));
    if object.name.is_empty() && verb == "get" {
        verb = if watching { "watch" } else { "list" }.into();
        // A list or watch of one object names it with a field selector.
        let selected = query.get("fieldSelector").and_then(|s| {
            s.strip_prefix("metadata.name==")
                .or_else(|| s.strip_prefix("metadata.name="))
        });
        if let Some(name) = selected.filter(|n| !n.is_empty() && !n.contains([',', '/', '='])) {
            object.name = name.to_owned();
        }
    }
    if object.name.is_empty() && verb == "delete" {
        verb = "deletecollection".into();
    }
    RequestInfo {
        verb,
        object: Some(object),
    }
}

/// Whether a request is a write, logged at level `Request` with its object.
fn is_write(verb: &str) -> bool {
    !matches!(verb, "get" | "list" | "watch" | "head" | "options")
}

/// RFC 3339 with microseconds in UTC, as audit timestamps are written.
fn micro_time(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

/// The audit stages the sandbox writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A streamed response (a watch) has started.
    ResponseStarted,
    ResponseComplete,
}

/// The stage a request's first line is written at: a watch that was accepted is
/// still streaming, anything else is complete.
pub fn first_stage(record: &RequestRecord) -> Stage {
    let info = request_info(&record.method, &record.path, &record.query);
    if info.verb == "watch" && record.status < 300 {
        Stage::ResponseStarted
    } else {
        Stage::ResponseComplete
    }
}

/// The `audit.k8s.io/v1` Event for one answered request.
pub fn event(record: &RequestRecord, audit_id: &str, stage: Stage) -> Value {
    let info = request_info(&record.method, &record.path, &record.query);
    let write = is_write(&info.verb);
    let request_uri = if record.query.is_empty() {
        record.path.clone()
    } else {
        format!("{}?{}", record.path, record.query)
    };
    let stage = match stage {
        Stage::ResponseStarted => "ResponseStarted",
        Stage::ResponseComplete => "ResponseComplete",
    };
    let mut event = Map::new();
    event.insert("kind".into(), json!("Event"));
    event.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
    event.insert(
        "level".into(),
        json!(if write { "Request" } else { "Metadata" }),
    );
    event.insert("auditID".into(), json!(audit_id));
    event.insert("stage".into(), json!(stage));
    event.insert("requestURI".into(), json!(request_uri));
    event.insert("verb".into(), json!(info.verb));
    event.insert("user".into(), record.user.to_json());
    event.insert("sourceIPs".into(), json!(["127.0.0.1"]));
    if !record.user_agent.is_empty() {
        event.insert("userAgent".into(), json!(record.user_agent));
    }
    if let Some(object) = &info.object {
        event.insert("objectRef".into(), object_ref(object));
    }
    event.insert(
        "responseStatus".into(),
        json!({"metadata": {}, "code": record.status}),
    );
    if write && let Some(body) = &record.body {
        event.insert("requestObject".into(), body.clone());
    }
    event.insert(
        "requestReceivedTimestamp".into(),
        json!(micro_time(record.received)),
    );
    event.insert("stageTimestamp".into(), json!(micro_time(record.time)));
    Value::Object(event)
}

/// `objectRef` with empty fields left out, as the API server writes it (the core
/// group has no `apiGroup`).
fn object_ref(object: &ObjectRef) -> Value {
    let mut out = Map::new();
    for (key, value) in [
        ("resource", &object.resource),
        ("namespace", &object.namespace),
        ("name", &object.name),
        ("apiGroup", &object.group),
        ("apiVersion", &object.version),
        ("subresource", &object.subresource),
    ] {
        if !value.is_empty() {
            out.insert(key.into(), json!(value));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verb(method: &str, path: &str, query: &str) -> String {
        request_info(method, path, query).verb
    }

    #[test]
    fn verbs_follow_method_and_whether_the_path_names_an_object() {
        assert_eq!(verb("GET", "/api/v1/namespaces/shop/pods", ""), "list");
        assert_eq!(verb("GET", "/api/v1/pods", "limit=500"), "list");
        assert_eq!(verb("GET", "/api/v1/namespaces/shop/pods/p", ""), "get");
        assert_eq!(
            verb("GET", "/api/v1/namespaces/shop/pods", "watch=true"),
            "watch"
        );
        assert_eq!(
            verb("GET", "/api/v1/watch/namespaces/shop/pods", ""),
            "watch"
        );
        assert_eq!(verb("POST", "/api/v1/namespaces/shop/pods", ""), "create");
        assert_eq!(verb("PUT", "/api/v1/nodes/n", ""), "update");
        assert_eq!(verb("PATCH", "/api/v1/nodes/n", ""), "patch");
        assert_eq!(
            verb("DELETE", "/api/v1/namespaces/shop/pods/p", ""),
            "delete"
        );
        assert_eq!(
            verb("DELETE", "/api/v1/namespaces/shop/pods", ""),
            "deletecollection"
        );
        assert_eq!(verb("GET", "/version", ""), "get");
        assert_eq!(verb("POST", "/apis", ""), "post");
    }

    #[test]
    fn object_refs_name_group_namespace_and_subresource() {
        let info = request_info(
            "POST",
            "/api/v1/namespaces/shop/pods/checkout-1/eviction",
            "",
        );
        assert_eq!(
            info.object,
            Some(ObjectRef {
                group: String::new(),
                version: "v1".into(),
                resource: "pods".into(),
                namespace: "shop".into(),
                name: "checkout-1".into(),
                subresource: "eviction".into(),
            })
        );
        let info = request_info("GET", "/apis/apps/v1/namespaces/shop/deployments", "");
        let object = info.object.unwrap_or_default();
        assert_eq!(
            (object.group.as_str(), object.resource.as_str()),
            ("apps", "deployments")
        );
        // A namespace is both the resource and its own namespace.
        let object = request_info("GET", "/api/v1/namespaces/shop", "")
            .object
            .unwrap_or_default();
        assert_eq!(
            (
                object.resource.as_str(),
                object.namespace.as_str(),
                object.name.as_str()
            ),
            ("namespaces", "shop", "shop")
        );
        assert!(request_info("GET", "/openapi/v2", "").object.is_none());
    }

    #[test]
    fn audit_ids_are_uuid_shaped_and_distinct() {
        let a = audit_id(0x0123_4567_89ab_cdef, 1);
        let b = audit_id(0x0123_4567_89ab_cdef, 2);
        assert_ne!(a, b);
        let lengths: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12]);
    }
}
