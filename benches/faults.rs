//! `cargo bench --bench faults`: what shakedown's faults cost against the API floor.
//!
//! - pod-delete over 1,000 sandbox pods vs a plain loop of concurrent DELETE calls (the
//!   same concurrency shakedown uses): the ratio is shakedown's overhead (its journal
//!   records, the Events per owner, the lock and target listing around the DELETEs).
//! - a ~110-pod node drain (327 pods on 3 nodes of 110-pod capacity) vs `kubectl drain`
//!   on an identical sandbox.
//! - the revert of 500 faulted targets (500 nodes cordoned by a run) vs a plain loop of
//!   concurrent uncordon PATCHes; the bar is 2 s on the sandbox.
//!
//! Each sandbox runs in-process on 127.0.0.1; the figures are ratios measured in the
//! same run, so they compare across machines. `SHAKEDOWN_BENCH=pod-delete|drain|revert`
//! runs one part only.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use shakedown::events::RunEvent;
use shakedown::executor;
use shakedown::run::bus;
use shakedown_sandbox::{self as sandbox, SandboxConfig, SandboxHandle};

use common::{median, ratio};

fn config(nodes: usize, replicas: usize) -> SandboxConfig {
    let mut yaml = String::from("nodes:\n");
    for i in 0..nodes {
        yaml.push_str(&format!("  - {{ name: node-{i}, zone: zone-{} }}\n", i % 2));
    }
    yaml.push_str(&format!(
        "deployments:\n  - {{ namespace: bench, name: bulk, replicas: {replicas} }}\n"
    ));
    let mut config = SandboxConfig::from_yaml(&yaml).expect("bench topology");
    config.timings.startup_delay = Duration::from_millis(20);
    config.timings.shutdown_delay = Duration::ZERO;
    config
}

