//! `cargo bench -p shakedown-sandbox --bench requests`: the sandbox's CPU per request
//! by name (DELETE, GET, PATCH of a pod) with 200 and with 1,000 stored pods, and the
//! ratio between the two (issue 17: DELETE at 1,000 pods within 1.5× that at 200).
//!
//! The sandbox runs on its own runtime whose threads are named `sandbox`; the client
//! (kube-rs, 32 requests in flight) runs on another. CPU is read per thread from
//! `/proc/self/task/*/schedstat` (nanoseconds on CPU), summed over the sandbox's
//! threads only, so the client's own cost is not counted.
//!
//! The GET, PATCH and DELETE columns are the API server's own cost: the controllers are
//! held while the requests are answered. Otherwise whichever controller passes (one per
//! 100 ms) happened to fall inside a window of a few dozen milliseconds were counted as
//! the requests' cost, and one round's DELETE figure swung between 0.8× and 2.1× the
//! other size's. The follow-up work a DELETE causes (the kubelet finishing the graceful
//! delete, the ReplicaSet replacing the pod, the scheduler binding it) is the
//! DELETE+recovery column: from the first DELETE, controllers released after the last,
//! until the owners are whole again.
//!
//! While the owners recover, one GET at a time asks for a pod that does not exist (a
//! 404 needs the store like any read): the longest any of them waited is how long the
//! API stalls behind the control plane. A pass hands the store to waiting requests
//! between its controllers; before it did, a GET could wait out a whole pass (up to
//! ~380 ms at 1,000 pods in the faults bench).
//!
//! It runs twice: with the pods' Deployment alone, and with a Service and a
//! PodDisruptionBudget selecting the same pods (the endpoints and disruption-budget
//! controllers, and the workload model's traffic, then follow every pod change).
//!
//! `SANDBOX_BENCH_SIZES=200,1000` (the default) picks the pod counts,
//! `SANDBOX_BENCH_ROUNDS=5` (the default) the rounds per size whose median is printed. Run it in the
//! release profile for absolute figures; the ratios hold in the dev profile too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use shakedown_sandbox::{self as sandbox, SandboxConfig, SandboxHandle};

/// The allocator the `shakedown` binary serves the sandbox with (see the `shakedown`
/// library's root), so these figures are the shipped sandbox's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const IN_FLIGHT: usize = 32;
const SANDBOX_THREAD: &str = "sandbox";

/// What else selects the benched pods.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// The Deployment alone.
    Plain,
    /// A Service (with traffic in the workload model) and a PodDisruptionBudget
    /// (a percentage, so its expected pods come from the owner's scale) over the
    /// same pods.
    Guarded,
}

impl Variant {
    fn title(self) -> &'static str {
        match self {
            Variant::Plain => "the Deployment alone",
            Variant::Guarded => "with a Service and a PodDisruptionBudget over the same pods",
        }
    }
}

fn config(replicas: usize, variant: Variant) -> SandboxConfig {
    let mut yaml = String::from("nodes:\n");
    for i in 0..10 {
        yaml.push_str(&format!("  - {{ name: node-{i}, zone: zone-{} }}\n", i % 2));
    }
    match variant {
        Variant::Plain => yaml.push_str(&format!(
            "deployments:\n  - {{ namespace: bench, name: bulk, replicas: {replicas} }}\n"
        )),
        Variant::Guarded => yaml.push_str(&format!(
            "deployments:\n  - {{ namespace: bench, name: bulk, replicas: {replicas}, \
             service: {{ requestsPerSecond: 100, capacityPerPod: 10, baseLatency: 10ms }} }}\n\
             podDisruptionBudgets:\n  - {{ namespace: bench, name: bulk, \
             matchLabels: {{ app: bulk }}, minAvailable: \"50%\" }}\n"
        )),
    }
    let mut config = SandboxConfig::from_yaml(&yaml).expect("bench topology");
    config.timings.startup_delay = Duration::from_millis(20);
    config.timings.shutdown_delay = Duration::ZERO;
    config
}

