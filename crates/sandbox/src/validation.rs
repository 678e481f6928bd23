//! apimachinery's name and metadata rules, worded as a real API server words them
//! (`IsQualifiedName`, `IsValidLabelValue`, `IsDNS1123Subdomain`, `ValidateLabels`,
//! `ValidateAnnotations`), so a 422 from the sandbox reads like one from a cluster.
//!
//! It must not decide what happens on failure: it returns causes; callers build the
//! Status.

use serde_json::Value;

use super::status::{Cause, quote};

const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}'")).collect();
    format!(
        "{msg} (e.g. {},  or {}, regex used for validation is '{fmt}')",
        examples[..examples.len() - 1].join(",  or "),
        examples[examples.len() - 1]
    )
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter()
            .all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
}

/// `IsDNS1123Subdomain`.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_owned());
    }
    let ok = !value.is_empty()
        && value.split('.').all(|part| {
            let b = part.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && b.first().is_some_and(alnum)
                && b.last().is_some_and(alnum)
                && b.iter().all(|c| alnum(c) || *c == b'-')
        });
    if !ok {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            &["example.com"],
        ));
    }
    errs
}

/// `IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name part.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_owned());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `ValidateLabels` and `ValidateAnnotations` of an object's metadata.
pub fn metadata_maps(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = &obj["metadata"];
    for (key, value) in meta["labels"].as_object().into_iter().flatten() {
        for msg in qualified_name(key) {
            causes.push(Cause::invalid("metadata.labels", &quote(key), &msg));
        }
        let value = value.as_str().unwrap_or("");
        for msg in label_value(value) {
            causes.push(Cause::invalid("metadata.labels", &quote(value), &msg));
        }
    }
    for key in meta["annotations"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
    {
        for msg in qualified_name(&key.to_lowercase()) {
            causes.push(Cause::invalid("metadata.annotations", &quote(key), &msg));
        }
    }
    causes
}

/// Empty label and annotation maps are not stored: Go's `omitempty` drops them.
pub fn omit_empty_maps(obj: &mut Value) {
    if let Some(meta) = obj["metadata"].as_object_mut() {
        for key in ["labels", "annotations"] {
            if meta
                .get(key)
                .is_some_and(|m| m.as_object().is_some_and(|m| m.is_empty()) || m.is_null())
            {
                meta.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_qualified_name_gets_both_of_the_api_servers_complaints() {
        let errs = qualified_name("");
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0], "name part must be non-empty");
        assert!(errs[1].starts_with("name part must consist of alphanumeric characters"));
        assert!(errs[1].ends_with("(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
        assert!(qualified_name("shakedown.dev/shakedown").is_empty());
    }

    #[test]
    fn label_values_may_be_empty_but_not_spaced() {
        assert!(label_value("").is_empty());
        assert_eq!(label_value("not valid!").len(), 1);
    }
}
