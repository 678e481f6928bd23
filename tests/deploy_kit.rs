//! The deploy kit as a user applies it (issue 18): every overlay, built with plain
//! `kubectl kustomize`, goes through `kubectl apply --dry-run=server` against the
//! sandbox with Pod Security `restricted` enforced and warned on its namespace,
//! without a single warning, with the oldest and newest kubectl; the same kit
//! without `seccompProfile` draws the warning a real API server gives for a Job or
//! CronJob (and its pod is refused); and applied for real, the release gate's Job
//! gets its pod and its report claim is bound. Each overlay's experiment validates
//! in the layout the pod sees (workingDir /kit, ConfigMaps mounted side by side).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use shakedown_sandbox::SandboxHandle;

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;

const OVERLAYS: [&str; 3] = ["release-gate", "gameday", "dr-drill"];
const SECCOMP_WARNING: &str = "Warning: would violate PodSecurity \"restricted:latest\": seccompProfile (pod or container \"shakedown\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";

/// One kubectl binary against one sandbox, with its own home and cache.
struct Kubectl {
    bin: PathBuf,
    home: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn new(bin: &Path, handle: &SandboxHandle, tag: &str) -> Self {
        let home = std::env::temp_dir().join(format!(
            "shakedown-kit-{tag}-{}-{}",
            std::process::id(),
            handle.addr.port()
        ));
        std::fs::create_dir_all(&home).expect("temp home");
        let kubeconfig = home.join("kubeconfig");
        handle.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Self {
            bin: bin.to_owned(),
            home,
            kubeconfig,
        }
    }

