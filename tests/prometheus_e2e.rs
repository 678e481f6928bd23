//! Tier 3: steady-state hypotheses judged by a real Prometheus that scrapes an
//! in-process sandbox every second. Each test starts its own Prometheus on a free
//! loopback port (killed on drop) and runs the CLI against the sandbox.
//! Without `prometheus` installed these tests fail and say how to get it.

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/servers.rs"]
mod servers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use prometheus_http_query::reqwest;
use serde_json::Value;
use shakedown::demo::LocalPrometheus;
use shakedown_sandbox::{self as sandbox, SandboxConfig, SandboxHandle};

const ERROR_RATIO: &str = r#"sum(rate(http_requests_total{namespace="shop",service="checkout",code=~"5.."}[4s])) / sum(rate(http_requests_total{namespace="shop",service="checkout"}[4s]))"#;
/// Start-up delay of replacement pods: long enough for a 1 s scrape to see the gap.
const STARTUP: Duration = Duration::from_secs(3);
/// `bcrypt("sh4ked0wn-pw", cost 4)`, for Prometheus' `--web.config.file`.
const PASSWORD: &str = "sh4ked0wn-pw";
const PASSWORD_HASH: &str = "$2b$04$Lfg3p/3uyOsS3PEnn/aV.eDuY6BpHAIxyVVWU2pB9sYJpq1nRNQSq";

/// How the test Prometheus is served.
#[derive(Clone, Copy, Default)]
struct Served {
    /// `--web.route-prefix`, e.g. `/prometheus` as behind Mimir's gateway.
    prefix: &'static str,
    /// Basic auth through `--web.config.file` (user, password).
    basic_auth: Option<(&'static str, &'static str)>,
    /// HTTPS with tests/fixtures/tls/server.pem, issued by tests/fixtures/tls/ca.pem.
    tls: bool,
}

const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// A real Prometheus scraping one target every second (the launcher `shakedown demo`
/// uses), served as the test asks; killed when dropped.
struct PrometheusServer {
    server: LocalPrometheus,
    served: Served,
}

impl PrometheusServer {
    async fn start(dir: &Path, target: SocketAddr, served: Served) -> Self {
        let Served {
            prefix,
            basic_auth,
            tls,
        } = served;
        let binary = servers::prometheus();
        let mut web = String::new();
        if let Some((user, _)) = basic_auth {
            web.push_str(&format!("basic_auth_users:\n  {user}: '{PASSWORD_HASH}'\n"));
        }
        if tls {
            web.push_str(&format!(
                "tls_server_config:\n  cert_file: {TLS_DIR}/server.pem\n  key_file: {TLS_DIR}/server.key\n"
            ));
        }
        let web_config = (!web.is_empty()).then(|| {
            let path = dir.join("web.yml");
            std::fs::write(&path, web).expect("web config");
            path
        });
        let extra = |port: u16| {
            let mut args = Vec::new();
            if !prefix.is_empty() {
                args.push(format!("--web.route-prefix={prefix}"));
                args.push(format!(
                    "--web.external-url=http://127.0.0.1:{port}{prefix}"
                ));
            }
            if let Some(path) = &web_config {
                args.push(format!("--web.config.file={}", path.display()));
            }
            args
        };
        let server = LocalPrometheus::start_with(&binary, dir, &target.to_string(), extra)
            .await
            .expect("prometheus starts");
        let server = Self { server, served };
        server.wait_for_data().await;
        server
    }

    fn url(&self) -> String {
        let scheme = if self.served.tls { "https" } else { "http" };
        format!(
            "{scheme}://127.0.0.1:{}{}",
            self.server.port, self.served.prefix
        )
    }

