//! The validator's rules in JSON Schema's words, attached to the model with
//! `#[schemars(schema_with = …)]` and `#[schemars(transform = …)]`, so that
//! `shakedown schema` stays generated from these types and an editor flags what
//! `shakedown validate` refuses.
//!
//! Each pattern here restates a grammar from `read/` or `crates/vocab` (durations,
//! percentages, names, label and field selectors); the tests at the bottom check them
//! against those parsers, so the two cannot drift apart silently. Rules that compare two
//! values or need another file are not here: the README lists them.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// Prometheus durations (`crates/vocab/src/duration.rs`): integer + unit, units largest
/// first, each at most once, surrounding whitespace trimmed.
pub fn duration_pattern() -> String {
    format!(r"^\s*({})\s*$", duration_alternatives())
}

/// A duration's grammar, unanchored.
fn duration_alternatives() -> String {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    // One alternative per first unit, so at least one unit is present.
    let alternatives: Vec<String> = (0..UNITS.len())
        .map(|first| {
            let rest: String = UNITS[first + 1..]
                .iter()
                .map(|u| format!("([0-9]+{u})?"))
                .collect();
            format!("[0-9]+{}{rest}", UNITS[first])
        })
        .collect();
    alternatives.join("|")
}

/// A duration whose every number is 0 (`0s`, `0m0s`).
const ZERO_DURATION: &str = r"^\s*(0+(y|w|d|h|ms|m|s))+\s*$";

/// A duration that may be zero (`jitter`, `gracePeriod`, `after`, `settle`): a
/// duration string or the integer 0.
pub fn duration_or_zero(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A duration such as `30s`, `2m`, `1h30m` or `500ms`; `0` or `0s` for none",
        "anyOf": [
            { "type": "string", "pattern": duration_pattern() },
            { "type": "integer", "const": 0 }
        ]
    })
}

/// The same, or null (an optional key written with no value is absent).
pub fn optional_duration_or_zero(g: &mut SchemaGenerator) -> Schema {
    nullable(duration_or_zero(g))
}

/// A duration above zero: what `Span` means unless a field says otherwise.
pub fn positive_duration() -> Value {
    json!({
        "type": "string",
        "description": "A duration above zero such as `30s`, `2m`, `1h30m` or `500ms`",
        "pattern": duration_pattern(),
        "not": { "pattern": ZERO_DURATION }
    })
}

/// `gracePeriod` with `force: true` must be zero.
fn zero_duration() -> Value {
    json!({ "anyOf": [
        { "type": "integer", "const": 0 },
        { "type": "string", "pattern": ZERO_DURATION },
        { "type": "null" }
    ]})
}

/// A percentage in 0..=100 as `Decoder::percent` reads it: a number (but not a fraction
/// between 0 and 1, which reads as a share) or a string ending in `%`.
pub fn percent() -> Value {
    json!({
        "description": "A percentage between 0 and 100, written `30%` or `30`; fractions such as `0.3` are refused",
        "anyOf": [
            {
                "type": "number", "minimum": 0, "maximum": 100,
                "not": { "exclusiveMinimum": 0, "exclusiveMaximum": 1 }
            },
            {
                "type": "string",
                "pattern": r"^\s*\+?0*(100(\.0*)?|[0-9]{1,2}(\.[0-9]*)?|\.[0-9]+)\s*%\s*$"
            }
        ]
    })
}

/// A percentage that is 0 (refused where it would allow nothing).
fn zero_percent() -> Value {
    json!({ "anyOf": [
        { "type": "number", "const": 0 },
        { "type": "string", "pattern": r"^\s*\+?(0+(\.0*)?|\.0+)\s*%\s*$" }
    ]})
}

/// `safety.maxTargetPercent`: a percentage above 0.
pub fn positive_percent(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "allOf": [percent()], "not": zero_percent() })
}

/// A number in the spec's comparison grammar (`read::hypothesis::number`).
const NUMBER: &str = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?";

