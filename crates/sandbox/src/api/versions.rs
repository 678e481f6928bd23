//! `resourceVersion`, `resourceVersionMatch`, `limit`, `continue` and
//! `sendInitialEvents` as kube-apiserver reads and validates them (ListOptions
//! validation, the storage layer's parsing), so a get, list or watch is refused or
//! answered from the version a real server would use.
//!
//! It must not read the store: callers decide what a version means for their data.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::status::{ApiError, Cause, quote};

/// Which state of the store a read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// No resourceVersion: the latest, read consistently.
    Latest,
    /// `resourceVersion=0`: any state will do (the watch cache's).
    Any,
    /// At least this version (`NotOlderThan`, the default for a plain rv).
    NotOlderThan(u64),
    /// Exactly this version (`Exact`, or an rv with a `limit`).
    Exact(u64),
}

/// A resourceVersion as the storage layer parses it: anything but an unsigned
/// integer is a 500 without a reason.
pub fn parse_resource_version(rv: &str) -> Result<u64, ApiError> {
    rv.parse().map_err(|_| {
        ApiError::unclassified(format!(
            "resourceVersion: Invalid value: {q}: strconv.ParseUint: parsing {q}: invalid syntax",
            q = quote(rv)
        ))
    })
}

fn query<'a>(q: &'a HashMap<String, String>, key: &str) -> &'a str {
    q.get(key).map_or("", String::as_str)
}

fn list_options_invalid(causes: Vec<Cause>) -> Result<(), ApiError> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_causes(
            "meta.k8s.io",
            "ListOptions",
            "",
            causes,
        ))
    }
}

/// ListOptions validation of a list (not a watch).
pub fn validate_list(q: &HashMap<String, String>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let matching = query(q, "resourceVersionMatch");
    if !matching.is_empty() {
        let field = "resourceVersionMatch";
        if query(q, "resourceVersion").is_empty() {
            causes.push(Cause::forbidden(
                field,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if !query(q, "continue").is_empty() {
            causes.push(Cause::forbidden(
                field,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if !matches!(matching, "Exact" | "NotOlderThan") {
            causes.push(Cause::not_supported(
                field,
                &quote(matching),
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if matching == "Exact" && query(q, "resourceVersion") == "0" {
            causes.push(Cause::forbidden(
                field,
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if q.contains_key("sendInitialEvents") {
        causes.push(Cause::forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    list_options_invalid(causes)
}

/// ListOptions validation of a watch (`sendInitialEvents` is the streaming list).
pub fn validate_watch(q: &HashMap<String, String>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let matching = query(q, "resourceVersionMatch");
    let field = "resourceVersionMatch";
    let send_initial = q.contains_key("sendInitialEvents");
    if send_initial && matching != "NotOlderThan" {
        causes.push(Cause::forbidden(
            field,
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if !matching.is_empty() {
        if !send_initial {
            causes.push(Cause::forbidden(
                field,
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if matching != "NotOlderThan" {
            causes.push(Cause::not_supported(
                field,
                &quote(matching),
                &["NotOlderThan"],
            ));
        }
        if !query(q, "continue").is_empty() {
            causes.push(Cause::forbidden(
                field,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    list_options_invalid(causes)
}

/// Which version a list reads, after validation.
pub fn list_read_at(q: &HashMap<String, String>, limited: bool) -> Result<ReadAt, ApiError> {
    let rv = query(q, "resourceVersion");
    if rv.is_empty() {
        return Ok(ReadAt::Latest);
    }
    let version = parse_resource_version(rv)?;
    Ok(match query(q, "resourceVersionMatch") {
        "Exact" => ReadAt::Exact(version),
        "NotOlderThan" if version == 0 => ReadAt::Any,
        "NotOlderThan" => ReadAt::NotOlderThan(version),
        _ if version == 0 => ReadAt::Any,
        // An rv with a limit pages through that exact version (etcd's semantics).
        _ if limited => ReadAt::Exact(version),
        _ => ReadAt::NotOlderThan(version),
    })
}

/// `limit`: zero or negative means "no limit", as on a real server.
pub fn limit(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match query(q, "limit") {
        "" => Ok(usize::MAX),
        n => {
            let parsed: i64 = n
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {n:?}")))?;
            Ok(usize::try_from(parsed)
                .ok()
                .filter(|l| *l > 0)
                .unwrap_or(usize::MAX))
        }
    }
}

/// Where a continued list resumes: the version it pins and the last key served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue {
    pub rv: u64,
    pub namespace: String,
    pub name: String,
}

/// A continue token in the API server's format: unpadded URL-safe base64 of
/// `{"v":"meta.k8s.io/v1","rv":…,"start":"<namespace>/<name>\u0000"}`.
pub fn encode_continue(rv: u64, namespace: &str, name: &str) -> String {
    let start = if namespace.is_empty() {
        format!("{name}\u{0}")
    } else {
        format!("{namespace}/{name}\u{0}")
    };
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    URL_SAFE_NO_PAD.encode(token.to_string())
}

pub fn decode_continue(q: &HashMap<String, String>) -> Result<Option<Continue>, ApiError> {
    let token = query(q, "continue");
    if token.is_empty() {
        return Ok(None);
    }
    if !query(q, "resourceVersion").is_empty() {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    let invalid = |why: String| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => at,
            _ => token.len() - token.len() % 4,
        };
        invalid(format!("illegal base64 data at input byte {at}"))
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if value["v"] != "meta.k8s.io/v1" {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
        ));
    }
    let rv = value["rv"].as_u64().filter(|rv| *rv > 0).ok_or_else(|| {
        invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into())
    })?;
    let start = value["start"].as_str().unwrap_or("");
    let key = start.strip_suffix('\u{0}').unwrap_or(start);
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    Ok(Some(Continue {
        rv,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn continue_tokens_round_trip_in_the_api_servers_format() {
        let token = encode_continue(2351, "monitoring", "node-exporter-8nfpx");
        assert!(token.starts_with("eyJ"), "{token}");
        let back = decode_continue(&q(&[("continue", &token)]))
            .unwrap()
            .unwrap();
        assert_eq!(
            back,
            Continue {
                rv: 2351,
                namespace: "monitoring".into(),
                name: "node-exporter-8nfpx".into()
            }
        );
    }

    #[test]
    fn a_bogus_continue_token_names_the_bad_byte() {
        let err = decode_continue(&q(&[("continue", "bogus")])).unwrap_err();
        assert_eq!(
            err.message,
            "invalid continue token: continue key is not valid: illegal base64 data at input byte 4"
        );
    }

    #[test]
    fn an_rv_with_a_limit_is_an_exact_read() {
        assert_eq!(
            list_read_at(&q(&[("resourceVersion", "7")]), true).unwrap(),
            ReadAt::Exact(7)
        );
        assert_eq!(
            list_read_at(&q(&[("resourceVersion", "7")]), false).unwrap(),
            ReadAt::NotOlderThan(7)
        );
        assert_eq!(
            list_read_at(&q(&[("resourceVersion", "0")]), true).unwrap(),
            ReadAt::Any
        );
        assert_eq!(
            list_read_at(&q(&[("resourceVersion", "abc")]), false)
                .unwrap_err()
                .code,
            500
        );
    }
}
