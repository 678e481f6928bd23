//! Tier 3: alert hypotheses judged against a real Prometheus evaluating a real rules
//! file (every second) over the sandbox's metrics, and against a real Alertmanager that
//! Prometheus notifies. Each test starts its own servers on free loopback ports with
//! their own data directories (killed on drop). Without `prometheus` and
//! `prometheus-alertmanager` installed these tests fail and say how to get them.

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use prometheus_http_query::reqwest;
use sandbox_bench::{Bench, bench};
use serde_json::Value;
use shakedown::demo::{LocalAlertmanager, LocalPrometheus, find_alertmanager, find_prometheus};

/// Checkout's mean latency over 3 s above 200 ms: a 300 ms netem delay on every pod
/// fires it within a few evaluations, the healthy shop never does.
const RULES: &str = r#"groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: CheckoutHighLatency
        expr: sum(rate(http_request_duration_seconds_sum{service="checkout"}[3s])) / sum(rate(http_request_duration_seconds_count{service="checkout"}[3s])) > 0.2
        for: 1s
        labels: {service: checkout}
      - alert: CheckoutSlowForAges
        expr: sum(rate(http_request_duration_seconds_sum{service="checkout"}[3s])) / sum(rate(http_request_duration_seconds_count{service="checkout"}[3s])) > 0.2
        for: 1h
        labels: {service: checkout}
"#;

fn binary(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: run scripts/test.sh, which installs Debian's `{package}` package")
    })
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// The demo's Alertmanager (loopback, gossip off, its own storage; killed when
/// dropped), ready before it is returned.
async fn start_alertmanager(dir: &Path) -> LocalAlertmanager {
    let binary = find_alertmanager()
        .unwrap_or_else(|| binary("prometheus-alertmanager", "prometheus-alertmanager"));
    let mut am = LocalAlertmanager::start(&binary, dir)
        .await
        .expect("alertmanager starts");
    am.wait_ready(Duration::from_secs(30))
        .await
        .expect("alertmanager becomes ready");
    am
}

async fn get(url: &str) -> Option<Value> {
    let response = reqwest::get(url).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let text = response.text().await.ok()?;
    Some(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Prometheus scraping the sandbox and evaluating `RULES` every second, notifying
/// `alertmanager` if given; it has data once checkout's latency has a value.
async fn prometheus(b: &Bench, alertmanager: Option<&LocalAlertmanager>) -> LocalPrometheus {
    let dir = b.dir.join("prometheus");
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    let rules = dir.join("rules.yml");
    std::fs::write(&rules, RULES).expect("rules");
    let mut extra = format!("rule_files: ['{}']\n", rules.display());
    if let Some(am) = alertmanager {
        extra.push_str(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{}']\n",
            am.port
        ));
    }
    let binary = find_prometheus().unwrap_or_else(|| binary("prometheus", "prometheus"));
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
        .wait_for(
            r#"rate(http_request_duration_seconds_count{service="checkout"}[3s]) > 0"#,
            Duration::from_secs(60),
        )
        .await
        .expect("checkout latency scraped");
    server
}

/// A latency fault on every checkout pod for `hold`, with `hypotheses` (YAML list items).
fn latency_scenario(b: &Bench, name: &str, hold: &str, extra: &str, hypotheses: &str) -> PathBuf {
    b.scenario(
        name,
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: all}}}}\n  fault: {{type: network-latency, delay: 300ms, duration: {hold}}}\n{extra}  recovery: {{within: 30s}}\n  hypotheses:\n{hypotheses}"
        ),
    )
}

