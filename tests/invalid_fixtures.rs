//! Every file in tests/fixtures/invalid must be rejected with exit code 2, and its
//! stderr must match the checked-in `.expected` file exactly (headline with
//! file:line:col, hint, and the quoted source line).
//!
//! To accept new output after a deliberate change: `UPDATE_EXPECTED=1 cargo test --test invalid_fixtures`,
//! then review the diff of the `.expected` files like any other code.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new("tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_invalid_fixture_is_rejected_with_its_expected_message() {
    let files = fixtures();
    assert!(
        files.len() >= 40,
        "only {} invalid fixtures; the contract is at least 40",
        files.len()
    );
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let mut failures = Vec::new();
    for file in &files {
        let output = Command::new(env!("CARGO_BIN_EXE_shakedown"))
            .arg("validate")
            .arg(file)
            .output()
            .expect("run shakedown");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.code() != Some(2) {
            failures.push(format!(
                "{}: exit {:?}, want 2\n{stderr}",
                file.display(),
                output.status.code()
            ));
            continue;
        }
        if !output.stdout.is_empty() {
            failures.push(format!("{}: printed to stdout on failure", file.display()));
        }
        let headlines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        if headlines.is_empty() {
            failures.push(format!("{}: no `error:` line\n{stderr}", file.display()));
        }
        for line in &headlines {
            if !names_a_location(line) {
                failures.push(format!(
                    "{}: headline lacks file:line:col: {line}",
                    file.display()
                ));
            }
        }
        let expected_path = file.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &stderr).expect("write expected");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == stderr => {}
            Ok(expected) => failures.push(format!(
                "{}: stderr differs from {}\n--- expected\n{expected}--- actual\n{stderr}",
                file.display(),
                expected_path.display()
            )),
            Err(_) => failures.push(format!(
                "{}: missing {}",
                file.display(),
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// `error: some/path.yaml:12:7: ...`
fn names_a_location(headline: &str) -> bool {
    let rest = headline.trim_start_matches("error: ");
    let Some((path, tail)) = rest.split_once(".yaml:") else {
        return false;
    };
    let mut parts = tail.splitn(3, ':');
    let line = parts.next().and_then(|l| l.parse::<u32>().ok());
    let col = parts.next().and_then(|c| c.parse::<u32>().ok());
    !path.is_empty()
        && line.is_some_and(|l| l > 0)
        && col.is_some_and(|c| c > 0)
        && parts.next().is_some()
}

#[test]
fn one_file_reports_all_of_its_errors() {
    let output = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args([
            "validate",
            "tests/fixtures/invalid/several-errors-one-file.yaml",
        ])
        .output()
        .expect("run shakedown");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let count = stderr.lines().filter(|l| l.starts_with("error: ")).count();
    assert!(
        count >= 4,
        "expected every error in the file, got {count}:\n{stderr}"
    );
}

#[test]
fn the_shipped_examples_validate() {
    let files = support::example_files();
    assert!(files.len() >= 7, "examples missing: {files:?}");
    // The scenarios and the demo experiment name no Prometheus: they rely on the flag
    // (issue 11 item 5: a query with no Prometheus anywhere is invalid input).
    let output = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["--prometheus-url", "http://127.0.0.1:9"])
        .arg("validate")
        .args(&files)
        .output()
        .expect("run shakedown");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for required in [
        "scenarios/pod-delete.yaml",
        "scenarios/network-latency.yaml",
        "scenarios/node-drain.yaml",
        "experiments/release-gate.yaml",
        "experiments/gameday.yaml",
        "experiments/dr-drill.yaml",
        "experiments/demo.yaml",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(required)),
            "{required} is missing"
        );
    }
}

/// Issue 11 item 5: a PromQL hypothesis with no Prometheus anywhere was accepted by
/// `validate` and `plan` and refused only by `run`. All three now say so (exit 2) at the
/// hypothesis's file:line:col, and the flag (or its environment variable) satisfies all
/// three alike.
#[test]
fn a_promql_hypothesis_without_prometheus_is_invalid_for_validate_plan_and_run() {
    let shakedown = |args: &[&str], url: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shakedown"));
        command
            .args(["--kubeconfig", "/nonexistent/kubeconfig", "--yes"])
            .args(args)
            .env_remove("SHAKEDOWN_PROMETHEUS_URL");
        if let Some(url) = url {
            command.env("SHAKEDOWN_PROMETHEUS_URL", url);
        }
        command.output().expect("run shakedown")
    };
    for command in ["validate", "plan", "run"] {
        let out = shakedown(&[command, "scenarios/pod-delete.yaml"], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(
                "scenarios/pod-delete.yaml:26:7: hypothesis `checkout error ratio below 1%` queries Prometheus, but no Prometheus is configured (add a `prometheus: {url: http://…}` block"
            ) && stderr.contains("--prometheus-url"),
            "{command}: {stderr}"
        );
        assert!(
            !stderr.contains("kubeconfig"),
            "refused before connecting: {stderr}"
        );
    }
    let out = shakedown(
        &["validate", "scenarios/pod-delete.yaml"],
        Some("http://127.0.0.1:9"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = shakedown(
        &[
            "--prometheus-url",
            "http://127.0.0.1:9",
            "validate",
            "scenarios/pod-delete.yaml",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `validate` checks a batch of files in parallel (`spec::load_all`); what it reports must
/// not depend on that: every invalid fixture and every shipped example in one call, the
/// valid and the invalid interleaved, give each file's errors in the order the files
/// were given, exactly as validating each file on its own does, and the `ok:` lines in
/// order too.
#[test]
fn a_batch_reports_each_file_in_the_order_given_as_one_file_at_a_time_does() {
    let invalid = fixtures();
    let valid = support::example_files();
    let mut batch = Vec::new();
    for (i, file) in invalid.iter().enumerate() {
        batch.push(file.clone());
        if let Some(example) = valid.get(i) {
            batch.push(example.clone());
        }
    }
    let validate = |files: &[PathBuf]| {
        Command::new(env!("CARGO_BIN_EXE_shakedown"))
            .args(["--prometheus-url", "http://127.0.0.1:9", "validate"])
            .args(files)
            .output()
            .expect("run shakedown")
    };
    let errors = |stderr: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(stderr)
            .lines()
            .filter(|l| l.starts_with("error: "))
            .map(str::to_owned)
            .collect()
    };
    let together = validate(&batch);
    assert_eq!(together.status.code(), Some(2));
    let mut one_by_one = Vec::new();
    let mut ok_lines = Vec::new();
    for file in &batch {
        let alone = validate(std::slice::from_ref(file));
        one_by_one.extend(errors(&alone.stderr));
        ok_lines.extend(
            String::from_utf8_lossy(&alone.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    assert!(one_by_one.len() >= invalid.len(), "{one_by_one:?}");
    assert_eq!(errors(&together.stderr), one_by_one);
    let together_ok: Vec<String> = String::from_utf8_lossy(&together.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(together_ok.len(), valid.len().min(invalid.len()));
    assert_eq!(together_ok, ok_lines);
}
