//! One run per target at a time (issue 10, finding 7): concurrent runs through the CLI
//! against one in-process sandbox. A run locks what it picks from with Leases; a second
//! run whose targets overlap refuses (exit 3, naming the holder) or waits; `recover`
//! leaves a live run's faults alone unless forced; every run gives its Leases back.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use shakedown_sandbox::{self as sandbox, SandboxHandle};

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

/// The Lease a run takes on the checkout Deployment (`LockKey::lease_name`).
fn checkout_lease() -> String {
    shakedown::cluster::lease::LockKey::new("deployment/shop/checkout").lease_name()
}

/// The shared bench, with these tests' names: every run writes its reports in its own
/// `out-TAG` folder, and a scenario is capped at 34 % of what it picks from.
struct Bench(sandbox_bench::Bench);

impl std::ops::Deref for Bench {
    type Target = sandbox_bench::Bench;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

async fn bench(tag: &str) -> Bench {
    Bench(sandbox_bench::Bench::new(tag).await)
}

impl Bench {
    /// A scenario in `shop`, capped at 34 % of what it picks from.
    fn scenario(&self, name: &str, body: &str) -> PathBuf {
        self.scenario_with(
            name,
            "{allowedNamespaces: [shop], maxTargetPercent: 34%}",
            body,
        )
    }

    /// `shakedown --yes ARGS`, with its reports in `out-TAG`, outside any CI.
    fn command(&self, tag: &str, args: &[&str]) -> tokio::process::Command {
        self.command_in(tag, args)
    }

    fn run(&self, tag: &str, scenario: &Path, extra: &[&str]) -> tokio::process::Command {
        let mut command = self.command(tag, &["run"]);
        command.args(extra).arg(scenario);
        command
    }

    fn journal(&self, tag: &str) -> Vec<Value> {
        self.journal_of(tag)
    }

