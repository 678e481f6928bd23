//! The kill switch end to end, through the CLI, against an in-process sandbox:
//! `shakedown halt` from a second process stops a run mid-fault (reverted within 2 s of
//! the marker's creation, exit 5, HALTED reports naming who and why), new runs refuse
//! while the marker exists (exit 3), `halt --clear` lets them run again, and real
//! kubectl reads the marker.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use shakedown::cluster::halt::{DEFAULT_NAMESPACE, MARKER_NAME};
use shakedown_sandbox::{ApiFaults, SandboxHandle};

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

/// The promise of DESIGN.md: every running shakedown reverts within 2 s.
const REVERT_BOUND: Duration = Duration::from_secs(2);

const DRAIN: &str = "  target: {nodes: {names: [node-a-1]}}\n  fault: {type: node-drain, duration: 10m, evictionTimeout: 20s}\n";
const NETEM: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: network-latency, delay: 100ms, duration: 10m}\n";
const REASON: &str = "payments incident 4711";

/// The shared bench, run as user `tester` and with no flags of its own (`run` adds
/// `--yes --seed 7`; `halt` takes none).
struct Bench(sandbox_bench::Bench);

impl std::ops::Deref for Bench {
    type Target = sandbox_bench::Bench;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Bench {
    async fn new(tag: &str) -> Self {
        let bench = sandbox_bench::Bench::new(tag)
            .await
            .with_user("tester")
            .with_flags(&[]);
        Self(bench)
    }

    fn run(&self, scenario: &Path) -> tokio::process::Command {
        self.command(&[
            "--yes",
            "--seed",
            "7",
            "run",
            scenario.to_str().expect("utf8"),
        ])
    }

    async fn output(&self, mut command: tokio::process::Command) -> Output {
        tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("shakedown ends")
            .expect("shakedown runs")
    }

    fn marker(&self) -> Option<Value> {
        self.handle
            .object("configmaps", DEFAULT_NAMESPACE, MARKER_NAME)
    }

    /// Mutating calls, minus access reviews (a POST that changes nothing).
    fn changes(&self) -> Vec<String> {
        self.mutations()
            .into_iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    fn assert_nothing_faulted(&self) {
        for node in self.handle.objects("nodes", None) {
            let unschedulable = &node["spec"]["unschedulable"];
            assert!(unschedulable.is_null() || unschedulable == false, "{node}");
            assert!(!has_shakedown_mark(&node), "{node}");
        }
        for pod in self.handle.objects("pods", Some("shop")) {
            assert!(!has_shakedown_mark(&pod), "{pod}");
        }
    }
}

fn has_shakedown_mark(object: &Value) -> bool {
    object["metadata"]["annotations"]
        .as_object()
        .is_some_and(|a| a.keys().any(|k| k.starts_with("shakedown.dev/")))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn timestamp(text: &str) -> jiff::Timestamp {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

/// Starts `scenario`, waits until `faulted`, pulls the kill switch from a second
/// process, and checks the run: reverted within 2 s of the marker's creation, exit 5,
/// nothing left faulted, HALTED reports that say who and why. Returns the measured time
/// from the marker's creation to the last revert.
async fn halt_mid_fault(
    b: &Bench,
    scenario: &Path,
    faulted: impl Fn(&SandboxHandle) -> bool,
) -> Duration {
    let child = b
        .run(scenario)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the run");
    b.wait_for("the fault lands", faulted).await;
    let halt = b.output(b.command(&["halt", "--reason", REASON])).await;
    assert_eq!(halt.status.code(), Some(0), "{}", stderr(&halt));
    assert!(stdout(&halt).contains(REASON), "{}", stdout(&halt));
    let marker = b.marker().expect("the marker exists");
    let created = timestamp(marker["data"]["when"].as_str().expect("when"));
    assert_eq!(marker["data"]["reason"], REASON);
    let who = marker["data"]["who"].as_str().expect("who").to_owned();
    assert!(who.starts_with("tester@"), "{who}");

    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the halted run exits promptly")
        .expect("output");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    b.assert_nothing_faulted();

    let journal = b.journal();
    let reverted = journal
        .iter()
        .filter(|r| r["event"] == "faultReverted")
        .map(|r| timestamp(r["at"].as_str().expect("at")))
        .max()
        .expect("a revert was journaled");
    let took = Duration::try_from(reverted.duration_since(created))
        .expect("the revert follows the marker");
    assert!(
        took < REVERT_BOUND,
        "reverted {took:?} after the marker was created"
    );
    let targets = |kind: &str| -> std::collections::BTreeSet<String> {
        journal
            .iter()
            .filter(|r| r["event"] == kind)
            .filter_map(|r| r["target"].as_str().map(str::to_owned))
            .collect()
    };
    let open: Vec<String> = targets("faultInjected")
        .difference(&targets("faultReverted"))
        .cloned()
        .collect();
    assert!(
        open.is_empty(),
        "injected, never journaled as reverted: {open:?}"
    );
    let finished = journal.last().expect("records");
    assert_eq!(finished["event"], "runFinished");
    assert_eq!(finished["exitCode"], 5);
    assert_eq!(finished["outcome"], "halted");
    let message = finished["message"].as_str().expect("message");
    assert!(
        message.contains(REASON) && message.contains(&who),
        "{message}"
    );
    assert!(
        journal.iter().any(|r| r["event"] == "note"
            && r["message"]
                .as_str()
                .is_some_and(|m| m.contains("kill switch") && m.contains(REASON))),
        "the journal says when the halt was seen"
    );

    let summary: Value = serde_json::from_str(&b.read("summary.json")).expect("summary");
    assert_eq!(summary["verdict"], "HALTED", "{summary}");
    assert_eq!(summary["exitCode"], 5);
    let report = b.read("report.md");
    assert!(report.contains("HALTED"), "{report}");
    assert!(report.contains(REASON) && report.contains(&who), "{report}");
    let junit = b.read("junit.xml");
    assert!(junit.contains(REASON), "{junit}");
    took
}

/// A run refused by the kill switch: exit 3, who, when and why on stderr, and nothing
/// touched.
async fn assert_refused(b: &Bench, scenario: &Path) {
    b.handle.clear_request_log();
    let out = b.output(b.run(scenario)).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let why = stderr(&out);
    let marker = b.marker().expect("marker");
    for said in [
        REASON,
        marker["data"]["who"].as_str().expect("who"),
        marker["data"]["when"].as_str().expect("when"),
        "halt --clear",
    ] {
        assert!(why.contains(said), "`{said}` missing from: {why}");
    }
    assert!(b.changes().is_empty(), "{:?}", b.changes());
}

#[tokio::test(flavor = "multi_thread")]
async fn halt_mid_drain_reverts_within_2s_exits_5_and_blocks_new_runs_until_cleared() {
    let b = Bench::new("drain").await;
    let scenario = b.scenario("drain", DRAIN);
    let cordoned = |h: &SandboxHandle| {
        h.object("nodes", "", "node-a-1")
            .is_some_and(|n| n["spec"]["unschedulable"] == true)
    };
    let took = halt_mid_fault(&b, &scenario, cordoned).await;
    eprintln!("drain: reverted {took:?} after the halt marker was created");

    assert_refused(&b, &scenario).await;

    // Plain kubectl reads the marker where the README says it is.
    let kubectl = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&b.kubeconfig)
        .args(["get", "configmap", MARKER_NAME, "-o", "yaml"])
        .env("HOME", &b.dir)
        .output()
        .expect("kubectl is installed (scripts/test.sh installs it)");
    assert!(kubectl.status.success(), "{}", stderr(&kubectl));
    let yaml: Value = serde_saphyr::from_str(&stdout(&kubectl)).expect("YAML");
    assert_eq!(yaml["data"]["reason"], REASON, "{yaml}");

    let clear = b.output(b.command(&["halt", "--clear"])).await;
    assert_eq!(clear.status.code(), Some(0), "{}", stderr(&clear));
    assert!(b.marker().is_none(), "--clear removes the marker");
    let short = b.scenario(
        "short",
        "  target: {nodes: {names: [node-a-1]}}\n  fault: {type: node-drain, duration: 1s, evictionTimeout: 20s}\n",
    );
    let out = b.output(b.run(&short)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    b.assert_nothing_faulted();
}

#[tokio::test(flavor = "multi_thread")]
async fn halt_mid_network_latency_removes_netem_within_2s_and_exits_5() {
    let b = Bench::new("netem").await;
    let scenario = b.scenario("net", NETEM);
    let marked = |h: &SandboxHandle| {
        h.objects("pods", Some("shop"))
            .iter()
            .any(|p| p["metadata"]["annotations"]["shakedown.dev/fault"].is_string())
    };
    let took = halt_mid_fault(&b, &scenario, marked).await;
    eprintln!("network-latency: reverted {took:?} after the halt marker was created");
    assert!(!marked(&b.handle));
}

/// The watch is only the fast path: with every watch on the marker cut at once (a load
/// balancer that drops them), the read every second still halts the run in time.
#[tokio::test(flavor = "multi_thread")]
async fn a_halt_is_seen_in_time_even_when_every_watch_is_dropped() {
    let b = Bench::new("no-watch").await;
    b.handle.set_api_faults(ApiFaults {
        drop_watches_after: Some(Duration::from_millis(1)),
        matching: Some("/configmaps".into()),
        ..ApiFaults::default()
    });
    let scenario = b.scenario("drain", DRAIN);
    let cordoned = |h: &SandboxHandle| {
        h.object("nodes", "", "node-a-1")
            .is_some_and(|n| n["spec"]["unschedulable"] == true)
    };
    let took = halt_mid_fault(&b, &scenario, cordoned).await;
    eprintln!("drain without watches: reverted {took:?} after the halt marker was created");
}

/// A run that cannot read the marker could not be halted: it refuses to start.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_cannot_read_the_halt_marker_refuses_to_start() {
    let b = Bench::new("blind").await;
    b.handle.set_api_faults(ApiFaults {
        error_share: 1.0,
        error_code: 500,
        matching: Some(format!("/configmaps/{MARKER_NAME}")),
        ..ApiFaults::default()
    });
    let out = b.output(b.run(&b.scenario("drain", DRAIN))).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "could not read the cluster: cannot read the halt marker configmap {DEFAULT_NAMESPACE}/{MARKER_NAME}"
        )),
        "{}",
        stderr(&out)
    );
    assert!(b.changes().is_empty(), "{:?}", b.changes());
}