/// `< 0.01`, `>= 3`, `between 0.1 and 0.5`, and for alert probes `firing within 2m`,
/// `resolved within 5m`, `not firing` (`read::parse_expectation`).
/// The alert expectations only: what an `alert` probe may expect.
fn alert_expectation_pattern() -> String {
    let duration = duration_alternatives();
    format!(r"^\s*((firing|resolved)\s+within\s+({duration})|not\s+firing)\s*$")
}

pub fn expectation_pattern() -> String {
    let duration = duration_alternatives();
    format!(
        r"^\s*((<=|>=|==|!=|<|>)\s*{NUMBER}|between\s*{NUMBER}\s* and \s*{NUMBER}|(firing|resolved)\s+within\s+({duration})|not\s+firing)\s*$"
    )
}

/// What `Decoder::string` accepts: a string with something besides whitespace.
const NON_BLANK: &str = r"\S";

fn non_blank_string() -> Value {
    json!({ "type": "string", "pattern": NON_BLANK })
}

fn nullable(schema: Schema) -> Schema {
    json_schema!({ "anyOf": [schema, { "type": "null" }] })
}

pub fn non_blank(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": NON_BLANK })
}

pub fn optional_non_blank(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "null"], "pattern": NON_BLANK })
}

/// A map of non-blank strings (`metadata.labels`, `prometheus.headers`).
pub fn string_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "propertyNames": { "pattern": NON_BLANK },
        "additionalProperties": non_blank_string()
    })
}

/// Prometheus headers: never `Authorization` (in any case), which would put a
/// credential in the file.
pub fn headers(g: &mut SchemaGenerator) -> Schema {
    let mut schema = string_map(g);
    let authorization: String = "authorization"
        .chars()
        .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c))
        .collect();
    schema.insert(
        "propertyNames".into(),
        json!({ "pattern": NON_BLANK, "not": { "pattern": format!("^{authorization}$") } }),
    );
    schema
}

/// A DNS-1123 label (`read::dns_label`): `metadata.name` and namespaces.
const DNS_LABEL: &str = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";

pub fn dns_label(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": DNS_LABEL, "maxLength": 63 })
}

/// A namespace a fault may touch: a DNS label other than `kube-system`.
fn namespace() -> Value {
    json!({
        "type": "string", "pattern": DNS_LABEL, "maxLength": 63,
        "not": { "const": "kube-system" }
    })
}

/// `Decoder::string_list`: one item, or a list of them.
fn one_or_list(item: Value) -> Value {
    json!({ "anyOf": [item.clone(), { "type": "array", "items": item }] })
}

/// Namespaces (`allowedNamespaces`, `acceptCollateral`, a pod target's `namespaces`).
pub fn namespaces(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(one_or_list(namespace())).unwrap_or_default()
}

/// Names and contexts: one non-blank string or a list of them.
pub fn names(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(one_or_list(non_blank_string())).unwrap_or_default()
}

/// A label key's or value's name part (`vocab::selector::is_qualified_name`).
const QUALIFIED_NAME: &str = "[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?";
const DNS_PART: &str = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";

/// The Kubernetes label-selector grammar of `vocab::selector::LabelSelector::parse`:
/// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-separated;
/// an empty selector selects everything.
pub fn label_selector_pattern() -> String {
    let key = format!(r"({DNS_PART}(\.{DNS_PART})*/)?{QUALIFIED_NAME}");
    let set = format!(r"\(\s*{QUALIFIED_NAME}\s*(,\s*{QUALIFIED_NAME}\s*)*\)");
    let requirement = format!(
        r"(!\s*{key}|{key}|{key}\s*(==|=|!=)\s*({QUALIFIED_NAME})?|{key}\s+(in|notin)\s*{set})"
    );
    format!(r"^\s*({requirement}\s*(,\s*{requirement}\s*)*)?$")
}

pub fn label_selector(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["string", "null"],
        "description": "A Kubernetes label selector, e.g. `app=checkout,tier in (web,api)`",
        "pattern": label_selector_pattern()
    })
}

