//! Honest dry runs, through the CLI against an in-process sandbox: `--dry-run=server`
//! sends every mutation with `dryRun=All`, changes nothing, judges nothing and ends
//! `DRY RUN`; a refusal by the API server is exit 3 with its reason; `recover
//! --dry-run=client` lists and touches nothing. Every test reads the sandbox's request
//! log and its objects: what was sent, and that the cluster is as it was.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use shakedown_sandbox::RequestRecord;

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use sandbox_bench::{Bench, bench};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `METHOD resource[/subresource]` of a request, e.g. `POST pods/eviction`.
fn call(r: &RequestRecord) -> String {
    let parts: Vec<&str> = r.path.split('/').filter(|s| !s.is_empty()).collect();
    let resource = match parts.as_slice() {
        [.., "namespaces", _, resource, _, sub] => format!("{resource}/{sub}"),
        [.., "namespaces", _, resource, _] | [.., "namespaces", _, resource] => {
            (*resource).to_owned()
        }
        [.., "nodes", _] => "nodes".into(),
        other => other.join("/"),
    };
    format!("{} {resource}", r.method)
}

/// The checks a server dry run must pass whatever the fault: every mutation carried
/// `dryRun=All` (and the ones the fault needs were made), no exec, the cluster is as it
/// was, the verdict is `DRY RUN` with exit 0, no hypothesis was judged, and the reports
/// say so from their first line. Returns the run's stderr.
async fn assert_honest_dry_run(b: &Bench, scenario: &Path, expected_calls: &[&str]) -> String {
    let before = b.cluster_state();
    let started = std::time::Instant::now();
    let out = b
        .shakedown(&["--dry-run=server", "run", scenario.to_str().expect("utf8")])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a dry run holds no fault and waits for no recovery: {:?}",
        started.elapsed()
    );

    let mutations = b.mutations();
    let calls: Vec<String> = mutations.iter().map(call).collect();
    for expected in expected_calls {
        assert!(
            calls.iter().any(|c| c == expected),
            "{expected} was sent: {calls:?}"
        );
    }
    for r in &mutations {
        assert!(
            r.dry_run,
            "every mutation carries dryRun=All: {} {}?{}",
            r.method, r.path, r.query
        );
    }
    assert!(
        b.handle
            .request_log()
            .iter()
            .all(|r| !r.path.ends_with("/exec")),
        "an exec cannot be dry-run, so none is made"
    );
    assert!(b.handle.exec_log().is_empty());
    assert_eq!(b.cluster_state(), before, "nothing in the cluster changed");

    assert!(err.contains("DRY RUN (exit 0"), "{err}");
    assert!(!err.contains("injected into"), "never 'injected': {err}");
    assert!(!err.contains("PASSED"), "{err}");
    assert!(
        err.contains("(dry run: accepted by the API server"),
        "{err}"
    );

    let summary: Value = serde_json::from_str(&b.read("summary.json")).expect("summary");
    assert_eq!(summary["verdict"], "DRY RUN");
    assert_eq!(summary["exitCode"], 0);
    assert_eq!(summary["dryRun"], "server");
    assert!(
        summary["resilienceScore"]["score"].is_null(),
        "a dry run has no score: {}",
        summary["resilienceScore"]
    );

    let report = b.read("report.md");
    let first = report.lines().next().unwrap_or_default();
    assert!(first.contains("DRY RUN"), "{first}");
    assert!(!report.contains("PASSED"), "{report}");

    let junit = b.read("junit.xml");
    let hypotheses = junit.matches("<testcase name=\"ready [").count();
    assert_eq!(hypotheses, 3, "before, during and after: {junit}");
    assert_eq!(
        junit
            .matches(
                "<skipped message=\"skipped: dry run: nothing was faulted, so no hypothesis is judged\"/>"
            )
            .count(),
        3,
        "each hypothesis check is skipped, with why: {junit}"
    );
    assert!(
        junit.contains("<skipped message=\"DRY RUN: "),
        "the run itself is neither a pass nor a failure: {junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(!junit.contains("<error"), "{junit}");
    err
}