fn journal(b: &Bench) -> Vec<Value> {
    let text = std::fs::read_to_string(b.out().join("latest/journal.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn verdict<'a>(journal: &'a [Value], hypothesis: &str, phase: &str) -> &'a Value {
    journal
        .iter()
        .find(|r| {
            r["event"] == "hypothesisVerdict"
                && r["hypothesis"] == hypothesis
                && r["phase"] == phase
        })
        .unwrap_or_else(|| panic!("no {phase} verdict for {hypothesis}"))
}

fn at(record: &Value) -> jiff::Timestamp {
    record["at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a record time")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn prometheus_flag(server: &LocalPrometheus) -> String {
    format!("--prometheus-url={}", server.url)
}

/// The first time Prometheus's own `ALERTS` series shows `alert` firing, after `since`.
async fn first_firing(server: &LocalPrometheus, alert: &str, since: jiff::Timestamp) -> f64 {
    let query = format!(r#"ALERTS{{alertname="{alert}",alertstate="firing"}}"#);
    let url = format!(
        "{}/api/v1/query_range?query={}&start={}&end={}&step=0.1",
        server.url,
        urlencode(&query),
        since.as_second() - 1,
        jiff::Timestamp::now().as_second() + 1
    );
    let answer = get(&url).await.expect("range query");
    answer["data"]["result"][0]["values"]
        .as_array()
        .and_then(|points| points.first())
        .and_then(|p| p[0].as_f64())
        .expect("ALERTS shows the alert firing")
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_fault_fires_the_alert_in_time_and_the_time_to_detect_matches_alerts() {
    let b = bench("alert-fires", common::fast_shop()).await;
    let server = prometheus(&b, None).await;
    let scenario = latency_scenario(
        &b,
        "fires",
        "20s",
        "",
        "    - name: latency pages\n      alert: {name: CheckoutHighLatency, labels: {service: checkout}}\n      expect: firing within 15s\n      every: 250ms\n    - name: latency resolves\n      alert: {name: CheckoutHighLatency}\n      expect: resolved within 20s\n      every: 250ms\n    - name: no page for ages\n      alert: {name: CheckoutSlowForAges}\n      expect: not firing\n      every: 1s\n",
    );
    let out = b
        .shakedown(&[&prometheus_flag(&server), "run", scenario.to_str().unwrap()])
        .await;
    let journal = journal(&b);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fired = verdict(&journal, "latency pages", "during");
    assert_eq!(fired["verdict"], "passed", "{fired}");
    let detect_ms = fired["detectMs"].as_u64().expect("a time to detect");
    let injected = journal
        .iter()
        .find(|r| r["event"] == "faultInjected")
        .map(at)
        .expect("injected");
    let firing = first_firing(&server, "CheckoutHighLatency", injected).await;
    let by_prometheus = firing - injected.as_millisecond() as f64 / 1000.0;
    let measured = detect_ms as f64 / 1000.0;
    println!("time to detect: shakedown {measured:.2}s, Prometheus's ALERTS {by_prometheus:.2}s");
    // One evaluation interval (1 s): shakedown sees the state Prometheus evaluated.
    assert!(
        (measured - by_prometheus).abs() <= 1.0,
        "time to detect {measured:.2}s vs ALERTS {by_prometheus:.2}s"
    );
    let resolved = verdict(&journal, "latency resolves", "after");
    assert_eq!(resolved["verdict"], "passed", "{resolved}");
    assert!(resolved["recoveryMs"].as_u64().is_some(), "{resolved}");
    for phase in ["before", "during", "after"] {
        assert_eq!(
            verdict(&journal, "no page for ages", phase)["verdict"],
            "passed"
        );
    }
    let summary = std::fs::read_to_string(b.out().join("latest/summary.json")).expect("summary");
    assert!(summary.contains("\"detectMs\""), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_that_cannot_fire_in_time_deviates_and_not_firing_deviates_when_it_fires() {
    let b = bench("alert-late", common::fast_shop()).await;
    let server = prometheus(&b, None).await;
    let scenario = latency_scenario(
        &b,
        "late",
        "8s",
        "",
        "    - name: slow rule pages\n      alert: {name: CheckoutSlowForAges}\n      expect: firing within 5s\n      every: 500ms\n    - name: no latency page\n      alert: {name: CheckoutHighLatency}\n      expect: not firing\n      phases: [during]\n      every: 500ms\n",
    );
    let out = b
        .shakedown(&[&prometheus_flag(&server), "run", scenario.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let journal = journal(&b);
    let late = verdict(&journal, "slow rule pages", "during");
    assert_eq!(late["verdict"], "deviated", "{late}");
    assert!(late["detectMs"].is_null(), "{late}");
    assert!(
        late["message"]
            .as_str()
            .unwrap_or("")
            .contains("did not fire"),
        "{late}"
    );
    let paged = verdict(&journal, "no latency page", "during");
    assert_eq!(paged["verdict"], "deviated", "{paged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_read_from_alertmanager_and_an_unreachable_one_is_exit_3() {
    let b = bench("alert-am", common::fast_shop()).await;
    let am = start_alertmanager(&b.dir.join("alertmanager")).await;
    let server = prometheus(&b, Some(&am)).await;
    let block = format!("  alertmanager: {{url: '{}'}}\n", am.url);
    let scenario = latency_scenario(
        &b,
        "am",
        "20s",
        &block,
        "    - name: latency pages\n      alert: {name: CheckoutHighLatency, labels: {service: checkout}}\n      expect: firing within 15s\n      every: 250ms\n",
    );
    let out = b
        .shakedown(&[&prometheus_flag(&server), "run", scenario.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let journal = journal(&b);
    let fired = verdict(&journal, "latency pages", "during");
    assert_eq!(fired["verdict"], "passed", "{fired}");
    assert!(fired["detectMs"].as_u64().is_some(), "{fired}");

    // Nothing listens there: preflight refuses, nothing is touched, never a pass.
    let gone = format!(
        "  alertmanager: {{url: 'http://127.0.0.1:{}'}}\n",
        free_port()
    );
    let scenario = latency_scenario(
        &b,
        "am-gone",
        "5s",
        &gone,
        "    - name: no page\n      alert: {name: CheckoutHighLatency}\n      expect: not firing\n",
    );
    b.handle.clear_request_log();
    let out = b
        .shakedown(&[&prometheus_flag(&server), "run", scenario.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Alertmanager at http://127.0.0.1:"),
        "{}",
        stderr(&out)
    );
    assert!(b.mutations().is_empty(), "{:?}", b.mutations());
}