/// A pod field selector (`FieldSelector::parse` plus the fields the API server
/// accepts for pods, `read::POD_FIELDS`). The first `!=` in a term splits it, then
/// the first `==`, then the first `=`, so a value never holds an earlier operator.
pub fn field_selector_pattern() -> String {
    let fields = super::super::read::POD_FIELDS
        .iter()
        .map(|f| f.replace('.', r"\."))
        .collect::<Vec<_>>()
        .join("|");
    // After `=`: no `!=`, no `==`, not starting with `=`; after `==`: no `!=`.
    let term = format!(r"\s*({fields})\s*(!=[^,]*|==([^,!]|!+[^,!=])*!*|=([^,!=]=?|!)*)\s*");
    format!(r"^{term}(,{term})*$")
}

pub fn field_selector(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["string", "null"],
        "description": "A pod field selector, e.g. `status.phase=Running`",
        "pattern": field_selector_pattern()
    })
}

/// An http(s) URL without user info (`read::http_url`, `url::credential_in`).
pub fn http_url_pattern() -> &'static str {
    r"^https?://[^/?#@\s][^?#@/\s]*([/?#]\S*)?$"
}

pub fn http_url(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": http_url_pattern() })
}

pub fn optional_http_url(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "null"], "pattern": http_url_pattern() })
}

/// A network interface name that may reach `tc` (`read::fault::interface_name`).
pub fn interface(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,15}$" })
}

/// An image reference (`read::fault::image_reference`).
pub fn image(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": "^[A-Za-z0-9./:@_-]{1,512}$" })
}

/// The name of an environment variable holding a secret (`read::settings::env_var_name`).
pub fn env_var(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "null"], "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" })
}

/// HTTP status codes: one or a non-empty list, each 100..=599.
pub fn status_codes(_: &mut SchemaGenerator) -> Schema {
    let code = json!({ "type": "integer", "minimum": 100, "maximum": 599 });
    json_schema!({ "anyOf": [code.clone(), { "type": "array", "items": code, "minItems": 1 }] })
}

/// `phases`: a non-empty list, each phase once.
pub fn phases(g: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": g.subschema_for::<super::Phase>(),
        "minItems": 1,
        "uniqueItems": true
    })
}

/// A PromQL query: not blank, at most the parser's limit (the grammar itself is the
/// validator's: JSON Schema cannot parse PromQL).
pub fn promql(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": NON_BLANK, "maxLength": 4096 })
}

/// A `parallel` group: at least one step.
pub fn parallel(g: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "array", "items": g.subschema_for::<super::Step>(), "minItems": 1 })
}

/// A number above 0 (`weight`).
pub fn positive_number(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "number", "exclusiveMinimum": 0 })
}

/// Adds `if`/`then` rules to an object schema, in an `allOf` so several can coexist.
fn add_rules(schema: &mut Schema, rules: impl IntoIterator<Item = Value>) {
    let all = schema.ensure_object().entry("allOf").or_insert(json!([]));
    if let Value::Array(list) = all {
        list.extend(rules);
    }
}

fn when(condition: Value, then: Value) -> Value {
    json!({ "if": condition, "then": then })
}

/// `{key: value}` is present and equal.
fn is(key: &str, value: Value) -> Value {
    json!({ "required": [key], "properties": { key: { "const": value } } })
}

fn present(key: &str) -> Value {
    json!({ "required": [key] })
}

fn not_both(a: &str, b: &str) -> Value {
    json!({ "not": { "required": [a, b] } })
}

/// `mode`, `count` and `percent` go together (`read::target::selection`).
fn selection_rules() -> Vec<Value> {
    vec![
        when(is("mode", json!("count")), present("count")),
        when(
            is("mode", json!("percent")),
            json!({ "required": ["percent"], "properties": { "percent": { "not": zero_percent() } } }),
        ),
        when(present("count"), is("mode", json!("count"))),
        when(present("percent"), is("mode", json!("percent"))),
    ]
}

