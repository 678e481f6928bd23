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

#[test]
fn the_schema_rejects_structural_mistakes_too() {
    let fixtures = [
        "unknown-key-mode-typo.yaml",
        "unknown-key-fault.yaml",
        "wrong-type-mode-list.yaml",
        "missing-target.yaml",
        "unknown-fault-type.yaml",
        "wrong-api-version.yaml",
    ];
    let instances: Vec<_> = fixtures
        .iter()
        .map(|f| {
            (
                f.to_string(),
                yaml_to_json(&Path::new("tests/fixtures/invalid").join(f)),
            )
        })
        .collect();
    for (name, errs) in validate(&instances) {
        assert!(
            !errs.is_empty(),
            "{name} passed the schema but the validator rejects it"
        );
    }
}