    fn run_id(&self, tag: &str) -> String {
        self.journal(tag)
            .iter()
            .find(|r| r["event"] == "runStarted")
            .and_then(|r| r["runId"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("run {tag} has no runStarted record"))
    }

    fn leases(&self) -> Vec<Value> {
        self.handle.objects("leases", Some("default"))
    }

    async fn wait_until(&self, done: impl Fn(&SandboxHandle) -> bool, what: &str) {
        self.wait_for(what, done).await;
    }

    /// Requests in the log that mutate `resource` (`pods`, `leases`, …), as `METHOD path`.
    fn mutations_of(&self, resource: &str) -> Vec<String> {
        self.handle
            .request_log()
            .into_iter()
            .filter(|r| r.is_mutating())
            .filter(|r| r.path.split('/').any(|segment| segment == resource))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn netem_marked(handle: &SandboxHandle) -> usize {
    handle
        .objects("pods", Some("shop"))
        .iter()
        .filter(|p| p["metadata"]["annotations"]["shakedown.dev/fault"].is_string())
        .count()
}

const NETEM_CHECKOUT: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: network-latency, delay: 100ms, duration: DURATION}\n";

fn netem_on(app: &str, duration: &str) -> String {
    NETEM_CHECKOUT
        .replace("app=checkout", &format!("app={app}"))
        .replace("DURATION", duration)
}

const DELETE_CHECKOUT: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n  recovery: {within: 20s}\n";

/// Starts a run and returns once its fault is in the cluster (`faulted`).
async fn start_holding(
    b: &Bench,
    tag: &str,
    scenario: &Path,
    faulted: impl Fn(&SandboxHandle) -> bool,
) -> tokio::process::Child {
    let child = b
        .run(tag, scenario, &[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    b.wait_until(faulted, &format!("run {tag} injects its fault"))
        .await;
    child
}

async fn interrupt(child: tokio::process::Child) -> Output {
    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait_with_output().await.expect("wait")
}

/// Regression (finding 7): two runs on the same Deployment ran at once and, capped at
/// 34 % each, took down more of it than either cap allowed. The second now refuses
/// before touching anything, naming the run that holds the lock and where it runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_on_the_same_deployment_refuses_naming_the_holder() {
    let b = bench("overlap").await;
    let first = b.scenario("first", &netem_on("checkout", "30s"));
    let holder = start_holding(&b, "first", &first, |h| netem_marked(h) == 1).await;
    let run_id = b.run_id("first");

    let second = b.scenario("second", DELETE_CHECKOUT);
    let out = b.run("second", &second, &[]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&run_id), "names the holder's run id: {err}");
    assert!(err.contains("pid "), "names where the holder runs: {err}");
    assert!(err.contains("since "), "says since when: {err}");
    assert!(
        b.mutations_of("pods")
            .iter()
            .all(|m| !m.starts_with("DELETE")),
        "nothing of the second run was injected: {:?}",
        b.mutations_of("pods")
    );
    let journal = b.journal("second");
    assert!(
        journal.iter().any(|r| r["event"] == "stepSkipped"
            && r["reason"].as_str().is_some_and(|s| s.contains(&run_id))),
        "the second run's report says why it did not run: {journal:?}"
    );
    assert_eq!(
        journal.last().map(|r| r["exitCode"].clone()),
        Some(json!(3))
    );

    let out = interrupt(holder).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(netem_marked(&b.handle), 0);
    assert!(
        b.leases().is_empty(),
        "every lock is given back: {:?}",
        b.leases()
    );
}

/// Regression (finding 7): three concurrent runs each capped at 34 % took down 2 of 3
/// pods. Locking the Deployment, not the picked pod, lets exactly one of them run.
#[tokio::test(flavor = "multi_thread")]
async fn three_concurrent_runs_capped_at_34_percent_fault_one_pod_not_three() {
    let b = bench("three").await;
    // Long enough that the losers, however slowly they start, try while it holds.
    let scenario = b.scenario("third", &netem_on("checkout", "15s"));
    let runs: Vec<_> = ["r1", "r2", "r3"]
        .iter()
        .map(|tag| b.run(tag, &scenario, &[]).output())
        .collect();
    let all = futures::future::join_all(runs);
    tokio::pin!(all);
    let mut most = 0;
    let outs = loop {
        tokio::select! {
            outs = &mut all => break outs,
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                most = most.max(netem_marked(&b.handle));
            }
        }
    };
    let codes: Vec<Option<i32>> = outs
        .iter()
        .map(|o| o.as_ref().expect("run").status.code())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "exactly one run held the lock: {codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(3)).count(),
        2,
        "the others refused: {codes:?}"
    );
    assert_eq!(most, 1, "never more than one checkout pod faulted at once");
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_on_different_deployments_both_proceed() {
    let b = bench("disjoint").await;
    let first = b.scenario("first", &netem_on("checkout", "30s"));
    let holder = start_holding(&b, "first", &first, |h| netem_marked(h) == 1).await;
    let other = b.scenario_with(
        "other",
        "{allowedNamespaces: [shop], maxTargetPercent: 50%}",
        &netem_on("frontend", "1s"),
    );
    let out = b.run("other", &other, &[]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        netem_marked(&b.handle),
        1,
        "the first run's fault is untouched"
    );
    let out = interrupt(holder).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_for_lock_waits_for_the_holder_then_runs() {
    let b = bench("wait").await;
    let first = b.scenario("first", &netem_on("checkout", "3s"));
    let holder = start_holding(&b, "first", &first, |h| netem_marked(h) == 1).await;
    let second = b.scenario("second", DELETE_CHECKOUT);
    let out = b
        .run("second", &second, &["--wait-for-lock=60s"])
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("waiting for a lock"),
        "{}",
        stderr(&out)
    );
    let first_out = holder.wait_with_output().await.expect("first run");
    assert_eq!(first_out.status.code(), Some(0), "{}", stderr(&first_out));
    // The first run gave its lock back before the second deleted anything.
    let log = b.handle.request_log();
    let released = log
        .iter()
        .position(|r| r.method == "DELETE" && r.path.ends_with(&checkout_lease()))
        .expect("the first run released its lock");
    let deleted = log
        .iter()
        .position(|r| r.method == "DELETE" && r.path.contains("/pods/"))
        .expect("the second run deleted a pod");
    assert!(released < deleted, "the second run waited for the first");
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_ends_the_wait_for_a_lock_without_touching_anything() {
    let b = bench("wait-signal").await;
    let first = b.scenario("first", &netem_on("checkout", "30s"));
    let holder = start_holding(&b, "first", &first, |h| netem_marked(h) == 1).await;
    let second = b.scenario("second", DELETE_CHECKOUT);
    let waiter = b
        .run("second", &second, &["--wait-for-lock"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    b.wait_until(
        |_| {
            b.journal("second").iter().any(|r| {
                r["event"] == "note"
                    && r["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("waiting for a lock"))
            })
        },
        "the second run waits",
    )
    .await;
    let out = interrupt(waiter).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        b.mutations_of("pods")
            .iter()
            .all(|m| !m.starts_with("DELETE"))
    );
    let out = interrupt(holder).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}

/// Puts a Lease on the checkout Deployment as another run would have left it.
async fn plant_lease(b: &Bench, holder: &str, renewed_secs_ago: i64) {
    let client = common::client(&b.handle).await;
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client, "default");
    let renewed = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(renewed_secs_ago);
    let stamp = renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let lease: k8s_openapi::api::coordination::v1::Lease = serde_json::from_value(json!({
        "metadata": {
            "name": checkout_lease(),
            "labels": {"app.kubernetes.io/managed-by": "shakedown"},
            "annotations": {
                "shakedown.dev/lock-target": "deployment/shop/checkout",
                "shakedown.dev/host": "gameday-laptop (pid 1)",
            },
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 20,
            "acquireTime": stamp,
            "renewTime": stamp,
        },
    }))
    .expect("lease");
    api.create(&kube::api::PostParams::default(), &lease)
        .await
        .expect("plant the lease");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_lease_is_taken_over_and_a_live_one_is_not() {
    let b = bench("stale").await;
    let scenario = b.scenario("pd", DELETE_CHECKOUT);

    plant_lease(&b, "live-run", 0).await;
    let out = b.run("live", &scenario, &[]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("live-run"), "{}", stderr(&out));
    assert!(stderr(&out).contains("gameday-laptop"), "{}", stderr(&out));
    assert_eq!(b.leases().len(), 1, "someone else's live lock stays");

    b.handle.clear_request_log();
    let client = common::client(&b.handle).await;
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client, "default");
    api.delete(&checkout_lease(), &Default::default())
        .await
        .expect("clear");
    plant_lease(&b, "dead-run", 60).await;
    let out = b.run("stale", &scenario, &[]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lease_writes = b.mutations_of("leases");
    assert!(
        lease_writes
            .iter()
            .any(|m| m.starts_with("PUT") && m.ends_with(&checkout_lease())),
        "the expired lease was taken over with an update: {lease_writes:?}"
    );
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}

#[tokio::test(flavor = "multi_thread")]
async fn recover_leaves_a_live_runs_faults_alone_unless_forced() {
    let b = bench("recover").await;
    let drain = b.scenario_with(
        "drain",
        "{allowedNamespaces: [shop]}",
        "  target: {nodes: {names: [node-a-1]}}\n  fault: {type: node-drain, duration: 10m, evictionTimeout: 20s}\n",
    );
    let cordoned = |h: &SandboxHandle| {
        h.object("nodes", "", "node-a-1")
            .is_some_and(|n| n["spec"]["unschedulable"] == true)
    };
    let holder = start_holding(&b, "drain", &drain, cordoned).await;
    let run_id = b.run_id("drain");

    // With the live run's own journal too: its node is left to it, not "unmarked".
    let journal = b.dir.join("out-drain/latest/journal.jsonl");
    let journal = journal.to_str().expect("utf8");
    let out = b
        .command("recover", &["recover", "--journal", journal])
        .output()
        .await
        .expect("recover");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("node/node-a-1: left alone"), "{err}");
    assert!(!err.contains("NOT RECOVERED"), "{err}");
    assert!(
        stderr(&out).contains(&run_id),
        "names the live run: {}",
        stderr(&out)
    );
    assert!(cordoned(&b.handle), "the live run's fault is left alone");

    let out = b
        .command("recover", &["recover", "--force"])
        .output()
        .await
        .expect("recover --force");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!cordoned(&b.handle), "--force reverts it");

    let out = interrupt(holder).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}

/// A run whose lock is taken from it (here: its Lease deleted) can no longer trust that
/// nobody else faults its targets: it reverts and exits 3.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_loses_its_lock_reverts_and_exits_3() {
    let b = bench("lost").await;
    let scenario = b.scenario("net", &netem_on("checkout", "60s"));
    let holder = start_holding(&b, "net", &scenario, |h| netem_marked(h) == 1).await;
    let client = common::client(&b.handle).await;
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client, "default");
    api.delete(&checkout_lease(), &Default::default())
        .await
        .expect("take the lock away");
    let out = tokio::time::timeout(Duration::from_secs(30), holder.wait_with_output())
        .await
        .expect("the run stops well before its 60s fault ends")
        .expect("wait");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lost the lock on deployment/shop/checkout"),
        "{}",
        stderr(&out)
    );
    assert_eq!(netem_marked(&b.handle), 0, "its fault was reverted");
}