/// One failed read of the marker is retried, not a refusal: a flaky API server must not
/// stop every run.
#[tokio::test(flavor = "multi_thread")]
async fn half_the_marker_reads_failing_still_lets_a_run_start() {
    let b = Bench::new("flaky").await;
    b.handle.set_api_faults(ApiFaults {
        error_share: 0.5,
        error_code: 500,
        matching: Some(format!(
            "GET /api/v1/namespaces/{DEFAULT_NAMESPACE}/configmaps/{MARKER_NAME}"
        )),
        ..ApiFaults::default()
    });
    // The sandbox fails every second matching request: one read here makes the run's
    // first read of the marker the one that fails.
    let marker_path = format!("/api/v1/namespaces/{DEFAULT_NAMESPACE}/configmaps/{MARKER_NAME}");
    assert_eq!(
        common::raw(&b.handle, "GET", &marker_path, "", "")
            .await
            .code,
        404
    );
    let short = b.scenario(
        "short",
        "  target: {nodes: {names: [node-a-1]}}\n  fault: {type: node-drain, duration: 1s, evictionTimeout: 20s}\n",
    );
    let out = b.output(b.run(&short)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let marker_reads: Vec<u16> = b
        .handle
        .request_log()
        .iter()
        .filter(|r| r.path == marker_path)
        .map(|r| r.status)
        .collect();
    assert_eq!(marker_reads.get(1), Some(&500), "{marker_reads:?}");
    assert!(
        !b.journal().iter().any(|r| r["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot see its marker"))),
        "a retried read is not a blind switch"
    );
    b.assert_nothing_faulted();
}