    fn label(&self) -> String {
        self.bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `kubectl ARGS` with `stdin` on its standard input.
    async fn run(&self, args: &[&str], stdin: &str) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.as_bytes())
            .await
            .expect("write stdin");
        drop(input);
        tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{} {args:?} hung", self.label()))
            .expect("kubectl output")
    }

    /// The overlay as plain `kubectl kustomize` builds it (no cluster involved).
    async fn build(&self, overlay: &str) -> String {
        let dir = format!("deploy/overlays/{overlay}");
        let out = self.run(&["kustomize", &dir], "").await;
        assert!(
            out.status.success(),
            "{}: {}",
            self.label(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    async fn apply(&self, manifest: &str, extra: &[&str]) -> Output {
        let mut args = vec!["apply", "-f", "-"];
        args.extend_from_slice(extra);
        self.run(&args, manifest).await
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn docs(manifest: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(manifest).expect("kustomize output parses")
}

/// Documents as one `v1/List`, the form `kubectl apply -f -` takes as JSON.
fn as_list(items: Vec<Value>) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// A started, settled sandbox with the kit's namespace (from deploy/base, so its
/// Pod Security labels are the kit's own) created for real: a server-side dry run
/// cannot put objects in a namespace it only pretends to create.
async fn sandbox_with_kit_namespace(kubectl_bin: &Path, tag: &str) -> (SandboxHandle, Kubectl) {
    let handle = shakedown_sandbox::start(common::fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let kubectl = Kubectl::new(kubectl_bin, &handle, tag);
    let namespace = std::fs::read_to_string("deploy/base/namespace.yaml").expect("namespace");
    let out = kubectl.apply(&namespace, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored = handle
        .objects("namespaces", None)
        .into_iter()
        .find(|n| n["metadata"]["name"] == "chaos")
        .expect("chaos exists");
    for mode in ["enforce", "warn"] {
        assert_eq!(
            stored["metadata"]["labels"][format!("pod-security.kubernetes.io/{mode}")],
            "restricted"
        );
    }
    (handle, kubectl)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_overlay_applies_server_side_under_restricted_with_no_warning() {
    for bin in common::kubectls() {
        let (handle, kubectl) = sandbox_with_kit_namespace(&bin, "clean").await;
        let label = kubectl.label();
        for overlay in OVERLAYS {
            let manifest = kubectl.build(overlay).await;
            let out = kubectl.apply(&manifest, &["--dry-run=server"]).await;
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            assert!(
                out.status.success(),
                "{label} {overlay}: {stdout}\n{stderr}"
            );
            assert!(
                !stderr.contains("Warning"),
                "{label} {overlay}: no warning expected: {stderr}"
            );
            let workload = if overlay == "gameday" {
                "cronjob.batch/shakedown-gameday"
            } else {
                &format!("job.batch/shakedown-{overlay}")
            };
            for object in [
                workload,
                &format!("persistentvolumeclaim/shakedown-reports-{overlay}"),
                "serviceaccount/shakedown",
                "clusterrole.rbac.authorization.k8s.io/shakedown-target",
                "rolebinding.rbac.authorization.k8s.io/shakedown-target",
            ] {
                assert!(
                    stdout.contains(&format!("{object} created (server dry run)")),
                    "{label} {overlay}: {object} in\n{stdout}"
                );
            }
            assert!(
                stdout.contains("namespace/chaos"),
                "{label} {overlay}: {stdout}"
            );
        }
        for kind in ["jobs", "cronjobs", "persistentvolumeclaims", "configmaps"] {
            assert_eq!(
                handle.objects(kind, Some("chaos")),
                Vec::<Value>::new(),
                "{label}: a dry run stores no {kind}"
            );
        }
    }
}

/// Every `seccompProfile` of every pod template (pod and container level) removed.
fn without_seccomp(mut doc: Value) -> Value {
    let template = match doc["kind"].as_str() {
        Some("Job") => &mut doc["spec"]["template"]["spec"],
        Some("CronJob") => &mut doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => return doc,
    };
    strip_seccomp(template);
    doc
}

fn strip_seccomp(spec: &mut Value) {
    if let Some(context) = spec["securityContext"].as_object_mut() {
        context.remove("seccompProfile");
    }
    for container in spec["containers"].as_array_mut().into_iter().flatten() {
        if let Some(context) = container["securityContext"].as_object_mut() {
            context.remove("seccompProfile");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlay_without_seccomp_profile_draws_the_pod_security_warning_naming_it() {
    for bin in common::kubectls() {
        let (handle, kubectl) = sandbox_with_kit_namespace(&bin, "seccomp").await;
        let label = kubectl.label();
        for overlay in ["release-gate", "gameday"] {
            let manifest = kubectl.build(overlay).await;
            let loosened = as_list(docs(&manifest).into_iter().map(without_seccomp).collect());
            let out = kubectl.apply(&loosened, &["--dry-run=server"]).await;
            let stderr = text(&out.stderr);
            // A workload is admitted (enforcement applies to its pods) and warned about.
            assert!(out.status.success(), "{label} {overlay}: {stderr}");
            assert!(
                stderr.contains(SECCOMP_WARNING),
                "{label} {overlay}: the warning names seccompProfile: {stderr}"
            );
            assert_eq!(
                stderr.matches("would violate PodSecurity").count(),
                1,
                "{label} {overlay}: only the workload is warned about: {stderr}"
            );
        }

        // Its pod, on its own, is refused under `enforce`, in the plugin's words.
        let manifest = kubectl.build("release-gate").await;
        let job = docs(&manifest)
            .into_iter()
            .find(|d| d["kind"] == "Job")
            .expect("the release gate's Job");
        let mut spec = job["spec"]["template"]["spec"].clone();
        strip_seccomp(&mut spec);
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "loose", "namespace": "chaos"}, "spec": spec});
        let out = kubectl.apply(&pod.to_string(), &[]).await;
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{label}: the pod is refused");
        assert!(
            stderr.contains("pods \"loose\" is forbidden: violates PodSecurity \"restricted:latest\": seccompProfile (pod or container \"shakedown\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"),
            "{label}: {stderr}"
        );
        assert!(handle.object("pods", "chaos", "loose").is_none());
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn applied_for_real_the_release_gate_job_runs_its_pod_with_a_bound_report_claim() {
    let bin = common::kubectls().remove(0);
    let (handle, kubectl) = sandbox_with_kit_namespace(&bin, "real").await;
    let manifest = kubectl.build("release-gate").await;
    let out = kubectl.apply(&manifest, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("Warning"),
        "{}",
        text(&out.stderr)
    );

    wait_for("the report claim to bind", || {
        handle
            .object(
                "persistentvolumeclaims",
                "chaos",
                "shakedown-reports-release-gate",
            )
            .is_some_and(|c| c["status"]["phase"] == "Bound")
    })
    .await;
    wait_for("the Job's pod to be ready", || {
        handle
            .object("jobs", "chaos", "shakedown-release-gate")
            .is_some_and(|j| j["status"]["active"] == 1 && j["status"]["ready"] == 1)
    })
    .await;
    let pods = handle.objects("pods", Some("chaos"));
    assert_eq!(pods.len(), 1, "one pod: {pods:?}");
    let pod = &pods[0];
    assert_eq!(
        pod["metadata"]["labels"]["job-name"],
        "shakedown-release-gate"
    );
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    assert_eq!(pod["spec"]["serviceAccountName"], "shakedown");
    let claim = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "reports")
        .expect("a reports volume");
    assert_eq!(
        claim["persistentVolumeClaim"]["claimName"],
        "shakedown-reports-release-gate"
    );

    let out = kubectl
        .run(&["get", "jobs,cronjobs,pvc", "-n", "chaos"], "")
        .await;
    let listed = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for row in [
        "job.batch/shakedown-release-gate   Running   0/1",
        "persistentvolumeclaim/shakedown-reports-release-gate   Bound",
    ] {
        let squeezed = listed.split_whitespace().collect::<Vec<_>>().join(" ");
        let wanted = row.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(squeezed.contains(&wanted), "{row} in\n{listed}");
    }

    // Deleting the Job takes its pod with it (the garbage collector follows owners).
    let out = kubectl
        .run(
            &[
                "delete",
                "job",
                "-n",
                "chaos",
                "shakedown-release-gate",
                "--wait=false",
            ],
            "",
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_for("the Job's pod to go", || {
        handle.objects("pods", Some("chaos")).is_empty()
    })
    .await;
}

/// Each overlay's experiment, laid out as its pod sees it (the ConfigMaps' keys as
/// files under /kit/experiments and /kit/scenarios, run from /kit), loads and
/// validates: the ConfigMap generator ships everything the experiment references.
#[tokio::test(flavor = "multi_thread")]
async fn every_overlays_experiment_validates_as_its_pod_sees_it() {
    let bin = common::kubectls().remove(0);
    let handle = shakedown_sandbox::start(common::fast_shop(), 0)
        .await
        .expect("sandbox");
    let kubectl = Kubectl::new(&bin, &handle, "layout");
    for overlay in OVERLAYS {
        let built = docs(&kubectl.build(overlay).await);
        let kit = kubectl.home.join(format!("kit-{overlay}"));
        let _ = std::fs::remove_dir_all(&kit);
        let workload = built
            .iter()
            .find(|d| d["kind"] == "Job" || d["kind"] == "CronJob")
            .expect("a workload");
        let spec = if workload["kind"] == "Job" {
            &workload["spec"]["template"]["spec"]
        } else {
            &workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        };
        let container = &spec["containers"][0];
        let working_dir = container["workingDir"].as_str().expect("workingDir");
        for mount in container["volumeMounts"].as_array().expect("mounts") {
            let volume = spec["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == mount["name"])
                .expect("mounted volume");
            let Some(map) = volume["configMap"]["name"].as_str() else {
                continue;
            };
            let data = &built
                .iter()
                .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == map)
                .unwrap_or_else(|| panic!("{overlay}: ConfigMap {map} is in the kit"))["data"];
            let path = mount["mountPath"].as_str().expect("mountPath");
            let dir = kit.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(&dir).expect("mount dir");
            for (key, value) in data.as_object().expect("data") {
                std::fs::write(dir.join(key), value.as_str().expect("text")).expect("write");
            }
        }
        let args: Vec<&str> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let experiment = args.last().expect("the experiment is the last argument");
        assert!(experiment.contains(overlay), "{overlay} runs {experiment}");
        let cwd = kit.join(working_dir.trim_start_matches('/'));
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"))
            .current_dir(&cwd)
            .args(["validate", experiment])
            .output()
            .await
            .expect("shakedown validate");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{overlay}: {}",
            text(&out.stderr)
        );
    }
}

/// The RBAC every overlay ships is exactly deploy/base/rbac.yaml, the file
/// tests/deploy_rbac.rs proves sufficient and minimal (kustomize only labels it).
#[tokio::test(flavor = "multi_thread")]
async fn every_overlay_ships_the_rbac_deploy_rbac_proves() {
    let bin = common::kubectls().remove(0);
    let handle = shakedown_sandbox::start(common::fast_shop(), 0)
        .await
        .expect("sandbox");
    let kubectl = Kubectl::new(&bin, &handle, "rbac");
    let text = std::fs::read_to_string("deploy/base/rbac.yaml").expect("rbac");
    let mut proven: Vec<String> = docs(&text).iter().map(Value::to_string).collect();
    proven.sort();
    for overlay in OVERLAYS {
        let mut shipped: Vec<String> = docs(&kubectl.build(overlay).await)
            .into_iter()
            .filter(|d| {
                d["kind"] == "ServiceAccount"
                    || d["apiVersion"]
                        .as_str()
                        .is_some_and(|v| v.starts_with("rbac.authorization.k8s.io/"))
            })
            .map(|mut d| {
                if let Some(meta) = d["metadata"].as_object_mut() {
                    meta.remove("labels");
                }
                d.to_string()
            })
            .collect();
        shipped.sort();
        assert_eq!(shipped, proven, "{overlay}");
    }
}
