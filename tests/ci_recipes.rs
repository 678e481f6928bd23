//! The README's CI recipes, run as written. The "## CI recipes" section's three blocks
//! (GitHub Actions, GitLab, Jenkins) are parsed, and every shell command they give is run
//! verbatim with `sh -c` in a scratch checkout, with the built `shakedown` on PATH, the CI
//! system's own environment markers, and `KUBECONFIG` pointing at a sandbox (context
//! `staging`, so the release gate's `allowedContexts` lets CI run it without `--yes`)
//! whose shop a real Prometheus scrapes every second.
//!
//! experiments/release-gate.yaml runs for minutes against an in-cluster Prometheus, so the
//! checkout gets a test-sized copy derived from the real file and the scenarios it
//! includes: the same steps and hypotheses, durations shortened, and the Prometheus URL
//! replaced by the test's on 127.0.0.1 (nothing may leave the machine).
//!
//! This is also the acceptance's release-gate example end to end: exit code, the JUnit
//! file read by `junitparser`, the Markdown report, the step summary, and `-o json`.

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use shakedown::demo::{LocalPrometheus, find_prometheus};
use shakedown_sandbox::{self as sandbox, SandboxHandle};

const README: &str = include_str!("../README.md");

/// One CI system's recipe, as the README gives it.
struct Recipe {
    name: &'static str,
    /// Shell commands in order, each with the step's own environment.
    commands: Vec<(String, Vec<(String, String)>)>,
    /// Where the CI system looks for the JUnit file.
    junit: String,
    /// Other paths the recipe relies on after the run (GitLab's `artifacts:paths`).
    paths: Vec<String>,
}

/// The fenced blocks of the README's "## CI recipes" section, keyed by the line before.
fn recipe_blocks() -> Vec<(String, String)> {
    let start = README
        .find("\n## CI recipes\n")
        .expect("README has a \"## CI recipes\" section");
    let section = &README[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut blocks = Vec::new();
    let mut label = String::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("```") {
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            blocks.push((label.clone(), body.join("\n")));
        } else if !line.trim().is_empty() {
            label = line.trim().trim_end_matches(':').to_string();
        }
    }
    blocks
}

fn block(label: &str) -> String {
    recipe_blocks()
        .into_iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no {label} block in the README's CI recipes"))
        .1
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("the recipe is YAML")
}

fn github() -> Recipe {
    let steps = yaml(&block("GitHub Actions"));
    let steps = steps.as_array().expect("GitHub Actions steps are a list");
    let mut commands = Vec::new();
    let mut junit = None;
    for step in steps {
        if let Some(run) = step["run"].as_str() {
            let env = step["env"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().expect("env values are strings").into(),
                    )
                })
                .collect();
            commands.push((run.to_string(), env));
        }
        if let Some(paths) = step["with"]["report_paths"].as_str() {
            junit = Some(paths.to_string());
        }
    }
    Recipe {
        name: "GitHub Actions",
        commands,
        junit: junit.expect("the GitHub recipe publishes the JUnit file"),
        paths: Vec::new(),
    }
}

fn gitlab() -> Recipe {
    let jobs = yaml(&block("GitLab"));
    let job = jobs
        .as_object()
        .and_then(|jobs| jobs.values().next())
        .expect("one GitLab job");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().expect("a string").to_string())
            .collect()
    };
    Recipe {
        name: "GitLab",
        commands: strings(&job["script"])
            .into_iter()
            .map(|c| (c, Vec::new()))
            .collect(),
        junit: job["artifacts"]["reports"]["junit"]
            .as_str()
            .expect("artifacts:reports:junit")
            .to_string(),
        paths: strings(&job["artifacts"]["paths"]),
    }
}

