//! `shakedown schema` must describe the files we ship: every example validates against
//! it, and files the validator rejects for structure are rejected by the schema too.
//! Validation uses Python's `jsonschema` (an independent implementation);
//! scripts/test.sh installs it when missing.

mod support;

use std::path::Path;
use std::process::Command;

fn python() -> String {
    std::env::var("SHAKEDOWN_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn yaml_to_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("read example");
    serde_saphyr::from_str(&text).expect("example is YAML")
}

/// Returns the schema errors for each instance (empty string = valid).
fn validate(instances: &[(String, serde_json::Value)]) -> Vec<(String, String)> {
    let schema = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .arg("schema")
        .output()
        .expect("run schema");
    assert!(schema.status.success());
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("shakedown-schema-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    std::fs::write(dir.join("schema.json"), &schema.stdout).expect("write schema");
    let payload: serde_json::Value = instances
        .iter()
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    std::fs::write(dir.join("instances.json"), payload.to_string()).expect("write instances");
    let script = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
instances = json.load(open(sys.argv[2]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema)
for name, inst in instances.items():
    errs = sorted(e.message for e in v.iter_errors(inst))
    print(name + "\t" + " | ".join(errs))
"#;
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(dir.join("schema.json"))
        .arg(dir.join("instances.json"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/test.sh, which installs python3-jsonschema",
                python()
            )
        });
    assert!(
        out.status.success(),
        "python jsonschema failed (run scripts/test.sh to install it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (name, errs) = l.split_once('\t').unwrap_or((l, ""));
            (name.to_owned(), errs.to_owned())
        })
        .collect()
}

#[test]
fn every_example_validates_against_the_printed_schema() {
    let instances: Vec<_> = support::example_files()
        .iter()
        .map(|p| (p.display().to_string(), yaml_to_json(p)))
        .collect();
    assert!(instances.len() >= 7);
    let results = validate(&instances);
    assert_eq!(results.len(), instances.len());
    let bad: Vec<_> = results
        .iter()
        .filter(|(_, errs)| !errs.is_empty())
        .collect();
    assert!(bad.is_empty(), "examples rejected by the schema: {bad:#?}");
}

/// Invalid fixtures the schema accepts, each with the rule `validate` applies that JSON
/// Schema cannot state. The README's "What the schema cannot check" lists the same rules.
const NOT_EXPRESSIBLE: &[(&str, &str)] = &[
    (
        "alert-firing-after-the-revert.yaml",
        "a phase list that depends on the words of `expect` (`firing within` is judged during only)",
    ),
    // Another file decides.
    (
        "experiment-allow-list-overrides.yaml",
        "another file: the included scenario's namespace against this experiment's allow-list",
    ),
    (
        "experiment-cannot-widen-a-scenario-allow-list.yaml",
        "another file: the included scenario's own allow-list",
    ),
    (
        "experiment-cycle.yaml",
        "another file: a cycle of references between experiments",
    ),
    (
        "experiment-self-reference.yaml",
        "another file: an experiment that includes itself",
    ),
    (
        "experiment-error-in-referenced-file.yaml",
        "another file: the error is in the included scenario",
    ),
    (
        "experiment-missing-scenario-file.yaml",
        "another file: whether the referenced file exists",
    ),
    (
        "experiment-scenario-is-experiment.yaml",
        "another file: the kind of the referenced file",
    ),
    // Safety that an including experiment may supply.
    (
        "no-allow-list.yaml",
        "context: the allow-list may come from an experiment that includes the scenario",
    ),
    (
        "node-target-without-an-allow-list.yaml",
        "context: a node target's allow-list may come from an experiment that includes it",
    ),
    (
        "namespace-outside-allow-list.yaml",
        "two values: a namespace must be one of the allow-list's (which an including experiment may narrow)",
    ),
    (
        "blast-radius-exceeded.yaml",
        "two values: the share a target asks for against safety.maxTargetPercent (which an including experiment may lower)",
    ),
    // Comparisons between two values of the same file.
    (
        "interval-longer-than-duration.yaml",
        "two values: interval at most duration",
    ),
    (
        "network-latency-jitter-over-delay.yaml",
        "two values: jitter at most delay",
    ),
    (
        "hypothesis-between-reversed.yaml",
        "two values: in `between A and B`, A at most B",
    ),
    // PromQL is a language of its own.
    (
        "hypothesis-unbalanced-promql.yaml",
        "PromQL grammar (promql-parser)",
    ),
    ("promql-bad-duration.yaml", "PromQL grammar (promql-parser)"),
    (
        "promql-block-scalar-second-line.yaml",
        "PromQL grammar (promql-parser)",
    ),
    (
        "promql-dangling-operator.yaml",
        "PromQL grammar (promql-parser)",
    ),
    (
        "promql-unknown-function.yaml",
        "PromQL function table (promql-parser)",
    ),
    (
        "promql-range-vector.yaml",
        "PromQL types: the query must return an instant vector or a scalar",
    ),
    (
        "promql-string-literal.yaml",
        "PromQL types: the query must return an instant vector or a scalar",
    ),
    // Normalised names.
    (
        "prometheus-url-with-query-credentials.yaml",
        "a credential in a URL's query string is found after percent-decoding and case and punctuation folding of each parameter name",
    ),
    // YAML itself, before any JSON exists for a schema to check.
    (
        "yaml-duplicate-key.yaml",
        "YAML: a duplicate key is gone once the YAML is read as JSON (the YAML parser flags it)",
    ),
    (
        "yaml-multiple-documents.yaml",
        "YAML: several documents in one file",
    ),
    // Silences: what Alertmanager would refuse, or another file may supply.
    (
        "silence-bad-regex.yaml",
        "a silence matcher's regex must compile (RE2)",
    ),
    (
        "silence-of-every-alert.yaml",
        "a silence whose every matcher matches the empty string",
    ),
    (
        "silence-without-alertmanager.yaml",
        "another file: a silence needs an `alertmanager:` block here or in an including experiment",
    ),
    ("yaml-syntax-bad-indent.yaml", "YAML syntax"),
    ("yaml-syntax-unclosed-flow.yaml", "YAML syntax"),
    ("yaml-tab-indentation.yaml", "YAML syntax"),
    ("yaml-unquoted-greater-than.yaml", "YAML syntax"),
    ("not-utf8.yaml", "YAML: the file is not UTF-8"),
];

/// The one JSON document a fixture holds, or `None` when YAML itself refuses it.
fn fixture_as_json(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_saphyr::from_str(&text).ok()
}

#[test]
fn every_invalid_fixture_is_rejected_by_the_schema_or_listed_with_the_rule_it_cannot_express() {
    let mut fixtures: Vec<_> = std::fs::read_dir("tests/fixtures/invalid")
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 70, "only {} fixtures", fixtures.len());
    let name = |p: &Path| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    let (parsed, unparsed): (Vec<_>, Vec<_>) = fixtures
        .iter()
        .map(|p| (name(p), fixture_as_json(p)))
        .partition(|(_, json)| json.is_some());
    let instances: Vec<_> = parsed
        .into_iter()
        .map(|(n, json)| (n, json.unwrap_or_default()))
        .collect();
    let accepted: Vec<String> = validate(&instances)
        .into_iter()
        .filter(|(_, errs)| errs.is_empty())
        .map(|(n, _)| n)
        .chain(unparsed.into_iter().map(|(n, _)| n))
        .collect();

    println!("invalid fixtures the schema accepts, and the rule it cannot express:");
    for (fixture, reason) in NOT_EXPRESSIBLE {
        println!("  {fixture}: {reason}");
    }
    let listed = |n: &str| NOT_EXPRESSIBLE.iter().any(|(f, _)| *f == n);
    let unexplained: Vec<_> = accepted.iter().filter(|n| !listed(n)).collect();
    assert!(
        unexplained.is_empty(),
        "the schema accepts these invalid fixtures, and no rule JSON Schema cannot express explains it: {unexplained:#?}"
    );
    let stale: Vec<_> = NOT_EXPRESSIBLE
        .iter()
        .filter(|(f, _)| !accepted.iter().any(|a| a == f))
        .collect();
    assert!(
        stale.is_empty(),
        "listed as beyond JSON Schema, but the schema rejects them (or they are gone): take them off the list: {stale:#?}"
    );
}

