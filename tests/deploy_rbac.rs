//! `deploy/base/rbac.yaml` proven sufficient and minimal (issue 13, deliverable 7): its
//! objects are applied to an RBAC-enabled sandbox, then every kind of run shakedown
//! makes (pod-delete, network-latency, node-drain, `recover` after a killed run,
//! `halt`, and `--dry-run=server`) runs as its ServiceAccount and passes; and for
//! every verb on every resource the runner's roles grant, a role without it makes a
//! run refuse at preflight (exit 3) naming that verb and resource, before anything is
//! touched.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use shakedown_sandbox::SandboxHandle;

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use sandbox_bench::Bench;

const RBAC: &str = "rbac.authorization.k8s.io";
const DELETE_CHECKOUT: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n  recovery: {within: 20s}\n";
const NETEM: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: network-latency, delay: 100ms, jitter: 10ms, duration: 1s}\n";
const NETEM_LONG: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: network-latency, delay: 100ms, duration: 10m}\n";
const DRAIN: &str = "  target: {nodes: {names: [node-a-1]}}\n  fault: {type: node-drain, duration: 1s, evictionTimeout: 20s}\n  recovery: {within: 20s}\n";

fn deploy_docs() -> Vec<Value> {
    let text = std::fs::read_to_string("deploy/base/rbac.yaml").expect("deploy/base/rbac.yaml");
    serde_saphyr::from_multiple(&text).expect("deploy/base/rbac.yaml parses")
}

/// Where an object of the RBAC manifest is created (its collection).
fn collection(doc: &Value) -> String {
    let ns = doc["metadata"]["namespace"].as_str().unwrap_or("");
    match doc["kind"].as_str().unwrap_or("") {
        "ServiceAccount" => format!("/api/v1/namespaces/{ns}/serviceaccounts"),
        "Role" => format!("/apis/{RBAC}/v1/namespaces/{ns}/roles"),
        "RoleBinding" => format!("/apis/{RBAC}/v1/namespaces/{ns}/rolebindings"),
        "ClusterRole" => format!("/apis/{RBAC}/v1/clusterroles"),
        "ClusterRoleBinding" => format!("/apis/{RBAC}/v1/clusterrolebindings"),
        other => panic!("deploy/base/rbac.yaml has an unexpected kind {other}"),
    }
}

/// A request as the sandbox's admin (its kubeconfig has no token).
async fn admin(handle: &SandboxHandle, method: &str, path: &str, body: &Value) -> u16 {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let response = common::raw(
        handle,
        method,
        path,
        "Content-Type: application/json\r\n",
        &body,
    )
    .await;
    assert!(
        response.code < 300,
        "{method} {path}: {} {}",
        response.code,
        response.body
    );
    response.code
}

async fn apply(handle: &SandboxHandle, doc: &Value) {
    admin(handle, "POST", &collection(doc), doc).await;
}

/// Puts `doc` in place of the stored object of the same kind and name.
async fn replace(handle: &SandboxHandle, doc: &Value) {
    let name = doc["metadata"]["name"].as_str().expect("named");
    let path = format!("{}/{name}", collection(doc));
    admin(handle, "DELETE", &path, &Value::Null).await;
    apply(handle, doc).await;
}

