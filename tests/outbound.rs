//! Notifications through the CLI against an in-process sandbox, delivered to local HTTP
//! receivers (tests/support/receiver.rs): the events arrive in order with the right
//! fields, a webhook's HMAC verifies over the exact body, no secret reaches a payload,
//! a receiver that never answers delays neither the revert nor the exit past its bound
//! (`run::outbound`: the bus only try-sends; the exit waits at most 2 s), and a 500 is
//! retried and finally noted in the journal. Bad `notify:` blocks are exit 2 with
//! `file:line:col`.

use std::path::PathBuf;
use std::process::Output;
use std::time::Instant;

use serde_json::Value;

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/receiver.rs"]
mod receiver;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use receiver::{Answer, Receiver};
use sandbox_bench::Bench;

const POD_DELETE: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n  recovery: {within: 30s}\n";
const LATENCY_1S: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: network-latency, delay: 100ms, duration: 1s}\n";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An experiment named `name` running `scenario` as a step called `step`, with `spec`
/// lines (a `notify:` block) added to its spec.
fn experiment(b: &Bench, name: &str, step: &str, scenario: &str, spec: &str) -> PathBuf {
    let scenario_path = b.scenario(&format!("{name}-scenario"), scenario);
    let path = b.dir.join(format!("{name}.yaml"));
    let text = format!(
        "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: {name}}}\nspec:\n  safety: {{allowedNamespaces: [shop]}}\n  steps:\n    - name: {step}\n      scenario: {}\n{spec}",
        scenario_path.display()
    );
    std::fs::write(&path, text).expect("write experiment");
    path
}