    async fn query(&self, query: &str) -> Option<f64> {
        let mut client = reqwest::Client::builder();
        if self.served.tls {
            let ca = std::fs::read(format!("{TLS_DIR}/ca.pem")).expect("test CA");
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&ca).ok()?);
        }
        let mut request = client
            .build()
            .ok()?
            .get(format!("{}/api/v1/query", self.url()))
            .query(&[("query", query)]);
        if let Some((user, password)) = self.served.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        let body: Value = request.send().await.ok()?.json().await.ok()?;
        body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Until the error ratio has a value: two scrapes inside its rate window.
    async fn wait_for_data(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.query(ERROR_RATIO).await.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus on port {} never had the checkout error ratio",
                self.server.port
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn kill(&mut self) {
        self.server.kill();
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Bench {
    handle: SandboxHandle,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

/// The shop, with `capacity_per_pod` for checkout (it serves 30 rps; the default 15
/// leaves room to lose one of three pods, 12 leaves none).
async fn bench(tag: &str, capacity_per_pod: Option<f64>) -> Bench {
    let mut config: SandboxConfig = common::fast_shop();
    config.timings.startup_delay = STARTUP;
    if let Some(capacity) = capacity_per_pod {
        let checkout = config
            .deployments
            .iter_mut()
            .find(|d| d.name == "checkout")
            .expect("checkout in the shop");
        checkout
            .service
            .as_mut()
            .expect("checkout serves")
            .capacity_per_pod = capacity;
    }
    let handle = sandbox::start(config, 0).await.expect("sandbox starts");
    let dir = std::env::temp_dir().join(format!("shakedown-prom-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp");
    let kubeconfig = dir.join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ready_checkouts(&handle) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "checkout never ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Bench {
        handle,
        dir,
        kubeconfig,
    }
}

impl Drop for Bench {
    /// A failed test keeps its files (journal, reports, Prometheus config) to look at.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn ready_checkouts(handle: &SandboxHandle) -> usize {
    handle
        .objects("pods", Some("shop"))
        .iter()
        .filter(|p| {
            p["metadata"]["labels"]["app"] == "checkout"
                && p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .count()
}

impl Bench {
    async fn prometheus(&self, served: Served) -> PrometheusServer {
        let dir = self.dir.join("prometheus");
        std::fs::create_dir_all(&dir).expect("prometheus dir");
        PrometheusServer::start(&dir, self.handle.addr, served).await
    }

    fn scenario(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.yaml"));
        let text = format!(
            "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  safety: {{allowedNamespaces: [shop], maxTargetPercent: 100%}}\n{body}"
        );
        std::fs::write(&path, text).expect("write scenario");
        path
    }

    fn command(&self, scenario: &Path, prometheus_url: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"));
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--yes", "--seed", "7", "--prometheus-url", prometheus_url])
            .arg("--output-dir")
            .arg(self.out())
            .arg("run")
            .arg(scenario)
            .env_remove("SHAKEDOWN_PROMETHEUS_URL")
            .env_remove("SHAKEDOWN_PROMETHEUS_TOKEN")
            .kill_on_drop(true);
        for marker in shakedown::run::ci::MARKERS {
            command.env_remove(marker);
        }
        command
    }

    async fn run(&self, scenario: &Path, prometheus_url: &str) -> Output {
        self.command(scenario, prometheus_url)
            .output()
            .await
            .expect("run shakedown")
    }

    fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    fn journal(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.out().join("latest/journal.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Every file the run wrote (journal and reports), concatenated.
    fn everything_written(&self) -> String {
        fn walk(dir: &Path, out: &mut String) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push_str(&text);
                }
            }
        }
        let mut all = String::new();
        walk(&self.out(), &mut all);
        all
    }

    /// Mutating calls, minus access reviews (a POST that changes nothing) and the run's
    /// own lock, which it takes before its baseline (tests/concurrency.rs covers it).
    fn changes(&self) -> Vec<String> {
        self.handle
            .request_log()
            .into_iter()
            .filter(|r| r.is_mutating() && !r.path.contains("selfsubjectaccessreviews"))
            .filter(|r| !r.path.contains("/leases"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn events<'a>(journal: &'a [Value], kind: &str) -> Vec<&'a Value> {
    journal.iter().filter(|r| r["event"] == kind).collect()
}

fn verdicts(journal: &[Value], hypothesis: &str) -> Vec<(String, String)> {
    events(journal, "hypothesisVerdict")
        .into_iter()
        .filter(|v| v["hypothesis"] == hypothesis)
        .map(|v| {
            (
                v["phase"].as_str().unwrap_or("").to_owned(),
                v["verdict"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn at(record: &Value) -> jiff::Timestamp {
    record["at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a record time")
}

fn ratio_hypothesis(limit: &str, phases: &str, extra: &str) -> String {
    format!(
        "    - name: error ratio\n      promql: '{ERROR_RATIO}'\n      expect: \"< {limit}\"\n      phases: [{phases}]\n      every: 500ms\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_holds_and_losing_one_of_three_checkout_pods_keeps_the_error_ratio() {
    let b = bench("one-of-three", None).await;
    // Mimir-style: a path prefix, a tenant header and a bearer token (ignored here).
    let prometheus = b
        .prometheus(Served {
            prefix: "/prometheus",
            ..Served::default()
        })
        .await;

    // First a baseline that cannot hold: the run stops before touching anything.
    let impossible = b.scenario(
        "impossible",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: pod-delete}}\n  hypotheses:\n{}",
            ratio_hypothesis("0", "before, during, after", "")
        ),
    );
    b.handle.clear_request_log();
    let out = b.run(&impossible, &prometheus.url()).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        verdicts(&b.journal(), "error ratio"),
        [("before".to_owned(), "deviated".to_owned())]
    );
    assert!(b.changes().is_empty(), "{:?}", b.changes());

    // An HTTP probe sits beside PromQL: Prometheus' own health endpoint, on loopback.
    let health = format!(
        "    - name: prometheus healthy\n      http: {{url: '{}/-/healthy', bodyContains: Healthy, timeout: 2s}}\n      expect: \"< 1\"\n      every: 500ms\n",
        prometheus.url()
    );
    let scenario = b.scenario(
        "one",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: pod-delete}}\n  prometheus: {{headers: {{X-Scope-OrgID: shop}}}}\n  hypotheses:\n{}{health}  recovery: {{within: 30s}}\n",
            ratio_hypothesis("0.01", "before, during, after", "")
        ),
    );
    let token = "tok-planted-5f3a9c1e";
    let out = b
        .command(&scenario, &format!("{}/", prometheus.url()))
        .env("SHAKEDOWN_PROMETHEUS_TOKEN", token)
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let journal = b.journal();
    assert_eq!(
        verdicts(&journal, "error ratio"),
        [
            ("before".to_owned(), "passed".to_owned()),
            ("during".to_owned(), "passed".to_owned()),
            ("after".to_owned(), "passed".to_owned())
        ]
    );
    assert_eq!(
        verdicts(&journal, "prometheus healthy"),
        [
            ("before".to_owned(), "passed".to_owned()),
            ("during".to_owned(), "passed".to_owned()),
            ("after".to_owned(), "passed".to_owned())
        ]
    );
    let samples: Vec<&Value> = events(&journal, "probeSample")
        .into_iter()
        .filter(|s| s["hypothesis"] == "error ratio")
        .collect();
    assert!(samples.len() >= 3, "{samples:?}");
    for sample in &samples {
        assert_eq!(sample["query"], ERROR_RATIO);
        assert!(sample["values"][0]["value"].is_number(), "{sample}");
        assert!(sample["evalTime"].is_string(), "{sample}");
    }
    let everything = b.everything_written() + &stderr(&out) + &String::from_utf8_lossy(&out.stdout);
    assert!(!everything.contains(token), "the token leaked");
    assert!(
        b.out().join("latest/junit.xml").is_file(),
        "reports were written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_two_of_three_pods_without_headroom_deviates_and_recovery_is_timed() {
    let b = bench("two-of-three", Some(12.0)).await;
    let prometheus = b.prometheus(Served::default()).await;
    let scenario = b.scenario(
        "two",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: count, count: 2}}}}\n  fault: {{type: pod-delete}}\n  hypotheses:\n{}  recovery: {{within: 30s}}\n",
            ratio_hypothesis("0.05", "before, during, after", "")
        ),
    );
    let out = b.run(&scenario, &prometheus.url()).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let journal = b.journal();
    assert_eq!(
        verdicts(&journal, "error ratio"),
        [
            ("before".to_owned(), "passed".to_owned()),
            ("during".to_owned(), "deviated".to_owned()),
            ("after".to_owned(), "passed".to_owned())
        ]
    );
    let breaches: Vec<f64> = events(&journal, "probeSample")
        .into_iter()
        .filter(|s| s["phase"] == "during" && s["outcome"] == "fail")
        .filter_map(|s| s["values"][0]["value"].as_f64())
        .collect();
    assert!(
        breaches.iter().any(|v| *v > 0.05),
        "observed values are in the events: {breaches:?}"
    );
    // One pod serves 12 of 30 rps: the ratio can never exceed 0.6.
    assert!(breaches.iter().all(|v| *v <= 0.6 + 1e-9), "{breaches:?}");
    let after = events(&journal, "hypothesisVerdict")
        .into_iter()
        .find(|v| v["phase"] == "after")
        .expect("an after verdict");
    // The workload is whole again after the sandbox's start-up delay…
    let recovered = events(&journal, "recovered")[0]["afterMs"]
        .as_u64()
        .expect("recovered afterMs");
    let startup = STARTUP.as_millis() as u64;
    assert!(
        (startup..startup + 3000).contains(&recovered),
        "replicas back after {recovered} ms, start-up delay {startup} ms"
    );
    let recovery = after["recoveryMs"].as_u64().expect("time to recover");
    // …and the SLO holds again once the 4 s rate window has slid past the errors: from
    // the revert (the replacements are Ready) to the first passing sample.
    let bound = (STARTUP + Duration::from_secs(4 + 4)).as_millis() as u64;
    assert!(
        recovery <= bound,
        "recovered after {recovery} ms > {bound} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_stops_a_60s_fault_within_about_one_probe_interval() {
    let b = bench("abort", Some(12.0)).await;
    let prometheus = b.prometheus(Served::default()).await;
    let scenario = b.scenario(
        "abort",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: count, count: 2}}}}\n  fault: {{type: pod-delete, interval: 60s, duration: 60s}}\n  hypotheses:\n{}  recovery: {{within: 30s}}\n",
            ratio_hypothesis("0.05", "before, during", "      abort: true\n")
        ),
    );
    let started = std::time::Instant::now();
    let out = b.run(&scenario, &prometheus.url()).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "the 60 s fault was cut short: {:?}",
        started.elapsed()
    );
    let journal = b.journal();
    assert_eq!(
        verdicts(&journal, "error ratio"),
        [
            ("before".to_owned(), "passed".to_owned()),
            ("during".to_owned(), "aborted".to_owned())
        ]
    );
    let breach = events(&journal, "probeSample")
        .into_iter()
        .find(|s| s["outcome"] == "fail")
        .expect("a breaching sample");
    let injected = events(&journal, "faultInjected")[0];
    let reverted = events(&journal, "faultReverted")[0];
    let reaction = at(reverted).duration_since(at(breach));
    assert!(
        reaction <= jiff::SignedDuration::from_millis(500 + 1500),
        "reverted {reaction:?} after the breach"
    );
    let held = at(reverted).duration_since(at(injected));
    assert!(
        held < jiff::SignedDuration::from_secs(30),
        "the revert came early: {held:?} into a 60 s fault"
    );
    let finished = events(&journal, "runFinished")[0];
    assert_eq!(finished["exitCode"], 1);
    assert!(
        finished["message"]
            .as_str()
            .is_some_and(|m| m.contains("aborted")),
        "{finished}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_prometheus_is_an_error_exit_3_and_nothing_is_touched() {
    let b = bench("down", None).await;
    let scenario = b.scenario(
        "down",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: pod-delete}}\n  hypotheses:\n{}",
            ratio_hypothesis("0.01", "before, during, after", "")
        ),
    );
    b.handle.clear_request_log();
    let out = b
        .run(
            &scenario,
            &format!("http://127.0.0.1:{}", servers::free_port()),
        )
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Preflight asked once and stopped the run: no baseline, no fault.
    assert!(
        stderr(&out).contains("preflight: Prometheus at http://127.0.0.1:")
            && stderr(&out).contains("is unreachable"),
        "{}",
        stderr(&out)
    );
    let journal = b.journal();
    assert!(events(&journal, "probeSample").is_empty(), "{journal:?}");
    assert!(events(&journal, "faultIntent").is_empty(), "{journal:?}");
    assert!(b.changes().is_empty(), "{:?}", b.changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_killed_mid_run_is_an_error_exit_3_and_the_fault_is_reverted() {
    let b = bench("killed", None).await;
    let mut prometheus = b.prometheus(Served::default()).await;
    let scenario = b.scenario(
        "killed",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: network-latency, delay: 100ms, duration: 6s}}\n  hypotheses:\n{}",
            ratio_hypothesis("0.5", "before, during", "")
        ),
    );
    let mut run = b
        .command(&scenario, &prometheus.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while events(&b.journal(), "faultInjected").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never injected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    prometheus.kill();
    let status = run.wait().await.expect("shakedown exits");
    assert_eq!(status.code(), Some(3));
    let journal = b.journal();
    assert_eq!(
        verdicts(&journal, "error ratio"),
        [
            ("before".to_owned(), "passed".to_owned()),
            ("during".to_owned(), "error".to_owned())
        ]
    );
    let reverted = events(&journal, "faultReverted");
    assert_eq!(reverted.len(), 1, "{reverted:?}");
    let pod = reverted[0]["target"].as_str().expect("target");
    let (namespace, name) = pod.split_once('/').expect("namespace/name");
    let object = b.handle.object("pods", namespace, name).expect("pod");
    assert!(
        object["metadata"]["annotations"]["shakedown.dev/fault"].is_null(),
        "annotation removed: {object}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_works_end_to_end_the_password_never_shows_and_no_data_is_inconclusive() {
    let b = bench("basic", None).await;
    let prometheus = b
        .prometheus(Served {
            basic_auth: Some(("chaos", PASSWORD)),
            ..Served::default()
        })
        .await;
    let password_file = b.dir.join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let empty = r#"sum(rate(http_requests_total{namespace="shop",service="nope"}[4s]))"#;
    let scenario = b.scenario(
        "basic",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: network-latency, delay: 10ms, duration: 1s}}\n  prometheus:\n    basicAuth: {{username: chaos, passwordFile: '{}'}}\n  hypotheses:\n{}    - name: nothing there\n      promql: '{empty}'\n      expect: \"< 1\"\n      phases: [during]\n      every: 500ms\n",
            password_file.display(),
            ratio_hypothesis("0.01", "before, during", "")
        ),
    );
    let out = b.run(&scenario, &prometheus.url()).await;
    // Inconclusive is not a pass: the gate fails.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let journal = b.journal();
    assert_eq!(
        verdicts(&journal, "error ratio"),
        [
            ("before".to_owned(), "passed".to_owned()),
            ("during".to_owned(), "passed".to_owned())
        ]
    );
    assert_eq!(
        verdicts(&journal, "nothing there"),
        [("during".to_owned(), "inconclusive".to_owned())]
    );
    let everything = b.everything_written() + &stderr(&out);
    assert!(!everything.contains(PASSWORD), "the password leaked");

    // A wrong password is refused by Prometheus: preflight says so, in words, before
    // anything is touched.
    std::fs::write(&password_file, "wrong-password").expect("password file");
    b.handle.clear_request_log();
    let out = b.run(&scenario, &prometheus.url()).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let expected = format!(
        "preflight: Prometheus at {} answered 401 Unauthorized",
        prometheus.url()
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("check basicAuth (user `chaos`"),
        "{}",
        stderr(&out)
    );
    assert!(events(&b.journal(), "probeSample").is_empty());
    assert!(b.changes().is_empty(), "{:?}", b.changes());
    assert!(!b.everything_written().contains("wrong-password"));
    assert!(!stderr(&out).contains("wrong-password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_between_two_samples_is_caught_by_a_range_query_over_the_window() {
    let b = bench("range", Some(12.0)).await;
    let prometheus = b.prometheus(Served::default()).await;
    // One instant sample at the injection (before Prometheus sees any error), and the
    // next one would only come after the pods are back.
    let scenario = b.scenario(
        "range",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: count, count: 2}}}}\n  fault: {{type: pod-delete}}\n  hypotheses:\n    - name: error ratio\n      promql: '{ERROR_RATIO}'\n      expect: \"< 0.05\"\n      phases: [during]\n      every: 30s\n  recovery: {{within: 30s}}\n"
        ),
    );
    let out = b.run(&scenario, &prometheus.url()).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let journal = b.journal();
    let during = events(&journal, "hypothesisVerdict")
        .into_iter()
        .find(|v| v["phase"] == "during")
        .expect("a during verdict");
    assert_eq!(during["verdict"], "deviated", "{during}");
    assert_eq!(during["samples"], 1, "{during}");
    let message = during["message"].as_str().unwrap_or("");
    assert!(message.contains("range query"), "{message}");
}

