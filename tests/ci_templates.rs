//! The CI templates (issue 18 item 4) and the install kit (item 5), checked offline: the
//! GitHub composite action's shell steps, the GitLab template's script and the Jenkinsfile's
//! `sh` step run as written with each CI system's variables against a sandbox; their YAML
//! and the krew manifest parse and have the shape their systems require; the README's
//! busybox recipe for getting reports off a PVC is a pod a server accepts.

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use sandbox_bench::Bench;
use serde_json::Value;

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A pod-delete on the shop that CI may run unattended: the sandbox's context is allowed.
fn gate(b: &Bench, name: &str, namespace: &str) -> PathBuf {
    b.scenario_with(
        name,
        &format!("{{allowedNamespaces: [{namespace}], allowedContexts: [shakedown-sandbox]}}"),
        &format!(
            "  target: {{pods: {{namespace: {namespace}, selector: app=checkout, mode: one}}}}\n  fault: {{type: pod-delete}}\n"
        ),
    )
}

/// `script` as a CI system's shell runs it in `work`: the built binary on PATH, the
/// sandbox's kubeconfig, no CI marker but the ones given in `env`.
fn shell(
    b: &Bench,
    shell: &str,
    work: &Path,
    script: &str,
    env: &BTreeMap<String, String>,
) -> Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_shakedown"))
        .parent()
        .expect("binary dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new(shell);
    cmd.arg("-c")
        .arg(script)
        .current_dir(work)
        .env("PATH", path)
        .env("KUBECONFIG", &b.kubeconfig)
        .env_remove("SHAKEDOWN_PROMETHEUS_URL");
    for marker in shakedown::run::ci::MARKERS {
        cmd.env_remove(marker);
    }
    cmd.envs(env);
    cmd.output().expect("run the shell")
}

/// What one pass of the action left behind.
struct ActionRun {
    /// The `run` step's exit code.
    code: Option<i32>,
    /// Its stderr.
    stderr: String,
    outputs: String,
    summary: String,
}

