//! `cargo bench --bench probes`: 100 PromQL hypotheses sampled every second for a
//! minute against a real Prometheus, with the journal on disk.
//!
//! shakedown runs as its own process (a `network-latency` fault on the shop's checkout
//! pod, held for the window, with 100 `during` hypotheses at `every: 1s`). Beside it run
//! two floors, each a process of its own that issues the same 100 queries at the same
//! rate against the same Prometheus and does nothing else:
//! - the floor, **curl**: each second, one `curl --parallel` for the 100 queries
//!   (what a shell script watching the same SLOs would cost), half a second off
//!   shakedown's ticks so their bursts do not meet;
//! - a stricter one: the same HTTP client library shakedown uses, in-process, on
//!   absolute ticks, parsing each answer. There is no bar against it: it shows what
//!   shakedown's journal, verdicts and start-up cost per sample.
//!
//! The bench prints the CPU time of each (from `wait4`, so it is the process's own and
//! its reaped children's), and the lateness of shakedown's samples read from its journal: how far each
//! sample's evaluation time is behind its place on the one-second grid that starts at
//! the window's first sample (median, p99), and the drift (median lateness of the last
//! tenth of the samples minus that of the first tenth).
//!
//! `SHAKEDOWN_BENCH_SECONDS` shortens the window (default 60) for a quick run. The
//! journal goes to `CARGO_TARGET_TMPDIR` (inside the target folder, on disk, never a
//! tmpfs). Needs `prometheus` on PATH.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use shakedown_sandbox::{self as sandbox, SandboxConfig};

use common::ratio;

const HYPOTHESES: usize = 100;

/// Set in the child process that plays the floor: `URL SECONDS LATENESS_FILE`.
const FLOOR_ENV: &str = "SHAKEDOWN_BENCH_PROBES_FLOOR";

/// Set in the child process that plays the curl floor: `URL SECONDS`.
const CURL_FLOOR_ENV: &str = "SHAKEDOWN_BENCH_PROBES_CURL_FLOOR";

fn query(i: usize) -> String {
    format!("sum(up) * {}", i + 1)
}

fn main() {
    if let Ok(args) = std::env::var(FLOOR_ENV) {
        floor(&args);
        return;
    }
    if let Ok(args) = std::env::var(CURL_FLOOR_ENV) {
        curl_floor(&args);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

/// The floor: the same queries at the same rate, on absolute ticks, nothing else.
fn floor(args: &str) {
    let mut args = args.split(' ');
    let (url, seconds, out) = (
        args.next().expect("URL"),
        args.next().expect("SECONDS"),
        args.next().expect("LATENESS_FILE"),
    );
    let seconds: u64 = seconds.parse().expect("seconds");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client: prometheus_http_query::Client = url.parse().expect("url");
        let start = tokio::time::Instant::now();
        let loops = (0..HYPOTHESES).map(|i| {
            let client = client.clone();
            async move {
                let mut late = Vec::new();
                for tick in 0..seconds {
                    let due = start + Duration::from_secs(tick);
                    tokio::time::sleep_until(due).await;
                    late.push((tick as f64 * 1000.0, due.elapsed().as_secs_f64() * 1000.0));
                    // As shakedown asks: evaluated at the sample's millisecond, the
                    // body read and parsed.
                    let at = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
                    let sent = client
                        .query(query(i))
                        .query("time", format!("{at:.3}"))
                        .get_raw()
                        .await;
                    if let Ok(response) = sent
                        && let Ok(body) = response.text().await
                    {
                        let _ = serde_json::from_str::<serde_json::Value>(&body);
                    }
                }
                late
            }
        });
        let late: Vec<(f64, f64)> = futures::future::join_all(loops)
            .await
            .into_iter()
            .flatten()
            .collect();
        std::fs::write(out, serde_json::to_string(&late).expect("json")).expect("lateness file");
    });
}