#[test]
fn help_never_shows_the_token_from_the_environment() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["run", "--help"])
        .env("SHAKEDOWN_PROMETHEUS_TOKEN", "tok-in-env-7c2d")
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--prometheus-token"), "{help}");
    assert!(!help.contains("tok-in-env-7c2d"), "{help}");
}

/// A baseline-only run whose `spec.prometheus` is `prometheus_spec`.
async fn run_tls(
    b: &Bench,
    prometheus: &PrometheusServer,
    name: &str,
    prometheus_spec: &str,
) -> Output {
    let scenario = b.scenario(
        name,
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: network-latency, delay: 10ms, duration: 1s}}\n  prometheus: {prometheus_spec}\n  hypotheses:\n{}",
            ratio_hypothesis("0.01", "before", "")
        ),
    );
    b.run(&scenario, &prometheus.url()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_needs_the_ca_bundle_or_an_explicit_insecure_skip_verify() {
    let b = bench("tls", None).await;
    let prometheus = b
        .prometheus(Served {
            tls: true,
            ..Served::default()
        })
        .await;
    let trusted = run_tls(
        &b,
        &prometheus,
        "trusted",
        &format!("{{caFile: '{TLS_DIR}/ca.pem'}}"),
    )
    .await;
    assert_eq!(trusted.status.code(), Some(0), "{}", stderr(&trusted));

    b.handle.clear_request_log();
    let unknown = run_tls(&b, &prometheus, "unknown", "{timeout: 5s}").await;
    assert_eq!(unknown.status.code(), Some(3), "{}", stderr(&unknown));
    // Preflight names the TLS failure and what to check; no sample was taken.
    let why = stderr(&unknown);
    assert!(
        why.contains(&format!(
            "preflight: Prometheus at {} failed the TLS handshake",
            prometheus.url()
        )) && why.contains("certificate")
            && why.contains("check prometheus.caFile"),
        "{why}"
    );
    assert!(events(&b.journal(), "probeSample").is_empty());
    assert!(b.changes().is_empty(), "{:?}", b.changes());

    let insecure = run_tls(&b, &prometheus, "insecure", "{insecureSkipVerify: true}").await;
    assert_eq!(insecure.status.code(), Some(0), "{}", stderr(&insecure));
}

/// Regression (issue 11): a Prometheus behind the wrong path prefix showed only as
/// "baseline no value". Preflight asks once: a 404 is exit 3 with the URL and the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_path_prefix_is_exit_3_at_preflight_and_nothing_is_touched() {
    let b = bench("prefix", None).await;
    let prometheus = b
        .prometheus(Served {
            prefix: "/prometheus",
            ..Served::default()
        })
        .await;
    let scenario = b.scenario(
        "prefix",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: pod-delete}}\n  hypotheses:\n{}",
            ratio_hypothesis("0.01", "before, during", "")
        ),
    );
    let wrong = format!("http://127.0.0.1:{}", prometheus.server.port);
    b.handle.clear_request_log();
    let out = b.run(&scenario, &wrong).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let why = stderr(&out);
    assert!(
        why.contains(&format!(
            "preflight: Prometheus at {wrong} answered 404 Not Found"
        )) && why.contains("path prefix"),
        "{why}"
    );
    assert!(b.changes().is_empty(), "{:?}", b.changes());
}