/// A pod target: `namespace` or `namespaces`, not both; the selection rules.
pub fn pod_target_rules(schema: &mut Schema) {
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.insert(
            "namespace".into(),
            json!({ "allOf": [namespace()], "description": "A single namespace; shorthand for `namespaces: [name]`." }),
        );
    }
    let mut rules = selection_rules();
    rules.push(not_both("namespace", "namespaces"));
    add_rules(schema, rules);
}

/// A node target: `names` or `selector`, exactly one; the selection rules.
pub fn node_target_rules(schema: &mut Schema) {
    let mut rules = selection_rules();
    rules.push(json!({ "oneOf": [present("names"), present("selector")] }));
    add_rules(schema, rules);
}

/// A scenario's fault acts on the kind its target names.
pub fn scenario_spec_rules(schema: &mut Schema) {
    let fault_is = |kind: &str| json!({ "required": ["fault"], "properties": { "fault": is("type", json!(kind)) } });
    add_rules(
        schema,
        [
            when(
                fault_is("node-drain"),
                json!({ "properties": { "target": present("nodes") } }),
            ),
            when(
                json!({ "anyOf": [fault_is("pod-delete"), fault_is("network-latency")] }),
                json!({ "properties": { "target": present("pods") } }),
            ),
        ],
    );
}

/// pod-delete: `interval` and `duration` together; `force` only with a zero grace period.
pub fn pod_delete_rules(schema: &mut Schema) {
    add_rules(
        schema,
        [
            when(present("interval"), present("duration")),
            when(present("duration"), present("interval")),
            when(
                is("force", json!(true)),
                json!({ "properties": { "gracePeriod": zero_duration() } }),
            ),
        ],
    );
}

/// A hypothesis: `expect` for promql and kube probes; `abort` needs `during`; the
/// thresholds only with `abort`.
pub fn hypothesis_rules(schema: &mut Schema) {
    let needs_expect =
        json!({ "required": ["expect"], "properties": { "expect": { "type": "string" } } });
    let only_with_abort = is("abort", json!(true));
    add_rules(
        schema,
        [
            when(present("promql"), needs_expect.clone()),
            when(present("kube"), needs_expect.clone()),
            when(present("alert"), needs_expect),
            when(
                present("alert"),
                json!({ "properties": { "expect": { "pattern": alert_expectation_pattern() } } }),
            ),
            when(
                is("abort", json!(true)),
                json!({ "properties": { "phases": { "contains": { "const": "during" } } } }),
            ),
            when(present("failureThreshold"), only_with_abort.clone()),
            when(present("errorThreshold"), only_with_abort),
        ],
    );
}

/// A kube probe: exactly one of `deployment`, `statefulset`, `nodes`; a workload needs
/// `namespace`, nodes refuse it.
pub fn kube_probe_rules(schema: &mut Schema) {
    add_rules(
        schema,
        [
            json!({ "oneOf": [present("deployment"), present("statefulset"), present("nodes")] }),
            when(present("nodes"), json!({ "not": present("namespace") })),
            when(json!({ "not": present("nodes") }), present("namespace")),
        ],
    );
}

/// Prometheus: one token source.
pub fn prometheus_rules(schema: &mut Schema) {
    add_rules(schema, [not_both("bearerTokenEnv", "bearerTokenFile")]);
}

/// basicAuth: exactly one password source.
pub fn basic_auth_rules(schema: &mut Schema) {
    add_rules(
        schema,
        [json!({ "oneOf": [present("passwordEnv"), present("passwordFile")] })],
    );
}