const READY: &str = "  hypotheses:\n    - {name: ready, kube: {deployment: checkout, namespace: shop}, expect: \">= 3\", every: 200ms}\n  recovery: {within: 30s}\n";

/// Regression: `run --dry-run=server` printed "injected … cordoned", judged the
/// hypotheses, said PASSED with a 100 % score and exit 0, while nothing was faulted.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_dry_run_of_a_drain_cordons_and_evicts_nothing_and_says_dry_run() {
    let b = bench("drain", common::fast_shop()).await;
    let scenario = b.scenario(
        "drain",
        &format!(
            "  target: {{nodes: {{selector: kubernetes.io/hostname=node-a-1, mode: one}}}}\n  fault: {{type: node-drain, duration: 10m, ignoreDaemonSets: true, deleteEmptyDirData: true}}\n{READY}"
        ),
    );
    let err = assert_honest_dry_run(
        &b,
        &scenario,
        &["PATCH nodes", "POST pods/eviction", "POST events"],
    )
    .await;
    assert!(err.contains("would cordon"), "{err}");
    assert!(err.contains("would evict"), "{err}");
    let err = stderr(
        &b.shakedown(&[
            "report",
            &b.out().join("latest/journal.jsonl").display().to_string(),
        ])
        .await,
    );
    assert!(
        err.contains("DRY RUN (exit 0)"),
        "re-rendered the same: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_dry_run_of_a_pod_delete_deletes_nothing() {
    let b = bench("delete", common::fast_shop()).await;
    let scenario = b.scenario(
        "del",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: pod-delete, interval: 1s, duration: 10m}}\n{READY}"
        ),
    );
    let err = assert_honest_dry_run(&b, &scenario, &["DELETE pods", "POST events"]).await;
    assert!(err.contains("would delete"), "says what it would do: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_dry_run_of_network_latency_adds_no_container_and_execs_nothing() {
    let b = bench("netem", common::fast_shop()).await;
    let scenario = b.scenario(
        "net",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: network-latency, delay: 100ms, duration: 10m}}\n{READY}"
        ),
    );
    assert_honest_dry_run(
        &b,
        &scenario,
        &[
            "PATCH pods",
            "PATCH pods/ephemeralcontainers",
            "POST events",
        ],
    )
    .await;
    let journal = b.read("journal.jsonl");
    assert!(
        journal.contains("an exec cannot be dry-run"),
        "the revert says why it did not exec: {journal}"
    );
}

/// A refusal by the API server is what a server dry run is for: exit 3, with the API's
/// own reason, and still nothing changed.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_dry_run_the_api_refuses_exits_3_with_the_reason() {
    let mut config = common::fast_shop();
    config.pod_disruption_budgets.push(
        serde_json::from_value(serde_json::json!({
            "namespace": "shop", "name": "catalog",
            "matchLabels": {"app": "catalog"}, "maxUnavailable": 0
        }))
        .expect("pdb"),
    );
    let b = bench("refused", config).await;
    let catalog = b
        .handle
        .objects("pods", Some("shop"))
        .into_iter()
        .find(|p| p["metadata"]["labels"]["app"] == "catalog")
        .expect("a catalog pod");
    let node = catalog["spec"]["nodeName"].as_str().expect("scheduled");
    let scenario = b.scenario(
        "drain",
        &format!(
            "  target: {{nodes: {{selector: kubernetes.io/hostname={node}, mode: one}}}}\n  fault: {{type: node-drain, duration: 10m, evictionTimeout: 2s, ignoreDaemonSets: true, deleteEmptyDirData: true}}\n{READY}"
        ),
    );
    let before = b.cluster_state();
    let out = b
        .shakedown(&["--dry-run=server", "run", scenario.to_str().expect("utf8")])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("disruption budget"),
        "the API server's reason is named: {err}"
    );
    assert!(!err.contains("DRY RUN (exit"), "{err}");
    assert_eq!(b.cluster_state(), before, "nothing in the cluster changed");
    assert!(
        b.mutations().iter().all(|r| r.dry_run),
        "even the refused calls were dry runs"
    );
    let summary: Value = serde_json::from_str(&b.read("summary.json")).expect("summary");
    assert_eq!(summary["exitCode"], 3);
    assert_eq!(summary["verdict"], "COULD NOT RUN");
    assert!(!b.read("junit.xml").contains("may still be faulted"));
}