/// Regression (issue 12): a typo inside a hypothesis (`abortt:`, `tolerence:`) silently
/// disabled the abort, and `percent: 0.3` passed the schema though `validate` refuses it.
#[test]
fn the_schema_rejects_typos_inside_hypotheses_and_fractions_as_percentages() {
    let base: serde_json::Value = serde_json::json!({
        "apiVersion": "shakedown.dev/v1alpha1",
        "kind": "Scenario",
        "metadata": {"name": "typo"},
        "spec": {
            "safety": {"allowedNamespaces": ["shop"]},
            "target": {"pods": {"namespace": "shop", "selector": "app=checkout"}},
            "fault": {"type": "pod-delete"},
            "hypotheses": [{"name": "errors", "promql": "sum(rate(x[1m]))", "expect": "< 0.01"}]
        }
    });
    let with = |pointer: &str, key: &str, value: serde_json::Value| {
        let mut doc = base.clone();
        if let Some(serde_json::Value::Object(map)) = doc.pointer_mut(pointer) {
            map.insert(key.into(), value);
        }
        doc
    };
    let cases = [
        ("valid", base.clone()),
        ("abortt", with("/spec/hypotheses/0", "abortt", true.into())),
        (
            "tolerence",
            with("/spec/hypotheses/0", "tolerence", "90%".into()),
        ),
        ("fraction", {
            let mut doc = with("/spec/target/pods", "mode", "percent".into());
            if let Some(serde_json::Value::Object(m)) = doc.pointer_mut("/spec/target/pods") {
                m.insert("percent".into(), 0.3.into());
            }
            doc
        }),
    ];
    let instances: Vec<_> = cases
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    for (name, errs) in validate(&instances) {
        assert_eq!(errs.is_empty(), name == "valid", "{name}: {errs}");
    }
}