fn jenkins() -> Recipe {
    let text = block("Jenkins");
    let quoted = |line: &str, step: &str| -> Option<String> {
        let rest = line.trim().strip_prefix(step)?.trim();
        Some(rest.strip_prefix('\'')?.strip_suffix('\'')?.to_string())
    };
    Recipe {
        name: "Jenkins",
        commands: text
            .lines()
            .filter_map(|l| quoted(l, "sh "))
            .map(|c| (c, Vec::new()))
            .collect(),
        junit: text
            .lines()
            .find_map(|l| quoted(l, "junit "))
            .expect("the Jenkins recipe has a junit step"),
        paths: Vec::new(),
    }
}

/// Sets `path` (keys, or indexes into lists) in `doc`, which must already have it: when
/// the real file changes shape, this fails instead of running something else.
fn set(doc: &mut Value, path: &[&str], value: Value) {
    let mut node = &mut *doc;
    for key in path {
        node = match key.parse::<usize>() {
            Ok(i) => node.get_mut(i),
            Err(_) => node.get_mut(*key),
        }
        .unwrap_or_else(|| panic!("the shipped spec has no {path:?}"));
    }
    *node = value;
}

/// Writes the test-sized release gate (and the scenarios it includes) under `dir`,
/// keeping the shipped layout so the README's paths and the `../scenarios/` references
/// are the real ones. Returns every PromQL query they hold.
fn derive_release_gate(dir: &Path, prometheus_url: &str) -> Vec<String> {
    let read = |path: &str| -> Value {
        serde_saphyr::from_str(
            &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
                .expect("shipped spec"),
        )
        .expect("shipped spec is YAML")
    };
    let mut gate = read("experiments/release-gate.yaml");
    set(
        &mut gate,
        &["spec", "prometheus", "url"],
        prometheus_url.into(),
    );
    set(
        &mut gate,
        &["spec", "hypotheses", "0", "every"],
        "1s".into(),
    );
    set(&mut gate, &["spec", "steps", "1", "pause"], "1s".into());
    let steps: Vec<String> = gate["spec"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["scenario"].as_str().map(String::from))
        .collect();
    assert_eq!(
        steps,
        [
            "../scenarios/pod-delete.yaml",
            "../scenarios/network-latency.yaml"
        ],
        "release-gate.yaml's steps changed: update this test's shortening"
    );

    let mut pod_delete = read("scenarios/pod-delete.yaml");
    set(&mut pod_delete, &["spec", "fault", "interval"], "2s".into());
    set(&mut pod_delete, &["spec", "fault", "duration"], "4s".into());
    set(
        &mut pod_delete,
        &["spec", "fault", "gracePeriod"],
        "1s".into(),
    );
    set(
        &mut pod_delete,
        &["spec", "hypotheses", "0", "every"],
        "1s".into(),
    );
    set(
        &mut pod_delete,
        &["spec", "recovery", "within"],
        "30s".into(),
    );
    set(
        &mut pod_delete,
        &["spec", "recovery", "settle"],
        "1s".into(),
    );

    let mut latency = read("scenarios/network-latency.yaml");
    set(&mut latency, &["spec", "fault", "duration"], "3s".into());
    set(
        &mut latency,
        &["spec", "hypotheses", "0", "every"],
        "1s".into(),
    );
    set(&mut latency, &["spec", "recovery", "within"], "30s".into());

    let mut queries = Vec::new();
    for (path, doc) in [
        ("experiments/release-gate.yaml", &gate),
        ("scenarios/pod-delete.yaml", &pod_delete),
        ("scenarios/network-latency.yaml", &latency),
    ] {
        let text = serde_json::to_string_pretty(doc).expect("json");
        // Every URL in what the gate reads is the test's Prometheus on loopback.
        for (at, _) in text.match_indices("://") {
            assert!(
                text[at + 3..].starts_with("127.0.0.1:"),
                "{path} would reach beyond 127.0.0.1: {}",
                &text[at.saturating_sub(8)..(at + 40).min(text.len())]
            );
        }
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("spec dir");
        // JSON is YAML; the test reads it back as any user's file would be read.
        std::fs::write(target, text).expect("write derived spec");
        let hypotheses = doc["spec"]["hypotheses"].as_array().expect("hypotheses");
        queries.extend(
            hypotheses
                .iter()
                .filter_map(|h| h["promql"].as_str().map(String::from)),
        );
    }
    queries
}

