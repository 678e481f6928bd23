//! Real `kubectl` against the sandbox: the fidelity target of DESIGN.md. Every test
//! runs with the newest and the oldest client found (1.33 and 1.27 on the machine
//! image), or with the plain `kubectl` on PATH (Debian's kubernetes-client). Without
//! any kubectl the tests fail and say how to get one.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use shakedown_sandbox::{self as sandbox, SandboxConfig, SandboxHandle};

const DEADLINE: Duration = Duration::from_secs(30);
mod common;

use common::kubectls;

struct Kubectl {
    bin: PathBuf,
    home: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn new(bin: &Path, handle: &SandboxHandle) -> Self {
        let home = std::env::temp_dir().join(format!(
            "shakedown-kubectl-{}-{}",
            std::process::id(),
            handle.addr.port()
        ));
        std::fs::create_dir_all(&home).expect("temp home");
        let kubeconfig = home.join("kubeconfig");
        handle
            .write_kubeconfig(&kubeconfig)
            .expect("kubeconfig written");
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

    async fn run(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(90), command.output())
            .await
            .unwrap_or_else(|_| panic!("{} {args:?} hung", self.label()))
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }

    /// Runs and insists on success; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}\n{}",
            self.label(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn fast_shop() -> SandboxConfig {
    let mut config = SandboxConfig::shop();
    config.timings.startup_delay = Duration::from_millis(500);
    config.timings.shutdown_delay = Duration::from_millis(200);
    config
}

fn ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Polls until the shop has all 6 pods ready and the DaemonSet its 3.
async fn wait_settled(handle: &SandboxHandle) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let shop = handle.objects("pods", Some("shop"));
        let monitoring = handle.objects("pods", Some("monitoring"));
        let settled = shop.len() == 6
            && shop.iter().all(ready)
            && monitoring.len() == 3
            && monitoring.iter().all(ready);
        if settled {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the shop never settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn started() -> SandboxHandle {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    wait_settled(&handle).await;
    handle.clear_request_log();
    handle
}

fn mutations(handle: &SandboxHandle) -> Vec<String> {
    handle
        .request_log()
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect()
}

fn node_of(pod: &Value) -> String {
    pod["spec"]["nodeName"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_nodes_and_pods_and_describes_a_pod() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();

        let nodes = kubectl.ok(&["get", "nodes"]).await;
        assert!(nodes.starts_with("NAME"), "{label}: {nodes}");
        for node in ["node-a-1", "node-a-2", "node-b-1"] {
            assert!(
                nodes
                    .lines()
                    .any(|l| l.starts_with(node) && l.contains(" Ready ")),
                "{label}: {nodes}"
            );
        }

        let wide = kubectl.ok(&["get", "pods", "-A", "-o", "wide"]).await;
        let mut lines = wide.lines();
        let header = lines.next().unwrap_or("");
        for column in ["NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE"] {
            assert!(header.contains(column), "{label}: {header}");
        }
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), 9, "{label}: {wide}");
        assert!(
            rows.iter()
                .all(|r| r.contains("1/1") && r.contains("Running") && r.contains("node-")),
            "{label}: {wide}"
        );

        let checkout = kubectl
            .ok(&["get", "pods", "-l", "app=checkout", "-n", "shop"])
            .await;
        let names: Vec<&str> = checkout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(names.len(), 3, "{label}: {checkout}");
        assert!(
            names.iter().all(|n| n.starts_with("checkout-")),
            "{label}: {checkout}"
        );

        let described = kubectl
            .ok(&["describe", "pod", "-n", "shop", names[0]])
            .await;
        for expected in [
            format!("Name:             {}", names[0]),
            "Namespace:        shop".to_owned(),
            "Controlled By:  ReplicaSet/checkout-".to_owned(),
            "Status:           Running".to_owned(),
            "Scheduled".to_owned(),
        ] {
            assert!(
                described.contains(&expected),
                "{label}: missing {expected:?} in\n{described}"
            );
        }
        let deployment = kubectl
            .ok(&["describe", "deployment", "checkout", "-n", "shop"])
            .await;
        assert!(
            deployment.contains("ScalingReplicaSet")
                && deployment.contains("NewReplicaSet:   checkout-"),
            "{label}: {deployment}"
        );
        let logs = kubectl.run(&["logs", "-n", "shop", names[0]]).await;
        assert!(
            logs.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&logs.stderr)
        );
        assert_eq!(
            mutations(&handle),
            Vec::<String>::new(),
            "{label}: reads must not mutate"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_pod_gets_a_ready_replacement() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        let victim = handle
            .objects("pods", Some("shop"))
            .into_iter()
            .find(|p| p["metadata"]["labels"]["app"] == "checkout")
            .and_then(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .expect("a checkout pod");
        let out = kubectl.ok(&["delete", "pod", "-n", "shop", &victim]).await;
        assert!(
            out.contains(&format!("pod \"{victim}\" deleted")),
            "{label}: {out}"
        );
        // kubectl waits for the deletion to finish, so the pod is gone by now.
        assert!(handle.object("pods", "shop", &victim).is_none(), "{label}");
        assert_eq!(
            mutations(&handle),
            vec![format!("DELETE /api/v1/namespaces/shop/pods/{victim} 200")],
            "{label}"
        );

        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let checkout: Vec<Value> = handle
                .objects("pods", Some("shop"))
                .into_iter()
                .filter(|p| p["metadata"]["labels"]["app"] == "checkout")
                .collect();
            if checkout.len() == 3 && checkout.iter().all(ready) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: no ready replacement"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let listed = kubectl
            .ok(&["get", "pods", "-n", "shop", "-l", "app=checkout"])
            .await;
        assert_eq!(
            listed
                .lines()
                .filter(|l| l.contains("1/1") && l.contains("Running"))
                .count(),
            3,
            "{label}: {listed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_cordon_and_uncordon_flip_unschedulable() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        let out = kubectl.ok(&["cordon", "node-b-1"]).await;
        assert!(out.contains("node/node-b-1 cordoned"), "{label}: {out}");
        let node = handle.object("nodes", "", "node-b-1").expect("node");
        assert_eq!(node["spec"]["unschedulable"], true, "{label}");
        let nodes = kubectl.ok(&["get", "nodes"]).await;
        assert!(
            nodes
                .lines()
                .any(|l| l.starts_with("node-b-1") && l.contains("Ready,SchedulingDisabled")),
            "{label}: {nodes}"
        );

        let out = kubectl.ok(&["uncordon", "node-b-1"]).await;
        assert!(out.contains("node/node-b-1 uncordoned"), "{label}: {out}");
        let node = handle.object("nodes", "", "node-b-1").expect("node");
        assert!(node["spec"]["unschedulable"].is_null(), "{label}: {node}");
        assert_eq!(
            mutations(&handle),
            vec![
                "PATCH /api/v1/nodes/node-b-1 200".to_owned(),
                "PATCH /api/v1/nodes/node-b-1 200".to_owned()
            ],
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drain_evicts_what_the_budgets_allow() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        let node = handle
            .objects("pods", Some("shop"))
            .iter()
            .find(|p| p["metadata"]["labels"]["app"] == "checkout")
            .map(node_of)
            .expect("a node with a checkout pod");
        let evictable: Vec<String> = handle
            .objects("pods", Some("shop"))
            .iter()
            .filter(|p| node_of(p) == node)
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        assert!(!evictable.is_empty());
        kubectl
            .ok(&[
                "drain",
                &node,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--timeout=60s",
            ])
            .await;

        let node_obj = handle.object("nodes", "", &node).expect("node");
        assert_eq!(node_obj["spec"]["unschedulable"], true, "{label}");
        let left: Vec<String> = handle
            .objects("pods", None)
            .iter()
            .filter(|p| node_of(p) == node)
            .filter(|p| p["metadata"]["ownerReferences"][0]["kind"] != "DaemonSet")
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(
            left,
            Vec::<String>::new(),
            "{label}: only DaemonSet pods may stay"
        );
        let log = mutations(&handle);
        for pod in &evictable {
            let eviction = format!("POST /api/v1/namespaces/shop/pods/{pod}/eviction 201");
            assert!(log.contains(&eviction), "{label}: no {eviction} in {log:?}");
        }
        assert!(
            log.iter().all(|m| !m.starts_with("DELETE")),
            "{label}: drain must evict, not delete: {log:?}"
        );
        assert!(
            handle
                .objects("pods", Some("monitoring"))
                .iter()
                .any(|p| node_of(p) == node),
            "{label}: DaemonSet pod kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drain_blocked_by_a_budget_retries_then_times_out() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        kubectl
            .ok(&[
                "patch",
                "pdb",
                "checkout",
                "-n",
                "shop",
                "--type=merge",
                "-p",
                r#"{"spec":{"minAvailable":3}}"#,
            ])
            .await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while handle
            .object("poddisruptionbudgets", "shop", "checkout")
            .expect("pdb")["status"]["disruptionsAllowed"]
            != 0
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: budget never tightened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let blocked = handle
            .objects("pods", Some("shop"))
            .into_iter()
            .find(|p| p["metadata"]["labels"]["app"] == "checkout")
            .expect("a checkout pod");
        let node = node_of(&blocked);
        let name = blocked["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_owned();

        let started_at = std::time::Instant::now();
        let out = kubectl
            .run(&[
                "drain",
                &node,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--timeout=7s",
            ])
            .await;
        let took = started_at.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{label}: drain must fail while the budget blocks it"
        );
        assert!(stderr.contains("disruption budget"), "{label}: {stderr}");
        assert!(
            stderr.contains("global timeout reached"),
            "{label}: {stderr}"
        );
        assert!(
            took >= Duration::from_secs(7),
            "{label}: gave up after {took:?}"
        );

        let refusals = handle
            .request_log()
            .iter()
            .filter(|r| {
                r.path == format!("/api/v1/namespaces/shop/pods/{name}/eviction") && r.status == 429
            })
            .count();
        assert!(refusals >= 2, "{label}: kubectl retried {refusals} times");
        let pod = handle
            .object("pods", "shop", &name)
            .expect("the blocked pod survives");
        assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_over_websockets_is_recorded() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        let pod = handle
            .objects("pods", Some("shop"))
            .into_iter()
            .find(|p| p["metadata"]["labels"]["app"] == "catalog")
            .and_then(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .expect("a catalog pod");
        let out = kubectl
            .run(&[
                "exec", "-n", "shop", &pod, "--", "tc", "qdisc", "show", "dev", "eth0",
            ])
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if label.ends_with("1.27") {
            // kubectl before 1.30 only speaks SPDY for exec, which the sandbox does not.
            assert!(!out.status.success(), "{label}");
            assert!(stderr.contains("does not speak SPDY"), "{label}: {stderr}");
            assert!(handle.exec_log().is_empty(), "{label}");
            continue;
        }
        assert!(out.status.success(), "{label}: {stderr}");
        let log = handle.exec_log();
        assert_eq!(log.len(), 1, "{label}: {log:?}");
        assert_eq!(log[0].pod, pod);
        assert_eq!(log[0].container, "catalog");
        assert_eq!(log[0].command, ["tc", "qdisc", "show", "dev", "eth0"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_creates_then_configures_a_deployment() {
    let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  replicas: REPLICAS\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx:1.27}]}\n";
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        // 1.27 learns from OpenAPI v2 (protobuf), newer clients from v3, that the
        // server validates fields itself.
        let validate = "--validate=true";
        let file = kubectl.home.join("web.yaml");
        for (replicas, verb) in [(2, "created"), (3, "configured")] {
            std::fs::write(&file, manifest.replace("REPLICAS", &replicas.to_string()))
                .expect("manifest");
            let out = kubectl
                .ok(&["apply", validate, "-f", file.to_str().expect("utf-8 path")])
                .await;
            assert!(
                out.contains(&format!("deployment.apps/web {verb}")),
                "{label}: {out}"
            );
            let d = handle
                .object("deployments", "default", "web")
                .expect("deployment");
            assert_eq!(d["spec"]["replicas"], replicas, "{label}");
        }
        let log = mutations(&handle);
        assert!(
            log.iter()
                .any(|m| m.starts_with("POST /apis/apps/v1/namespaces/default/deployments 201")),
            "{label}: {log:?}"
        );
        assert!(
            log.iter().any(
                |m| m.starts_with("PATCH /apis/apps/v1/namespaces/default/deployments/web 200")
            ),
            "{label}: {log:?}"
        );
    }
}

/// `--chunk-size=0` lists in one request with no `limit`, `limit=-1` is no limit (as
/// on a real server), and a small chunk size pages through `continue` tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_lists_unchunked_with_limit_minus_one_and_in_chunks() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();

        let whole = kubectl.ok(&["get", "pods", "-A", "--chunk-size=0"]).await;
        assert_eq!(whole.lines().skip(1).count(), 9, "{label}: {whole}");
        let lists: Vec<String> = handle
            .request_log()
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/api/v1/pods")
            .map(|r| r.query.clone())
            .collect();
        assert_eq!(lists.len(), 1, "{label}: one request: {lists:?}");
        assert!(!lists[0].contains("limit="), "{label}: {lists:?}");

        let raw = kubectl.ok(&["get", "--raw", "/api/v1/pods?limit=-1"]).await;
        let list: Value = serde_json::from_str(&raw).expect("a PodList");
        assert_eq!(list["kind"], "PodList", "{label}");
        assert_eq!(list["items"].as_array().map(Vec::len), Some(9), "{label}");
        assert!(list["metadata"].get("continue").is_none(), "{label}: {raw}");

        handle.clear_request_log();
        let chunked = kubectl.ok(&["get", "pods", "-A", "--chunk-size=4"]).await;
        assert_eq!(chunked.lines().skip(1).count(), 9, "{label}: {chunked}");
        let pages = handle
            .request_log()
            .iter()
            .filter(|r| r.path == "/api/v1/pods" && r.query.contains("limit=4"))
            .count();
        assert_eq!(pages, 3, "{label}: 9 pods in pages of 4");
    }
}

/// `kubectl auth whoami` (SelfSubjectReview) and `auth can-i` (SelfSubjectAccessReview,
/// SelfSubjectRulesReview), which kubectl sends in protobuf whatever the server
/// prefers: the sandbox decodes them, and answers from its `accessDenied` config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_whoami_and_can_i_answer_from_the_sandbox() {
    for bin in kubectls() {
        let mut config = fast_shop();
        config.access_denied.push(sandbox::config::DeniedAccess {
            verb: "delete".into(),
            resource: "pods".into(),
            namespace: Some("shop".into()),
        });
        let handle = sandbox::start(config, 0).await.expect("sandbox starts");
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();

        if label.ends_with("1.27") {
            // kubectl 1.27 asks only v1beta1/v1alpha1, which a 1.32 server does not
            // serve by default (beta APIs are off since 1.24): it fails there too.
            let out = kubectl.run(&["auth", "whoami"]).await;
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && err.contains("selfsubjectreviews API is not enabled"),
                "{label}: {err}"
            );
        } else {
            let whoami = kubectl.ok(&["auth", "whoami", "-o", "json"]).await;
            let review: Value = serde_json::from_str(&whoami).expect("a SelfSubjectReview");
            assert_eq!(review["kind"], "SelfSubjectReview", "{label}");
            assert_eq!(
                review["status"]["userInfo"]["username"],
                sandbox::audit::SANDBOX_USERNAME,
                "{label}"
            );
        }

        let rules = kubectl.ok(&["auth", "can-i", "--list"]).await;
        assert!(
            rules
                .lines()
                .any(|l| l.starts_with("*.*") && l.contains("[*]")),
            "{label}: {rules}"
        );
        assert!(
            rules.contains("selfsubjectreviews.authentication.k8s.io"),
            "{label}: {rules}"
        );

        assert_eq!(
            kubectl
                .ok(&["auth", "can-i", "get", "pods", "-n", "shop"])
                .await
                .trim(),
            "yes",
            "{label}"
        );
        let denied = kubectl
            .run(&["auth", "can-i", "delete", "pods", "-n", "shop"])
            .await;
        let answer = String::from_utf8_lossy(&denied.stdout);
        assert!(
            answer.starts_with("no - denied by the sandbox's accessDenied"),
            "{label}: {answer} {}",
            String::from_utf8_lossy(&denied.stderr)
        );
        assert_eq!(denied.status.code(), Some(1), "{label}");
        assert_eq!(
            kubectl
                .ok(&["auth", "can-i", "delete", "pods", "-n", "default"])
                .await
                .trim(),
            "yes",
            "{label}: only shop is denied"
        );
        let refused: Vec<String> = handle
            .request_log()
            .iter()
            .filter(|r| r.status >= 400 && !r.path.contains("selfsubjectreviews"))
            .map(|r| format!("{} {} {}", r.method, r.path, r.status))
            .collect();
        assert!(
            refused.is_empty(),
            "{label}: no review was refused: {refused:?}"
        );
    }
}

/// Services get Endpoints and an EndpointSlice of their ready pods, which follow the
/// pods (a deleted pod's address goes, its replacement's comes once ready), show in
/// `kubectl describe service`, and go when the Service goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_endpoints_and_slices_that_follow_the_pods() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        let pod_ips = |handle: &SandboxHandle| -> Vec<String> {
            let mut ips: Vec<String> = handle
                .objects("pods", Some("shop"))
                .iter()
                .filter(|p| p["metadata"]["labels"]["app"] == "checkout" && ready(p))
                .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_owned))
                .collect();
            ips.sort();
            ips
        };
        let endpoint_ips = |out: &str| -> Vec<String> {
            let ep: Value = serde_json::from_str(out).expect("an Endpoints");
            let mut ips: Vec<String> = ep["subsets"][0]["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["ip"].as_str().map(str::to_owned))
                .collect();
            ips.sort();
            ips
        };
        let before = pod_ips(&handle);
        assert_eq!(before.len(), 3, "{label}");
        let ep = kubectl
            .ok(&["get", "endpoints", "checkout", "-n", "shop", "-o", "json"])
            .await;
        assert_eq!(endpoint_ips(&ep), before, "{label}: {ep}");

        let table = kubectl.ok(&["get", "endpointslices", "-n", "shop"]).await;
        let row = table
            .lines()
            .find(|l| l.starts_with("checkout-"))
            .unwrap_or_else(|| panic!("{label}: {table}"));
        assert!(
            row.contains("IPv4") && row.contains("8080"),
            "{label}: {row}"
        );
        let described = kubectl
            .ok(&["describe", "service", "checkout", "-n", "shop"])
            .await;
        let line = described
            .lines()
            .find(|l| l.starts_with("Endpoints:"))
            .unwrap_or_else(|| panic!("{label}: {described}"));
        for ip in &before {
            assert!(line.contains(&format!("{ip}:8080")), "{label}: {line}");
        }

        let victim = handle
            .objects("pods", Some("shop"))
            .into_iter()
            .find(|p| p["metadata"]["labels"]["app"] == "checkout")
            .and_then(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .expect("a checkout pod");
        kubectl
            .ok(&["delete", "pod", "-n", "shop", &victim, "--wait=false"])
            .await;
        wait_settled(&handle).await;
        let after = pod_ips(&handle);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let ep = kubectl
                .ok(&["get", "endpoints", "checkout", "-n", "shop", "-o", "json"])
                .await;
            if endpoint_ips(&ep) == after {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: endpoints never followed the pods: {ep} vs {after:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_ne!(after, before, "{label}: the replacement has a new address");

        kubectl
            .ok(&["delete", "service", "checkout", "-n", "shop"])
            .await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while handle.object("endpoints", "shop", "checkout").is_some()
            || handle
                .objects("endpointslices", Some("shop"))
                .iter()
                .any(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "checkout")
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: the Service's endpoints outlived it"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The kill switch's marker is a ConfigMap a human reads with plain kubectl: create,
/// get (table and YAML), delete, and a second create refused as AlreadyExists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_gets_and_deletes_a_config_map() {
    for bin in kubectls() {
        let handle = sandbox::start(SandboxConfig::empty(), 0)
            .await
            .expect("sandbox starts");
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        // `create -f` goes through the dynamic client in JSON (`create configmap`'s
        // protobuf is in kubectl_1_33_typed_creates_send_protobuf_the_sandbox_decodes).
        let manifest = kubectl.home.join("marker.yaml");
        std::fs::write(
            &manifest,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: marker}\ndata: {reason: incident 42, who: alice@host}\n",
        )
        .expect("manifest");
        let manifest = manifest.to_str().expect("utf8").to_owned();
        let validate = "--validate=true";
        let create = ["create", validate, "-f", manifest.as_str()];
        let out = kubectl.ok(&create).await;
        assert!(out.contains("configmap/marker created"), "{label}: {out}");
        let again = kubectl.run(&create).await;
        assert!(!again.status.success(), "{label}");
        let why = String::from_utf8_lossy(&again.stderr);
        assert!(
            why.contains("configmaps \"marker\" already exists"),
            "{label}: {why}"
        );
        let table = kubectl.ok(&["get", "cm"]).await;
        let row: Vec<&str> = table
            .lines()
            .find(|l| l.starts_with("marker"))
            .unwrap_or_else(|| panic!("{label}: {table}"))
            .split_whitespace()
            .collect();
        assert_eq!(row[..2], ["marker", "2"], "{label}: {table}");
        assert!(table.starts_with("NAME"), "{label}: {table}");
        let yaml = kubectl
            .ok(&["get", "configmap", "marker", "-o", "yaml"])
            .await;
        let marker: Value = serde_saphyr::from_str(&yaml).expect("YAML");
        assert_eq!(marker["data"]["reason"], "incident 42", "{label}: {yaml}");
        assert_eq!(marker["data"]["who"], "alice@host", "{label}: {yaml}");
        let out = kubectl.ok(&["delete", "configmap", "marker"]).await;
        assert!(
            out.contains("configmap \"marker\" deleted"),
            "{label}: {out}"
        );
        assert!(handle.object("configmaps", "default", "marker").is_none());
        handle.shutdown().await;
    }
}

/// kubectl 1.33's `create <kind>` subcommands POST protobuf (client-go does not fall
/// back to JSON on 415); regression test for `create deployment` failing with
/// UnsupportedMediaType. The Deployment then scales, reads back and deletes, with 1.27
/// (JSON) as with 1.33.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33_typed_creates_send_protobuf_the_sandbox_decodes() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        let out = kubectl
            .ok(&[
                "create",
                "deployment",
                "web",
                "-n",
                "shop",
                "--image=nginx:1.27",
                "--replicas=2",
                "--port=8080",
            ])
            .await;
        assert!(
            out.contains("deployment.apps/web created"),
            "{label}: {out}"
        );
        let created = handle
            .object("deployments", "shop", "web")
            .expect("deployment stored");
        let container = &created["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "nginx:1.27", "{label}: {created}");
        assert_eq!(container["ports"][0]["containerPort"], 8080, "{label}");
        assert_eq!(created["spec"]["selector"]["matchLabels"]["app"], "web");
        let post = handle
            .request_log()
            .into_iter()
            .find(|r| r.method == "POST" && r.path == "/apis/apps/v1/namespaces/shop/deployments")
            .expect("the create was logged");
        assert_eq!(post.status, 201, "{label}");
        // The request log keeps JSON bodies only: 1.33's has none, it was protobuf.
        assert_eq!(
            post.body.is_none(),
            label.ends_with("1.33"),
            "{label}: {:?}",
            post.body
        );

        let out = kubectl
            .ok(&["scale", "deployment", "web", "-n", "shop", "--replicas=3"])
            .await;
        assert!(out.contains("deployment.apps/web scaled"), "{label}: {out}");
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let yaml = kubectl
                .ok(&["get", "deployment", "web", "-n", "shop", "-o", "yaml"])
                .await;
            let d: Value = serde_saphyr::from_str(&yaml).expect("YAML");
            assert_eq!(d["spec"]["replicas"], 3, "{label}: {yaml}");
            if d["status"]["readyReplicas"] == 3 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: never 3 ready: {yaml}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        for (args, expected) in [
            (
                vec![
                    "create",
                    "configmap",
                    "c1",
                    "-n",
                    "shop",
                    "--from-literal=a=b",
                ],
                "configmap/c1 created",
            ),
            (vec!["create", "namespace", "ns1"], "namespace/ns1 created"),
            (
                vec![
                    "create",
                    "service",
                    "clusterip",
                    "s1",
                    "-n",
                    "shop",
                    "--tcp=80:8080",
                ],
                "service/s1 created",
            ),
            (
                vec![
                    "create",
                    "pdb",
                    "p1",
                    "-n",
                    "shop",
                    "--selector=app=web",
                    "--min-available=1",
                ],
                "poddisruptionbudget.policy/p1 created",
            ),
        ] {
            let out = kubectl.ok(&args).await;
            assert!(out.contains(expected), "{label}: {out}");
        }
        let cm = handle.object("configmaps", "shop", "c1").expect("cm");
        assert_eq!(cm["data"], serde_json::json!({"a": "b"}), "{label}");
        let svc = handle.object("services", "shop", "s1").expect("svc");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080, "{label}");
        let pdb = handle
            .object("poddisruptionbudgets", "shop", "p1")
            .expect("pdb");
        assert_eq!(pdb["spec"]["minAvailable"], 1, "{label}");

        let out = kubectl
            .ok(&["delete", "deployment", "web", "-n", "shop"])
            .await;
        assert!(
            out.contains("deployment.apps \"web\" deleted"),
            "{label}: {out}"
        );
        assert!(
            handle.object("deployments", "shop", "web").is_none(),
            "{label}"
        );
        let refused: Vec<String> = handle
            .request_log()
            .iter()
            .filter(|r| r.status == 415)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(refused.is_empty(), "{label}: {refused:?}");
        handle.shutdown().await;
    }
}