/// The curl floor: each second, half a second off the grid, one `curl --parallel` asks
/// the 100 queries (evaluated at that instant) and throws the answers away. Every curl
/// is reaped here, so this process's rusage includes theirs.
fn curl_floor(args: &str) {
    let mut args = args.split(' ');
    let (url, seconds) = (args.next().expect("URL"), args.next().expect("SECONDS"));
    let seconds: u64 = seconds.parse().expect("seconds");
    let start = Instant::now() + Duration::from_millis(500);
    let mut curls = Vec::new();
    for tick in 0..seconds {
        let due = start + Duration::from_secs(tick);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let at = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        let mut curl = std::process::Command::new("curl");
        curl.args(["--silent", "--parallel", "--parallel-max", "100"]);
        for i in 0..HYPOTHESES {
            curl.args(["--output", "/dev/null", "--url"]).arg(format!(
                "{url}/api/v1/query?query={}&time={at:.3}",
                percent_encoded(&query(i))
            ));
        }
        curls.push(curl.spawn().expect("curl"));
    }
    for mut curl in curls {
        let status = curl.wait().expect("curl");
        assert!(status.success(), "curl failed: {status}");
    }
}

/// `text` as a URL query value: everything but the unreserved characters escaped.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Median, p99 and drift (median of the last tenth minus the first, by due time) of
/// `(due ms, lateness ms)` samples.
fn summary(mut samples: Vec<(f64, f64)>) -> (f64, f64, f64, usize) {
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let tenth = (samples.len() / 10).max(1).min(samples.len());
    let median_of = |part: &[(f64, f64)]| {
        let mut v: Vec<f64> = part.iter().map(|(_, l)| *l).collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5)
    };
    let drift = median_of(&samples[samples.len() - tenth..]) - median_of(&samples[..tenth]);
    let mut all: Vec<f64> = samples.iter().map(|(_, l)| *l).collect();
    all.sort_by(f64::total_cmp);
    (
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        drift,
        samples.len(),
    )
}

/// Waits for `pid` and returns its CPU time (user + system), from its own rusage.
fn wait_cpu(pid: u32) -> (Duration, i32) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter for wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped; status and usage outlive the call.
    let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid as libc::pid_t, "wait4");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (tv(usage.ru_utime) + tv(usage.ru_stime), status)
}

fn scenario(seconds: u64, url: &str) -> String {
    let mut text = format!(
        "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: probes}}\nspec:\n  safety: {{allowedNamespaces: [shop]}}\n  prometheus: {{url: '{url}'}}\n  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: network-latency, delay: 10ms, duration: {seconds}s}}\n  recovery: {{within: 60s}}\n  hypotheses:\n"
    );
    for i in 0..HYPOTHESES {
        text.push_str(&format!(
            "    - name: h{i}\n      promql: '{}'\n      expect: \"> 0\"\n      phases: [during]\n      every: 1s\n",
            query(i)
        ));
    }
    text
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// Lateness (ms) of each sample, in the order they were due: the grid starts at the
/// window's first sample and has a point every second.
fn lateness(journal: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(journal).expect("journal");
    let mut at: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["event"] == "probeSample")
        .filter_map(|r| r["evalTime"].as_str()?.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond() as f64)
        .collect();
    at.sort_by(f64::total_cmp);
    let Some(&first) = at.first() else {
        return Vec::new();
    };
    at.iter()
        .map(|t| {
            let since = t - first;
            let due = (since / 1000.0).floor() * 1000.0;
            (due, since - due)
        })
        .collect()
}

