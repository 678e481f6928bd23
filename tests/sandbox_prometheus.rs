//! Tier 3: a real Prometheus scraping the sandbox. The checkout error ratio must rise
//! when 2 of its 3 pods are deleted and fall back once the replacements are Ready.
//! Without `prometheus` on PATH the test fails and says how to get it.

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use prometheus_http_query::Client as Prometheus;
use shakedown::demo::{LocalPrometheus, find_prometheus};
use shakedown_sandbox::{self as sandbox, SandboxConfig};

const ERROR_RATIO: &str = r#"sum(rate(http_requests_total{namespace="shop",service="checkout",code=~"5.."}[4s])) / sum(rate(http_requests_total{namespace="shop",service="checkout"}[4s]))"#;

async fn error_ratio(prometheus: &Prometheus) -> Option<f64> {
    let result = prometheus.query(ERROR_RATIO).get().await.ok()?;
    let vector = result.data().as_vector()?;
    vector.first().map(|s| s.sample().value())
}

/// Polls the ratio until `accept` holds, or panics at the deadline.
async fn wait_ratio(prometheus: &Prometheus, what: &str, accept: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut last = None;
    loop {
        if let Some(ratio) = error_ratio(prometheus).await {
            if accept(ratio) {
                return ratio;
            }
            last = Some(ratio);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: last ratio {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_checkout_errors_rise_and_recover() {
    let binary = find_prometheus().unwrap_or_else(|| {
        panic!(
            "prometheus is not installed: run scripts/test.sh, which installs Debian's `prometheus`"
        )
    });
    let mut config = SandboxConfig::shop();
    config.timings.startup_delay = Duration::from_secs(8);
    config.timings.shutdown_delay = Duration::from_millis(200);
    let handle = sandbox::start(config, 0).await.expect("sandbox starts");

    let dir = std::env::temp_dir().join(format!(
        "shakedown-prom-{}-{}",
        std::process::id(),
        handle.addr.port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // The same launcher `shakedown demo` uses.
    let server = LocalPrometheus::start(&binary, &dir, &handle.addr.to_string())
        .await
        .expect("prometheus starts");
    let prometheus = Prometheus::try_from(server.url.clone()).expect("client");

    // Steady state: all three pods serve 30 rps at 15 rps each; no errors.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while handle
        .objects("pods", Some("shop"))
        .iter()
        .filter(|p| {
            p["metadata"]["labels"]["app"] == "checkout"
                && p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .count()
        < 3
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "checkout never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_ratio(&prometheus, "steady state", |r| r == 0.0).await;

    let victims: Vec<String> = handle
        .objects("pods", Some("shop"))
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "checkout")
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .take(2)
        .collect();
    for name in &victims {
        let response = common::raw(
            &handle,
            "DELETE",
            &format!("/api/v1/namespaces/shop/pods/{name}"),
            "",
            "",
        )
        .await;
        assert_eq!(response.code, 200);
    }
    let peak = wait_ratio(&prometheus, "errors after losing 2 of 3 pods", |r| r > 0.3).await;
    assert!(peak <= 0.5 + 1e-9, "one pod still serves half: {peak}");
    wait_ratio(&prometheus, "recovery once replacements are Ready", |r| {
        r == 0.0
    })
    .await;

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