fn pod_uid(handle: &SandboxHandle, name: &str) -> Option<String> {
    handle
        .object("pods", "shop", name)
        .and_then(|p| p["metadata"]["uid"].as_str().map(str::to_owned))
}

/// Polls the `db` StatefulSet's pods until `want` are ready, checking at every look
/// that OrderedReady held: a pod exists only when every lower ordinal is ready.
async fn wait_ordered(handle: &SandboxHandle, want: usize, label: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let pods: Vec<Value> = handle
            .objects("pods", Some("shop"))
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "db")
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect();
        let by_ordinal = |i: usize| {
            pods.iter()
                .find(|p| p["metadata"]["name"] == format!("db-{i}").as_str())
        };
        for (i, pod) in pods.iter().enumerate() {
            let name = pod["metadata"]["name"].as_str().unwrap_or("");
            let ordinal: usize = name
                .strip_prefix("db-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{label}: not an ordinal name: {name}"));
            assert_eq!(
                pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], name,
                "{label}"
            );
            for lower in 0..ordinal {
                assert!(
                    by_ordinal(lower).is_some_and(ready),
                    "{label}: {name} exists before db-{lower} is ready ({i} pods)"
                );
            }
        }
        if pods.len() == want && pods.iter().all(ready) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{label}: never {want} ordered ready pods"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// StatefulSets: pods `db-0`, `db-1`, `db-2` created in order, each once the one