fn types(received: &[receiver::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&key, body);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn notifications_arrive_in_order_signed_with_their_fields_and_no_secret() {
    let b = Bench::new("notify-order").await;
    let webhook = Receiver::start(Answer::Status(200)).await;
    let slack = Receiver::start(Answer::Status(204)).await;
    // The Slack URL (its path is its token) is a secret; so is the signing key. The
    // step's name carries the key, so a payload that was not scrubbed would show it.
    let token = "T0KEN-9f8e7d6c5b4a";
    let key = "hmac-key-3a5b7c9d";
    let slack_url = slack.url(&format!("/services/{token}"));
    let path = experiment(
        &b,
        "notify-order",
        &format!("checkout {key}"),
        POD_DELETE,
        &format!(
            "  notify:\n    - {{kind: webhook, url: '{}', secretEnv: TEST_NOTIFY_KEY}}\n    - {{kind: slack, urlEnv: TEST_SLACK_URL}}\n",
            webhook.url("/hooks/chaos")
        ),
    );
    let out = b
        .command(&["run", path.to_str().expect("utf8")])
        .env("TEST_NOTIFY_KEY", key)
        .env("TEST_SLACK_URL", &slack_url)
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let events = webhook.received();
    let kinds = types(&events);
    let pods = kinds
        .iter()
        .filter(|t| *t == "dev.shakedown.fault.injected")
        .count();
    assert_eq!(pods, 1, "{kinds:?}");
    assert_eq!(
        kinds,
        [
            "dev.shakedown.run.started",
            "dev.shakedown.fault.injected",
            "dev.shakedown.fault.reverted",
            "dev.shakedown.run.finished",
        ],
        "in the order they happened"
    );
    let journal = b.journal();
    let run_id = journal[0]["runId"].as_str().expect("run id").to_owned();
    let mut ids = std::collections::BTreeSet::new();
    for event in &events {
        assert_eq!(event.method, "POST");
        assert_eq!(event.path, "/hooks/chaos");
        assert_eq!(
            event.headers.get("content-type").map(String::as_str),
            Some("application/cloudevents+json")
        );
        let ce = event.json();
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["source"], "/shakedown/notify-order");
        assert_eq!(ce["datacontenttype"], "application/json");
        assert!(
            ce["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{ce}"
        );
        assert!(
            ids.insert(ce["id"].as_str().expect("id").to_owned()),
            "ids are unique"
        );
        assert_eq!(ce["data"]["runId"], run_id.as_str());
        assert_eq!(ce["data"]["experiment"], "notify-order");
        // The signature is the HMAC-SHA256 of the exact body bytes.
        let signature = event.headers.get("x-shakedown-signature").expect("signed");
        assert_eq!(
            signature,
            &format!("sha256={}", hmac_hex(key.as_bytes(), &event.body))
        );
    }
    let injected = events[1].json();
    let target = injected["data"]["target"].as_str().expect("target");
    assert!(target.starts_with("shop/checkout-"), "{injected}");
    assert_eq!(injected["subject"], target);
    assert_eq!(injected["data"]["step"], "1");
    let started = events[0].json();
    assert!(
        started["data"]["plan"]
            .as_str()
            .is_some_and(|p| p.contains("1 step(s)") && p.contains("(pod-delete")),
        "{started}"
    );
    let finished = events[3].json();
    let data = &finished["data"];
    assert_eq!(data["verdict"], "PASSED", "{finished}");
    assert_eq!(data["exitCode"], 0);
    // No hypothesis judged: no score (the Pushgateway test has one).
    assert!(data["score"].is_null(), "{finished}");
    assert!(
        data["recoverySeconds"]["deployment/shop/checkout"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{finished}"
    );
    let report = PathBuf::from(data["report"].as_str().expect("report path"));
    assert!(
        report.ends_with("report.md") && report.is_file(),
        "{report:?}"
    );

    let messages = slack.received();
    assert_eq!(messages.len(), 4, "slack hears the same events");
    for message in &messages {
        assert_eq!(message.path, format!("/services/{token}"));
        assert!(!message.headers.contains_key("x-shakedown-signature"));
        let text = message.json()["text"].as_str().expect("text").to_owned();
        assert!(text.starts_with("shakedown `notify-order`: "), "{text}");
        for variant in ["Passed", "Completed", "FaultInjected"] {
            assert!(!text.contains(variant), "Rust names in {text}");
        }
    }
    let last = messages[3].json()["text"].as_str().unwrap_or("").to_owned();
    assert!(last.contains("run finished: completed (exit 0)"), "{last}");
    assert!(
        last.contains("recovered: deployment/shop/checkout"),
        "{last}"
    );

    // No secret in any payload (the step name's token is masked), nor in the journal.
    let everything: Vec<String> = events
        .iter()
        .chain(&messages)
        .map(receiver::Received::text)
        .collect();
    assert!(
        everything.iter().any(|t| t.contains("checkout ***")),
        "the step's name is sent, scrubbed"
    );
    for text in everything
        .iter()
        .chain([&b.read("journal.jsonl"), &stderr(&out)])
    {
        assert!(!text.contains(&slack_url), "Slack URL leaked: {text}");
        assert!(!text.contains(key), "key leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_never_answers_delays_neither_the_revert_nor_the_exit_past_2s() {
    let b = Bench::new("notify-dead").await;
    let dead = Receiver::start(Answer::Never).await;
    let scenario = b.scenario("dead-receiver", LATENCY_1S);
    let started = Instant::now();
    let out = b
        .shakedown(&[
            "run",
            scenario.to_str().expect("utf8"),
            "--notify",
            &dead.url("/hook"),
        ])
        .await;
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!dead.received().is_empty(), "the receiver was asked");
    let journal = b.journal();
    let at = |kind: &str| -> jiff::Timestamp {
        let record = journal
            .iter()
            .find(|r| r["event"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"));
        record["at"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("at")
    };
    // The 1 s fault is reverted on time although every notification hangs for 5 s per
    // attempt: delivery is off the critical path (a slack of 1.5 s for a busy machine).
    let held = at("faultReverted").duration_since(at("faultInjected"));
    assert!(
        held < jiff::SignedDuration::from_millis(2500),
        "the revert waited for a notification: held {held:?}"
    );
    // The exit waits at most 2 s for deliveries (plus the reports and process exit).
    let finished = at("runFinished");
    let after_finish = jiff::Timestamp::now().duration_since(finished);
    assert!(
        after_finish < jiff::SignedDuration::from_millis(3000),
        "the exit waited {after_finish:?} after the run finished (took {took:?})"
    );
    let missed: Vec<&Value> = journal
        .iter()
        .filter(|r| r["event"] == "deliveryFailed")
        .collect();
    assert!(
        missed.iter().any(|r| r["about"]
            .as_str()
            .is_some_and(|a| a.contains("still queued at exit"))),
        "the abandoned deliveries are noted: {missed:?}"
    );
    assert!(
        b.cluster_state()
            .iter()
            .all(|s| !s.contains("shakedown.dev/fault")),
        "nothing left faulted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_answering_500_is_retried_and_finally_noted_in_the_journal() {
    let b = Bench::new("notify-500").await;
    let failing = Receiver::start(Answer::Status(500)).await;
    let path = experiment(
        &b,
        "notify-500",
        "checkout",
        POD_DELETE,
        &format!(
            "  notify:\n    - kind: webhook\n      url: '{}'\n      events: [run-started]\n",
            failing.url("/hook")
        ),
    );
    let out = b.shakedown(&["run", path.to_str().expect("utf8")]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "a missed notification never fails a run: {}",
        stderr(&out)
    );
    let received = failing.received();
    assert_eq!(
        types(&received),
        ["dev.shakedown.run.started"; 3],
        "3 attempts, only the asked event"
    );
    let bodies: std::collections::BTreeSet<&[u8]> =
        received.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(bodies.len(), 1, "a retry sends the same event");
    let missed = b.records("deliveryFailed");
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0]["about"], "run started");
    assert_eq!(missed[0]["attempts"], 3);
    assert!(
        missed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("answered 500")),
        "{missed:?}"
    );
    assert!(
        missed[0]["to"]
            .as_str()
            .is_some_and(|t| t.starts_with("webhook http://127.0.0.1:"))
    );
    // In the report's words, in the write-up too.
    assert!(
        b.read("report.md").contains("not delivered to webhook"),
        "report lists it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_notify_blocks_are_exit_2_with_their_place_and_nothing_is_touched() {
    let b = Bench::new("notify-invalid").await;
    let cases = [
        (
            "  notify:\n    - {kind: teams, url: 'http://127.0.0.1:9/'}\n",
            "unknown notify kind `teams`",
        ),
        (
            "  notify:\n    - {kind: webhook}\n",
            "exactly one of `url` or `urlEnv`",
        ),
        (
            "  notify:\n    - {kind: webhook, url: 'http://127.0.0.1:9/', events: [fault-injectd]}\n",
            "did you mean `fault-injected`",
        ),
        (
            "  notify:\n    - {kind: slack, url: 'http://127.0.0.1:9/', secretEnv: KEY}\n",
            "not signed",
        ),
        (
            "  notify:\n    - {kind: webhook, url: 'http://127.0.0.1:9/', secretFile: /nonexistent/key}\n",
            "cannot read the signing key file",
        ),
        (
            "  notify:\n    - {kind: webhook, urlEnv: SHAKEDOWN_TEST_UNSET_URL}\n",
            "SHAKEDOWN_TEST_UNSET_URL (urlEnv) is not set",
        ),
    ];
    for (i, (block, message)) in cases.iter().enumerate() {
        let path = experiment(&b, &format!("bad-{i}"), "checkout", POD_DELETE, block);
        let out = b.shakedown(&["run", path.to_str().expect("utf8")]).await;
        assert_eq!(out.status.code(), Some(2), "{block}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{block}: {}", stderr(&out));
    }
    // The spec errors point at their line.
    let path = b.dir.join("bad-0.yaml");
    let out = b
        .shakedown(&["validate", path.to_str().expect("utf8")])
        .await;
    assert!(
        stderr(&out).contains(&format!("{}:10:", path.display())),
        "{}",
        stderr(&out)
    );
    assert!(b.mutations().is_empty(), "nothing was touched");
}