#[tokio::test(flavor = "multi_thread")]
async fn halt_keeps_the_first_reason_and_honours_both_dry_runs() {
    let b = Bench::new("cli").await;
    let client = b
        .output(b.command(&["--dry-run=client", "halt", "--reason", "x"]))
        .await;
    assert_eq!(client.status.code(), Some(0), "{}", stderr(&client));
    assert!(
        stdout(&client).contains("would halt"),
        "{}",
        stdout(&client)
    );
    let server = b
        .output(b.command(&["--dry-run=server", "halt", "--reason", "x"]))
        .await;
    assert_eq!(server.status.code(), Some(0), "{}", stderr(&server));
    assert!(b.marker().is_none(), "a dry run leaves no marker");
    assert_eq!(
        b.changes(),
        [format!(
            "POST /api/v1/namespaces/{DEFAULT_NAMESPACE}/configmaps"
        )],
        "only the server dry run's create was sent"
    );
    assert!(
        b.handle
            .request_log()
            .iter()
            .any(|r| r.method == "POST" && r.query.contains("dryRun=All")),
        "sent with dryRun=All"
    );

    let first = b.output(b.command(&["halt", "--reason", REASON])).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = b.output(b.command(&["halt", "--reason", "another"])).await;
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("already halted"),
        "{}",
        stdout(&second)
    );
    let marker = b.marker().expect("marker");
    assert_eq!(marker["data"]["reason"], REASON, "the first halt stands");
    let when = marker["data"]["when"].as_str().expect("when");
    assert!(when.ends_with('Z'), "{when}");

    let dry_clear = b
        .output(b.command(&["--dry-run=server", "halt", "--clear"]))
        .await;
    assert_eq!(dry_clear.status.code(), Some(0), "{}", stderr(&dry_clear));
    assert!(b.marker().is_some(), "a dry-run clear keeps the marker");
    let disagree = b
        .output(b.command(&["-n", "chaos", "--halt-namespace", "ops", "halt"]))
        .await;
    assert_eq!(disagree.status.code(), Some(2), "{}", stderr(&disagree));

    let clear = b.output(b.command(&["halt", "--clear"])).await;
    assert_eq!(clear.status.code(), Some(0), "{}", stderr(&clear));
    assert!(b.marker().is_none());
    let again = b.output(b.command(&["halt", "--clear"])).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(stdout(&again).contains("not halted"), "{}", stdout(&again));
}

