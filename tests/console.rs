//! The console (issue 15), through the binary against an in-process sandbox: off a
//! terminal, one plain line per event in the report's words with a heartbeat while a
//! fault holds; under a real pseudo-terminal (`script`), the live view with its step
//! `N/M`, a countdown and a value with its unit against its threshold, and the keys:
//! `p` holds the run before its next step until pressed again, `s` skips the step
//! (reverted, skipped in every report), `a` aborts (exit 1); the terminal is restored
//! afterwards.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use sandbox_bench::{Bench, bench};

fn journal(b: &Bench) -> Vec<Value> {
    b.read("journal.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect()
}

/// A latency fault on one checkout pod for `hold`, judged by how fast the sandbox's own
/// `/metrics` answers (an HTTP probe: its value is seconds).
fn latency_scenario(b: &Bench, name: &str, hold: &str) -> std::path::PathBuf {
    b.scenario(
        name,
        &format!(
            "  target: {{pods: {{namespace: shop, selector: app=checkout, mode: one}}}}\n  fault: {{type: network-latency, delay: 100ms, duration: {hold}}}\n  hypotheses:\n    - {{name: metrics answer fast, http: {{url: '{}', timeout: 2s}}, expect: \"< 2\", every: 500ms, phases: [during, after]}}\n  recovery: {{within: 10s}}\n",
            b.metrics_url()
        ),
    )
}

/// No pod is left with shakedown's fault annotation.
fn nothing_left_faulted(b: &Bench) {
    let faulted: Vec<String> = b
        .cluster_state()
        .into_iter()
        .filter(|s| s.contains("shakedown.dev/fault"))
        .collect();
    assert!(faulted.is_empty(), "left faulted: {faulted:?}");
}

/// Words that are Rust variant names, not the report's words.
const VARIANTS: [&str; 12] = [
    "Pass",
    "Fail",
    "Passed",
    "Deviated",
    "Before",
    "During",
    "After",
    "Completed",
    "Running",
    "Aborted",
    "Skipped",
    "SkipStep",
];

#[tokio::test(flavor = "multi_thread")]
async fn off_a_terminal_each_event_is_one_plain_line_and_a_heartbeat_names_the_fault_time_left_and_values()
 {
    let b = bench("console-plain", common::fast_shop()).await;
    let scenario = latency_scenario(&b, "plain", "13s");
    let out = b
        .shakedown(&["run", scenario.to_str().expect("utf8")])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Never a progress bar or a control sequence: plain lines for a log.
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    let heartbeats: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("step 1/1: network-latency on 1 pod, "))
        .collect();
    assert!(
        !heartbeats.is_empty(),
        "no heartbeat in 13 s of fault:\n{stderr}"
    );
    for line in &heartbeats {
        assert!(line.contains(" s left; metrics answer fast "), "{line}");
        assert!(line.contains(" ms (limit < 2.00 s)"), "{line}");
    }
    // At most one heartbeat every 10 s: a 13 s hold has room for one.
    assert_eq!(heartbeats.len(), 1, "{heartbeats:?}");
    for word in VARIANTS {
        let found = stderr
            .split(|c: char| !c.is_alphanumeric())
            .any(|token| token == word);
        assert!(!found, "the Rust name `{word}` in:\n{stderr}");
    }
    assert!(stderr.contains("step 1 finished: completed"), "{stderr}");
    nothing_left_faulted(&b);
}

/// What the pseudo-terminal showed so far.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<String>>);

