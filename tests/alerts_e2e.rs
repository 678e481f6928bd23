//! Tier 3: alert hypotheses judged against a real Prometheus evaluating a real rules
//! file (every second) over the sandbox's metrics, and against a real Alertmanager that
//! Prometheus notifies. Each test starts its own servers on free loopback ports with
//! their own data directories (killed on drop). Without `prometheus` and
//! `prometheus-alertmanager` installed these tests fail and say how to get them.

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;
#[path = "support/servers.rs"]
mod servers;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use prometheus_http_query::reqwest;
use sandbox_bench::{Bench, bench};
use serde_json::Value;
use shakedown::demo::{LocalAlertmanager, LocalPrometheus};

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

/// The demo's Alertmanager (loopback, gossip off, its own storage; killed when
/// dropped), ready before it is returned.
async fn start_alertmanager(dir: &Path) -> LocalAlertmanager {
    let binary = servers::alertmanager();
    let mut am = LocalAlertmanager::start(&binary, dir)
        .await
        .expect("alertmanager starts");
    am.wait_ready(Duration::from_secs(30))
        .await
        .expect("alertmanager becomes ready");
    am
}

/// [`start_alertmanager`] on `port`, keeping what `dir` holds (a restart).
async fn start_alertmanager_at(dir: &Path, port: u16) -> LocalAlertmanager {
    let binary = servers::alertmanager();
    let mut am = LocalAlertmanager::start_on(&binary, dir, port)
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
        servers::free_port()
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

/// A latency fault on every checkout pod for `hold`, with a silence in `am` and no
/// hypothesis (a silence needs no Prometheus).
fn silence_scenario(b: &Bench, name: &str, hold: &str, am: &str) -> PathBuf {
    silence_scenario_reaching(b, name, hold, &format!("{{url: '{am}'}}"))
}

/// [`silence_scenario`] with `alertmanager` as its `alertmanager:` block (YAML flow).
fn silence_scenario_reaching(b: &Bench, name: &str, hold: &str, alertmanager: &str) -> PathBuf {
    b.scenario(
        name,
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: all}}}}\n  fault: {{type: network-latency, delay: 300ms, duration: {hold}}}\n  recovery: {{within: 5s}}\n  alertmanager: {alertmanager}\n  silence:\n    matchers:\n      - alertname=\"CheckoutHighLatency\"\n      - {{name: service, value: 'checkout|cart', isRegex: true}}\n    comment: rehearsal of checkout latency\n    margin: 30s\n"
        ),
    )
}

/// Every silence shakedown created in `am`.
async fn shakedown_silences(am: &str) -> Vec<Value> {
    let all = get(&format!("{am}/api/v2/silences")).await;
    all.and_then(|a| a.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s["createdBy"] == "shakedown")
        .collect()
}