/// Leaves the marks a killed run leaves: a node cordoned by shakedown and a pod with a
/// netem mark.
async fn leave_marks(b: &Bench) {
    let client = common::client(&b.handle).await;
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    let cordon = serde_json::json!({
        "metadata": {"annotations": {"shakedown.dev/cordoned-by": "20270101T000000Z-abcdef"}},
        "spec": {"unschedulable": true}
    });
    let params = kube::api::PatchParams::default();
    nodes
        .patch("node-a-2", &params, &kube::api::Patch::Merge(&cordon))
        .await
        .expect("cordon");
    let pod = b
        .handle
        .objects("pods", Some("shop"))
        .into_iter()
        .find(|p| p["metadata"]["labels"]["app"] == "frontend")
        .expect("a frontend pod");
    let name = pod["metadata"]["name"].as_str().expect("name");
    let mark = serde_json::json!({"runId": "20270101T000000Z-abcdef", "container": "shakedown-netem-x", "interface": "eth0"});
    let annotate =
        serde_json::json!({"metadata": {"annotations": {"shakedown.dev/fault": mark.to_string()}}});
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "shop");
    pods.patch(name, &params, &kube::api::Patch::Merge(&annotate))
        .await
        .expect("mark");
    b.handle.clear_request_log();
}

/// Regression: `recover --dry-run=client` really uncordoned the node and reverted netem.
#[tokio::test(flavor = "multi_thread")]
async fn recover_with_a_client_dry_run_lists_what_it_would_revert_and_touches_nothing() {
    let b = bench("recover-client", common::fast_shop()).await;
    leave_marks(&b).await;
    let before = b.cluster_state();
    let out = b.shakedown(&["--dry-run=client", "recover"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(listed.contains("would revert node/node-a-2"), "{listed}");
    assert!(listed.contains("would revert shop/frontend-"), "{listed}");
    assert!(listed.contains("nothing was touched"), "{listed}");
    assert!(
        b.handle.request_log().iter().all(|r| !r.is_mutating()),
        "not one mutating call: {:?}",
        b.mutations().iter().map(call).collect::<Vec<_>>()
    );
    assert_eq!(b.cluster_state(), before);
    let node = b.handle.object("nodes", "", "node-a-2").expect("node");
    assert_eq!(node["spec"]["unschedulable"], true, "{node}");
    assert!(node["metadata"]["annotations"]["shakedown.dev/cordoned-by"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn recover_with_a_server_dry_run_sends_dry_runs_only_and_execs_nothing() {
    let b = bench("recover-server", common::fast_shop()).await;
    leave_marks(&b).await;
    let before = b.cluster_state();
    let out = b.shakedown(&["--dry-run=server", "recover"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2 accepted by the API server"),
        "{}",
        stdout(&out)
    );
    let calls: Vec<String> = b.mutations().iter().map(call).collect();
    assert!(calls.contains(&"PATCH nodes".to_owned()), "{calls:?}");
    assert!(calls.contains(&"PATCH pods".to_owned()), "{calls:?}");
    assert!(b.mutations().iter().all(|r| r.dry_run), "{calls:?}");
    assert!(b.handle.exec_log().is_empty(), "an exec cannot be dry-run");
    assert_eq!(b.cluster_state(), before);
}