/// Regression: a halt (or a signal) while a PodDisruptionBudget kept an eviction
/// retrying was only acted on when the eviction timeout ran out (60 s here): the
/// injection itself now stops at once, and what it did so far is reverted.
#[tokio::test(flavor = "multi_thread")]
async fn a_halt_while_a_budget_blocks_the_eviction_reverts_at_once() {
    let b = Bench::new("pdb").await;
    let budget: kube::Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        kube::Api::namespaced(common::client(&b.handle).await, "shop");
    let tighten = serde_json::json!({"spec": {"minAvailable": 3}});
    budget
        .patch(
            "checkout",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&tighten),
        )
        .await
        .expect("tighten the budget");
    b.wait_for("the budget to allow no disruption", |h| {
        h.object("poddisruptionbudgets", "shop", "checkout")
            .is_some_and(|p| p["status"]["disruptionsAllowed"] == 0)
    })
    .await;
    let node = b
        .handle
        .objects("pods", Some("shop"))
        .iter()
        .find(|p| p["metadata"]["labels"]["app"] == "checkout")
        .and_then(|p| p["spec"]["nodeName"].as_str().map(str::to_owned))
        .expect("a checkout pod on a node");
    let scenario = b.scenario(
        "blocked",
        &format!("  target: {{nodes: {{names: [{node}]}}}}\n  fault: {{type: node-drain, duration: 10m, evictionTimeout: 60s}}\n"),
    );
    let refused_eviction = |h: &SandboxHandle| {
        h.request_log()
            .iter()
            .any(|r| r.path.ends_with("/eviction") && r.status == 429)
    };
    let took = halt_mid_fault(&b, &scenario, refused_eviction).await;
    eprintln!("drain blocked by a budget: reverted {took:?} after the halt marker was created");
}

/// A halt during the `after` phase ends the run at once, like a signal: the check says
/// it was cut short by the kill switch, and the run exits 5.
#[tokio::test(flavor = "multi_thread")]
async fn a_halt_during_the_after_phase_ends_the_run_promptly() {
    let b = Bench::new("after").await;
    let scenario = b.scenario(
        "after",
        "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n  hypotheses:\n    - {name: never, kube: {deployment: checkout, namespace: shop}, expect: \">= 99\", phases: [after], every: 200ms}\n  recovery: {within: 60s}\n",
    );
    let child = b
        .run(&scenario)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let journal = b.dir.join("out/latest/journal.jsonl");
    b.wait_for("the after phase", |_| {
        std::fs::read_to_string(&journal).is_ok_and(|j| {
            j.lines()
                .any(|l| l.contains("\"probeSample\"") && l.contains("\"after\""))
        })
    })
    .await;
    let halted = std::time::Instant::now();
    let halt = b.output(b.command(&["halt", "--reason", REASON])).await;
    assert_eq!(halt.status.code(), Some(0), "{}", stderr(&halt));
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exits")
        .expect("output");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        halted.elapsed() < Duration::from_secs(5),
        "it ended {:?} after the halt, inside a 60 s window",
        halted.elapsed()
    );
    let cut = b.journal().into_iter().any(|r| {
        r["event"] == "hypothesisVerdict"
            && r["phase"] == "after"
            && r["verdict"] == "skipped"
            && r["message"]
                .as_str()
                .is_some_and(|m| m.contains("kill switch"))
    });
    assert!(cut, "the after verdict says it was cut short");
}

/// A halt between the rounds of a repeated pod-delete: no pod is deleted after it.
#[tokio::test(flavor = "multi_thread")]
async fn halt_mid_repeated_pod_delete_stops_deleting_and_exits_5() {
    let b = Bench::new("pod-delete").await;
    let scenario = b.scenario(
        "pd",
        "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete, interval: 1s, duration: 10m}\n  recovery: {within: 20s}\n",
    );
    let deleted = |h: &SandboxHandle| {
        h.request_log()
            .iter()
            .any(|r| r.method == "DELETE" && r.path.contains("/pods/"))
    };
    halt_mid_fault(&b, &scenario, deleted).await;
    let created: std::time::SystemTime = b
        .handle
        .request_log()
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/configmaps"))
        .map(|r| r.time)
        .expect("the halt's create is logged");
    let late: Vec<String> = b
        .handle
        .request_log()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("/pods/") && r.time > created)
        .map(|r| r.path.clone())
        .collect();
    assert!(late.is_empty(), "deleted after the halt: {late:?}");
}
