//! Performance contracts that are counts, not timings (the timings are ratios printed
//! by `cargo bench`): how many requests a fault costs per target, how many fsyncs the
//! journal makes. Each test would fail if the cost crept back.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use shakedown::events::RunEvent;
use shakedown::faults::{FaultContext, Injector, Ledger};
use shakedown::run::bus::{EventBus, Progress, system_clock};
use shakedown_sandbox::{self as sandbox, SandboxConfig};

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use sandbox_bench::bench;

const PODS: usize = 40;

/// One Deployment of `PODS` pods in `shop` on two nodes; quick to start and stop.
fn bulk() -> SandboxConfig {
    let yaml = format!(
        "nodes:\n  - {{ name: node-0, zone: zone-0 }}\n  - {{ name: node-1, zone: zone-1 }}\ndeployments:\n  - {{ namespace: shop, name: bulk, replicas: {PODS} }}\n"
    );
    let mut config = SandboxConfig::from_yaml(&yaml).expect("topology");
    config.timings.startup_delay = Duration::from_millis(20);
    config.timings.shutdown_delay = Duration::ZERO;
    config
}

/// Regression (issue 17): a pod-delete sent a GET before each DELETE and an Event per
/// pod, six requests per deleted pod where the floor is one.
#[tokio::test(flavor = "multi_thread")]
async fn pod_delete_costs_one_delete_per_pod_no_reads_and_one_event_per_owner() {
    let b = bench("perf-requests", bulk()).await;
    let scenario = b.scenario(
        "all",
        "  target: {pods: {namespace: shop, selector: app=bulk, mode: all}}\n  fault: {type: pod-delete}\n  recovery: {within: 60s}\n",
    );
    let out = b
        .shakedown(&["run", scenario.to_str().expect("utf8")])
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = b.handle.request_log();
    let one_pod = |r: &&sandbox::RequestRecord| {
        r.path.starts_with("/api/v1/namespaces/shop/pods/") && r.path.matches('/').count() == 6
    };
    let deletes = log
        .iter()
        .filter(one_pod)
        .filter(|r| r.method == "DELETE")
        .count();
    let reads = log
        .iter()
        .filter(one_pod)
        .filter(|r| r.method == "GET")
        .count();
    let events = log
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v1/namespaces/shop/events")
        .count();
    // Every list of the namespace's pods is a read of all 1,000: the plan's pick, the
    // lock's (whose owners come from that same listing, not from a second one), the
    // step's own pick, and the recovery watch's first list.
    let lists = log
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/namespaces/shop/pods")
        .filter(|r| {
            !r.query
                .split('&')
                .any(|q| q == "watch=true" || q == "watch=1")
        })
        .count();
    assert_eq!(deletes, PODS, "one DELETE per pod");
    assert_eq!(reads, 0, "no pod is read before (or after) its DELETE");
    assert!(
        lists <= 4,
        "{lists} lists of the namespace's pods, want at most 4"
    );
    assert_eq!(events, 1, "one Event for the one owner of the {PODS} pods");
    let per_pod = (deletes + reads + events) as f64 / PODS as f64;
    assert!(per_pod <= 1.3, "{per_pod} requests per deleted pod");
    let journal = b.read("journal.jsonl");
    assert_eq!(
        journal.matches("\"faultInjected\"").count(),
        PODS,
        "every deletion is journaled"
    );
}

