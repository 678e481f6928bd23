//! The CLI contract that does not need a cluster: exit codes, stubs, flags.

use std::process::{Command, Output};

fn shakedown(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(args)
        .output()
        .expect("run shakedown")
}

fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shakedown-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

#[test]
fn a_file_over_the_size_limit_is_refused_without_parsing() {
    let path = scratch_dir("big").join("huge.yaml");
    let mut text = String::from("apiVersion: shakedown.dev/v1alpha1\n");
    while text.len() <= 1_100_000 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, text).expect("write");
    let out = shakedown(&["validate", path.to_str().expect("utf8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("huge.yaml:1:1: file is") && stderr.contains("byte limit"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_invalid_input() {
    let out = shakedown(&["validate", "no/such/file.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no/such/file.yaml:1:1: cannot read file")
    );
}

#[test]
fn bad_flags_are_invalid_input() {
    let out = shakedown(&[
        "validate",
        "--dry-run=sometimes",
        "scenarios/pod-delete.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = shakedown(&["--color", "purple", "schema"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn global_flags_parse_like_kubectl() {
    let out = shakedown(&[
        "--kubeconfig",
        "/dev/null",
        "--context",
        "kind-shop",
        "-n",
        "shop",
        "--dry-run=server",
        "--seed",
        "7",
        "--output-dir",
        "out",
        "--yes",
        "-v",
        "--color",
        "never",
        "--prometheus-url",
        "http://127.0.0.1:9090/prometheus",
        "validate",
        "scenarios/pod-delete.yaml",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = shakedown(&[
        "--prometheus-url",
        "http://127.0.0.1:9",
        "validate",
        "--dry-run",
        "scenarios/pod-delete.yaml",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "bare --dry-run means client, like kubectl"
    );
}

#[test]
fn plan_is_reproducible_from_its_seed_and_prints_it() {
    let a = shakedown(&[
        "plan",
        "experiments/gameday.yaml",
        "--seed",
        "42",
        "-o",
        "json",
    ]);
    let b = shakedown(&[
        "plan",
        "experiments/gameday.yaml",
        "--seed",
        "42",
        "-o",
        "json",
    ]);
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(a.stdout, b.stdout);
    let plan: serde_json::Value = serde_json::from_slice(&a.stdout).expect("json plan");
    assert_eq!(plan["seed"], 42);
    assert_eq!(plan["apiVersion"], "shakedown.dev/v1");
    assert_eq!(plan["kind"], "Plan");
    assert_eq!(plan["specKind"], "Experiment");
    let ids: Vec<&str> = plan["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["1", "2", "3#1", "3#2", "4.1", "4.2"]);
    // The parallel group starts after the 1m `after:`; its second member 30s later still.
    assert_eq!(plan["entries"][4]["start"], "12m10s");
    assert_eq!(plan["entries"][5]["start"], "12m40s");
    let text = shakedown(&["plan", "experiments/gameday.yaml"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("replay with --seed "));
}

#[test]
fn plan_of_an_invalid_file_is_exit_2() {
    let out = shakedown(&["plan", "tests/fixtures/invalid/unknown-fault-type.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn completions_are_generated() {
    let out = shakedown(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("shakedown"));
}

/// Bold red `error`, as anstyle writes it (one escape per attribute).
const RED_ERROR: &str = "\u{1b}[1m\u{1b}[31merror\u{1b}[0m: ";

/// `validate` of an invalid file off a terminal, with only the given colour variables set.
fn validate_with_color_env(flags: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shakedown"));
    command
        .args(flags)
        .args(["validate", "tests/fixtures/invalid/unknown-kind.yaml"]);
    for name in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let out = command.output().expect("run shakedown");
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn color_is_opt_in_off_a_terminal() {
    let plain = validate_with_color_env(&[], &[]);
    assert!(!plain.contains('\u{1b}'), "no escapes when piped");
    let colored = validate_with_color_env(&["--color", "always"], &[]);
    assert!(colored.contains(RED_ERROR), "{colored:?}");
}

#[test]
fn color_auto_follows_no_color_and_clicolor_force() {
    let forced = validate_with_color_env(&[], &[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.contains(RED_ERROR),
        "CLICOLOR_FORCE colours a pipe: {forced:?}"
    );
    let vetoed = validate_with_color_env(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!vetoed.contains('\u{1b}'), "NO_COLOR wins: {vetoed:?}");
    // no-color.org: a NO_COLOR that is set but empty does not turn colour off.
    let empty = validate_with_color_env(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")]);
    assert!(empty.contains(RED_ERROR), "empty NO_COLOR: {empty:?}");
    let never = validate_with_color_env(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]);
    assert!(!never.contains('\u{1b}'), "--color never wins: {never:?}");
    let always = validate_with_color_env(&["--color", "always"], &[("NO_COLOR", "1")]);
    assert!(
        always.contains(RED_ERROR),
        "--color always wins: {always:?}"
    );
}

#[test]
fn run_against_an_unreachable_cluster_is_exit_3() {
    let dir = scratch_dir("unreachable");
    let kubeconfig = dir.join("kubeconfig");
    // Port 9 on loopback: nothing listens, so the connection is refused at once.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n\
         users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .expect("write kubeconfig");
    let out = shakedown(&[
        "--kubeconfig",
        kubeconfig.to_str().expect("utf8"),
        "--yes",
        // The scenario queries Prometheus: without one it would be invalid input.
        "--prometheus-url",
        "http://127.0.0.1:9",
        "--output-dir",
        dir.to_str().expect("utf8"),
        "run",
        "scenarios/pod-delete.yaml",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing was touched, and the evidence says why (issue 12: JUnit on every exit path
    // past argument parsing, so CI shows the cause instead of "no tests").
    let journal = std::fs::read_to_string(dir.join("latest/journal.jsonl")).expect("a journal");
    let last: serde_json::Value =
        serde_json::from_str(journal.lines().last().expect("records")).expect("json");
    assert_eq!(last["event"], "runFinished", "{journal}");
    assert_eq!(last["exitCode"], 3, "{journal}");
    assert!(
        !journal.contains("faultIntent"),
        "nothing was attempted: {journal}"
    );
    let junit = std::fs::read_to_string(dir.join("latest/junit.xml")).expect("junit.xml");
    assert!(
        junit.contains("cannot reach the API server at http://127.0.0.1:9/"),
        "{junit}"
    );
}

/// Failures are printed at one site: once, after `shakedown: `, with their causes.
#[test]
fn a_failure_is_printed_once_with_its_cause_chain() {
    let dir = scratch_dir("once");
    let missing = dir.join("no-such-kubeconfig");
    let out = shakedown(&[
        "--kubeconfig",
        missing.to_str().expect("utf8"),
        "--yes",
        // The scenario queries Prometheus: without one it would be invalid input.
        "--prometheus-url",
        "http://127.0.0.1:9",
        "--output-dir",
        dir.to_str().expect("utf8"),
        "run",
        "scenarios/pod-delete.yaml",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failure: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("could not connect to the cluster"))
        .collect();
    assert_eq!(failure.len(), 1, "{stderr}");
    assert!(
        failure[0]
            .starts_with("shakedown: could not connect to the cluster: cannot load kubeconfig")
            && failure[0].contains("No such file or directory"),
        "the root cause is named: {stderr}"
    );
    let report = shakedown(&["report", missing.to_str().expect("utf8")]);
    assert_eq!(report.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&report.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("shakedown: cannot read journal"),
        "{stderr}"
    );
}

#[test]
fn works_as_a_kubectl_plugin() {
    let dir = scratch_dir("plugin");
    let plugin = dir.join("kubectl-shakedown");
    std::fs::copy(env!("CARGO_BIN_EXE_shakedown"), &plugin).expect("install plugin");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("kubectl")
        .args(["shakedown", "validate", "scenarios/pod-delete.yaml"])
        // The example relies on the flag for its Prometheus (issue 11 item 5).
        .env("SHAKEDOWN_PROMETHEUS_URL", "http://127.0.0.1:9")
        .env("PATH", path)
        .output()
        .expect("kubectl is on PATH (scripts/test.sh installs it)");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: scenarios/pod-delete.yaml"));
    let bad = Command::new(&plugin)
        .args(["validate", "tests/fixtures/invalid/unknown-kind.yaml"])
        .output()
        .expect("plugin runs");
    assert_eq!(
        bad.status.code(),
        Some(2),
        "the exit-code contract holds under kubectl too"
    );
    // The plugin is a full copy of the binary (~75 MB): never leave it in /tmp.
    let _ = std::fs::remove_dir_all(&dir);
}

/// Regression: a closed stdout (`validate x | head -0`, `plan -o json | head -1`)
/// panicked with exit 101. The reader is gone before shakedown writes a byte, so every
/// write fails with a broken pipe; the exit code must still be the command's own.
#[test]
fn a_closed_stdout_never_turns_a_verdict_into_a_panic() {
    let cases: [(&[&str], i32); 5] = [
        (
            &[
                "--prometheus-url",
                "http://127.0.0.1:9",
                "validate",
                "scenarios/pod-delete.yaml",
            ],
            0,
        ),
        (
            &[
                "validate",
                "tests/fixtures/invalid/count-without-mode-count.yaml",
            ],
            2,
        ),
        (
            &[
                "plan",
                "-o",
                "json",
                "--kubeconfig",
                "/nonexistent",
                "experiments/gameday.yaml",
            ],
            0,
        ),
        (&["schema"], 0),
        (&["completions", "bash"], 0),
    ];
    for (args, code) in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shakedown"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A kubeconfig whose API server refuses connections at once (port 9 on loopback).
fn refusing_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n\
         users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .expect("write kubeconfig");
    kubeconfig
}

/// The run id a run folder's journal names.
fn run_id_in(folder: &std::path::Path) -> String {
    let journal = std::fs::read_to_string(folder.join("journal.jsonl")).expect("a journal");
    let first: serde_json::Value =
        serde_json::from_str(journal.lines().next().expect("records")).expect("json");
    first["runId"].as_str().expect("runId").to_owned()
}

/// Regression (issue 12): a second run into the same `--output-dir` silently overwrote
/// the first, and the layout changed with the number of files. Now every run has its own
/// `<output-dir>/<run-id>/`, one file or many, and `latest` points at the newest.
#[test]
fn every_run_keeps_its_own_folder_and_latest_points_at_the_newest() {
    let dir = scratch_dir("run-folders");
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let kubeconfig = refusing_kubeconfig(&dir);
    let run = |files: &[&str], junit: Option<&std::path::Path>| {
        let mut args = vec![
            "--kubeconfig",
            kubeconfig.to_str().expect("utf8"),
            "--yes",
            "--output-dir",
            out.to_str().expect("utf8"),
            // The scenarios query Prometheus: without one they are invalid input (exit 2)
            // before the cluster is contacted. Never reached: the API server is first.
            "--prometheus-url",
            "http://127.0.0.1:9",
            "run",
        ];
        if let Some(path) = junit {
            args.extend(["--junit", path.to_str().expect("utf8")]);
        }
        args.extend(files);
        let output = shakedown(&args);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let folders = || {
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .expect("output dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    run(&["scenarios/pod-delete.yaml"], None);
    let first = folders();
    assert_eq!(first.len(), 2, "one run folder and `latest`: {first:?}");
    let first_run = out.join(first.iter().find(|n| *n != "latest").expect("run folder"));
    let first_journal = std::fs::read(first_run.join("journal.jsonl")).expect("journal");

    let combined = dir.join("combined-junit.xml");
    run(
        &["scenarios/pod-delete.yaml", "scenarios/node-drain.yaml"],
        Some(&combined),
    );
    let all = folders();
    assert_eq!(all.len(), 4, "three run folders and `latest`: {all:?}");
    for name in all.iter().filter(|n| *n != "latest") {
        let folder = out.join(name);
        for file in ["journal.jsonl", "junit.xml", "summary.json", "report.md"] {
            assert!(folder.join(file).is_file(), "{name}/{file}");
        }
        assert_eq!(
            &run_id_in(&folder),
            name,
            "the folder is named after its run"
        );
    }
    assert_eq!(
        std::fs::read(first_run.join("journal.jsonl")).expect("journal"),
        first_journal,
        "the first run's evidence is untouched"
    );
    let latest = out.join("latest");
    let target = std::fs::read_link(&latest).expect("latest is a symlink");
    assert!(target.is_relative(), "{target:?}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(latest.join("summary.json")).expect("summary"),
    )
    .expect("json");
    assert_eq!(summary["experiment"], "zone-a-node-drain", "{summary}");
    assert!(
        !out.join("junit.xml").exists(),
        "nothing is written beside the run folders"
    );
    let junit = std::fs::read_to_string(&combined).expect("--junit writes the combined file");
    assert!(
        junit.contains("checkout-pod-delete") && junit.contains("zone-a-node-drain"),
        "{junit}"
    );
}

/// Issue 12: `validate` had no machine output. `-o json` and `-o yaml` print one
/// versioned `ValidationResult` on stdout (problems at file:line:column), with the same
/// exit code as the text output.
#[test]
fn validate_prints_a_versioned_validation_result_as_json_or_yaml() {
    let bad = "tests/fixtures/invalid/unknown-key-mode-typo.yaml";
    // The example relies on the flag for its Prometheus (issue 11 item 5).
    let flag = ["--prometheus-url", "http://127.0.0.1:9"];
    let out = shakedown(
        &[
            &flag[..],
            &["validate", "-o", "json", "scenarios/pod-delete.yaml", bad],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(json["apiVersion"], "shakedown.dev/v1");
    assert_eq!(json["kind"], "ValidationResult");
    assert_eq!(json["valid"], false);
    assert_eq!(
        json["files"][0],
        serde_json::json!({"path": "scenarios/pod-delete.yaml", "valid": true,
            "kind": "Scenario", "name": "checkout-pod-delete", "errors": []})
    );
    let problem = &json["files"][1]["errors"][0];
    assert_eq!(json["files"][1]["valid"], false);
    assert_eq!(problem["file"], bad);
    assert_eq!(
        (&problem["line"], &problem["column"]),
        (&12.into(), &7.into())
    );
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown key `modee`")),
        "{problem}"
    );
    let yaml = shakedown(
        &[
            &flag[..],
            &["validate", "-o", "yaml", "scenarios/pod-delete.yaml", bad],
        ]
        .concat(),
    );
    assert_eq!(yaml.status.code(), Some(2));
    let from_yaml: serde_json::Value =
        serde_saphyr::from_str(&String::from_utf8_lossy(&yaml.stdout)).expect("stdout is YAML");
    assert_eq!(from_yaml, json, "the same document either way");
    let ok = shakedown(
        &[
            &flag[..],
            &["validate", "-o", "json", "scenarios/pod-delete.yaml"],
        ]
        .concat(),
    );
    assert_eq!(ok.status.code(), Some(0));
    let ok: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("json");
    assert_eq!(ok["valid"], true);
}

/// Regression (issue 12): an unreachable API server took 26 s and then said
/// `ServiceError: client error (Connect)`. It now fails in about `--connect-timeout`
/// (2 s by default) with the address and kubectl's hint, and the reports still say why.
#[test]
fn an_unreachable_api_server_fails_fast_with_the_address_and_a_hint() {
    let dir = scratch_dir("fast-unreachable");
    let kubeconfig = refusing_kubeconfig(&dir);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--kubeconfig",
            kubeconfig.to_str().expect("utf8"),
            "--yes",
            "--output-dir",
            dir.to_str().expect("utf8"),
            "--prometheus-url",
            "http://127.0.0.1:9",
        ];
        args.extend(extra);
        args.extend(["run", "scenarios/pod-delete.yaml"]);
        let started = std::time::Instant::now();
        let out = shakedown(&args);
        (out, started.elapsed())
    };
    let (out, took) = run(&[]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the API server at http://127.0.0.1:9/ (context `x`)")
            && stderr.contains("is the cluster running? did you choose the right context?"),
        "{stderr}"
    );
    assert!(took < std::time::Duration::from_secs(8), "took {took:?}");
    let (out, took) = run(&["--connect-timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("within 300ms"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
}

/// Regression (issue 12): a missing file in `KUBECONFIG` was not named, and a wrong
/// context said only "failed to load current context".
#[test]
fn a_missing_kubeconfig_file_is_named_and_a_wrong_context_lists_the_real_ones() {
    let dir = scratch_dir("kubeconfig-errors");
    let kubeconfig = refusing_kubeconfig(&dir);
    let missing = dir.join("not-there.yaml");
    let listed = std::env::join_paths([&kubeconfig, &missing]).expect("join");
    let out = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .env("KUBECONFIG", &listed)
        .args(["--yes", "--prometheus-url", "http://127.0.0.1:9"])
        .args(["run", "scenarios/pod-delete.yaml"])
        .output()
        .expect("run shakedown");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "kubeconfig file {} (listed in $KUBECONFIG) does not exist",
            missing.display()
        )),
        "{stderr}"
    );
    let out = shakedown(&[
        "--kubeconfig",
        kubeconfig.to_str().expect("utf8"),
        "--context",
        "prod",
        "--yes",
        "--prometheus-url",
        "http://127.0.0.1:9",
        "run",
        "scenarios/pod-delete.yaml",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("context `prod` (--context) is not in the kubeconfig; available contexts: x"),
        "{stderr}"
    );
}

/// Regression (issue 12): `--yes`'s help said it was only for a context outside
/// `safety.allowedContexts`, but outside CI a listed context needs it too. The help now
/// says so and names every marker of the one CI detection (`run::ci::MARKERS`).
#[test]
fn yes_help_says_when_it_is_needed_and_names_every_ci_marker() {
    let out = shakedown(&["run", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("and outside CI"), "{help}");
    for marker in shakedown::run::ci::MARKERS {
        assert!(help.contains(marker), "{marker} is not named: {help}");
    }
}
