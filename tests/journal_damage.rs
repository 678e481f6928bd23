//! The journal is the source of truth even when it is damaged: `report` and `recover
//! --journal` use every readable record around a damaged line and say which lines and
//! records are missing; and a run whose reports cannot be written does not pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use sandbox_bench::bench;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shakedown-jd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The passing fixture journal with line 10 torn (as a full disk leaves it, with good
/// records after it) and records 20–22 lost.
fn damaged_passing_journal(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string("tests/fixtures/journals/passing.jsonl").expect("fixture");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[9] = lines[9][..lines[9].len() / 2].to_owned();
    lines.drain(19..22);
    let path = dir.join("journal.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write journal");
    path
}

/// Regression: good records after a torn line made `report` exit 2 without a report.
#[test]
fn report_uses_every_record_around_a_damaged_line_and_names_what_is_missing() {
    let dir = scratch("report");
    let journal = damaged_passing_journal(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["report", "--mirror-exit-code", "--output-dir"])
        .arg(dir.join("out"))
        .arg(&journal)
        .output()
        .expect("run shakedown");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "the run's own code: {err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 1, "warned once: {err}");
    assert!(
        warnings[0].contains("1 damaged line(s) skipped (line 10)"),
        "{err}"
    );
    assert!(
        warnings[0].contains("record 10, records 20–22 missing"),
        "{err}"
    );
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/summary.json")).expect("summary.json"),
    )
    .expect("json");
    assert_eq!(
        summary["verdict"], "PASSED",
        "RunFinished, after the damage, was read"
    );
    assert_eq!(summary["partial"], true, "a report missing records says so");
    let md = std::fs::read_to_string(dir.join("out/report.md")).expect("report.md");
    assert!(
        md.contains("Some of the journal's records could not be read"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn record(seq: u64, event: Value) -> String {
    let mut line = json!({"seq": seq, "at": "2027-01-15T08:00:00Z"});
    if let (Some(line), Some(event)) = (line.as_object_mut(), event.as_object()) {
        line.extend(event.clone());
    }
    line.to_string()
}

/// Regression: a torn line in the middle of the journal made `recover --journal` exit 3
/// and revert nothing. Now the marked node is uncordoned, and the record after the damage
/// still names the node that lost its mark.
#[tokio::test(flavor = "multi_thread")]
async fn recover_with_a_damaged_journal_uses_the_records_after_the_damage() {
    let b = bench("recover-journal", common::fast_shop()).await;
    let client = common::client(&b.handle).await;
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    let params = kube::api::PatchParams::default();
    let marked = json!({
        "metadata": {"annotations": {"shakedown.dev/cordoned-by": "run-1"}},
        "spec": {"unschedulable": true}
    });
    nodes
        .patch("node-a-1", &params, &kube::api::Patch::Merge(&marked))
        .await
        .expect("cordon with our mark");
    let unmarked = json!({"spec": {"unschedulable": true}});
    nodes
        .patch("node-a-2", &params, &kube::api::Patch::Merge(&unmarked))
        .await
        .expect("cordon without a mark");
    let journal = b.dir.join("journal.jsonl");
    let lines = [
        record(1, json!({"event": "stepStarted", "step": "1"})),
        r#"{"seq":2,"at":"2027-01-15T08:00:00Z","event":"faultInj"#.to_owned(),
        record(
            3,
            json!({"event": "faultInjected", "step": "1", "target": "node/node-a-2", "detail": "cordoned"}),
        ),
    ];
    std::fs::write(&journal, lines.join("\n") + "\n").expect("journal");

    let out = b
        .shakedown(&["recover", "--journal", journal.to_str().expect("utf8")])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "one node needs a human: {err}");
    assert!(err.contains("1 damaged line(s) skipped (line 2)"), "{err}");
    assert!(
        err.contains("NOT RECOVERED: node/node-a-2 is still cordoned"),
        "the record after the damage was used: {err}"
    );
    let node = b.handle.object("nodes", "", "node-a-1").expect("node");
    assert!(
        node["spec"]["unschedulable"].is_null() || node["spec"]["unschedulable"] == false,
        "the marked node was uncordoned: {node}"
    );
    let node = b.handle.object("nodes", "", "node-a-2").expect("node");
    assert_eq!(
        node["spec"]["unschedulable"], true,
        "an unmarked node is never touched"
    );
}

/// Regression: an unwritable `--junit` path exited 0. It is now found before anything
/// is touched: exit 3, naming the path.
#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_junit_path_or_output_dir_is_exit_3_before_anything_is_touched() {
    let b = bench("unwritable", common::fast_shop()).await;
    let scenario = b.scenario(
        "del",
        "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n  recovery: {within: 20s}\n",
    );
    // A path below a regular file cannot be created, even by root.
    let file = b.dir.join("a-file");
    std::fs::write(&file, "").expect("file");
    let junit = file.join("junit.xml");
    let out = b
        .shakedown(&[
            "run",
            "--junit",
            junit.to_str().expect("utf8"),
            scenario.to_str().expect("utf8"),
        ])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(junit.to_str().expect("utf8")),
        "names the path: {err}"
    );
    assert!(b.mutations().is_empty(), "nothing was touched");

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"));
    let out = command
        .arg("--kubeconfig")
        .arg(&b.kubeconfig)
        .arg("--output-dir")
        .arg(file.join("reports"))
        .args(["--yes", "run"])
        .arg(&scenario)
        .output()
        .await
        .expect("run shakedown");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("a-file/reports"), "names the path: {err}");
    assert!(b.mutations().is_empty(), "nothing was touched");
}