/// before is ready; a deleted pod comes back under its name with a new UID; scaling
/// down removes the highest ordinal; status and `kubectl get sts` columns; the
/// server's validation (selector required, immutable fields).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_runs_a_stateful_set_with_ordered_pod_identity() {
    let manifest = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: shop}\nspec:\n  serviceName: db\n  replicas: 3\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: db, image: postgres:17}]}\n";
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        let file = kubectl.home.join("db.yaml");
        std::fs::write(&file, manifest).expect("manifest");
        let file = file.to_str().expect("utf-8 path").to_owned();
        let out = kubectl.ok(&["apply", "-f", &file]).await;
        assert!(
            out.contains("statefulset.apps/db created"),
            "{label}: {out}"
        );
        wait_ordered(&handle, 3, &label).await;
        let pod = handle.object("pods", "shop", "db-1").expect("db-1");
        assert_eq!(pod["spec"]["hostname"], "db-1", "{label}");
        assert_eq!(pod["spec"]["subdomain"], "db", "{label}");
        assert_eq!(
            pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
            "1"
        );

        let set = handle.object("statefulsets", "shop", "db").expect("sts");
        let status = &set["status"];
        for key in [
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
        ] {
            assert_eq!(status[key], 3, "{label}: {key} in {status}");
        }
        assert_eq!(status["observedGeneration"], 1, "{label}");
        assert_eq!(
            status["currentRevision"], status["updateRevision"],
            "{label}"
        );
        assert_eq!(
            set["spec"]["podManagementPolicy"], "OrderedReady",
            "{label}"
        );

        let table = kubectl
            .ok(&["get", "sts", "-n", "shop", "-o", "wide"])
            .await;
        let header: Vec<&str> = table
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"],
            "{label}"
        );
        let row: Vec<&str> = table
            .lines()
            .find(|l| l.starts_with("db "))
            .unwrap_or_else(|| panic!("{label}: {table}"))
            .split_whitespace()
            .collect();
        assert_eq!(row[1], "3/3", "{label}: {table}");
        assert_eq!(row[3..], ["db", "postgres:17"], "{label}: {table}");

        // A deleted pod returns under its own name, with a new UID.
        let old_uid = pod_uid(&handle, "db-1").expect("uid");
        kubectl.ok(&["delete", "pod", "db-1", "-n", "shop"]).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let back = handle.object("pods", "shop", "db-1");
            if back.as_ref().is_some_and(ready) {
                assert_ne!(pod_uid(&handle, "db-1"), Some(old_uid.clone()), "{label}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: db-1 never came back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let out = kubectl
            .ok(&["scale", "sts", "db", "-n", "shop", "--replicas=2"])
            .await;
        assert!(out.contains("statefulset.apps/db scaled"), "{label}: {out}");
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while handle.object("pods", "shop", "db-2").is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: db-2 never went"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(handle.object("pods", "shop", "db-1").is_some(), "{label}");

        // Only replicas, template, updateStrategy, … may change.
        let renamed = kubectl
            .run(&[
                "patch",
                "sts",
                "db",
                "-n",
                "shop",
                "--type=merge",
                "-p",
                r#"{"spec":{"serviceName":"other"}}"#,
            ])
            .await;
        let why = String::from_utf8_lossy(&renamed.stderr);
        assert!(!renamed.status.success(), "{label}");
        assert!(
            why.contains(
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas'"
            ),
            "{label}: {why}"
        );
        let no_selector = manifest
            .replace("name: db,", "name: nosel,")
            .replace("  selector: {matchLabels: {app: db}}\n", "");
        let file = kubectl.home.join("nosel.yaml");
        std::fs::write(&file, no_selector).expect("manifest");
        let refused = kubectl
            .run(&[
                "apply",
                "--validate=false",
                "-f",
                file.to_str().expect("utf-8"),
            ])
            .await;
        let why = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{label}");
        assert!(
            why.contains("spec.selector: Required value"),
            "{label}: {why}"
        );

        kubectl.ok(&["delete", "sts", "db", "-n", "shop"]).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while handle
            .objects("pods", Some("shop"))
            .iter()
            .any(|p| p["metadata"]["labels"]["app"] == "db")
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: the set's pods outlived it"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle.shutdown().await;
    }
}