struct Bench {
    handle: SandboxHandle,
    prometheus: LocalPrometheus,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Drop for Bench {
    /// A failed test keeps its files (reports, journal, Prometheus log) to look at.
    fn drop(&mut self) {
        self.prometheus.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn bench() -> Bench {
    let mut shop = common::fast_shop();
    // A staging catalog runs at least two pods; with the sandbox's one, the gate's 50 %
    // of catalog would be more than its `maxTargetPercent: 50%` allows.
    shop.deployments
        .iter_mut()
        .find(|d| d.name == "catalog")
        .expect("catalog in the shop")
        .replicas = 2;
    let handle = sandbox::start(shop, 0).await.expect("sandbox starts");
    let dir = std::env::temp_dir().join(format!("shakedown-ci-recipes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp");
    // The pipeline's cluster is `staging`, the one context the release gate allows.
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        handle
            .kubeconfig_yaml()
            .replace("shakedown-sandbox", "staging"),
    )
    .expect("kubeconfig");
    let binary = find_prometheus().unwrap_or_else(|| {
        panic!("prometheus is not installed: run scripts/test.sh, which installs Debian's `prometheus` package")
    });
    let prom_dir = dir.join("prometheus");
    std::fs::create_dir_all(&prom_dir).expect("prometheus dir");
    let mut prometheus = LocalPrometheus::start(&binary, &prom_dir, &handle.addr.to_string())
        .await
        .expect("prometheus starts");
    // Until every query of the gate has a value: its baseline must not be judged on
    // a Prometheus that has not scraped twice yet.
    for query in derive_release_gate(&dir.join("probe"), &prometheus.url) {
        prometheus
            .wait_for(&query, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("prometheus never answered {query}: {e}"));
    }
    Bench {
        handle,
        prometheus,
        dir,
        kubeconfig,
    }
}

impl Bench {
    /// A fresh checkout for one pipeline: the derived specs, nothing else.
    fn checkout(&self, name: &str) -> PathBuf {
        let work = self.dir.join(name.replace(' ', "-"));
        derive_release_gate(&work, &self.prometheus.url);
        work
    }

    /// `command` as the CI system's shell would run it in `work`.
    fn sh(&self, work: &Path, command: &str, env: &[(String, String)]) -> tokio::process::Command {
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_shakedown"))
            .parent()
            .expect("binary dir");
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(work)
            .env("PATH", path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("SHAKEDOWN_PROMETHEUS_URL")
            .env_remove("SHAKEDOWN_PROMETHEUS_TOKEN")
            .kill_on_drop(true);
        for marker in shakedown::run::ci::MARKERS {
            cmd.env_remove(marker);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

fn python() -> String {
    std::env::var("SHAKEDOWN_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// What `junitparser` reads in `file`: `tests=N failures=N errors=N skipped=N`.
fn junitparser_totals(file: &Path) -> String {
    let script = r#"
import sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
t = f = e = s = 0
for suite in xml:
    t += suite.tests; f += suite.failures; e += suite.errors; s += suite.skipped
print("tests=%d failures=%d errors=%d skipped=%d" % (t, f, e, s))
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; install python3", python()));
    assert!(
        out.status.success(),
        "junitparser could not read {}: {} (scripts/test.sh installs junitparser)",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `recipe` in its own checkout and checks what its CI system relies on.
async fn run_recipe(b: &Bench, recipe: &Recipe, markers: &[(&str, &str)]) -> PathBuf {
    let work = b.checkout(recipe.name);
    let summary = work.join("step-summary.md");
    let mut markers: Vec<(String, String)> = markers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if recipe.name == "GitHub Actions" {
        markers.push(("GITHUB_STEP_SUMMARY".into(), summary.display().to_string()));
    }
    assert!(
        recipe
            .commands
            .iter()
            .any(|(c, _)| c.starts_with("shakedown run ")),
        "{}: no `shakedown run` command in {:?}",
        recipe.name,
        recipe.commands
    );
    let mut gate = None;
    for (command, step_env) in &recipe.commands {
        let mut env = markers.clone();
        env.extend(step_env.iter().cloned());
        let out = b
            .sh(&work, command, &env)
            .output()
            .await
            .expect("run the recipe's command");
        if command.starts_with("shakedown ") {
            // The documented contract: 0 lets the release through, and a healthy shop passes.
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: `{command}` on a healthy shop:\n{}",
                recipe.name,
                show(&out)
            );
            gate = Some(out);
        } else {
            assert!(
                out.status.success(),
                "{}: `{command}`:\n{}",
                recipe.name,
                show(&out)
            );
        }
    }
    let gate = gate.expect("the gate ran");
    let stderr = String::from_utf8_lossy(&gate.stderr);
    assert!(
        !stderr.contains("--yes"),
        "{}: CI with an allowed context must not ask for --yes:\n{stderr}",
        recipe.name
    );

    let junit = work.join(&recipe.junit);
    assert!(junit.is_file(), "{}: no {}", recipe.name, recipe.junit);
    let totals = junitparser_totals(&junit);
    assert!(
        totals.ends_with("failures=0 errors=0 skipped=0") && !totals.starts_with("tests=0 "),
        "{}: {} reads {totals}",
        recipe.name,
        recipe.junit
    );
    for path in &recipe.paths {
        assert!(work.join(path).exists(), "{}: no {path}", recipe.name);
    }
    let report = std::fs::read_to_string(work.join("reports/latest/report.md"))
        .unwrap_or_else(|e| panic!("{}: reports/latest/report.md: {e}", recipe.name));
    assert!(report.contains("release-gate"), "{report}");
    if recipe.name == "GitHub Actions" {
        let appended = std::fs::read_to_string(&summary).expect("the step summary was written");
        assert_eq!(appended, report, "the step summary is the run's report");
        // GitHub drops a step summary over 1 MiB.
        assert!(
            report.len() < 1 << 20,
            "report.md is {} bytes",
            report.len()
        );
    }
    work
}

/// The three recipes one after another (a run locks its targets), then the gate's
/// command once more with `-o json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_ci_recipes_run_the_release_gate_end_to_end() {
    let b = bench().await;

    let github = github();
    let work = run_recipe(&b, &github, &[("CI", "true"), ("GITHUB_ACTIONS", "true")]).await;
    run_recipe(&b, &gitlab(), &[("GITLAB_CI", "true"), ("CI", "true")]).await;
    // Jenkins sets no CI variable, only its URL.
    run_recipe(&b, &jenkins(), &[("JENKINS_URL", "http://127.0.0.1:1/")]).await;

    let (gate, env) = github
        .commands
        .iter()
        .find(|(c, _)| c.starts_with("shakedown run "))
        .expect("the gate command");
    let mut env = env.clone();
    env.push(("GITHUB_ACTIONS".into(), "true".into()));
    let out = b
        .sh(&work, &format!("{gate} -o json"), &env)
        .output()
        .await
        .expect("run with -o json");
    let result: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("-o json prints JSON ({e}):\n{}", show(&out)));
    assert_eq!(result["apiVersion"], "shakedown.dev/v1", "{result}");
    assert_eq!(result["kind"], "RunResult", "{result}");
    assert_eq!(
        result["exitCode"].as_i64(),
        out.status.code().map(i64::from),
        "{result}"
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let run = &result["runs"][0];
    assert_eq!(run["verdict"], "PASSED", "{run}");
    assert_eq!(run["exitCode"], 0, "{run}");
    assert_eq!(run["context"], "staging", "{run}");
    assert_eq!(run["resilienceScore"]["score"], 1.0, "{run}");
    // The gate really faulted the shop: checkout pods were deleted.
    assert!(
        b.handle
            .request_log()
            .iter()
            .any(|r| r.method == "DELETE"
                && r.path.starts_with("/api/v1/namespaces/shop/pods/checkout")),
        "no checkout pod was deleted"
    );
}