/// A report that cannot be written at the end of a run (the output directory was
/// replaced by a file mid-run, as a cleanup job or a full volume might) fails a run
/// that would otherwise pass: exit 3, naming the path, after the revert.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_that_cannot_be_written_after_the_run_is_exit_3() {
    let b = bench("unwritable-late", common::fast_shop()).await;
    let scenario = b.scenario(
        "drain",
        "  target: {nodes: {names: [node-a-1]}}\n  fault: {type: node-drain, duration: 2s, ignoreDaemonSets: true, deleteEmptyDirData: true}\n  recovery: {within: 20s}\n",
    );
    let scenario = scenario.to_str().expect("utf8").to_owned();
    let run = tokio::spawn({
        let (kubeconfig, out) = (b.kubeconfig.clone(), b.out());
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"))
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .arg("--output-dir")
                .arg(out)
                .args(["--yes", "run", &scenario])
                .kill_on_drop(true)
                .output()
                .await
                .expect("run shakedown")
        }
    });
    let journal = b.out().join("latest/journal.jsonl");
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while !std::fs::read_to_string(&journal).is_ok_and(|j| j.contains("\"cordoned\"")) {
        assert!(tokio::time::Instant::now() < deadline, "never cordoned");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    std::fs::rename(b.out(), b.dir.join("moved")).expect("move the output dir away");
    std::fs::write(b.out(), "").expect("a file where the reports go");
    let out = run.await.expect("joined");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("report(s) could not be written, so the run cannot pass (exit 3)"),
        "{err}"
    );
    assert!(
        err.contains("/out/") && err.contains("/junit.xml"),
        "names the path: {err}"
    );
    let node = b.handle.object("nodes", "", "node-a-1").expect("node");
    assert!(
        node["metadata"]["annotations"]["shakedown.dev/cordoned-by"].is_null(),
        "reverted all the same: {node}"
    );
    // Regression (rough edge): the journal ended with exit 0 while the process exited 3.
    let journal = std::fs::read_to_string(b.dir.join("moved/latest/journal.jsonl"))
        .expect("the journal, moved with its folder");
    let last: serde_json::Value =
        serde_json::from_str(journal.lines().last().expect("a record")).expect("json");
    assert_eq!(last["event"], "runFinished", "{last}");
    assert_eq!(last["exitCode"], 3, "{last}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("report(s) could not be written")),
        "{last}"
    );
}