/// Every node's agent holds `kube-node-lease/<node>` and renews it; regression test
/// for `kubectl describe node` printing "Failed to get lease". A deleted node's Lease
/// goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_describe_node_shows_its_renewed_lease() {
    for bin in kubectls() {
        let mut config = fast_shop();
        config.timings.node_lease_renew_interval = Duration::from_millis(200);
        let handle = sandbox::start(config, 0).await.expect("sandbox starts");
        wait_settled(&handle).await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();

        let described = kubectl.ok(&["describe", "node", "node-a-1"]).await;
        assert!(!described.contains("Failed"), "{label}: {described}");
        let lease_block: Vec<&str> = described
            .lines()
            .skip_while(|l| !l.starts_with("Lease:"))
            .take(4)
            .collect();
        assert_eq!(lease_block.first(), Some(&"Lease:"), "{label}: {described}");
        assert!(
            lease_block
                .iter()
                .any(|l| l.trim() == "HolderIdentity:  node-a-1"),
            "{label}: {lease_block:?}"
        );
        assert!(
            lease_block
                .iter()
                .any(|l| l.trim_start().starts_with("RenewTime:") && !l.contains("<unset>")),
            "{label}: {lease_block:?}"
        );

        let lease = |h: &SandboxHandle| h.object("leases", "kube-node-lease", "node-a-1");
        let first = lease(&handle).expect("the node's lease");
        assert_eq!(first["spec"]["holderIdentity"], "node-a-1", "{label}");
        assert_eq!(first["spec"]["leaseDurationSeconds"], 40, "{label}");
        assert_eq!(first["metadata"]["ownerReferences"][0]["kind"], "Node");
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while lease(&handle).expect("lease")["spec"]["renewTime"] == first["spec"]["renewTime"] {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: the lease was never renewed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let listed = kubectl
            .ok(&["get", "leases", "-n", "kube-node-lease"])
            .await;
        assert_eq!(listed.lines().skip(1).count(), 3, "{label}: {listed}");

        kubectl.ok(&["delete", "node", "node-b-1"]).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while handle
            .object("leases", "kube-node-lease", "node-b-1")
            .is_some()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: the lease outlived its node"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle.shutdown().await;
    }
}

