//! The Pushgateway end to end: a sandbox run pushes to the REAL `prometheus-pushgateway`
//! and a REAL Prometheus scrapes it (`honor_labels: true`, every second). Afterwards
//! Prometheus answers `shakedown_recovery_seconds` and the other results with the run's
//! own values (as its summary.json says them), and a range query over the run shows the
//! fault window of `shakedown_fault_active` as 1 then 0. Without `prometheus` and
//! `prometheus-pushgateway` installed these tests fail and say how to get them
//! (scripts/test.sh installs both).

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use prometheus_http_query::reqwest;
use serde_json::Value;
use shakedown::demo::LocalPrometheus;

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;
#[path = "support/servers.rs"]
mod servers;

use sandbox_bench::Bench;

/// A real Pushgateway on loopback, in memory only; killed when dropped.
struct Pushgateway {
    child: tokio::process::Child,
    port: u16,
}

impl Pushgateway {
    async fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("pushgateway dir");
        let port = servers::free_port();
        let log = std::fs::File::create(dir.join("pushgateway.log")).expect("log");
        let child = tokio::process::Command::new(servers::pushgateway())
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("pushgateway starts");
        let gateway = Self { child, port };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while get_text(&format!("{}/-/ready", gateway.url()))
            .await
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the Pushgateway on port {port} never became ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gateway
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn get_text(url: &str) -> Option<String> {
    let response = reqwest::get(url).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

async fn get(url: &str) -> Option<Value> {
    serde_json::from_str(&get_text(url).await?).ok()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus scraping the sandbox and, with its own labels kept, the Pushgateway.
async fn prometheus(b: &Bench, gateway: &Pushgateway) -> LocalPrometheus {
    let dir = b.dir.join("prometheus");
    let extra = format!(
        "  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        gateway.port
    );
    let binary = servers::prometheus();
    let mut server = LocalPrometheus::start_configured(
        &binary,
        &dir,
        &b.handle.addr.to_string(),
        &extra,
        |_| Vec::new(),
    )
    .await
    .expect("prometheus starts");
    server
        .wait_for(r#"up{job="pushgateway"} == 1"#, Duration::from_secs(60))
        .await
        .expect("the Pushgateway is scraped");
    server
}

/// One instant value of `query`, once Prometheus has it.
async fn value(server: &LocalPrometheus, query: &str) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let url = format!("{}/api/v1/query?query={}", server.url, urlencode(query));
        if let Some(v) = get(&url).await.and_then(|a| {
            a["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
        }) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus never answered {query}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_answers_the_runs_results_and_the_fault_window_from_the_pushgateway() {
    let b = Bench::new("pushgateway").await;
    let gateway = Pushgateway::start(&b.dir.join("pushgateway")).await;
    let server = prometheus(&b, &gateway).await;
    // Step 1 holds a latency fault for 4 s (four scrapes); step 2 deletes a pod, whose
    // owner's recovery and the hypothesis's are timed.
    let latency = b.scenario(
        "pg-latency",
        "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: network-latency, delay: 100ms, duration: 4s}\n",
    );
    let delete = b.scenario(
        "pg-delete",
        "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n  recovery: {within: 30s}\n  hypotheses:\n    - name: checkout has 3 available replicas\n      promql: kube_deployment_status_replicas_available{namespace=\"shop\",deployment=\"checkout\"}\n      expect: \">= 3\"\n      phases: [before, after]\n      every: 500ms\n",
    );
    let experiment = b.dir.join("pg-day.yaml");
    std::fs::write(
        &experiment,
        format!(
            "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: pg-day}}\nspec:\n  safety: {{allowedNamespaces: [shop]}}\n  pushgateway: {{url: '{}', timeout: 5s}}\n  steps:\n    - scenario: {}\n    - scenario: {}\n",
            gateway.url(),
            latency.display(),
            delete.display()
        ),
    )
    .expect("experiment");
    let out = b
        .shakedown(&[
            &format!("--prometheus-url={}", server.url),
            "run",
            experiment.to_str().expect("utf8"),
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        b.records("deliveryFailed").is_empty(),
        "every push got through"
    );
    let summary: Value = serde_json::from_str(&b.read("summary.json")).expect("summary");

    // The results, as the run's summary says them.
    let recovered = b.records("recovered");
    let owner_ms = recovered[0]["afterMs"].as_f64().expect("a recovery time");
    let owner = value(
        &server,
        r#"shakedown_recovery_seconds{job="shakedown",experiment="pg-day",owner="deployment/shop/checkout"}"#,
    )
    .await;
    assert!(
        (owner - owner_ms / 1000.0).abs() < 1e-6,
        "{owner} vs {owner_ms} ms"
    );
    let verdict = value(
        &server,
        r#"shakedown_run_verdict{experiment="pg-day",verdict="PASSED"}"#,
    )
    .await;
    assert_eq!(verdict, 0.0, "the exit code");
    let score = value(&server, r#"shakedown_run_score{experiment="pg-day"}"#).await;
    assert_eq!(Some(score), summary["resilienceScore"]["score"].as_f64());
    let duration = value(
        &server,
        r#"shakedown_run_duration_seconds{experiment="pg-day"}"#,
    )
    .await;
    assert_eq!(
        Some(duration * 1000.0),
        summary["durationMs"].as_f64().map(|d| d.round())
    );
    let hypothesis = value(
        &server,
        r#"shakedown_hypothesis_recovery_seconds{experiment="pg-day",hypothesis="checkout has 3 available replicas"}"#,
    )
    .await;
    assert!(hypothesis >= 0.0);
    let journal = b.journal();
    let started: jiff::Timestamp = journal[0]["at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("at");
    let stamp = value(
        &server,
        r#"shakedown_run_timestamp_seconds{experiment="pg-day"}"#,
    )
    .await;
    assert!((stamp - started.as_millisecond() as f64 / 1000.0).abs() < 1e-3);

    // Both fault windows are closed now ...
    for step in ["1", "2"] {
        let active = value(
            &server,
            &format!(r#"shakedown_fault_active{{experiment="pg-day",step="{step}"}}"#),
        )
        .await;
        assert_eq!(active, 0.0, "step {step}");
    }
    // ... and a range query over the run shows step 1's window as 1, then 0.
    let query = r#"shakedown_fault_active{experiment="pg-day",step="1",fault="network-latency",target_kind="pods"}"#;
    let url = format!(
        "{}/api/v1/query_range?query={}&start={}&end={}&step=0.5",
        server.url,
        urlencode(query),
        started.as_second() - 1,
        jiff::Timestamp::now().as_second() + 1
    );
    let answer = get(&url).await.expect("range query");
    let points: Vec<f64> = answer["data"]["result"][0]["values"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|p| p[1].as_str().and_then(|v| v.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    let mut changes = points.clone();
    changes.dedup();
    let one = changes.iter().position(|v| *v == 1.0);
    assert!(
        one.is_some_and(|i| changes[i + 1..].contains(&0.0)),
        "the window shows as 1 then 0: {points:?}"
    );
    let ones = points.iter().filter(|v| **v == 1.0).count();
    assert!(ones >= 4, "a 4 s window at a 0.5 s step: {points:?}");
}

/// A run whose Pushgateway is gone still passes, reverts, and notes the missed pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_pushgateway_is_a_journal_note_never_a_failed_run() {
    let b = Bench::new("pushgateway-down").await;
    let scenario = b.scenario(
        "pg-down",
        "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n  recovery: {within: 30s}\n",
    );
    let closed = format!("http://127.0.0.1:{}", servers::free_port());
    let out = b
        .shakedown(&[
            "run",
            scenario.to_str().expect("utf8"),
            "--pushgateway",
            &closed,
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let missed = b.records("deliveryFailed");
    assert!(!missed.is_empty(), "the missed pushes are noted");
    assert!(
        missed.iter().all(|m| m["to"]
            .as_str()
            .is_some_and(|t| t.starts_with("Pushgateway at http://127.0.0.1:"))),
        "{missed:?}"
    );
    assert!(
        missed.iter().any(|m| m["error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable"))),
        "{missed:?}"
    );
    assert_eq!(b.records("faultReverted").len(), 1);
}