/// The lock is given back however the run ends: here a revert that fails (exit 4), so
/// `recover` can finish the job at once instead of waiting for the Lease to expire.
#[tokio::test(flavor = "multi_thread")]
async fn the_lock_is_released_when_a_revert_fails() {
    let b = bench("revert-fails").await;
    let scenario = b.scenario("net", &netem_on("checkout", "1s"));
    b.handle.set_api_faults(sandbox::ApiFaults {
        error_share: 1.0,
        error_code: 500,
        matching: Some("/exec".into()),
        ..Default::default()
    });
    let out = b
        .run("net", &scenario, &["--revert-timeout", "2s"])
        .output()
        .await
        .expect("run");
    b.handle.set_api_faults(sandbox::ApiFaults::default());
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(b.leases().is_empty(), "{:?}", b.leases());
    let out = b
        .command("recover", &["recover"])
        .output()
        .await
        .expect("recover");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(netem_marked(&b.handle), 0);
}

/// A run SIGKILLed on this host cannot release its lock, but its process is gone: the
/// next run (and `recover`) need not wait for the Lease to expire. From another host
/// the Lease blocks until it expires (`a_stale_lease_is_taken_over_and_a_live_one_is_not`).
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_left_by_a_killed_run_on_this_host_does_not_block_the_next_run() {
    let b = bench("killed").await;
    let first = b.scenario("first", &netem_on("checkout", "10m"));
    let mut holder = start_holding(&b, "first", &first, |h| netem_marked(h) == 1).await;
    holder.kill().await.expect("SIGKILL");
    assert_eq!(b.leases().len(), 1, "a killed run cannot release its lock");
    let second = b.scenario("second", DELETE_CHECKOUT);
    let out = b.run("second", &second, &[]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = b
        .command("recover", &["recover"])
        .output()
        .await
        .expect("recover");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(netem_marked(&b.handle), 0);
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}

/// Regression (finding 7): two netem runs on the same pod removed each other's fault.
/// Locks keep shakedown runs apart; should a pod still end up carrying another run's
/// mark (an older shakedown, a run with another lock namespace), the revert leaves that
/// run's netem and mark alone instead of deleting them.
#[tokio::test(flavor = "multi_thread")]
async fn a_netem_revert_leaves_another_runs_fault_alone() {
    let b = bench("netem-owner").await;
    let scenario = b.scenario("net", &netem_on("checkout", "30s"));
    let holder = start_holding(&b, "net", &scenario, |h| netem_marked(h) == 1).await;
    let pod = b
        .handle
        .objects("pods", Some("shop"))
        .into_iter()
        .find(|p| p["metadata"]["annotations"]["shakedown.dev/fault"].is_string())
        .and_then(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .expect("the faulted pod");
    let theirs = json!({"runId": "other-run", "kind": "network-latency", "container": "shakedown-netem-other", "interface": "eth0"}).to_string();
    let client = common::client(&b.handle).await;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "shop");
    let patch = json!({"metadata": {"annotations": {"shakedown.dev/fault": theirs}}});
    pods.patch(
        &pod,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .expect("another run's mark");

    let out = interrupt(holder).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let left = b.handle.object("pods", "shop", &pod).expect("pod");
    assert_eq!(
        left["metadata"]["annotations"]["shakedown.dev/fault"],
        json!(theirs),
        "the other run's mark stays"
    );
    assert!(
        !b.handle
            .exec_log()
            .iter()
            .any(|e| e.pod == pod && e.command.iter().any(|c| c == "del")),
        "no `tc qdisc del` on a qdisc that is not ours"
    );
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}

/// A drain's blast radius is every pod it evicts: while it holds a node, a pod fault on
/// a Deployment that had a pod there would add to the drain's disruption, so it waits
/// its turn like any overlapping run.
#[tokio::test(flavor = "multi_thread")]
async fn a_drain_locks_the_workloads_it_evicts() {
    let b = bench("drain-owners").await;
    let node = b
        .handle
        .objects("pods", Some("shop"))
        .into_iter()
        .find(|p| p["metadata"]["labels"]["app"] == "checkout")
        .and_then(|p| p["spec"]["nodeName"].as_str().map(str::to_owned))
        .expect("a checkout pod is scheduled");
    let drain = b.scenario_with(
        "drain",
        "{allowedNamespaces: [shop, monitoring]}",
        &format!("  target: {{nodes: {{names: [{node}]}}}}\n  fault: {{type: node-drain, duration: 10m, evictionTimeout: 20s}}\n"),
    );
    let cordoned = |h: &SandboxHandle| {
        h.object("nodes", "", &node)
            .is_some_and(|n| n["spec"]["unschedulable"] == true)
    };
    let holder = start_holding(&b, "drain", &drain, cordoned).await;
    let run_id = b.run_id("drain");
    let pods = b.scenario("pd", DELETE_CHECKOUT);
    let out = b.run("pd", &pods, &[]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deployment/shop/checkout"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&run_id), "{}", stderr(&out));
    let out = interrupt(holder).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}

/// `--wait-for-lock=DURATION` is a deadline: still held after it, the run refuses.
#[tokio::test(flavor = "multi_thread")]
async fn wait_for_lock_gives_up_at_its_deadline() {
    let b = bench("wait-deadline").await;
    let first = b.scenario("first", &netem_on("checkout", "30s"));
    let holder = start_holding(&b, "first", &first, |h| netem_marked(h) == 1).await;
    let second = b.scenario("second", DELETE_CHECKOUT);
    let out = b
        .run("second", &second, &["--wait-for-lock=2s"])
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Still held after waiting 2s"),
        "{}",
        stderr(&out)
    );
    assert!(
        b.mutations_of("pods")
            .iter()
            .all(|m| !m.starts_with("DELETE"))
    );
    let out = interrupt(holder).await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(b.leases().is_empty(), "{:?}", b.leases());
}
