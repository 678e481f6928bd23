//! Game-day history through the CLI against in-process sandboxes whose pods take a known
//! time to start: runs with slower start-ups are listed newest first with their recovery
//! times, `compare` shows the change, a damaged or old-format `summary.json` is named and
//! skipped, and `run --baseline` fails a run whose recovery regressed beyond the limit
//! (exit 1, its own JUnit case) and passes one within it (a gate's first run too).

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use sandbox_bench::{Bench, bench};

/// How late a reported recovery may be: one sample interval and the API's slack on a
/// machine shared with other tests (see tests/recovery_times.rs).
const LATE_MS: u64 = 600;

const SCENARIO: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n  recovery: {within: 30s}\n";

async fn slow_start_bench(tag: &str, startup: Duration) -> Bench {
    let mut config = common::fast_shop();
    config.timings.startup_delay = startup;
    bench(tag, config).await
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the checkout scenario on `b`, its reports in `history`, with extra `args`.
async fn run_into(b: &Bench, history: &Path, args: &[&str]) -> Output {
    let scenario = b.scenario("checkout", SCENARIO);
    let mut all = vec!["run", scenario.to_str().expect("utf8")];
    all.extend_from_slice(args);
    b.shakedown_in(history, &all).await
}

/// `shakedown --output-dir DIR ARGS`, no cluster needed.
fn offline(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .arg("--output-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run shakedown")
}

fn checkout_ms(run: &Value) -> u64 {
    run["owners"]["deployment/shop/checkout"]["afterMs"]
        .as_u64()
        .unwrap_or_else(|| panic!("no checkout recovery: {run}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn three_runs_with_slower_start_ups_are_listed_newest_first_and_compared() {
    let delays = [1000u64, 2000, 3000];
    let mut benches = Vec::new();
    for (i, ms) in delays.iter().enumerate() {
        benches.push(slow_start_bench(&format!("hist-{i}"), Duration::from_millis(*ms)).await);
    }
    let history = benches[0].dir.join("history");
    for b in &benches {
        let out = run_into(b, &history, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    // The third run's report draws checkout's trend over the two before it and itself.
    let report = std::fs::read_to_string(history.join("latest/report.md")).expect("report");
    let trend = report
        .split("## Recovery trend")
        .nth(1)
        .unwrap_or_else(|| panic!("no trend section: {report}"));
    let line = trend
        .lines()
        .find(|l| l.starts_with("`deployment/shop/checkout`: "))
        .unwrap_or_else(|| panic!("no checkout trend: {trend}"));
    // Three times (the exact values are checked against the history below).
    assert_eq!(line.matches(" → ").count(), 2, "{line}");
    assert!(line.ends_with("(oldest first; objective 30.0s)"), "{line}");
    let chart = trend
        .split("](")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no chart link: {trend}"));
    let svg = std::fs::read_to_string(history.join("latest").join(chart)).expect("trend chart");
    assert_eq!(svg.matches("<circle class=\"run\"").count(), 3, "{svg}");
    assert!(svg.contains(">RTO 30.0s</text>"), "{svg}");
    assert!(svg.contains("(this run): "), "{svg}");

    // A damaged summary and one of an older format, as a copied artifact folder may hold.
    for (folder, text) in [
        (
            "20200101T000000Z-broken",
            "{\"schema\": \"shakedown.dev/summary/v1\", \"runId",
        ),
        (
            "20200101T000000Z-oldfmt",
            "{\"schema\": \"shakedown.dev/summary/v0\", \"runId\": \"x\"}",
        ),
    ] {
        std::fs::create_dir_all(history.join(folder)).expect("mkdir");
        std::fs::write(history.join(folder).join("summary.json"), text).expect("write");
    }

    let json = offline(&history, &["history", "-o", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let doc: Value = serde_json::from_slice(&json.stdout).expect("History document");
    assert_eq!(doc["kind"], "History");
    let runs = doc["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "{doc}");
    // Newest first: the slowest start-up was run last.
    for (run, delay) in runs.iter().zip(delays.iter().rev()) {
        let ms = checkout_ms(run);
        assert!(
            (*delay..=delay + LATE_MS).contains(&ms),
            "{ms} ms reported for a {delay} ms start-up: {run}"
        );
    }
    let unreadable = doc["unreadable"].as_array().expect("unreadable");
    assert_eq!(unreadable.len(), 2, "{doc}");
    assert!(
        unreadable[1]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("shakedown.dev/summary/v0")),
        "{doc}"
    );

    let table = offline(
        &history,
        &["history", "--experiment", "checkout", "--since", "1d"],
    );
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("STARTED"), "{text}");
    for (line, delay) in lines[1..4]
        .iter()
        .zip(["checkout 3.", "checkout 2.", "checkout 1."])
    {
        assert!(
            line.contains("PASSED") && line.contains(delay),
            "{line}\n{text}"
        );
    }
    assert!(
        lines[4].starts_with("unreadable: 20200101T000000Z-broken: not JSON"),
        "{text}"
    );
    assert!(
        lines[5].starts_with("unreadable: 20200101T000000Z-oldfmt: schema"),
        "{text}"
    );
    assert!(lines.iter().all(|l| l.chars().count() <= 100), "{text}");
    let other = offline(&history, &["history", "--experiment", "nothing-like-it"]);
    assert_eq!(
        stdout(&other)
            .lines()
            .filter(|l| l.contains("PASSED"))
            .count(),
        0
    );

    let compare = offline(&history, &["compare", "previous", "latest"]);
    assert_eq!(compare.status.code(), Some(0), "{}", stderr(&compare));
    let md = stdout(&compare);
    let row = md
        .lines()
        .find(|l| l.starts_with("| deployment/shop/checkout |"))
        .unwrap_or_else(|| panic!("no checkout row: {md}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert!(
        cells[2].starts_with("2.") && cells[3].starts_with("3."),
        "{row}"
    );
    assert!(
        cells[4].starts_with('+') && cells[4].ends_with('s'),
        "{row}"
    );
    assert!(
        cells[5].starts_with('+') && cells[5].ends_with('%'),
        "{row}"
    );
    assert!(md.contains("| verdict | PASSED | PASSED |"), "{md}");

    let missing = offline(&history, &["compare", "latest", "no-such-run"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recovery_regression_past_the_limit_fails_the_run_and_one_within_it_passes() {
    let fast = slow_start_bench("gate-fast", Duration::from_millis(1000)).await;
    let slow = slow_start_bench("gate-slow", Duration::from_millis(2600)).await;
    let history = fast.dir.join("history");
    let limits = "recovery=20%,recoveryFloor=500ms";

    // A gate's first run has nothing to compare with: it passes and says so.
    let first = run_into(
        &fast,
        &history,
        &["--baseline", "latest", "--max-regression", limits],
    )
    .await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("is not judged for regressions"),
        "{}",
        stderr(&first)
    );
    let baseline_dir = std::fs::canonicalize(history.join("latest")).expect("latest");

    let regressed = run_into(
        &slow,
        &history,
        &["--baseline", "latest", "--max-regression", limits],
    )
    .await;
    assert_eq!(regressed.status.code(), Some(1), "{}", stderr(&regressed));
    let latest = history.join("latest");
    let junit = std::fs::read_to_string(latest.join("junit.xml")).expect("junit");
    let case = junit
        .split("<testcase ")
        .find(|c| c.starts_with("name=\"regression recovery deployment/shop/checkout\""))
        .unwrap_or_else(|| panic!("no regression case: {junit}"));
    assert!(case.contains("type=\"Regression\""), "{case}");
    assert!(
        case.contains("message=\"recovery deployment/shop/checkout: 1."),
        "{case}"
    );
    assert!(case.contains("s now (allowed +20%"), "{case}");
    let report = std::fs::read_to_string(latest.join("report.md")).expect("report");
    assert!(report.contains("## Compared with `"), "{report}");
    assert!(report.contains("❌ 1 regression(s)"), "{report}");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(latest.join("summary.json")).expect("summary"),
    )
    .expect("json");
    assert_eq!(summary["verdict"], "DEVIATED", "{summary}");
    assert_eq!(summary["exitCode"], 1);

    // Within the limit of the first run (named by its folder): passes, with its case.
    let within = run_into(
        &fast,
        &history,
        &[
            "--baseline",
            baseline_dir.to_str().expect("utf8"),
            "--max-regression",
            limits,
        ],
    )
    .await;
    assert_eq!(within.status.code(), Some(0), "{}", stderr(&within));
    let junit = std::fs::read_to_string(history.join("latest/junit.xml")).expect("junit");
    assert!(junit.contains("name=\"no regression against "), "{junit}");
    assert!(!junit.contains("type=\"Regression\""), "{junit}");

    // A baseline that does not exist is a typo, not a first run: nothing is run.
    let typo = run_into(&fast, &history, &["--baseline", "no-such-run"]).await;
    assert_eq!(typo.status.code(), Some(2), "{}", stderr(&typo));
}

/// The same gate from the experiment's `regression:` block, with no flag: the first run
/// becomes the baseline, a slower one fails with its regression case.
#[tokio::test(flavor = "multi_thread")]
async fn an_experiment_regression_block_gates_without_flags() {
    let fast = slow_start_bench("gate-spec-fast", Duration::from_millis(1000)).await;
    let slow = slow_start_bench("gate-spec-slow", Duration::from_millis(2600)).await;
    let history = fast.dir.join("history");
    let experiment = |b: &Bench| {
        b.scenario("checkout", SCENARIO);
        let path = b.dir.join("gate.yaml");
        std::fs::write(
            &path,
            "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {name: checkout-gate}\nspec:\n  safety: {allowedNamespaces: [shop]}\n  regression: {recovery: 20%, recoveryFloor: 500ms}\n  steps:\n    - scenario: checkout.yaml\n",
        )
        .expect("write experiment");
        path
    };
    let first_file = experiment(&fast);
    let first = fast
        .shakedown_in(&history, &["run", first_file.to_str().expect("utf8")])
        .await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("is not judged for regressions"),
        "{}",
        stderr(&first)
    );

    let slow_file = experiment(&slow);
    let regressed = slow
        .shakedown_in(&history, &["run", slow_file.to_str().expect("utf8")])
        .await;
    assert_eq!(regressed.status.code(), Some(1), "{}", stderr(&regressed));
    let junit = std::fs::read_to_string(history.join("latest/junit.xml")).expect("junit");
    assert!(
        junit.contains("name=\"regression recovery deployment/shop/checkout\""),
        "{junit}"
    );
    let report = std::fs::read_to_string(history.join("latest/report.md")).expect("report");
    assert!(
        report.contains("limits `recovery=20%,recoveryFloor=500ms`"),
        "{report}"
    );
}