/// An RBAC-enabled shop with `deploy/base/rbac.yaml` applied, and the bench's kubeconfig
/// authenticating as its ServiceAccount `chaos/shakedown`.
async fn bench(tag: &str) -> Bench {
    let mut config = common::fast_shop();
    config.rbac = true;
    config.namespaces.push("chaos".into());
    let b = sandbox_bench::bench(tag, config).await;
    for doc in deploy_docs() {
        apply(&b.handle, &doc).await;
    }
    let kubeconfig = b
        .handle
        .service_account_kubeconfig_yaml("chaos", "shakedown")
        .expect("deploy/base/rbac.yaml creates the ServiceAccount");
    std::fs::write(&b.kubeconfig, kubeconfig).expect("kubeconfig");
    b.handle.clear_request_log();
    b
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn run(b: &Bench, scenario: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", scenario.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    b.shakedown(&args).await
}

/// Requests the sandbox refused as forbidden, as `METHOD path`.
fn refused(b: &Bench) -> Vec<String> {
    b.handle
        .request_log()
        .iter()
        .filter(|r| r.status == 403)
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect()
}

async fn settle(b: &Bench) {
    assert!(
        b.handle.wait_settled(common::DEADLINE).await,
        "the shop settles again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fault_recover_and_a_server_dry_run_pass_as_deploys_service_account() {
    let b = bench("deploy-rbac-runs").await;
    let cases = [
        ("pod-delete", DELETE_CHECKOUT, &[][..]),
        ("network-latency", NETEM, &[][..]),
        ("node-drain", DRAIN, &[][..]),
        ("drain-dry-run", DRAIN, &["--dry-run=server"][..]),
        ("netem-dry-run", NETEM, &["--dry-run=server"][..]),
    ];
    for (name, body, extra) in cases {
        let scenario = b.scenario(name, body);
        let out = run(&b, &scenario, extra).await;
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(refused(&b), Vec::<String>::new(), "{name}: nothing refused");
        settle(&b).await;
    }

    // `recover` after a run killed mid-fault: the netem mark and qdisc are its to undo.
    let scenario = b.scenario("netem-long", NETEM_LONG);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .arg("--kubeconfig")
        .arg(&b.kubeconfig)
        .arg("--output-dir")
        .arg(b.out())
        .args(["--yes", "run", scenario.to_str().expect("utf8")])
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while !netem_marked(&b.handle) {
        assert!(tokio::time::Instant::now() < deadline, "netem never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().await.expect("SIGKILL");
    let journal = b.out().join("latest/journal.jsonl");
    let out = b
        .shakedown(&["recover", "--journal", journal.to_str().expect("utf8")])
        .await;
    assert_eq!(out.status.code(), Some(0), "recover: {}", stderr(&out));
    assert!(!netem_marked(&b.handle), "recover removed the mark");
    assert_eq!(
        refused(&b),
        Vec::<String>::new(),
        "recover: nothing refused"
    );
}

fn netem_marked(handle: &SandboxHandle) -> bool {
    handle
        .objects("pods", Some("shop"))
        .iter()
        .any(|p| p["metadata"]["annotations"][shakedown_sandbox::FAULT_ANNOTATION].is_string())
}

/// The kill switch as deploy/ splits it: a ServiceAccount bound to `shakedown-halter`
/// (deploy/ binds it to a group of people; a test binds an account) pulls and clears
/// it, and the runner's `shakedown-halt-watch` is enough for a run to see it and refuse.
#[tokio::test(flavor = "multi_thread")]
async fn halt_pulled_by_the_halter_role_stops_the_runner_until_cleared() {
    let b = bench("deploy-rbac-halt").await;
    apply(
        &b.handle,
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "oncall", "namespace": "chaos"}}),
    )
    .await;
    let halter = deploy_docs()
        .into_iter()
        .find(|d| d["kind"] == "RoleBinding" && d["metadata"]["name"] == "shakedown-halter")
        .expect("deploy/ binds the halter role");
    let mut binding = halter.clone();
    binding["metadata"]["name"] = json!("shakedown-halter-oncall");
    binding["subjects"] =
        json!([{"kind": "ServiceAccount", "name": "oncall", "namespace": "chaos"}]);
    apply(&b.handle, &binding).await;
    let oncall = b.dir.join("oncall.kubeconfig");
    std::fs::write(
        &oncall,
        b.handle
            .service_account_kubeconfig_yaml("chaos", "oncall")
            .expect("account"),
    )
    .expect("kubeconfig");
    let as_oncall = |args: &'static [&'static str]| {
        let oncall = oncall.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"))
                .arg("--kubeconfig")
                .arg(&oncall)
                .args(["--yes"])
                .args(args)
                .output()
                .await
                .expect("shakedown")
        }
    };

    // The runner may not pull the switch: a run never halts others.
    let out = b.shakedown(&["halt", "--reason", "runner"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot create resource \"configmaps\""),
        "{}",
        stderr(&out)
    );
    let out = as_oncall(&["halt", "--reason", "rbac drill"]).await;
    assert_eq!(out.status.code(), Some(0), "halt: {}", stderr(&out));
    let scenario = b.scenario("delete", DELETE_CHECKOUT);
    b.handle.clear_request_log();
    let out = run(&b, &scenario, &[]).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "a halted run refuses: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("rbac drill"), "{}", stderr(&out));
    assert_eq!(
        b.mutations(),
        Vec::<shakedown_sandbox::RequestRecord>::new(),
        "a halted run touches nothing"
    );

    let out = as_oncall(&["halt", "--clear"]).await;
    assert_eq!(out.status.code(), Some(0), "halt --clear: {}", stderr(&out));
    let out = run(&b, &scenario, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(refused(&b), Vec::<String>::new());

    // Minimal: without any one of the halter's verbs, pulling or clearing the switch
    // fails (exit 3), naming the verb the server refused.
    let role = deploy_docs()
        .into_iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "shakedown-halter")
        .expect("the halter role");
    let mut wrong = Vec::new();
    for removal in narrowings(&role) {
        replace(&b.handle, &removal.role).await;
        let pulled = as_oncall(&["halt", "--reason", "minimal"]).await;
        let cleared = as_oncall(&["halt", "--clear"]).await;
        replace(&b.handle, &role).await;
        let marker = format!("/api/v1/namespaces/default/configmaps/{MARKER}");
        if b.handle.object("configmaps", "default", MARKER).is_some() {
            admin(&b.handle, "DELETE", &marker, &Value::Null).await;
        }
        let named = format!("cannot {} resource \"{}\"", removal.verb, removal.resource);
        let failed = [pulled, cleared]
            .into_iter()
            .find(|o| o.status.code() != Some(0));
        match failed {
            Some(out) if out.status.code() == Some(3) && stderr(&out).contains(&named) => {}
            Some(out) => wrong.push(format!(
                "{}: {:?} {}",
                removal.what,
                out.status.code(),
                stderr(&out)
            )),
            None => wrong.push(format!("{}: halt and --clear both passed", removal.what)),
        }
    }
    assert_eq!(wrong, Vec::<String>::new(), "halter verbs no halt needs");
}