/// A PromQL hypothesis with no Prometheus anywhere is invalid input, refused before the
/// cluster is contacted (it showed only as "baseline no value").
#[test]
fn a_promql_hypothesis_without_any_prometheus_is_invalid_input() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["--kubeconfig", "/nonexistent/kubeconfig", "--yes"])
        .args(["run", "scenarios/pod-delete.yaml"])
        .env_remove("SHAKEDOWN_PROMETHEUS_URL")
        .output()
        .expect("run");
    let why = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{why}");
    assert!(
        why.contains("hypothesis `checkout error ratio below 1%` queries Prometheus, but no Prometheus is configured"),
        "{why}"
    );
    assert!(!why.contains("connect"), "refused before connecting: {why}");
}

/// Regression (issue 11): samples 1–2 h old were counted as "3601/3601 points held" for
/// a 4 s window. Against a real Prometheus the range re-check of a short window counts
/// only the points inside it (one a second), and every point is fresh data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_range_recheck_of_a_short_window_counts_only_points_inside_it() {
    let b = bench("window", None).await;
    let prometheus = b.prometheus(Served::default()).await;
    let scenario = b.scenario(
        "window",
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: network-latency, delay: 10ms, duration: 4s}}\n  hypotheses:\n{}",
            ratio_hypothesis("0.5", "during", "")
        ),
    );
    let out = b.run(&scenario, &prometheus.url()).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let journal = b.journal();
    let during = events(&journal, "hypothesisVerdict")
        .into_iter()
        .find(|v| v["phase"] == "during")
        .expect("a during verdict");
    assert_eq!(during["verdict"], "passed", "{during}");
    let message = during["message"].as_str().unwrap_or("");
    let points: u32 = message
        .split("range query over the window: ")
        .nth(1)
        .and_then(|rest| rest.split('/').nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a range re-check: {message}"));
    assert!(
        (1..=6).contains(&points),
        "{points} points for a 4 s window: {message}"
    );
    for sample in events(&journal, "probeSample") {
        assert_eq!(sample["outcome"], "pass", "{sample}");
    }
}