/// Waits until `am` holds an active silence created by shakedown, and returns it.
async fn active_silence(am: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let active = shakedown_silences(am)
            .await
            .into_iter()
            .find(|s| s["status"]["state"] == "active");
        if let Some(silence) = active {
            return silence;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no active shakedown silence in {am}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn silence_state(am: &str, id: &str) -> String {
    let silence = get(&format!("{am}/api/v2/silence/{id}"))
        .await
        .unwrap_or(Value::Null);
    silence["status"]["state"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned()
}

fn time_of(value: &Value) -> jiff::Timestamp {
    value.as_str().and_then(|t| t.parse().ok()).expect("a time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_is_active_during_the_fault_expired_after_success_and_bounded_by_its_window() {
    let b = bench("silence-ok", common::fast_shop()).await;
    let am = start_alertmanager(&b.dir.join("alertmanager")).await;
    let scenario = silence_scenario(&b, "silenced", "4s", &am.url.clone());
    let child = b
        .command(&["run", scenario.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let silence = active_silence(&am.url.clone()).await;
    let id = silence["id"].as_str().expect("id");
    // It is up before the fault lands, and still up while the fault holds (the netem
    // annotation is on the pods).
    b.wait_for("the latency fault", |_| {
        b.cluster_state()
            .iter()
            .any(|line| line.contains("shakedown.dev/fault"))
    })
    .await;
    assert_eq!(silence_state(&am.url.clone(), id).await, "active");
    let out = child.wait_with_output().await.expect("run ends");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(silence_state(&am.url.clone(), id).await, "expired");

    let journal = journal(&b);
    let run_id = journal[0]["runId"].as_str().expect("run id");
    assert_eq!(
        silence["comment"],
        format!("shakedown run {run_id}: rehearsal of checkout latency")
    );
    let matchers: Vec<String> = silence["matchers"]
        .as_array()
        .expect("matchers")
        .iter()
        .map(|m| format!("{}{}{}", m["name"], m["isRegex"], m["value"]))
        .collect();
    assert_eq!(
        matchers,
        [
            r#""alertname"false"CheckoutHighLatency""#,
            r#""service"true"checkout|cart""#
        ]
    );
    // The intent is journaled before the silence exists, and its endsAt is the one
    // Alertmanager holds: the fault (4s) and its recovery window (5s), plus 30s.
    let kinds: Vec<&str> = journal.iter().filter_map(|r| r["event"].as_str()).collect();
    let position = |kind: &str| kinds.iter().position(|k| *k == kind).expect(kind);
    assert!(position("silenceIntent") < position("silenceCreated"));
    assert!(position("silenceCreated") < position("faultIntent"));
    assert!(position("faultReverted") < position("silenceExpired"));
    let intent = &journal[position("silenceIntent")];
    assert_eq!(
        time_of(&intent["endsAt"]),
        time_of(&silence["endsAt"]),
        "{intent} vs {silence}"
    );
    let lasts = time_of(&silence["endsAt"]).duration_since(time_of(&intent["startsAt"]));
    assert_eq!(
        lasts,
        jiff::SignedDuration::from_secs(4 + 5 + 30),
        "{silence}"
    );
    let report = std::fs::read_to_string(b.out().join("latest/report.md")).expect("report");
    assert!(
        report.contains(&format!("silence {id} created"))
            && report.contains(&format!("silence {id}: silence {id} expired")),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_expires_the_silence() {
    let b = bench("silence-int", common::fast_shop()).await;
    let am = start_alertmanager(&b.dir.join("alertmanager")).await;
    let scenario = silence_scenario(&b, "interrupted", "2m", &am.url.clone());
    let child = b
        .command(&["run", scenario.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let silence = active_silence(&am.url.clone()).await;
    let (out, _) = sandbox_bench::signal(child, "INT").await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let id = silence["id"].as_str().expect("id");
    assert_eq!(silence_state(&am.url.clone(), id).await, "expired");
}

/// Waits until the run's journal records the silence's id (`silenceCreated`).
async fn silence_journaled(b: &Bench) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !journal(b).iter().any(|r| r["event"] == "silenceCreated") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silence id never reached the journal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_recover_expires_the_silence_from_the_journal_or_alertmanagers_list() {
    let b = bench("silence-kill", common::fast_shop()).await;
    let am = start_alertmanager(&b.dir.join("alertmanager")).await;
    for (round, lose_the_id) in [(1, false), (2, true)] {
        let scenario = silence_scenario(&b, &format!("killed-{round}"), "2m", &am.url.clone());
        let mut child = b
            .command(&["run", scenario.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let silence = active_silence(&am.url.clone()).await;
        silence_journaled(&b).await;
        child.kill().await.expect("SIGKILL");
        let id = silence["id"].as_str().expect("id");
        assert_eq!(silence_state(&am.url.clone(), id).await, "active");
        let journal_path =
            std::fs::canonicalize(b.out().join("latest/journal.jsonl")).expect("journal");
        if lose_the_id {
            // A crash between the POST and the id's record: only the intent is there,
            // and recover finds the silence by its createdBy and the run id.
            let text = std::fs::read_to_string(&journal_path).expect("journal");
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !l.contains("\"silenceCreated\""))
                .collect();
            std::fs::write(&journal_path, kept.join("\n") + "\n").expect("journal");
        }
        let journal_arg = journal_path.to_str().unwrap();
        // A client dry run lists it and changes nothing.
        let out = b
            .command(&["--dry-run=client", "recover", "--journal", journal_arg])
            .output()
            .await
            .expect("recover");
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            listed.contains(&format!("silence/{id}: would expire it")),
            "{listed}"
        );
        assert_eq!(silence_state(&am.url.clone(), id).await, "active");
        // --force: the SIGKILLed run's lock is still within its lease.
        let out = b
            .command(&["recover", "--force", "--journal", journal_arg])
            .output()
            .await
            .expect("recover");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            silence_state(&am.url.clone(), id).await,
            "expired",
            "round {round}"
        );
    }
}

const AM_USER: &str = "shakedown";
const AM_PASSWORD: &str = "game-day-s3cret";
/// bcrypt (cost 4) of `AM_PASSWORD`, for Alertmanager's `basic_auth_users`.
const AM_PASSWORD_BCRYPT: &str = "$2b$04$B0DquyZHPYzuPVeENqOtPuSoOCn.nTzs2OofBrlq5Qp0vrsx6SH9q";

/// An Alertmanager that answers only `AM_USER` with `AM_PASSWORD` (its own basic auth,
/// `--web.config.file`), ready when returned, killed on drop; and its URL with the
/// credentials in it, for this test's own reads (reqwest sends them as basic auth).
async fn start_guarded_alertmanager(dir: &Path) -> (tokio::process::Child, String, String) {
    std::fs::create_dir_all(dir.join("data")).expect("alertmanager dir");
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route: {receiver: nobody}\nreceivers: [{name: nobody}]\n",
    )
    .expect("config");
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  {AM_USER}: '{AM_PASSWORD_BCRYPT}'\n"),
    )
    .expect("web config");
    let port = servers::free_port();
    let binary = servers::alertmanager();
    let child = tokio::process::Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.config.file={}", web.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("alertmanager starts");
    let url = format!("http://127.0.0.1:{port}");
    let with_credentials = format!("http://{AM_USER}:{AM_PASSWORD}@127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while get(&format!("{with_credentials}/api/v2/status"))
        .await
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alertmanager never ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let anonymous = reqwest::get(format!("{url}/api/v2/silences"))
        .await
        .expect("answers");
    assert_eq!(anonymous.status().as_u16(), 401, "basic auth is on");
    (child, url, with_credentials)
}

/// An Alertmanager behind its own basic auth: a journal names it by URL only, so
/// recover without credentials cannot expire the silence (exit 4, named); with
/// `--alertmanager-from` the experiment's block reaches it, from the journal and, with
/// no journal, from Alertmanager's own list. A file without the block is exit 2 before
/// anything is touched. The password is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_reaches_an_alertmanager_behind_basic_auth_with_alertmanager_from() {
    let b = bench("silence-auth", common::fast_shop()).await;
    let (_am, url, readable) = start_guarded_alertmanager(&b.dir.join("alertmanager")).await;
    let password_file = b.dir.join("am-password");
    std::fs::write(&password_file, format!("{AM_PASSWORD}\n")).expect("password file");
    let block = format!(
        "{{url: '{url}', basicAuth: {{username: {AM_USER}, passwordFile: '{}'}}}}",
        password_file.display()
    );
    let unguarded = silence_scenario(&b, "no-credentials", "2m", &url);
    let printed = |out: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    for (round, with_journal) in [(1, true), (2, false)] {
        let scenario = silence_scenario_reaching(&b, &format!("guarded-{round}"), "2m", &block);
        let mut child = b
            .command(&["run", scenario.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let silence = active_silence(&readable).await;
        let id = silence["id"].as_str().expect("id");
        silence_journaled(&b).await;
        child.kill().await.expect("SIGKILL");
        let journal_path =
            std::fs::canonicalize(b.out().join("latest/journal.jsonl")).expect("journal");
        let journal_arg = journal_path.to_str().unwrap();
        let scenario_arg = scenario.to_str().unwrap();
        if with_journal {
            let out = b
                .command(&["recover", "--force", "--journal", journal_arg])
                .output()
                .await
                .expect("recover");
            assert_eq!(out.status.code(), Some(4), "{}", printed(&out));
            assert!(
                stderr(&out).contains(&format!("NOT RECOVERED: silence/{id}")),
                "{}",
                printed(&out)
            );
            assert_eq!(silence_state(&readable, id).await, "active");
            let out = b
                .command(&[
                    "recover",
                    "--force",
                    "--alertmanager-from",
                    unguarded.to_str().unwrap(),
                    "--alertmanager-from",
                    scenario_arg,
                ])
                .output()
                .await
                .expect("recover");
            assert_eq!(
                out.status.code(),
                Some(2),
                "repeated flag: {}",
                printed(&out)
            );
            let no_block = b.scenario(
                "no-alertmanager",
                "  target: {pods: {namespace: shop, selector: app=checkout, mode: all}}\n  fault: {type: pod-delete}\n",
            );
            let out = b
                .command(&[
                    "recover",
                    "--force",
                    "--journal",
                    journal_arg,
                    "--alertmanager-from",
                    no_block.to_str().unwrap(),
                ])
                .output()
                .await
                .expect("recover");
            assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
            assert!(
                stderr(&out).contains("no-alertmanager.yaml: --alertmanager-from needs"),
                "{}",
                printed(&out)
            );
            assert_eq!(silence_state(&readable, id).await, "active");
        }
        let mut args = vec!["recover", "--force", "--alertmanager-from", scenario_arg];
        if with_journal {
            args.extend(["--journal", journal_arg]);
        }
        let out = b.command(&args).output().await.expect("recover");
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            printed(&out)
        );
        assert_eq!(
            silence_state(&readable, id).await,
            "expired",
            "round {round}"
        );
        assert!(!printed(&out).contains(AM_PASSWORD), "{}", printed(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_down_at_expiry_is_exit_4_and_recover_expires_the_silence_later() {
    let b = bench("silence-down", common::fast_shop()).await;
    let dir = b.dir.join("alertmanager");
    let am = start_alertmanager(&dir).await;
    let (url, port) = (am.url.clone(), am.port);
    let scenario = silence_scenario(&b, "am-down", "6s", &url);
    let child = b
        .command(&["run", scenario.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let silence = active_silence(&url).await;
    let id = silence["id"].as_str().expect("id").to_owned();
    // Stopped gracefully, it writes its silences to disk for the restart below.
    am.terminate().await;
    let out = child.wait_with_output().await.expect("run ends");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("silence/{id}")),
        "{}",
        stderr(&out)
    );
    let journal = journal(&b);
    assert!(
        journal
            .iter()
            .any(|r| r["event"] == "silenceNotExpired" && r["id"] == id.as_str()),
        "{journal:?}"
    );

    let am = start_alertmanager_at(&dir, port).await;
    assert_eq!(silence_state(&am.url.clone(), &id).await, "active");
    let journal_path = b.out().join("latest/journal.jsonl");
    let out = b
        .command(&["recover", "--journal", journal_path.to_str().unwrap()])
        .output()
        .await
        .expect("recover");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(silence_state(&am.url.clone(), &id).await, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiments_silence_covers_the_whole_run_and_is_expired_at_its_end() {
    let b = bench("silence-run", common::fast_shop()).await;
    let am = start_alertmanager(&b.dir.join("alertmanager")).await;
    b.scenario(
        "step",
        "  target: {pods: {namespace: shop, selector: app=checkout, mode: all}}\n  fault: {type: network-latency, delay: 300ms, duration: 2s}\n  recovery: {within: 3s}\n",
    );
    let experiment = b.dir.join("silenced-run.yaml");
    std::fs::write(
        &experiment,
        format!(
            "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: silenced-run}}\nspec:\n  alertmanager: {{url: '{}'}}\n  silence: {{matchers: ['severity=\"page\"'], margin: 10s}}\n  steps:\n    - scenario: step.yaml\n    - scenario: step.yaml\n",
            am.url.clone()
        ),
    )
    .expect("experiment");
    let out = b.shakedown(&["run", experiment.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let journal = journal(&b);
    let created = journal
        .iter()
        .find(|r| r["event"] == "silenceCreated")
        .expect("the run's silence");
    assert!(created.get("step").is_none_or(Value::is_null), "{created}");
    let id = created["id"].as_str().expect("id");
    assert_eq!(silence_state(&am.url.clone(), id).await, "expired");
    // Both steps ran under it: it was created before the first fault and expired after
    // the last revert.
    let seq = |kind: &str, first: bool| {
        let mut all = journal.iter().filter(|r| r["event"] == kind);
        let found = if first { all.next() } else { all.next_back() };
        found.expect(kind)["seq"].as_u64().expect("seq")
    };
    assert!(seq("silenceCreated", true) < seq("faultInjected", true));
    assert!(seq("faultReverted", false) < seq("silenceExpired", false));
    // Its window is the plan's longest: two steps of 2s + 3s, plus the 10s margin.
    let intent = journal
        .iter()
        .find(|r| r["event"] == "silenceIntent")
        .expect("intent");
    let lasts = time_of(&intent["endsAt"]).duration_since(time_of(&intent["startsAt"]));
    assert_eq!(lasts, jiff::SignedDuration::from_secs(2 * (2 + 3) + 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_with_an_unreachable_alertmanager_is_exit_3_before_anything_is_touched() {
    let b = bench("silence-preflight", common::fast_shop()).await;
    let nobody = format!("http://127.0.0.1:{}", servers::free_port());
    let scenario = silence_scenario(&b, "nobody", "5s", &nobody);
    let out = b.shakedown(&["run", scenario.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("Alertmanager at {nobody} is unreachable")),
        "{}",
        stderr(&out)
    );
    assert!(b.mutations().is_empty(), "{:?}", b.mutations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_expires_the_silence() {
    let b = bench("silence-halt", common::fast_shop()).await;
    let am = start_alertmanager(&b.dir.join("alertmanager")).await;
    let scenario = silence_scenario(&b, "halted", "2m", &am.url.clone());
    let child = b
        .command(&["run", scenario.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let silence = active_silence(&am.url.clone()).await;
    let halt = b.shakedown(&["halt", "--reason", "silence drill"]).await;
    assert_eq!(halt.status.code(), Some(0), "{}", stderr(&halt));
    let out = child.wait_with_output().await.expect("run ends");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let id = silence["id"].as_str().expect("id");
    assert_eq!(silence_state(&am.url.clone(), id).await, "expired");
}