// Both children are reaped by `wait_cpu` (wait4, for their own rusage), which clippy
// cannot see.
#[allow(clippy::zombie_processes)]
async fn bench() {
    let seconds: u64 = std::env::var("SHAKEDOWN_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let Some(prometheus) = shakedown::demo::find_prometheus() else {
        eprintln!("probes bench skipped: no `prometheus` on PATH");
        return;
    };
    // On disk: the target folder, never /tmp (a tmpfs on some machines).
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shakedown-bench-probes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let mut config = SandboxConfig::shop();
    config.timings.startup_delay = Duration::from_millis(300);
    let handle = sandbox::start(config, 0).await.expect("sandbox");
    let kubeconfig = dir.join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let mut server = shakedown::demo::LocalPrometheus::start(
        &prometheus,
        &dir.join("prometheus"),
        &handle.addr.to_string(),
    )
    .await
    .expect("prometheus");
    server
        .wait_for("up", Duration::from_secs(60))
        .await
        .expect("prometheus scrapes the sandbox");
    while !handle.is_settled() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let file = dir.join("probes.yaml");
    std::fs::write(&file, scenario(seconds, &server.url)).expect("scenario");

    let floor_file = dir.join("floor-lateness.json");
    let started = Instant::now();
    let shakedown = std::process::Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--output-dir")
        .arg(dir.join("out"))
        .args(["--yes", "--quiet", "run"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("shakedown.stderr")).expect("stderr file"))
        .spawn()
        .expect("shakedown");
    let floor = std::process::Command::new(std::env::current_exe().expect("bench binary"))
        .env(
            FLOOR_ENV,
            format!("{} {seconds} {}", server.url, floor_file.display()),
        )
        .spawn()
        .expect("floor");
    let curl_floor = std::process::Command::new(std::env::current_exe().expect("bench binary"))
        .env(CURL_FLOOR_ENV, format!("{} {seconds}", server.url))
        .spawn()
        .expect("curl floor");
    let (floor_pid, shakedown_pid, curl_pid) = (floor.id(), shakedown.id(), curl_floor.id());
    let floor = tokio::task::spawn_blocking(move || wait_cpu(floor_pid));
    let curl_floor = tokio::task::spawn_blocking(move || wait_cpu(curl_pid));
    let (shakedown_cpu, status) = tokio::task::spawn_blocking(move || wait_cpu(shakedown_pid))
        .await
        .expect("wait");
    let wall = started.elapsed();
    let (floor_cpu, _) = floor.await.expect("wait");
    let (curl_cpu, curl_status) = curl_floor.await.expect("wait");
    assert!(
        libc::WIFEXITED(curl_status) && libc::WEXITSTATUS(curl_status) == 0,
        "the curl floor failed"
    );
    server.stop().await;
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "shakedown failed: see {}",
        dir.join("shakedown.stderr").display()
    );

    let (median, p99, drift, samples) = summary(lateness(&dir.join("out/latest/journal.jsonl")));
    let floor_late: Vec<(f64, f64)> =
        serde_json::from_str(&std::fs::read_to_string(&floor_file).expect("floor lateness"))
            .expect("floor lateness");
    let (floor_median, floor_p99, floor_drift, _) = summary(floor_late);
    let floor_ratio = ratio(shakedown_cpu, floor_cpu);
    let curl_ratio = ratio(shakedown_cpu, curl_cpu);
    println!(
        "probes, {HYPOTHESES} PromQL hypotheses at 1s over {seconds}s, {samples} samples (journal on disk, run wall {wall:.1?})"
    );
    println!(
        "probes, CPU: shakedown {shakedown_cpu:.2?}, curl floor (one curl --parallel a second) {curl_cpu:.2?}  ({curl_ratio:.2}x the curl floor; bar 1.0x)"
    );
    println!(
        "probes, CPU: shakedown {shakedown_cpu:.2?}, in-process floor (same queries, same client, nothing else) {floor_cpu:.2?}  ({floor_ratio:.2}x; no bar: the cost of the journal, verdicts and start-up)"
    );
    println!(
        "probes, sample lateness, shakedown: median {median:.1} ms (bar 5), p99 {p99:.1} ms (bar 50), drift (last tenth vs first) {drift:+.1} ms"
    );
    println!(
        "probes, sample lateness, floor:     median {floor_median:.1} ms, p99 {floor_p99:.1} ms, drift {floor_drift:+.1} ms (what this machine's scheduler allows)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