/// Every object the schema describes is closed (`additionalProperties: false`, or
/// `unevaluatedProperties: false` where a probe or step action is flattened in), so an
/// editor flags a typo anywhere. Conditions (`if`/`then`/`not`) and the variants of a
/// closed object only add rules to it, so they may stay open.
#[test]
fn every_object_in_the_schema_is_closed() {
    fn open_objects(schema: &serde_json::Value, path: &str, partial: bool, out: &mut Vec<String>) {
        let Some(object) = schema.as_object() else {
            return;
        };
        let closed = |key: &str| object.get(key) == Some(&serde_json::Value::Bool(false));
        let is_closed = closed("additionalProperties") || closed("unevaluatedProperties");
        if object.contains_key("properties") && !partial && !is_closed {
            out.push(path.to_owned());
        }
        for (key, value) in object {
            match key.as_str() {
                "properties" | "$defs" => {
                    for (name, sub) in value.as_object().into_iter().flatten() {
                        open_objects(sub, &format!("{path}/{key}/{name}"), false, out);
                    }
                }
                "oneOf" | "anyOf" | "allOf" => {
                    // Variants of an object closed by `unevaluatedProperties` see its keys.
                    let variant_partial = partial || closed("unevaluatedProperties");
                    for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                        open_objects(sub, &format!("{path}/{key}/{i}"), variant_partial, out);
                    }
                }
                "items" | "additionalProperties" => {
                    open_objects(value, &format!("{path}/{key}"), false, out)
                }
                _ => {}
            }
        }
    }
    let schema = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .arg("schema")
        .output()
        .expect("run schema");
    let schema: serde_json::Value = serde_json::from_slice(&schema.stdout).expect("schema is JSON");
    let mut open = Vec::new();
    open_objects(&schema, "", false, &mut open);
    assert!(
        open.is_empty(),
        "objects that accept unknown keys: {open:#?}"
    );
    assert!(
        schema["$defs"]["Hypothesis"]["unevaluatedProperties"] == false,
        "a hypothesis is closed: `abortt:` must be flagged"
    );
}

/// The `silence:` block takes both matcher forms in the schema, and refuses a misspelt
/// key, a malformed string matcher and an empty list, as `validate` does.
#[test]
fn the_silence_block_is_in_the_schema() {
    let scenario = |silence: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "shakedown.dev/v1alpha1", "kind": "Scenario",
            "metadata": {"name": "quiet"},
            "spec": {
                "target": {"pods": {"namespace": "shop", "selector": "app=checkout"}},
                "fault": {"type": "pod-delete"},
                "alertmanager": {"url": "http://alertmanager:9093"},
                "silence": silence
            }
        })
    };
    let results = validate(&[
        (
            "both forms".into(),
            scenario(serde_json::json!({
                "matchers": ["alertname=\"CheckoutHighLatency\"",
                             {"name": "service", "value": "a|b", "isRegex": true, "isEqual": true}],
                "comment": "game day", "margin": "2m"
            })),
        ),
        (
            "misspelt".into(),
            scenario(serde_json::json!({"matchers": ["a=\"b\""], "margn": "2m"})),
        ),
        (
            "no operator".into(),
            scenario(serde_json::json!({"matchers": ["alertname"]})),
        ),
        (
            "empty".into(),
            scenario(serde_json::json!({"matchers": []})),
        ),
    ]);
    let failed = |name: &str| results.iter().any(|(n, e)| n == name && !e.is_empty());
    assert!(!failed("both forms"), "{results:#?}");
    for name in ["misspelt", "no operator", "empty"] {
        assert!(
            failed(name),
            "the schema accepts the {name} silence: {results:#?}"
        );
    }
}