/// Regression (issue 17): a pod-delete read each target by name before deleting it, so
/// a StatefulSet pod recreated under the picked name was the one deleted. The listed
/// UID is now the DELETE's precondition: a replaced pod is left alone, and said so.
#[tokio::test(flavor = "multi_thread")]
async fn pod_delete_never_hits_a_pod_recreated_under_the_picked_name() {
    let b = bench("perf-uid", bulk()).await;
    let client = common::client(&b.handle).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let listed = pods.list(&ListParams::default()).await.expect("list");
    let (stale, fresh) = (&listed.items[0], &listed.items[1]);
    let target = |p: &Pod| format!("shop/{}", p.metadata.name.clone().unwrap_or_default());
    let info = |p: &Pod, uid: &str| shakedown::plan::PodInfo {
        namespace: "shop".into(),
        name: p.metadata.name.clone().unwrap_or_default(),
        uid: uid.into(),
        controller_kind: Some("ReplicaSet".into()),
        controller_name: p
            .metadata
            .owner_references
            .as_ref()
            .map(|o| o[0].name.clone()),
        ..Default::default()
    };
    // What the listing saw: the first pod under an earlier UID (the pod it saw has
    // since been replaced under the same name), the second as it is.
    let snapshot = [
        (
            target(stale),
            info(stale, "uid-of-the-pod-that-was-replaced"),
        ),
        (
            target(fresh),
            info(fresh, fresh.metadata.uid.as_deref().unwrap_or_default()),
        ),
    ];
    let bus = EventBus::new(None, Progress::Quiet, system_clock());
    let ctx = FaultContext {
        client,
        run_id: "perf-uid".into(),
        step: "1".into(),
        dry_run: false,
        bus: bus.clone(),
        ledger: Ledger::default(),
        stop: tokio::sync::watch::channel(shakedown::run::stop::Stop::Running).1,
        evictable: None,
        listed: Arc::new(snapshot.into_iter().collect()),
    };
    let fault = shakedown::spec::PodDelete {
        interval: None,
        duration: None,
        grace_period: None,
        force: false,
    };
    let disrupted = fault
        .inject(&ctx, &[target(stale), target(fresh)])
        .await
        .expect("inject");
    let uid_of = |p: &Pod| p.metadata.uid.clone();
    let now = pods
        .get(stale.metadata.name.as_deref().unwrap_or_default())
        .await
        .expect("the replaced pod is still there");
    assert_eq!(
        uid_of(&now),
        uid_of(stale),
        "the replaced pod was not deleted"
    );
    let injected: Vec<String> = bus
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            RunEvent::FaultInjected { target, .. } => Some(target.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(injected, [target(fresh)]);
    assert!(
        bus.records().iter().any(|r| matches!(&r.event,
            RunEvent::Note { message, .. } if message.contains("replaced since it was picked"))),
        "the skipped target is reported"
    );
    assert_eq!(disrupted.owners.len(), 1, "the deleted pod's Deployment");
}

fn journal_bus(tag: &str, window: Duration) -> (EventBus, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("shakedown-perf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("journal.jsonl");
    let journal = shakedown::journal::JournalWriter::create(&path)
        .expect("journal")
        .with_commit_window(window);
    let bus = EventBus::new(Some(journal), Progress::Quiet, system_clock());
    (bus, path)
}

fn note(i: usize) -> RunEvent {
    RunEvent::Note {
        level: shakedown::events::NoteLevel::Info,
        message: format!("sample {i}"),
    }
}

/// Regression (issue 17): every record was fsynced on its own (2,016 fsyncs for a
/// 1,000-pod delete). Records emitted within one commit window share one fsync.
#[test]
fn records_in_one_commit_window_share_one_fsync() {
    let (bus, path) = journal_bus("group", Duration::from_secs(5));
    for i in 0..1000 {
        bus.emit(note(i));
    }
    assert_eq!(bus.journal_error(), None, "written");
    let fsyncs = bus.journal_fsyncs();
    assert!(
        fsyncs <= 2,
        "{fsyncs} fsyncs for 1,000 records in one window"
    );
    let read = shakedown::journal::read(&path).expect("read back");
    assert_eq!(read.records.len(), 1000);
    assert!(read.missing.is_empty());
}

/// The durability invariant under group commit: a fault's intent is on disk when
/// `emit_durably` returns (however long the window), with everything emitted before
/// it, so a crash right after leaves it in the journal.
#[tokio::test(flavor = "multi_thread")]
async fn an_intent_is_on_disk_when_emit_durably_returns() {
    let (bus, path) = journal_bus("intent", Duration::from_secs(600));
    for i in 0..5 {
        bus.emit(note(i));
    }
    let started = std::time::Instant::now();
    let intent = RunEvent::FaultIntent(shakedown::events::FaultIntent {
        step: "1".into(),
        fault: "pod-delete".into(),
        targets: vec!["shop/a".into()],
        params: serde_json::Value::Null,
        revert: "nothing to revert".into(),
    });
    let record = bus.emit_durably(intent).await.expect("durable");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the wait cut the window short"
    );
    // What a crash now would leave behind: the file as it is, the writer still alive.
    let on_disk = shakedown::journal::read(&path).expect("read back");
    assert_eq!(on_disk.records.len(), 6);
    assert_eq!(on_disk.records.last(), Some(&record));
    assert_eq!(
        bus.journal_fsyncs(),
        1,
        "the notes rode along with the intent"
    );
    // And after it: a record emitted later is not waited for.
    bus.emit(note(99));
    assert_eq!(
        shakedown::journal::read(&path).expect("read").records.len(),
        6
    );
}

/// Regression (issue 17): reverts ran one target after another, each with its own retry
/// budget, so a few hundred targets could outlast a Job's termination grace period.
/// They now run concurrently under one overall `--revert-timeout`, each reported.
#[tokio::test(flavor = "multi_thread")]
async fn reverts_share_one_deadline_and_each_target_is_reported() {
    const NODES: usize = 100;
    let mut config = SandboxConfig::from_yaml(&{
        let mut yaml = String::from("nodes:\n");
        for i in 0..NODES {
            yaml.push_str(&format!("  - {{ name: node-{i}, zone: zone-0 }}\n"));
        }
        yaml
    })
    .expect("topology");
    config.timings.startup_delay = Duration::ZERO;
    let b = bench("perf-revert", config).await;
    let client = common::client(&b.handle).await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let cordon = serde_json::json!({
        "metadata": {"annotations": {shakedown::faults::CORDONED_BY: "perf-revert"}},
        "spec": {"unschedulable": true},
    });
    for i in 0..NODES {
        nodes
            .patch(
                &format!("node-{i}"),
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&cordon),
            )
            .await
            .expect("cordon");
    }
    let ctx = FaultContext {
        client,
        run_id: "perf-revert".into(),
        step: "1".into(),
        dry_run: false,
        bus: EventBus::new(None, Progress::Quiet, system_clock()),
        ledger: Ledger::default(),
        stop: tokio::sync::watch::channel(shakedown::run::stop::Stop::Running).1,
        evictable: None,
        listed: Default::default(),
    };
    let entries = || {
        (0..NODES)
            .map(|i| {
                let node = format!("node-{i}");
                ("1".to_owned(), shakedown::faults::Undo::Uncordon { node })
            })
            .collect::<Vec<_>>()
    };
    // Every uncordon fails (a transient 500, retried): each target fails on its own,
    // all by one deadline, not one budget after another.
    b.handle.set_api_faults(sandbox::ApiFaults {
        error_share: 1.0,
        error_code: 500,
        matching: Some("PATCH /api/v1/nodes".into()),
        ..Default::default()
    });
    let timeout = Duration::from_secs(2);
    let mut failed = std::collections::BTreeSet::new();
    let started = std::time::Instant::now();
    shakedown::faults::undo_all(&ctx, entries(), timeout, |_, entry, result| {
        assert!(result.is_err(), "{}: {result:?}", entry.target());
        failed.insert(entry.target());
    })
    .await;
    let took = started.elapsed();
    assert_eq!(failed.len(), NODES, "every target is reported");
    // One budget each, even 32 at a time, would take 4 × 2 s.
    assert!(took < Duration::from_secs(6), "{took:?} for a 2 s timeout");
    b.handle.set_api_faults(sandbox::ApiFaults::default());
    let mut outcomes = Vec::new();
    let generous = Duration::from_secs(120);
    shakedown::faults::undo_all(&ctx, entries(), generous, |_, _, result| {
        outcomes.push(format!("{result:?}"));
    })
    .await;
    let undone = outcomes
        .iter()
        .filter(|o| o.starts_with("Ok(Undone"))
        .count();
    assert_eq!(undone, NODES, "{outcomes:?}");
    let still = nodes.list(&ListParams::default()).await.expect("nodes");
    assert!(
        still
            .items
            .iter()
            .all(|n| n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true)),
        "every node uncordoned"
    );
}