fn running(handle: &SandboxHandle) -> usize {
    handle
        .objects("pods", Some("bench"))
        .iter()
        .filter(|p| {
            p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .count()
}

async fn wait_running(handle: &SandboxHandle, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while running(handle) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} pods running",
            running(handle)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn client(handle: &SandboxHandle) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&handle.kubeconfig_yaml()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// The API floor: DELETE every pod, 32 in flight. With `watched`, a watch of the
/// namespace's pods (decoded, as any client decodes them) is open meanwhile, as
/// shakedown's recovery watch is: the same DELETEs then also cost the server the watch
/// events of every deleted and recreated pod.
async fn plain_deletes(client: &kube::Client, watched: bool) -> Duration {
    use futures::StreamExt;
    let api: Api<Pod> = Api::namespaced(client.clone(), "bench");
    let list = api.list(&ListParams::default()).await.expect("list");
    let from = list
        .metadata
        .resource_version
        .clone()
        .expect("list version");
    let names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let watch = watched.then(|| {
        let api = api.clone();
        tokio::spawn(async move {
            let params = kube::api::WatchParams::default().timeout(290);
            let mut stream = api.watch(&params, &from).await.expect("watch").boxed();
            while let Some(event) = stream.next().await {
                std::hint::black_box(event.expect("watch event"));
            }
        })
    });
    let started = Instant::now();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for name in names {
        let (api, limit) = (api.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            api.delete(&name, &DeleteParams::default())
                .await
                .expect("delete");
        });
    }
    while tasks.join_next().await.is_some() {}
    let took = started.elapsed();
    if let Some(watch) = watch {
        watch.abort();
    }
    took
}

/// Runs one scenario through the executor; returns how long its parts took.
async fn shakedown_run(handle: &SandboxHandle, dir: &Path, scenario: &str) -> Phases {
    let kubeconfig = dir.join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let file = dir.join("scenario.yaml");
    std::fs::write(&file, scenario).expect("scenario");
    let started = Instant::now();
    let loaded = shakedown::spec::load(&file).expect("valid scenario");
    let conn = shakedown::cluster::connect(Some(&kubeconfig), None)
        .await
        .expect("connect");
    let settings = shakedown::plan::PlanSettings {
        seed: 1,
        default_namespace: Some(conn.default_namespace.clone()),
    };
    let mut plan = shakedown::plan::plan(&loaded, &settings);
    let (namespaces, with_nodes) = plan.inventory_needs();
    let inventory =
        shakedown::cluster::inventory(&conn, &namespaces, with_nodes, Duration::from_secs(60))
            .await
            .expect("inventory");
    plan.pick_targets(&inventory);
    let journal =
        shakedown::journal::JournalWriter::create(&dir.join("journal.jsonl")).expect("journal");
    let bus = bus::EventBus::new(Some(journal), bus::Progress::Quiet, bus::system_clock());
    let options = executor::RunOptions {
        run_id: "bench-0001".into(),
        server_dry_run: false,
        prometheus_url: None,
        prometheus_token: None,
        prometheus_token_file: None,
        revert_timeout: Duration::from_secs(30),
        // As `shakedown run` does: the lock is part of what a fault costs.
        lock: Some(Default::default()),
        halt_namespace: shakedown::cluster::halt::DEFAULT_NAMESPACE.into(),
        pause: Default::default(),
        baseline: None,
        earlier_runs: Vec::new(),
    };
    let outcome = executor::run(&plan, conn, bus.clone(), options).await;
    let whole = started.elapsed();
    assert_eq!(
        outcome,
        shakedown::exit::Outcome::Passed,
        "bench run failed"
    );
    let records = bus.records();
    let at = |pred: &dyn Fn(&RunEvent) -> bool| {
        records
            .iter()
            .filter(|r| pred(&r.event))
            .map(|r| r.at)
            .collect::<Vec<_>>()
    };
    let intent = at(&|e| matches!(e, RunEvent::FaultIntent(_)))[0];
    let injected = at(&|e| matches!(e, RunEvent::FaultInjected { .. }));
    let (first, last) = (injected[0], *injected.last().expect("injected"));
    Phases {
        fault: between(intent, last),
        before_first: between(intent, first),
        whole,
        first_deletion: first,
        last_deletion: last,
    }
}

/// How long a bench run's parts took.
struct Phases {
    /// From the fault's intent record to its last target's `FaultInjected`.
    fault: Duration,
    /// From the intent to the first `FaultInjected`: what is left of the recovery
    /// watch's first list (started with the pick), and the first request.
    before_first: Duration,
    whole: Duration,
    /// When the first and the last target were faulted (the journal's clock).
    first_deletion: jiff::Timestamp,
    last_deletion: jiff::Timestamp,
}

/// Watches, every 5 ms until `done` flips, whether the sandbox's workloads are whole
/// (every Deployment's replicas available, as `kubectl rollout status` reads it): the
/// instants, on the journal's clock, at which the answer changed.
async fn watch_settled(
    handle: &SandboxHandle,
    done: tokio::sync::watch::Receiver<bool>,
) -> Vec<(jiff::Timestamp, bool)> {
    let mut changes: Vec<(jiff::Timestamp, bool)> = Vec::new();
    while !*done.borrow() {
        let settled = handle.is_settled();
        if changes.last().is_none_or(|(_, was)| *was != settled) {
            changes.push((jiff::Timestamp::now(), settled));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    changes
}

/// How long the owners took to become whole: from the first deletion to the moment
/// the workloads were last seen becoming whole again after the last deletion. `None`
/// when they never looked broken (the deletions and replacements fell between two
/// status passes).
fn owners_whole(changes: &[(jiff::Timestamp, bool)], run: &Phases) -> Option<Duration> {
    let broke = changes
        .iter()
        .any(|(at, settled)| !settled && *at >= run.first_deletion);
    let (whole_at, settled) = changes.last()?;
    (broke && *settled && *whole_at >= run.last_deletion)
        .then(|| between(run.first_deletion, *whole_at))
}

/// From `a` to `b` on the journal's clock; zero if `b` is not after `a`.
fn between(a: jiff::Timestamp, b: jiff::Timestamp) -> Duration {
    Duration::try_from(b.duration_since(a)).unwrap_or_default()
}

fn pods_on(handle: &SandboxHandle, node: &str) -> usize {
    handle
        .objects("pods", Some("bench"))
        .iter()
        .filter(|p| p["spec"]["nodeName"] == node)
        .count()
}

/// `n` nodes cordoned by run `run_id`, as a drain leaves them (32 PATCHes in flight).
async fn cordon_all(client: &kube::Client, n: usize, run_id: &str) {
    let patch = serde_json::json!({
        "metadata": {"annotations": {shakedown::faults::CORDONED_BY: run_id}},
        "spec": {"unschedulable": true},
    });
    patch_nodes(client, n, patch).await;
}

/// The API floor for a revert: an uncordon PATCH per node, 32 in flight.
async fn plain_uncordons(client: &kube::Client, n: usize) -> Duration {
    let patch = serde_json::json!({
        "metadata": {"annotations": {shakedown::faults::CORDONED_BY: null}},
        "spec": {"unschedulable": null},
    });
    let started = Instant::now();
    patch_nodes(client, n, patch).await;
    started.elapsed()
}

/// One merge PATCH on each of nodes `node-0..n`, 32 in flight.
async fn patch_nodes(client: &kube::Client, n: usize, patch: serde_json::Value) {
    let nodes: Api<Node> = Api::all(client.clone());
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (nodes, limit, patch) = (nodes.clone(), limit.clone(), patch.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            nodes
                .patch(
                    &format!("node-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .expect("node patch");
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// shakedown's revert of `n` cordoned nodes (the executor's path: `faults::undo_all`).
/// Returns (every target reverted, with the revert Events posted too, targets undone).
async fn shakedown_reverts(
    client: &kube::Client,
    n: usize,
    run_id: &str,
) -> (Duration, Duration, usize) {
    let bus = bus::EventBus::new(None, bus::Progress::Quiet, bus::system_clock());
    let ctx = shakedown::faults::FaultContext {
        client: client.clone(),
        run_id: run_id.into(),
        step: "1".into(),
        dry_run: false,
        bus,
        ledger: Default::default(),
        stop: tokio::sync::watch::channel(shakedown::run::stop::Stop::Running).1,
        evictable: None,
        listed: Default::default(),
    };
    let entries = (0..n)
        .map(|i| {
            let node = format!("node-{i}");
            ("1".to_owned(), shakedown::faults::Undo::Uncordon { node })
        })
        .collect();
    let mut undone = 0;
    let started = Instant::now();
    let mut reverted = Duration::ZERO;
    shakedown::faults::undo_all(&ctx, entries, Duration::from_secs(30), |_, _, r| {
        undone += usize::from(matches!(r, Ok(shakedown::faults::Reverted::Undone(_))));
        reverted = started.elapsed();
    })
    .await;
    (reverted, started.elapsed(), undone)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = std::env::temp_dir().join(format!("shakedown-bench-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");

    // `SHAKEDOWN_BENCH=revert` (or `pod-delete`, `drain`) runs one part only.
    let only = std::env::var("SHAKEDOWN_BENCH").ok();
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if runs("pod-delete") {
        pod_delete_part(&dir).await;
    }
    if runs("drain") {
        drain_part(&dir).await;
    }
    if runs("revert") {
        revert_part().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sandbox of 1,000 running pods, fresh for each measurement: a sandbox that has
/// already answered a round of deletions holds that round's Events and history, so
/// whichever contender ran on it later would be measured on a different server.
async fn fresh_bulk() -> SandboxHandle {
    let handle = sandbox::start(config(10, 1000), 0).await.expect("sandbox");
    wait_running(&handle, 1000).await;
    // Quiet over three controller passes: the status and Event writes that follow 1,000
    // pods starting would otherwise run during the first contender's requests, by a
    // varying amount.
    handle.wait_quiet(Duration::from_millis(300)).await;
    handle
}

/// Who runs in a pod-delete round, each on its own fresh sandbox.
#[derive(Clone, Copy)]
enum Contender {
    /// The plain DELETE loop, the sandbox's controllers held meanwhile.
    FloorHeld,
    /// The same with a watch of the pods open, as shakedown's recovery watch is.
    WatchedFloorHeld,
    /// shakedown's run, the controllers held until its last DELETE was answered.
    ShakedownHeld,
    /// The plain DELETE loop with the controllers running.
    Floor,
    /// shakedown's whole run with the controllers running, the owners watched.
    Shakedown,
}

const CONTENDERS: [Contender; 5] = [
    Contender::FloorHeld,
    Contender::WatchedFloorHeld,
    Contender::ShakedownHeld,
    Contender::Floor,
    Contender::Shakedown,
];

/// Every round's figures, a vector each, of which the medians are printed.
#[derive(Default)]
struct PodDeleteFigures {
    floors_held: Vec<Duration>,
    watched_floors_held: Vec<Duration>,
    deletions_held: Vec<Duration>,
    floors: Vec<Duration>,
    faults: Vec<Duration>,
    befores: Vec<Duration>,
    deletions: Vec<Duration>,
    wholes: Vec<Duration>,
    whole_ratios: Vec<f64>,
}

/// pod-delete of 1,000 pods against the API floor. The deletions are compared with the
/// sandbox's controllers held while the DELETEs are answered: a controller pass after a
/// burst of deletions (finishing them, 1,000 replacements, their Events, scheduling)
/// holds the store for tens of milliseconds, and how many such passes land inside a
/// window of a few hundred depends on the round, not on the client (one round's floor
/// spread 0.23-0.56 s with them running). Held, both sides pay the API's own cost
/// only; the controllers are released after the last DELETE, so shakedown's run then
/// goes on to its recovery. The same figures with the controllers running, and the
/// whole run against the owners' own time to become whole, come from unheld rounds.
async fn pod_delete_part(dir: &Path) {
    // The contenders take turns, each on its own fresh sandbox, and each figure is the
    // median of its rounds.
    let rounds: usize = std::env::var("SHAKEDOWN_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(9)
        .max(1);
    let scenario = "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {name: bulk}\nspec:\n  safety: {allowedNamespaces: [bench]}\n  target: {pods: {namespace: bench, selector: app=bulk, mode: all}}\n  fault: {type: pod-delete}\n  recovery: {within: 5m}\n";
    let mut f = PodDeleteFigures::default();
    for round in 0..rounds {
        let mut line = Vec::new();
        // The contenders take turns in a rotating order, so none is always first or last.
        for i in 0..CONTENDERS.len() {
            let contender = CONTENDERS[(i + round) % CONTENDERS.len()];
            let handle = fresh_bulk().await;
            match contender {
                Contender::FloorHeld | Contender::WatchedFloorHeld => {
                    let watched = matches!(contender, Contender::WatchedFloorHeld);
                    let client = client(&handle).await;
                    let held = handle.hold_controllers();
                    let took = plain_deletes(&client, watched).await;
                    drop(held);
                    let (what, into) = if watched {
                        ("held, watched floor", &mut f.watched_floors_held)
                    } else {
                        ("held: floor", &mut f.floors_held)
                    };
                    line.push(format!("{what} {took:.2?}"));
                    into.push(took);
                }
                Contender::ShakedownHeld => {
                    let run =
                        held_until_deleted(&handle, shakedown_run(&handle, dir, scenario)).await;
                    let deletes = run.fault.saturating_sub(run.before_first);
                    line.push(format!("held, shakedown's deletions {deletes:.2?}"));
                    f.deletions_held.push(deletes);
                }
                Contender::Floor => {
                    let took = plain_deletes(&client(&handle).await, false).await;
                    line.push(format!("running: floor {took:.2?}"));
                    f.floors.push(took);
                }
                Contender::Shakedown => {
                    let (done, watching) = tokio::sync::watch::channel(false);
                    let (run, changes) = tokio::join!(
                        async {
                            let run = shakedown_run(&handle, dir, scenario).await;
                            done.send_replace(true);
                            run
                        },
                        watch_settled(&handle, watching)
                    );
                    let deletes = run.fault.saturating_sub(run.before_first);
                    let owners = owners_whole(&changes, &run);
                    line.push(format!(
                        "running, shakedown's deletions {deletes:.2?}, whole run {:.2?}, owners whole {}",
                        run.whole,
                        owners.map_or("never looked broken".into(), |o| format!("{o:.2?}"))
                    ));
                    f.faults.push(run.fault);
                    f.befores.push(run.before_first);
                    f.deletions.push(deletes);
                    f.wholes.push(run.whole);
                    if let Some(owners) = owners {
                        f.whole_ratios.push(ratio(run.whole, owners));
                    }
                }
            }
            handle.shutdown().await;
        }
        println!("  round {round}: {}", line.join("; "));
    }
    print_pod_delete(rounds, f);
}

/// Runs `run` with the sandbox's controllers held until its 1,000th DELETE was answered
/// (or it ended), then released so that it can go on to its recovery.
async fn held_until_deleted(handle: &SandboxHandle, run: impl Future<Output = Phases>) -> Phases {
    let held = handle.hold_controllers();
    let (ended, mut ending) = tokio::sync::watch::channel(false);
    let release = async {
        while handle.requests_answered("DELETE") < 1000 && !*ending.borrow_and_update() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(held);
    };
    let (phases, ()) = tokio::join!(
        async {
            let phases = run.await;
            ended.send_replace(true);
            phases
        },
        release
    );
    phases
}

fn print_pod_delete(rounds: usize, f: PodDeleteFigures) {
    let floor_held = median(f.floors_held);
    let watched_floor_held = median(f.watched_floors_held);
    let deletes_held = median(f.deletions_held);
    let floor = median(f.floors);
    let (fault, before_first) = (median(f.faults), median(f.befores));
    let (deletes, whole) = (median(f.deletions), median(f.wholes));
    println!(
        "pod-delete, 1000 pods, medians of {rounds} rounds, each contender on a fresh sandbox."
    );
    println!(
        "pod-delete, 1000 pods, the sandbox's controllers held while the DELETEs are answered (the API's own cost):"
    );
    println!("  API floor (plain concurrent DELETEs):       {floor_held:>10.2?}");
    println!(
        "  shakedown's deletions:                      {deletes_held:>10.2?}  ({:.2}x floor; bar 1.15x)",
        ratio(deletes_held, floor_held)
    );
    println!(
        "  API floor with a watch of the pods open:    {watched_floor_held:>10.2?}  (the deletions: {:.2}x this floor)",
        ratio(deletes_held, watched_floor_held)
    );
    println!(
        "pod-delete, 1000 pods, the controllers running (their passes land differently in each round):"
    );
    println!("  API floor (plain concurrent DELETEs):       {floor:>10.2?}");
    println!(
        "  shakedown fault phase:                      {fault:>10.2?}  ({:.2}x floor)",
        ratio(fault, floor)
    );
    println!(
        "  of which before the first deletion:         {before_first:>10.2?}  (waiting for the recovery watch's first list of the namespace)"
    );
    println!(
        "  of which the deletions:                     {deletes:>10.2?}  ({:.2}x floor)",
        ratio(deletes, floor)
    );
    println!("  shakedown whole run incl. recovery:         {whole:>10.2?}");
    let mut whole_ratios = f.whole_ratios;
    if whole_ratios.is_empty() {
        println!("  the owners never looked broken between two status passes: no ratio");
    } else {
        whole_ratios.sort_by(f64::total_cmp);
        println!(
            "  whole run against the owners' own time to become whole (Deployment available again after the first deletion): {:.2}x  (median of {}; bar 1.5x)",
            whole_ratios[whole_ratios.len() / 2],
            whole_ratios.len()
        );
    }
}

async fn drain_part(dir: &Path) {
    // Drains: two identical sandboxes, one for kubectl, one for shakedown.
    let kubectl_box = sandbox::start(config(3, 327), 0).await.expect("sandbox");
    let shakedown_box = sandbox::start(config(3, 327), 0).await.expect("sandbox");
    wait_running(&kubectl_box, 327).await;
    wait_running(&shakedown_box, 327).await;
    let on_node = pods_on(&kubectl_box, "node-0");
    let kubeconfig = dir.join("kubectl-kubeconfig");
    kubectl_box
        .write_kubeconfig(&kubeconfig)
        .expect("kubeconfig");
    let started = Instant::now();
    let status = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "drain",
            "node-0",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=120s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("kubectl on PATH");
    let kubectl = started.elapsed();
    assert!(status.success(), "kubectl drain failed");
    let drain = "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {name: drain}\nspec:\n  safety: {allowedNamespaces: [bench]}\n  target: {nodes: {names: [node-0]}}\n  fault: {type: node-drain, duration: 1s, evictionTimeout: 2m}\n  recovery: {within: 5m}\n";
    let shakedown_pods = pods_on(&shakedown_box, "node-0");
    // kubectl drain returns once the node's pods are gone; time shakedown to the same point.
    let started = Instant::now();
    let emptied = async {
        while pods_on(&shakedown_box, "node-0") > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        started.elapsed()
    };
    let (run, empty) = tokio::join!(shakedown_run(&shakedown_box, dir, drain), emptied);
    let evict = run.fault;
    println!(
        "node drain, {on_node} pods, kubectl drain (until the node is empty): {kubectl:>10.2?}"
    );
    println!(
        "node drain, {shakedown_pods} pods, shakedown until the node is empty:   {empty:>10.2?}  ({:.2}x kubectl)",
        ratio(empty, kubectl)
    );
    println!(
        "node drain, {shakedown_pods} pods, shakedown cordon+evict calls:        {evict:>10.2?}"
    );
}

/// What the sandbox answered in a phase of the bench: requests by kind, and the mean
/// server-side time per request (received to answered), which tells the runner's cost
/// from the sandbox's.
fn request_profile(handle: &SandboxHandle) -> String {
    let log = handle.request_log();
    let mut kinds = std::collections::BTreeMap::<String, (usize, Duration)>::new();
    for r in &log {
        let resource = r
            .path
            .split('/')
            .rev()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let kind = format!("{} {resource}", r.method);
        let served = r.time.duration_since(r.received).unwrap_or_default();
        let entry = kinds.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += served;
    }
    kinds
        .iter()
        .map(|(kind, (n, served))| {
            format!(
                "{n} {kind} ({:.2?} each in the sandbox)",
                *served / (*n).max(1) as u32
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reverts: `SHAKEDOWN_BENCH_REVERTS` (default 500) nodes cordoned by a run, undone by a
/// plain loop, then by shakedown; prints the requests and time per revert of each.
async fn revert_part() {
    let reverts: usize = std::env::var("SHAKEDOWN_BENCH_REVERTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let mut nodes_box = config(reverts, 0);
    nodes_box.timings.startup_delay = Duration::ZERO;
    let nodes_box = sandbox::start(nodes_box, 0).await.expect("sandbox");
    let client = crate::client(&nodes_box).await;
    cordon_all(&client, reverts, "bench-revert").await;
    nodes_box.clear_request_log();
    let floor = plain_uncordons(&client, reverts).await;
    println!(
        "revert, {reverts} cordoned nodes, API floor (plain concurrent PATCHes): {floor:>10.2?}  ({:.2?} per revert; {})",
        floor / reverts as u32,
        request_profile(&nodes_box)
    );
    cordon_all(&client, reverts, "bench-revert").await;
    nodes_box.clear_request_log();
    let (took, with_events, undone) = shakedown_reverts(&client, reverts, "bench-revert").await;
    let requests = nodes_box.request_log().len();
    println!(
        "revert, {reverts} cordoned nodes, shakedown, all reverted (bar: 2 s for 500): {took:>10.2?}  ({:.2}x floor, {:.2?} per revert), {undone}/{reverts} undone within the 30 s timeout",
        ratio(took, floor),
        took / reverts as u32,
    );
    println!(
        "revert, {reverts} cordoned nodes, shakedown, with the revert Events posted:    {with_events:>10.2?}  ({:.2}x floor, {:.2} requests per revert; {})",
        ratio(with_events, floor),
        requests as f64 / reverts as f64,
        request_profile(&nodes_box)
    );
}
