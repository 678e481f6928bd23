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
    let out = b.shakedown(&["run", scenario.to_str().expect("utf8")]).await;
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
    assert_eq!(deletes, PODS, "one DELETE per pod");
    assert_eq!(reads, 0, "no pod is read before (or after) its DELETE");
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
        controller_name: p.metadata.owner_references.as_ref().map(|o| o[0].name.clone()),
        ..Default::default()
    };
    // What the listing saw: the first pod under an earlier UID (the pod it saw has
    // since been replaced under the same name), the second as it is.
    let snapshot = [
        (target(stale), info(stale, "uid-of-the-pod-that-was-replaced")),
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
    assert_eq!(uid_of(&now), uid_of(stale), "the replaced pod was not deleted");
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
    assert!(fsyncs <= 2, "{fsyncs} fsyncs for 1,000 records in one window");
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
    assert_eq!(bus.journal_fsyncs(), 1, "the notes rode along with the intent");
    // And after it: a record emitted later is not waited for.
    bus.emit(note(99));
    assert_eq!(shakedown::journal::read(&path).expect("read").records.len(), 6);
}