/// Nanoseconds on CPU of every live thread named `sandbox`.
fn sandbox_cpu() -> Duration {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
    {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != SANDBOX_THREAD {
            continue;
        }
        let schedstat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
        total += schedstat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(total)
}

fn running(handle: &SandboxHandle) -> usize {
    handle
        .objects("pods", Some("bench"))
        .iter()
        .filter(|p| {
            p["status"]["phase"] == "Running"
                && p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .count()
}

/// Waits (polling: the bench's own reads are not measured) until `n` pods are ready
/// and the workload reports it, then until the controllers have gone quiet.
async fn wait_whole(handle: &SandboxHandle, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while running(handle) < n || !handle.is_settled() {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} pods ready",
            running(handle)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.wait_quiet(Duration::from_millis(300)).await;
}

async fn client(handle: &SandboxHandle) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&handle.kubeconfig_yaml()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

#[derive(Clone, Copy)]
enum Verb {
    Get,
    Patch,
    Delete,
}

/// Sends `verb` for every name, `IN_FLIGHT` at a time; the sandbox's CPU per request.
/// A PATCH sets label `bench` to `{tag}-{index}`, so no round repeats another's value.
async fn per_request(api: &Api<Pod>, names: &[String], verb: Verb, tag: usize) -> Duration {
    let before = sandbox_cpu();
    let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, name) in names.iter().cloned().enumerate() {
        let (api, limit) = (api.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            match verb {
                Verb::Get => {
                    api.get(&name).await.expect("get");
                }
                Verb::Patch => {
                    let patch =
                        serde_json::json!({"metadata": {"labels": {"bench": format!("{tag}-{i}")}}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .expect("patch");
                }
                Verb::Delete => {
                    api.delete(&name, &DeleteParams::default())
                        .await
                        .expect("delete");
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("request task");
    }
    (sandbox_cpu() - before) / names.len() as u32
}

struct Figures {
    pods: usize,
    get: Duration,
    patch: Duration,
    delete: Duration,
    /// DELETE plus the work until the owners are whole again, per deleted pod.
    delete_and_recover: Duration,
    /// The longest a GET waited for its answer while the owners recovered.
    longest_get: Duration,
}

async fn measure(sandbox_rt: &tokio::runtime::Runtime, pods: usize, variant: Variant) -> Figures {
    let _guard = sandbox_rt.enter();
    let handle = sandbox_rt
        .spawn(sandbox::start(config(pods, variant), 0))
        .await
        .expect("sandbox task")
        .expect("sandbox");
    wait_whole(&handle, pods).await;
    let client = client(&handle).await;
    let api: Api<Pod> = Api::namespaced(client, "bench");
    let mut rounds: Vec<Figures> = Vec::new();
    for tag in 0..rounds_wanted() {
        rounds.push(round(&handle, &api, pods, tag).await);
    }
    handle.shutdown().await;
    let median = |of: fn(&Figures) -> Duration| {
        let mut values: Vec<Duration> = rounds.iter().map(of).collect();
        values.sort();
        values[values.len() / 2]
    };
    Figures {
        pods,
        get: median(|f| f.get),
        patch: median(|f| f.patch),
        delete: median(|f| f.delete),
        delete_and_recover: median(|f| f.delete_and_recover),
        longest_get: median(|f| f.longest_get),
    }
}

async fn pod_names(api: &Api<Pod>) -> Vec<String> {
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

/// GETs of a pod that does not exist, one at a time until `stop`; the longest wait.
async fn longest_get(api: Api<Pod>, stop: Arc<tokio::sync::Notify>) -> Duration {
    let mut longest = Duration::ZERO;
    loop {
        let sent = Instant::now();
        tokio::select! {
            answer = api.get_opt("no-such-pod") => {
                assert!(answer.expect("get").is_none());
                longest = longest.max(sent.elapsed());
            }
            () = stop.notified() => return longest,
        }
    }
}

/// One round of GET, PATCH and DELETE over 200 of the current pods, then until the
/// owners are whole again.
async fn round(handle: &SandboxHandle, api: &Api<Pod>, pods: usize, tag: usize) -> Figures {
    let names = pod_names(api).await;
    assert_eq!(names.len(), pods);
    // The same number of requests at every size, so only the store's size differs.
    let sample: Vec<String> = names.iter().take(200).cloned().collect();
    let held = handle.hold_controllers();
    let get = per_request(api, &sample, Verb::Get, tag).await;
    let patch = per_request(api, &sample, Verb::Patch, tag).await;
    drop(held);
    wait_whole(handle, pods).await;
    let before = sandbox_cpu();
    let held = handle.hold_controllers();
    let delete = per_request(api, &sample, Verb::Delete, tag).await;
    drop(held);
    wait_whole(handle, pods).await;
    let delete_and_recover = (sandbox_cpu() - before) / sample.len() as u32;
    // Again with the probe, whose own requests the CPU figures above must not count.
    let sample: Vec<String> = pod_names(api).await.into_iter().take(200).collect();
    let stop = Arc::new(tokio::sync::Notify::new());
    let probe = tokio::spawn(longest_get(api.clone(), stop.clone()));
    per_request(api, &sample, Verb::Delete, tag).await;
    wait_whole(handle, pods).await;
    stop.notify_one();
    let longest_get = probe.await.expect("probe task");
    Figures {
        pods,
        get,
        patch,
        delete,
        delete_and_recover,
        longest_get,
    }
}

/// `SANDBOX_BENCH_ROUNDS` (default 5): rounds per size, of which the median is
/// printed.
fn rounds_wanted() -> usize {
    std::env::var("SANDBOX_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SANDBOX_BENCH_SIZES")
        .unwrap_or_else(|_| "200,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let sandbox_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SANDBOX_THREAD)
        .enable_all()
        .build()
        .expect("sandbox runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("client runtime");
    for variant in [Variant::Plain, Variant::Guarded] {
        let figures: Vec<Figures> = sizes
            .iter()
            .map(|&pods| client_rt.block_on(measure(&sandbox_rt, pods, variant)))
            .collect();
        print_figures(variant, &figures);
    }
}

fn print_figures(variant: Variant, figures: &[Figures]) {
    println!(
        "sandbox CPU per request ({}; 200 requests, {IN_FLIGHT} in flight, median of {} rounds):",
        variant.title(),
        rounds_wanted()
    );
    println!(
        "{:>6}  {:>10}  {:>10}  {:>10}  {:>18}  {:>24}",
        "pods", "GET", "PATCH", "DELETE", "DELETE+recovery", "longest GET (recovery)"
    );
    for f in figures {
        println!(
            "{:>6}  {:>10}  {:>10}  {:>10}  {:>18}  {:>24}",
            f.pods,
            ms(f.get),
            ms(f.patch),
            ms(f.delete),
            ms(f.delete_and_recover),
            ms(f.longest_get)
        );
    }
    if let (Some(small), Some(large)) = (figures.first(), figures.last())
        && figures.len() > 1
    {
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        println!(
            "ratio {} / {} pods: GET {:.2}×, PATCH {:.2}×, DELETE {:.2}× (target ≤ 1.5×), DELETE+recovery {:.2}×",
            large.pods,
            small.pods,
            ratio(large.get, small.get),
            ratio(large.patch, small.patch),
            ratio(large.delete, small.delete),
            ratio(large.delete_and_recover, small.delete_and_recover),
        );
    }
}