/// Regression (issue 17): `shakedown recover` reverted one target after another, each
/// with its own 30 s budget, so a few hundred marks outlasted any grace period. Each
/// uncordon here takes 250 ms at the server: one after another, 64 take 16 s.
#[tokio::test(flavor = "multi_thread")]
async fn recover_reverts_in_parallel_under_one_deadline_and_reports_each_target() {
    const NODES: usize = 64;
    let mut config = SandboxConfig::from_yaml(&{
        let mut yaml = String::from("nodes:\n");
        for i in 0..NODES {
            yaml.push_str(&format!("  - {{ name: node-{i}, zone: zone-0 }}\n"));
        }
        yaml
    })
    .expect("topology");
    config.timings.startup_delay = Duration::ZERO;
    let b = bench("perf-recover", config).await;
    let client = common::client(&b.handle).await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let cordon = serde_json::json!({
        "metadata": {"annotations": {shakedown::faults::CORDONED_BY: "an-earlier-run"}},
        "spec": {"unschedulable": true},
    });
    for i in 0..NODES {
        nodes
            .patch(
                &format!("node-{i}"),
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&cordon),
            )
            .await
            .expect("cordon");
    }
    b.handle.set_api_faults(sandbox::ApiFaults {
        latency: Duration::from_millis(250),
        matching: Some("PATCH /api/v1/nodes".into()),
        ..Default::default()
    });
    let conn = shakedown::cluster::connect(Some(&b.kubeconfig), None)
        .await
        .expect("connect");
    let live_runs = shakedown::executor::recover::LiveRuns {
        lock_namespace: "default".into(),
        force: false,
        ..Default::default()
    };
    let bus = EventBus::new(None, Progress::Quiet, system_clock());
    let started = std::time::Instant::now();
    let recovery = shakedown::executor::recover::recover(
        &conn,
        None,
        shakedown::plan::DryRun::None,
        bus.clone(),
        &live_runs,
    )
    .await
    .expect("recover");
    let took = started.elapsed();
    b.handle.set_api_faults(sandbox::ApiFaults::default());
    assert!(recovery.failed.is_empty(), "{:?}", recovery.failed);
    assert_eq!(recovery.reverted.len(), NODES, "{:?}", recovery.reverted);
    let mut expected: Vec<String> = (0..NODES)
        .map(|i| format!("node/node-{i}: uncordoned (was cordoned by run an-earlier-run)"))
        .collect();
    expected.sort();
    assert_eq!(
        recovery.reverted, expected,
        "one line per target, by target"
    );
    let reported = bus
        .records()
        .iter()
        .filter(|r| matches!(r.event, RunEvent::FaultReverted { .. }))
        .count();
    assert_eq!(reported, NODES, "a FaultReverted event per target");
    // One after another: at least 64 × 250 ms = 16 s. 32 at a time: two rounds.
    assert!(
        took < Duration::from_secs(8),
        "{took:?}: the reverts did not run in parallel"
    );
    let still = nodes.list(&ListParams::default()).await.expect("nodes");
    assert!(
        still
            .items
            .iter()
            .all(|n| n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true)),
        "every node uncordoned"
    );
}