impl Screen {
    fn text(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits (up to the bench's deadline) until `ready` says yes about the screen.
    async fn until(&self, what: &str, ready: impl Fn(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        while !ready(&self.text()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never saw {what} on the screen:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every `N s left` the screen showed, in order.
fn countdown(screen: &str) -> Vec<u64> {
    screen
        .split(" s left")
        .filter_map(|before| {
            let digits: String = before
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.chars().rev().collect::<String>().parse().ok()
        })
        .collect()
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[tokio::test(flavor = "multi_thread")]
async fn under_a_pty_the_live_view_counts_down_p_pauses_s_skips_a_aborts_and_the_terminal_is_restored()
 {
    let b = bench("console-pty", common::fast_shop()).await;
    let steps = [
        latency_scenario(&b, "first", "30s"),
        latency_scenario(&b, "second", "60s"),
        latency_scenario(&b, "third", "5s"),
    ];
    let experiment = b.dir.join("gameday.yaml");
    let list: String = steps
        .iter()
        .map(|s| format!("    - scenario: {}\n", s.display()))
        .collect();
    std::fs::write(
        &experiment,
        format!(
            "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: gameday}}\nspec:\n  safety: {{allowedNamespaces: [shop]}}\n  steps:\n{list}"
        ),
    )
    .expect("experiment");
    let mut line: Vec<String> = vec![quote(env!("CARGO_BIN_EXE_shakedown"))];
    line.extend(
        b.args(&[
            "--color",
            "never",
            "run",
            experiment.to_str().expect("utf8"),
        ])
        .iter()
        .map(|a| quote(a)),
    );
    // After the run, the shell says the exit code and how the terminal is set.
    let shell = format!("{}; echo EXIT=$?; stty -a", line.join(" "));
    let mut command = tokio::process::Command::new("script");
    command
        .args(["-q", "-f", "-e", "-c", &shell, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for marker in shakedown::run::ci::MARKERS {
        command.env_remove(marker);
    }
    let mut child = command.spawn().expect("script (util-linux) runs");
    let mut keys = child.stdin.take().expect("stdin");
    let mut pty = child.stdout.take().expect("stdout");
    let screen = Screen::default();
    let reader = tokio::spawn({
        let screen = screen.clone();
        async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pty.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = screen.0.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        }
    });

    screen
        .until(
            "step 1/3 counting down with a value against its limit",
            |s| {
                let left = countdown(s);
                s.contains("step 1/3")
                    && s.contains(" ms (limit < 2.00 s)")
                    && left.first().zip(left.last()).is_some_and(|(a, z)| z < a)
            },
        )
        .await;
    let left = countdown(&screen.text());
    assert!(
        left.windows(2).all(|w| w[1] <= w[0]),
        "the countdown never goes up: {left:?}"
    );
    // `p` first: the run will hold before step 2.
    keys.write_all(b"p").await.expect("send p");
    screen
        .until("the pause acknowledged", |s| s.contains("key p: pausing"))
        .await;
    keys.write_all(b"s").await.expect("send s");
    const PAUSED: &str = "paused from the console (key p) before step 2";
    screen
        .until("step 1 skipped and the run paused before step 2", |s| {
            s.contains("key s: skipping the rest of step 1") && s.contains(PAUSED)
        })
        .await;
    // Nothing to wait for but time: a paused run must not start its next step.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let since_pause = screen.text();
    let since_pause = since_pause.split(PAUSED).nth(1).unwrap_or_default();
    assert!(
        !since_pause.contains("step 2/3") && since_pause.contains("PAUSED"),
        "step 2 started while paused:\n{since_pause}"
    );
    keys.write_all(b"p").await.expect("send p again");
    screen
        .until("step 2/3 under way after the resume", |s| {
            s.contains("step 2: resumed") && s.contains("step 2/3")
        })
        .await;
    // Abort while step 2's fault holds (an abort while its injector is still starting
    // would leave nothing injected to revert).
    screen
        .until("step 2's fault injected", |s| {
            s.contains("step 2: injected into")
        })
        .await;
    keys.write_all(b"a").await.expect("send a");
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the run ends after the abort")
        .expect("script exits");
    let _ = reader.await;
    let text = screen.text();
    assert!(status.success(), "script: {status:?}\n{text}");
    assert!(text.contains("EXIT=1"), "an abort exits 1:\n{text}");
    assert!(
        text.contains("aborted from the console (key a)"),
        "the verdict says who aborted:\n{text}"
    );
    // Restored: the cursor is shown after it was last hidden, and the line discipline
    // echoes and reads lines again.
    let hidden = text
        .rfind("\x1b[?25l")
        .expect("the live view hid the cursor");
    let shown = text.rfind("\x1b[?25h").expect("the cursor is shown again");
    assert!(shown > hidden, "cursor left hidden");
    let stty = text.split("EXIT=1").nth(1).unwrap_or_default();
    for mode in ["icanon", "echo"] {
        assert!(
            stty.split_whitespace().any(|w| w == mode),
            "terminal left without {mode}:\n{stty}"
        );
    }

    // The skip and the abort are in every report, and nothing is left faulted.
    let journal = journal(&b);
    let skipped = journal
        .iter()
        .find(|r| r["event"] == "stepSkipped" && r["step"] == "1")
        .expect("step 1 skipped");
    assert!(
        skipped["reason"]
            .as_str()
            .is_some_and(|r| r.contains("skipped from the console (key s)")),
        "{skipped}"
    );
    let junit = b.read("junit.xml");
    assert!(
        junit.contains("skipped from the console (key s)"),
        "{junit}"
    );
    let markdown = b.read("report.md");
    assert!(
        markdown.contains("skipped from the console (key s)"),
        "{markdown}"
    );
    let finished = journal
        .iter()
        .find(|r| r["event"] == "runFinished")
        .expect("runFinished");
    assert_eq!(finished["status"], "aborted", "{finished}");
    assert_eq!(finished["exitCode"], 1, "{finished}");
    // The abort reverted step 2 early, and its recovery was still measured.
    let after = |step: &str| {
        journal
            .iter()
            .find(|r| {
                r["event"] == "hypothesisVerdict" && r["step"] == step && r["phase"] == "after"
            })
            .map(|r| r["verdict"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        after("2").as_deref(),
        Some("passed"),
        "step 2 after the abort"
    );
    assert_eq!(after("1").as_deref(), Some("skipped"), "step 1 was skipped");
    let injected = journal
        .iter()
        .filter(|r| r["event"] == "faultInjected")
        .count();
    let reverted = journal
        .iter()
        .filter(|r| r["event"] == "faultReverted")
        .count();
    assert_eq!(injected, 2, "steps 1 and 2 injected, step 3 never ran");
    assert_eq!(reverted, injected, "every injection reverted");
    nothing_left_faulted(&b);
}