const MARKER: &str = "shakedown-halt";

/// One (verb, resource) the runner's roles grant, and the role without it.
struct Removal {
    what: String,
    verb: String,
    resource: String,
    role: Value,
}

/// For every rule of the runner's roles, every resource and every verb: the role
/// with exactly that permission taken out (the rest of the rule kept).
fn removals() -> Vec<Removal> {
    let runner_bound: Vec<String> = deploy_docs()
        .iter()
        .filter(|d| d["kind"].as_str().is_some_and(|k| k.ends_with("Binding")))
        .filter(|d| {
            d["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["kind"] == "ServiceAccount" && s["name"] == "shakedown")
        })
        .map(|d| {
            format!(
                "{}/{}",
                d["roleRef"]["kind"].as_str().unwrap_or(""),
                d["roleRef"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    deploy_docs()
        .iter()
        .filter(|role| {
            let key = format!(
                "{}/{}",
                role["kind"].as_str().unwrap_or(""),
                role["metadata"]["name"].as_str().unwrap_or("")
            );
            runner_bound.contains(&key)
        })
        .flat_map(narrowings)
        .collect()
}

/// `role` without each one of its (verb, resource) pairs in turn, the rest of its
/// rules kept.
fn narrowings(role: &Value) -> Vec<Removal> {
    let key = format!(
        "{}/{}",
        role["kind"].as_str().unwrap_or(""),
        role["metadata"]["name"].as_str().unwrap_or("")
    );
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut out = Vec::new();
    let rules = role["rules"].as_array().cloned().unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        let resources = strings(&rule["resources"]);
        let verbs = strings(&rule["verbs"]);
        for resource in &resources {
            for verb in &verbs {
                let mut narrowed = rules.clone();
                let mut others = rule.clone();
                others["resources"] = json!(
                    resources
                        .iter()
                        .filter(|r| *r != resource)
                        .collect::<Vec<_>>()
                );
                let mut fewer_verbs = rule.clone();
                fewer_verbs["resources"] = json!([resource]);
                fewer_verbs["verbs"] =
                    json!(verbs.iter().filter(|v| *v != verb).collect::<Vec<_>>());
                narrowed.remove(i);
                for part in [others, fewer_verbs] {
                    if !strings(&part["resources"]).is_empty()
                        && !strings(&part["verbs"]).is_empty()
                    {
                        narrowed.insert(i, part);
                    }
                }
                let mut role = role.clone();
                role["rules"] = json!(narrowed);
                out.push(Removal {
                    what: format!("{key}: {verb} {resource}"),
                    verb: verb.clone(),
                    resource: resource.clone(),
                    role,
                });
            }
        }
    }
    out
}

/// Minimal: without any one of its permissions, some run refuses at preflight, exit
/// 3, naming the verb and the resource, having changed nothing.
#[tokio::test(flavor = "multi_thread")]
async fn every_permission_deploy_grants_is_needed_by_some_run() {
    let b = bench("deploy-rbac-minimal").await;
    let runs: Vec<(PathBuf, &[&str])> = vec![
        (b.scenario("netem", NETEM), &["--dry-run=server"][..]),
        (b.scenario("drain", DRAIN), &["--dry-run=server"][..]),
        (
            b.scenario("delete", DELETE_CHECKOUT),
            &["--dry-run=server"][..],
        ),
        (b.scenario("delete", DELETE_CHECKOUT), &[][..]),
    ];
    let mut unneeded = Vec::new();
    let mut wrong = Vec::new();
    let mut not_preflighted = Vec::new();
    for removal in removals() {
        let original = deploy_docs()
            .into_iter()
            .find(|d| {
                d["kind"] == removal.role["kind"]
                    && d["metadata"]["name"] == removal.role["metadata"]["name"]
            })
            .expect("the role");
        replace(&b.handle, &removal.role).await;
        let mut refusal = None;
        for (scenario, extra) in &runs {
            b.handle.clear_request_log();
            let out = run(&b, scenario, extra).await;
            if out.status.code() != Some(0) {
                refusal = Some((out, b.mutations()));
                break;
            }
            settle(&b).await;
        }
        replace(&b.handle, &original).await;
        let Some((out, mutations)) = refusal else {
            // Passing runs that were refused this permission used it without needing it.
            let used = b.handle.request_log().iter().any(|r| r.status == 403);
            if used {
                not_preflighted.push(removal.what.clone());
            } else {
                unneeded.push(removal.what.clone());
            }
            continue;
        };
        let err = stderr(&out);
        // Preflight's words (`list nodes (cluster-wide)`), or the API server's when the
        // inventory read before it is the call refused.
        let named = err.lines().find(|l| {
            l.contains(&format!("{} {}", removal.verb, removal.resource))
                || l.contains(&format!(
                    "cannot {} resource \"{}\"",
                    removal.verb, removal.resource
                ))
        });
        match (out.status.code(), named) {
            (Some(3), Some(_)) if mutations.is_empty() => {}
            (code, line) => wrong.push(format!(
                "{}: exit {code:?}, named: {line:?}, mutations: {}\n{err}",
                removal.what,
                mutations.len()
            )),
        }
    }
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "refusals that are not a named exit 3"
    );
    assert_eq!(unneeded, Vec::<String>::new(), "permissions no run needs");
    // Every right is asked about, the marker's watch included (by name: a nameless
    // review would be denied under resourceNames).
    assert_eq!(
        not_preflighted,
        Vec::<String>::new(),
        "permissions runs use without preflight asking"
    );
}