/// `kubectl explain` reads the served kinds' schemas (kubectl 1.28 on from OpenAPI
/// v3, 1.27 from OpenAPI v2 in protobuf), and `apply --validate=strict` learns from
/// the same documents that the server validates fields, which refuses an unknown one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explains_served_kinds_and_validates_strictly() {
    for bin in kubectls() {
        let handle = started().await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        let containers = kubectl.ok(&["explain", "pods.spec.containers"]).await;
        for expected in [
            "KIND:",
            "Pod",
            "containers <[]",
            "List of containers belonging to the pod.",
            "image\t<string>",
            "ports\t<[]",
        ] {
            assert!(
                containers.contains(expected),
                "{label}: no {expected:?} in\n{containers}"
            );
        }
        let deployments = kubectl.ok(&["explain", "deployments"]).await;
        for expected in ["apps", "Deployment", "spec\t<"] {
            assert!(
                deployments.contains(expected),
                "{label}: no {expected:?} in\n{deployments}"
            );
        }
        let sts = kubectl.ok(&["explain", "sts.spec.serviceName"]).await;
        assert!(sts.contains("serviceName <string>"), "{label}: {sts}");

        let file = kubectl.home.join("typo.yaml");
        std::fs::write(
            &file,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: typo, namespace: default}\nspec:\n  replicaz: 2\n  selector: {matchLabels: {app: typo}}\n  template:\n    metadata: {labels: {app: typo}}\n    spec: {containers: [{name: web, image: nginx}]}\n",
        )
        .expect("manifest");
        let applied = kubectl
            .run(&[
                "apply",
                "--validate=strict",
                "-f",
                file.to_str().expect("utf-8"),
            ])
            .await;
        let err = String::from_utf8_lossy(&applied.stderr);
        assert!(!applied.status.success(), "{label}: strict must refuse");
        assert!(
            err.contains("unknown field \"spec.replicaz\""),
            "{label}: {err}"
        );
        assert!(handle.object("deployments", "default", "typo").is_none());
        let asked: Vec<String> = handle
            .request_log()
            .iter()
            .filter(|r| r.path.starts_with("/openapi"))
            .map(|r| format!("{} {}", r.path, r.status))
            .collect();
        assert!(
            asked.iter().all(|a| a.ends_with(" 200")),
            "{label}: {asked:?}"
        );
        handle.shutdown().await;
    }
}