/// The `regression:` block the validator reads is one the schema accepts (with every key),
/// and a misspelt key in it is refused by both.
#[test]
fn the_regression_block_is_in_the_schema() {
    let experiment = |regression: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "shakedown.dev/v1alpha1", "kind": "Experiment",
            "metadata": {"name": "gate"},
            "spec": {"regression": regression, "steps": [{"scenario": "s.yaml"}]}
        })
    };
    let results = validate(&[
        (
            "full".into(),
            experiment(serde_json::json!({
                "baseline": "previous", "recovery": "20%", "score": 5, "recoveryFloor": "2s"
            })),
        ),
        ("empty".into(), experiment(serde_json::json!({}))),
        (
            "misspelt".into(),
            experiment(serde_json::json!({"recovry": "20%"})),
        ),
    ]);
    let errors = |name: &str| {
        results
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("no result for {name}: {results:?}"))
    };
    assert_eq!(errors("full"), "", "{results:?}");
    assert_eq!(errors("empty"), "", "{results:?}");
    assert!(!errors("misspelt").is_empty(), "{results:?}");
}

/// The `upload:` block (issue 18) is in the schema with the `prometheus:` block's
/// connection options, and a misspelt key in it is refused.
#[test]
fn the_upload_block_is_in_the_schema() {
    let experiment = |upload: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "shakedown.dev/v1alpha1", "kind": "Experiment",
            "metadata": {"name": "gate"},
            "spec": {"upload": upload, "steps": [{"scenario": "s.yaml"}]}
        })
    };
    let results = validate(&[
        (
            "full".into(),
            experiment(serde_json::json!({
                "url": "https://reports.example.com/x", "timeout": "5s",
                "bearerTokenFile": "/t", "caFile": "/ca.pem", "headers": {"X-Team": "a"}
            })),
        ),
        (
            "misspelt".into(),
            experiment(serde_json::json!({"urll": "https://x"})),
        ),
    ]);
    let errors = |name: &str| {
        results
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("no result for {name}: {results:?}"))
    };
    assert_eq!(errors("full"), "", "{results:?}");
    assert!(!errors("misspelt").is_empty(), "{results:?}");
}

/// `notify:` and `pushgateway:` as the README writes them validate; a notify entry with
/// both or neither URL source, or a signed Slack entry, is rejected by the schema as by
/// `validate`.
#[test]
fn notify_and_pushgateway_blocks_follow_the_validators_rules() {
    let experiment = |notify: &str| -> serde_json::Value {
        serde_saphyr::from_str(&format!(
            "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: notify-test}}\nspec:\n  steps: [{{scenario: a.yaml}}]\n  pushgateway: {{url: 'http://pushgateway:9091', bearerTokenEnv: PG_TOKEN}}\n  notify:\n{notify}"
        ))
        .expect("YAML")
    };
    let cases = [
        (
            "slack-url-env",
            "    - {kind: slack, urlEnv: SLACK_URL, events: [run-started, run-finished]}\n",
            true,
        ),
        (
            "signed-webhook",
            "    - {kind: webhook, url: 'https://h.example/x', secretFile: /k}\n",
            true,
        ),
        (
            "both-urls",
            "    - {kind: webhook, url: 'https://h.example/x', urlEnv: U}\n",
            false,
        ),
        ("no-url", "    - {kind: webhook}\n", false),
        (
            "signed-slack",
            "    - {kind: slack, urlEnv: U, secretEnv: K}\n",
            false,
        ),
        (
            "two-keys",
            "    - {kind: webhook, urlEnv: U, secretEnv: K, secretFile: /k}\n",
            false,
        ),
        (
            "unknown-event",
            "    - {kind: webhook, urlEnv: U, events: [everything]}\n",
            false,
        ),
    ];
    let instances: Vec<_> = cases
        .iter()
        .map(|(name, notify, _)| ((*name).to_owned(), experiment(notify)))
        .collect();
    let results: std::collections::BTreeMap<String, String> =
        validate(&instances).into_iter().collect();
    assert_eq!(results.len(), cases.len());
    for (name, _, valid) in cases {
        let errors = &results[name];
        assert_eq!(errors.is_empty(), valid, "{name}: {errors}");
    }
}