/// notify: exactly one of `url` and `urlEnv`, one key source at most, and no key for
/// Slack (its incoming webhooks take no signature).
pub fn notify_rules(schema: &mut Schema) {
    add_rules(
        schema,
        [
            json!({ "oneOf": [present("url"), present("urlEnv")] }),
            not_both("secretEnv", "secretFile"),
            when(
                is("kind", json!("slack")),
                json!({ "not": { "anyOf": [present("secretEnv"), present("secretFile")] } }),
            ),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::parse_duration;
    use crate::selector::{FieldSelector, LabelSelector};

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).expect("pattern").is_match(text)
    }

    #[test]
    fn the_duration_pattern_is_the_parsers_grammar() {
        let pattern = duration_pattern();
        for text in [
            "30s", "1h30m", "500ms", "0s", "1m500ms", "2w3d", "1y", " 5m ", "", "30", "-5s", "5 s",
            "1m1h", "3sec", "1.5s", "s", "1s1s", "5mss", "10ms5s",
        ] {
            assert_eq!(
                matches(&pattern, text),
                parse_duration(text).is_ok(),
                "`{text}`"
            );
        }
        for zero in ["0s", "0m0s", "00ms"] {
            assert!(matches(ZERO_DURATION, zero), "{zero}");
        }
        assert!(!matches(ZERO_DURATION, "10s"));
    }

    #[test]
    fn the_percent_string_pattern_is_the_decoders_grammar() {
        let pattern = percent()["anyOf"][1]["pattern"]
            .as_str()
            .expect("pattern")
            .to_owned();
        // `Decoder::percent` on a string: trim, strip `%`, trim, a number in 0..=100.
        let decoder = |s: &str| {
            s.trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
                .is_some_and(|v| (0.0..=100.0).contains(&v))
        };
        for text in [
            "30%", " 30 % ", "12.5%", "100%", "100.0%", "0%", ".5%", "5.%", "007%", "+5%", "150%",
            "100.1%", "30", "-5%", "%", "abc%", "1e1%",
        ] {
            // `1e1%` is the one spelling the decoder takes and the pattern does not.
            if text == "1e1%" {
                assert!(decoder(text) && !matches(&pattern, text));
                continue;
            }
            assert_eq!(matches(&pattern, text), decoder(text), "`{text}`");
        }
    }

    #[test]
    fn the_label_selector_pattern_is_the_parsers_grammar() {
        let pattern = label_selector_pattern();
        for text in [
            "",
            "  ",
            "app=checkout",
            "app==checkout,tier in (web, api)",
            "app!=x, !canary, release",
            "k notin (a,b)",
            "app.kubernetes.io/name=shop",
            "app=",
            "topology.kubernetes.io/zone=zone-a",
            "-app=x",
            "app ~ x",
            "app in (a,b",
            "app in ()",
            "app=b c",
            "a=b,",
            ",a",
            "!app=x",
            "app in",
            "Bad/app=x",
        ] {
            assert_eq!(
                matches(&pattern, text),
                LabelSelector::parse(text).is_ok(),
                "`{text}`"
            );
        }
    }

    #[test]
    fn the_field_selector_pattern_is_the_parsers_grammar_over_pod_fields() {
        let pattern = field_selector_pattern();
        let valid = |text: &str| {
            FieldSelector::parse(text).is_ok_and(|s| {
                !s.requirements.is_empty()
                    && s.requirements
                        .iter()
                        .all(|r| crate::spec::read::POD_FIELDS.contains(&r.field.as_str()))
            })
        };
        for text in [
            "status.phase=Running",
            "status.phase==Running, spec.nodeName!=node-1",
            "status.phaze=Running",
            "status.phase=a!=b",
            "status.phase=a==b",
            "status.phase===a",
            "status.phase!=a=b",
            "status.phase=!a",
            "status.phase=",
            "status.phase",
            "status.phase=a,",
            "",
        ] {
            assert_eq!(matches(&pattern, text), valid(text), "`{text}`");
        }
    }

    #[test]
    fn the_expectation_pattern_is_the_parsers_grammar() {
        let pattern = expectation_pattern();
        for text in [
            "< 0.01",
            ">=3",
            "== 1e3",
            "between 0.1 and 0.5",
            "between0.1 and 0.5",
            "< x",
            "=< 3",
            "between 1 and",
            "0.5",
            "<= .5",
            "firing within 2m",
            "resolved  within 1m30s",
            "not firing",
            "firing within",
            "firing in 2m",
            "not fired",
        ] {
            assert_eq!(
                matches(&pattern, text),
                crate::spec::read::parse_expectation(text).is_ok(),
                "`{text}`"
            );
        }
    }
}