/// With RBAC (and TLS) on, `kubectl --token=<ServiceAccount token> auth can-i` answers from the
/// stored Roles and bindings (no `--as` impersonation needed), `kubectl create token`
/// issues the token, and a denied `kubectl delete` prints the server's 403 message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_with_a_service_account_token_is_authorized_by_rbac() {
    for bin in kubectls() {
        let mut config = fast_shop();
        config.rbac = true;
        // kubectl sends a token only over TLS.
        config.tls = true;
        config.namespaces.push("chaos".into());
        let handle = sandbox::start(config, 0).await.expect("sandbox starts");
        wait_settled(&handle).await;
        let kubectl = Kubectl::new(&bin, &handle);
        let label = kubectl.label();
        let manifest = kubectl.home.join("rbac.yaml");
        std::fs::write(
            &manifest,
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: runner, namespace: chaos}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: pod-reader, namespace: shop}\n\
             rules:\n- {apiGroups: [\"\"], resources: [pods], verbs: [get, list]}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: pod-reader, namespace: shop}\n\
             roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}\n\
             subjects:\n- {kind: ServiceAccount, name: runner, namespace: chaos}\n",
        )
        .expect("manifest");
        let path = manifest.to_str().expect("utf8");
        // 1.27 validates against OpenAPI v2, which the sandbox does not serve.
        kubectl
            .ok(&["create", "--validate=false", "-f", path])
            .await;
        let token = kubectl
            .ok(&["create", "token", "runner", "-n", "chaos"])
            .await
            .trim()
            .to_owned();
        assert!(!token.is_empty(), "{label}: no token");
        let token_flag = format!("--token={token}");
        let can_i = |verb: &'static str, ns: &'static str| {
            let args: [String; 7] = [
                token_flag.clone(),
                "auth".into(),
                "can-i".into(),
                verb.into(),
                "pods".into(),
                "-n".into(),
                ns.into(),
            ];
            let kubectl = &kubectl;
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = kubectl.run(&args).await;
                (
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout).trim().to_owned(),
                )
            }
        };
        assert_eq!(
            can_i("list", "shop").await,
            (Some(0), "yes".into()),
            "{label}"
        );
        assert_eq!(
            can_i("delete", "shop").await,
            (Some(1), "no".into()),
            "{label}"
        );
        assert_eq!(
            can_i("list", "default").await,
            (Some(1), "no".into()),
            "{label}"
        );
        // The admin kubeconfig may do it all.
        assert_eq!(
            kubectl
                .ok(&["auth", "can-i", "delete", "pods", "-n", "shop"])
                .await
                .trim(),
            "yes",
            "{label}"
        );

        let pods = kubectl
            .ok(&[&token_flag, "get", "pods", "-n", "shop", "-o", "name"])
            .await;
        let pod = pods.lines().next().expect("a shop pod").to_owned();
        let out = kubectl
            .run(&[&token_flag, "delete", &pod, "-n", "shop"])
            .await;
        let err = String::from_utf8_lossy(&out.stderr);
        let name = pod.trim_start_matches("pod/");
        assert!(
            !out.status.success()
                && err.contains(&format!("pods \"{name}\" is forbidden: User \"system:serviceaccount:chaos:runner\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\"")),
            "{label}: {err}"
        );
        assert!(
            handle
                .object("pods", "shop", name)
                .is_some_and(|p| p["metadata"]["deletionTimestamp"].is_null()),
            "{label}: the pod was not touched"
        );
    }
}