/// Regression (issue 17): a run's uncordon read the node before patching it, and posted
/// its Event between reverts; 500 reverts were 1,500 requests in one queue. Now one
/// PATCH per node (its `test` op checks the mark on the server), the Events after.
/// A node whose mark names another run is still left alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_revert_is_one_patch_that_checks_the_mark_on_the_server() {
    const NODES: usize = 8;
    let mut config = SandboxConfig::from_yaml(&{
        let mut yaml = String::from("nodes:\n");
        for i in 0..NODES {
            yaml.push_str(&format!("  - {{ name: node-{i}, zone: zone-0 }}\n"));
        }
        yaml
    })
    .expect("topology");
    config.timings.startup_delay = Duration::ZERO;
    let b = bench("perf-uncordon", config).await;
    let client = common::client(&b.handle).await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for i in 0..NODES {
        // node-0 was cordoned by another run since ours marked it.
        let by = if i == 0 { "another-run" } else { "our-run" };
        let cordon = serde_json::json!({
            "metadata": {"annotations": {shakedown::faults::CORDONED_BY: by}},
            "spec": {"unschedulable": true},
        });
        nodes
            .patch(
                &format!("node-{i}"),
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&cordon),
            )
            .await
            .expect("cordon");
    }
    let ctx = FaultContext {
        client,
        run_id: "our-run".into(),
        step: "1".into(),
        dry_run: false,
        bus: EventBus::new(None, Progress::Quiet, system_clock()),
        ledger: Ledger::default(),
        stop: tokio::sync::watch::channel(shakedown::run::stop::Stop::Running).1,
        evictable: None,
        listed: Default::default(),
    };
    let entries = (0..NODES)
        .map(|i| {
            let node = format!("node-{i}");
            ("1".to_owned(), shakedown::faults::Undo::Uncordon { node })
        })
        .collect();
    b.handle.clear_request_log();
    let mut outcomes = std::collections::BTreeMap::new();
    shakedown::faults::undo_all(&ctx, entries, Duration::from_secs(60), |_, entry, r| {
        outcomes.insert(entry.target(), format!("{r:?}"));
    })
    .await;
    assert!(
        outcomes["node/node-0"].starts_with("Ok(LeftAlone"),
        "{outcomes:?}"
    );
    let undone = outcomes
        .values()
        .filter(|o| o.starts_with("Ok(Undone"))
        .count();
    assert_eq!(undone, NODES - 1, "{outcomes:?}");
    let log = b.handle.request_log();
    let count = |method: &str, path: &str| {
        log.iter()
            .filter(|r| r.method == method && r.path.starts_with(path))
            .count()
    };
    // One PATCH each; node-0's failed test (422) is followed by the one read that
    // says whose mark it carries.
    assert_eq!(count("PATCH", "/api/v1/nodes/"), NODES, "{log:#?}");
    assert_eq!(
        count("GET", "/api/v1/nodes/"),
        1,
        "only the refused node is read"
    );
    assert_eq!(
        count("POST", "/api/v1/namespaces/default/events"),
        NODES - 1
    );
    let node = |i: usize| {
        b.handle
            .objects("nodes", None)
            .into_iter()
            .find(|n| n["metadata"]["name"] == format!("node-{i}"))
            .expect("node")
    };
    assert_eq!(
        node(0)["spec"]["unschedulable"],
        true,
        "not ours: still cordoned"
    );
    assert_eq!(
        node(0)["metadata"]["annotations"][shakedown::faults::CORDONED_BY],
        "another-run"
    );
    for i in 1..NODES {
        assert!(node(i)["spec"]["unschedulable"].is_null(), "{}", node(i));
        assert!(
            node(i)["metadata"]["annotations"][shakedown::faults::CORDONED_BY].is_null(),
            "{}",
            node(i)
        );
    }
}