/// The action's shell steps in order, as GitHub runs a composite action: a step without
/// `if: always()` is skipped once one has failed; `${{ inputs.x }}` in a step's `env`
/// is the input's value or default.
fn run_action(b: &Bench, work: &Path, inputs: &[(&str, &str)]) -> ActionRun {
    let action = yaml("action.yml");
    let mut values: BTreeMap<String, String> = action["inputs"]
        .as_object()
        .expect("inputs")
        .iter()
        .map(|(name, input)| {
            let default = input["default"].as_str().unwrap_or("").to_owned();
            (name.clone(), default)
        })
        .collect();
    for (name, value) in inputs {
        assert!(values.contains_key(*name), "the action has no input {name}");
        values.insert((*name).to_owned(), (*value).to_owned());
    }
    let files = ["outputs", "summary", "path"].map(|f| work.join(format!("github-{f}")));
    for file in &files {
        std::fs::write(file, "").expect("github file");
    }
    let root = std::env::current_dir().expect("cwd");
    let mut failed = false;
    let mut run = None;
    for step in action["runs"]["steps"].as_array().expect("steps") {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        assert_eq!(
            step["shell"], "bash",
            "a composite step names its shell: {step}"
        );
        assert!(
            !script.contains("${{"),
            "inputs reach scripts through env, never pasted in: {script}"
        );
        if failed && step["if"] != "always()" {
            continue;
        }
        let mut env: BTreeMap<String, String> = [
            ("CI", "true"),
            ("GITHUB_ACTIONS", "true"),
            ("RUNNER_TEMP", &work.display().to_string()),
            ("GITHUB_ACTION_PATH", &root.display().to_string()),
            ("GITHUB_OUTPUT", &files[0].display().to_string()),
            ("GITHUB_STEP_SUMMARY", &files[1].display().to_string()),
            ("GITHUB_PATH", &files[2].display().to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
        for (name, value) in step["env"].as_object().into_iter().flatten() {
            let mut value = value.as_str().expect("env values are strings").to_owned();
            for (input, given) in &values {
                value = value.replace(&format!("${{{{ inputs.{input} }}}}"), given);
            }
            assert!(
                !value.contains("${{"),
                "unknown expression in {name}: {value}"
            );
            env.insert(name.clone(), value);
        }
        let out = shell(b, "bash", work, script, &env);
        if step["id"] == "run" {
            run = Some(out.clone());
        } else {
            assert!(out.status.success(), "{}:\n{}", step["name"], show(&out));
        }
        failed |= !out.status.success();
    }
    let run = run.expect("the action has a step with id `run`");
    let read = |f: &Path| std::fs::read_to_string(f).expect("read");
    ActionRun {
        code: run.status.code(),
        stderr: String::from_utf8_lossy(&run.stderr).into_owned(),
        outputs: read(&files[0]),
        summary: read(&files[1]),
    }
}

#[test]
fn templates_and_krew_manifest_have_the_shape_their_systems_need() {
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    assert_eq!(action["inputs"]["experiment"]["required"], true);
    assert_eq!(
        action["outputs"]["exit-code"]["value"],
        "${{ steps.run.outputs.exit-code }}"
    );
    let steps = action["runs"]["steps"].as_array().expect("steps");
    let artifact = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("the action uploads the reports");
    assert_eq!(artifact["if"], "always()");
    assert_eq!(artifact["with"]["path"], "${{ inputs.output-dir }}");
    assert!(
        steps.iter().any(|s| s["if"] == "always()"
            && s["run"]
                .as_str()
                .is_some_and(|r| r.contains("GITHUB_STEP_SUMMARY"))),
        "the summary is written on every outcome"
    );

    let gitlab = yaml("ci/gitlab/shakedown.gitlab-ci.yml");
    let job = &gitlab[".shakedown"];
    assert_eq!(job["artifacts"]["when"], "always");
    assert_eq!(job["artifacts"]["reports"]["junit"], "reports/junit.xml");
    assert_eq!(job["variables"]["SHAKEDOWN_OUTPUT_DIR"], "reports");
    assert!(job["artifacts"]["paths"][0] == "reports/", "{job}");

    let jenkins = std::fs::read_to_string("ci/jenkins/Jenkinsfile").expect("Jenkinsfile");
    let post = &jenkins[jenkins.find("post {").expect("a post block")..];
    assert!(post.contains("always {") && post.contains("junit testResults: 'reports/junit.xml'"));

    let krew = yaml("deploy/krew/shakedown.yaml");
    assert_eq!(
        krew["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(krew["kind"], "Plugin");
    assert_eq!(krew["metadata"]["name"], "shakedown");
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(krew["spec"]["version"], version.as_str());
    assert!(
        krew["spec"]["shortDescription"]
            .as_str()
            .expect("short")
            .len()
            <= 50
    );
    let mut arches = Vec::new();
    for platform in krew["spec"]["platforms"].as_array().expect("platforms") {
        let labels = &platform["selector"]["matchLabels"];
        assert_eq!(labels["os"], "linux");
        let arch = labels["arch"].as_str().expect("arch");
        arches.push(arch.to_owned());
        let triple = match arch {
            "amd64" => "x86_64-unknown-linux-musl",
            "arm64" => "aarch64-unknown-linux-musl",
            other => panic!("unexpected arch {other}"),
        };
        let uri = platform["uri"].as_str().expect("uri");
        assert!(
            uri.starts_with("https://")
                && uri.contains(&format!("/{version}/"))
                && uri.ends_with(&format!("{triple}.tar.gz")),
            "{uri}"
        );
        let sha = platform["sha256"].as_str().expect("sha256");
        assert!(
            sha.len() == 64 && sha.bytes().all(|c| c.is_ascii_hexdigit()),
            "{sha}"
        );
        assert_eq!(platform["bin"], "shakedown");
        assert_eq!(platform["files"][0]["from"], "shakedown");
    }
    assert_eq!(arches, ["amd64", "arm64"]);

    // The image builds both arches from buildx's TARGETARCH, static, on an empty base.
    let containerfile = std::fs::read_to_string("deploy/Containerfile").expect("Containerfile");
    for needed in [
        "ARG TARGETARCH",
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "+crt-static",
        "FROM scratch",
        "USER 65532:65532",
    ] {
        assert!(
            containerfile.contains(needed),
            "Containerfile lacks {needed}"
        );
    }
    let ignored = std::fs::read_to_string(".dockerignore").expect(".dockerignore");
    assert!(
        ignored.lines().any(|l| l == "target/"),
        "the build context skips target/"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_action_steps_run_the_gate_and_write_the_step_summary() {
    let b = Bench::new("ci-action").await;
    let work = b.dir.clone();
    let passing = gate(&b, "gate", "shop");
    // An upload target that refuses connections: the step still passes, and says so.
    let run = run_action(
        &b,
        &work,
        &[
            ("experiment", passing.to_str().expect("utf-8")),
            ("upload", "http://127.0.0.1:1/ci"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report = std::fs::read_to_string(work.join("reports/latest/report.md")).expect("report");
    assert_eq!(run.summary, report, "the step summary is the run's report");
    assert!(
        work.join("reports/junit.xml").is_file(),
        "no reports/junit.xml"
    );
    assert!(
        run.outputs.contains("exit-code=0\n")
            && run.outputs.contains("report-dir=reports/latest\n"),
        "{}",
        run.outputs
    );
    assert!(
        run.stderr.contains("the upload to http://127.0.0.1:1/ci/"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("--yes"),
        "CI with an allowed context: {}",
        run.stderr
    );

    // A gate that cannot run fails the step with exit 3, and the summary still says why.
    std::fs::remove_dir_all(work.join("reports")).expect("clean");
    let nowhere = gate(&b, "nowhere", "nowhere");
    let run = run_action(
        &b,
        &work,
        &[("experiment", nowhere.to_str().expect("utf-8"))],
    );
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.outputs.contains("exit-code=3\n"), "{}", run.outputs);
    let report = std::fs::read_to_string(work.join("reports/latest/report.md")).expect("report");
    assert!(
        !report.is_empty() && run.summary == report,
        "{}",
        run.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_template_and_jenkinsfile_run_the_gate() {
    let b = Bench::new("ci-gitlab-jenkins").await;
    let scenario = gate(&b, "gate", "shop");

    // GitLab: the job's variables, then before_script and script in one shell.
    let gitlab = yaml("ci/gitlab/shakedown.gitlab-ci.yml");
    let job = &gitlab[".shakedown"];
    let mut env: BTreeMap<String, String> = job["variables"]
        .as_object()
        .expect("variables")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
        .collect();
    env.insert(
        "SHAKEDOWN_EXPERIMENT".into(),
        scenario.display().to_string(),
    );
    env.insert("GITLAB_CI".into(), "true".into());
    env.insert("CI".into(), "true".into());
    let work = b.dir.join("gitlab");
    std::fs::create_dir_all(&work).expect("work");
    for line in job["before_script"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(job["script"].as_array().expect("script"))
    {
        let out = shell(&b, "sh", &work, line.as_str().expect("a command"), &env);
        assert!(out.status.success(), "GitLab: {line}:\n{}", show(&out));
    }
    let junit = job["artifacts"]["reports"]["junit"]
        .as_str()
        .expect("junit");
    assert!(work.join(junit).is_file(), "GitLab: no {junit}");

    // Jenkins: the `environment` block's values, then every `sh '…'` step.
    let jenkins = std::fs::read_to_string("ci/jenkins/Jenkinsfile").expect("Jenkinsfile");
    let mut env = BTreeMap::new();
    let mut commands = Vec::new();
    for line in jenkins.lines().map(str::trim) {
        if let Some((name, value)) = line.split_once(" = ")
            && name.starts_with("SHAKEDOWN_")
        {
            env.insert(name.to_owned(), value.trim_matches('\'').to_owned());
        } else if let Some(command) = line.strip_prefix("sh '").and_then(|l| l.strip_suffix('\'')) {
            commands.push(command.to_owned());
        }
    }
    env.insert(
        "SHAKEDOWN_EXPERIMENT".into(),
        scenario.display().to_string(),
    );
    env.insert("JENKINS_URL".into(), "http://127.0.0.1:1/".into());
    let work = b.dir.join("jenkins");
    std::fs::create_dir_all(&work).expect("work");
    assert!(!commands.is_empty(), "no sh step in the Jenkinsfile");
    for command in &commands {
        let out = shell(&b, "sh", &work, command, &env);
        assert!(out.status.success(), "Jenkins: {command}:\n{}", show(&out));
    }
    assert!(
        work.join("reports/junit.xml").is_file(),
        "Jenkins: no reports/junit.xml"
    );
    assert!(
        b.handle
            .request_log()
            .iter()
            .filter(|r| r.method == "DELETE" && r.path.starts_with("/api/v1/namespaces/shop/pods/"))
            .count()
            >= 2,
        "both pipelines deleted a pod"
    );
}

/// The README's busybox pod for reading a reports PVC: a server takes it as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_report_fetch_pod_is_accepted_by_the_api_server() {
    let b = Bench::new("ci-fetch").await;
    let readme = std::fs::read_to_string("README.md").expect("README");
    let start = readme
        .find("kubectl -n chaos apply -f - <<'EOF'\n")
        .expect("the README's fetch recipe");
    let body = &readme[start..];
    let body = &body[body.find('\n').expect("line") + 1..];
    let pod = &body[..body.find("\nEOF\n").expect("heredoc end")];
    let parsed: Value = serde_saphyr::from_str(pod).expect("the recipe's pod is YAML");
    let container = &parsed["spec"]["containers"][0];
    assert!(
        container["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("busybox"))
    );
    assert_eq!(
        parsed["spec"]["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    let kubectl = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write as _;
        let mut child = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&b.kubeconfig)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write");
        }
        child.wait_with_output().expect("kubectl output")
    };
    let out = kubectl(&["create", "namespace", "chaos"], None);
    assert!(out.status.success(), "{}", show(&out));
    let out = kubectl(
        &["-n", "chaos", "apply", "--dry-run=server", "-f", "-"],
        Some(pod),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("pod/shakedown-reports created (server dry run)"),
        "{}",
        show(&out)
    );
}
