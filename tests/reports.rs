//! Reports rendered from fixture journals (tests/fixtures/journals, written by its
//! generate.py): snapshots of all three formats, the JUnit checked by independent
//! consumers (an XSD validator and Python's `junitparser`), the Markdown by a real GFM
//! renderer (`cmark-gfm`), and `shakedown report` end to end.
//!
//! scripts/test.sh installs `junitparser`, `xmlschema` and `cmark-gfm` when missing; a
//! test that needs one fails with a message saying so rather than passing silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use shakedown::events::Record;
use shakedown::journal;
use shakedown::report::{self, Format, RenderedFile, markdown};

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;

const FIXTURES: [&str; 8] = [
    "passing",
    "deviated",
    "aborted",
    "interrupted",
    "prometheus-error",
    "truncated",
    "hostile",
    "drained",
];

fn fixture_path(name: &str) -> PathBuf {
    Path::new("tests/fixtures/journals").join(format!("{name}.jsonl"))
}

fn load(name: &str) -> (Vec<Record>, bool) {
    let contents = journal::read(&fixture_path(name)).expect("fixture journal reads");
    (contents.records, contents.truncated)
}

fn render(name: &str, format: Format) -> Vec<RenderedFile> {
    let (records, truncated) = load(name);
    report::render(&records, truncated, &[format])
}

fn main_file(name: &str, format: Format) -> String {
    render(name, format)
        .into_iter()
        .next()
        .expect("a rendered file")
        .contents
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shakedown-reports-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Renders every fixture into `<dir>/<fixture>/`.
fn render_all_into(dir: &Path) {
    for name in FIXTURES {
        let (records, truncated) = load(name);
        let files = report::render(&records, truncated, &[]);
        report::write(&dir.join(name), &files).expect("write reports");
    }
}

fn python() -> String {
    std::env::var("SHAKEDOWN_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a Python script after checking its modules are there; panics with the fix if not.
fn run_python(modules: &[&str], script: &str, args: &[&Path]) -> String {
    if !modules.is_empty() {
        probe_modules(modules);
    }
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn probe_modules(modules: &[&str]) {
    let probe = Command::new(python())
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; install python3", python()));
    assert!(
        probe.status.success(),
        "python module(s) {modules:?} missing: run scripts/test.sh, or `python3 -m pip install {}`\n{}",
        modules.join(" "),
        String::from_utf8_lossy(&probe.stderr)
    );
}

macro_rules! snapshots {
    ($($test:ident => $fixture:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            insta::assert_snapshot!(concat!($fixture, "-junit"), main_file($fixture, Format::Junit));
            insta::assert_snapshot!(concat!($fixture, "-markdown"), main_file($fixture, Format::Markdown));
            insta::assert_snapshot!(concat!($fixture, "-summary"), main_file($fixture, Format::Json));
        }
    )*};
}

snapshots! {
    snapshot_passing_run => "passing",
    snapshot_deviated_run => "deviated",
    snapshot_aborted_run => "aborted",
    snapshot_interrupted_run => "interrupted",
    snapshot_prometheus_error_run => "prometheus-error",
    snapshot_truncated_journal => "truncated",
    snapshot_hostile_text => "hostile",
    snapshot_node_drain_with_kube_and_http_probes => "drained",
}

#[test]
fn snapshot_of_a_chart() {
    let files = render("deviated", Format::Markdown);
    let chart = files
        .iter()
        .find(|f| f.path == Path::new("charts/step-1-checkout-error-ratio-below-1.svg"))
        .expect("the error-ratio chart is rendered beside the report");
    insta::assert_snapshot!("deviated-chart-error-ratio", chart.contents);
}

#[test]
fn rendering_is_deterministic() {
    for name in FIXTURES {
        let (records, truncated) = load(name);
        assert_eq!(
            report::render(&records, truncated, &[]),
            report::render(&records, truncated, &[]),
            "{name}"
        );
    }
}

/// Python: whether an xmlschema error is `file` or `line` on a `<testcase>`, the one
/// addition to junit-10.xsd (GitLab and GitHub annotators read them; Jenkins ignores them).
const LOCATED: &str = r#"
def located(e):
    reason = str(e.reason)
    return e.elem is not None and e.elem.tag == "testcase" and "attribute not allowed" in reason \
        and any(reason.startswith("'%s' " % a) for a in ("file", "line"))
"#;

#[test]
fn junit_validates_against_the_jenkins_junit_10_xsd() {
    let dir = scratch("xsd");
    render_all_into(&dir);
    // And one combined file, as a release gate running every fixture would write.
    let runs: Vec<(Vec<Record>, bool)> = FIXTURES.iter().map(|name| load(name)).collect();
    let borrowed: Vec<(&[Record], bool)> = runs.iter().map(|(r, t)| (r.as_slice(), *t)).collect();
    std::fs::create_dir_all(dir.join("combined")).expect("dir");
    std::fs::write(
        dir.join("combined").join("junit.xml"),
        shakedown::report::junit::render_many(&borrowed),
    )
    .expect("write combined");
    let script = format!(
        "{LOCATED}{}",
        r#"
import sys, glob, os
import xmlschema
schema = xmlschema.XMLSchema(sys.argv[1])
files = sorted(glob.glob(os.path.join(sys.argv[2], "*", "junit.xml")))
assert len(files) == int(sys.argv[3]), files
bad = 0
for f in files:
    for e in schema.iter_errors(f):
        if located(e):
            continue
        bad += 1
        print(f, e.reason, e.path)
sys.exit(1 if bad else 0)
"#
    );
    let count = PathBuf::from((FIXTURES.len() + 1).to_string());
    run_python(
        &["xmlschema"],
        &script,
        &[Path::new("tests/fixtures/junit/junit-10.xsd"), &dir, &count],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_xsd_rejects_what_jenkins_would() {
    // Guards the schema itself: quick-junit's own root `skipped` count is not allowed.
    let dir = scratch("xsd-neg");
    let bad = dir.join("bad.xml");
    std::fs::write(
        &bad,
        r#"<testsuites tests="1" skipped="0"><testsuite name="a" tests="1" failures="0" errors="0"><testcase name="x"/></testsuite></testsuites>"#,
    )
    .expect("write");
    let script = r#"
import sys, xmlschema
print(xmlschema.XMLSchema(sys.argv[1]).is_valid(sys.argv[2]))
"#;
    let out = run_python(
        &["xmlschema"],
        script,
        &[Path::new("tests/fixtures/junit/junit-10.xsd"), &bad],
    );
    assert_eq!(out.trim(), "False");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What junitparser sees in one file: totals, then one line per failing/erroring/skipped case.
fn junitparser_view(file: &Path) -> String {
    let script = r#"
import sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
tests = failures = errors = skipped = 0
lines = []
for suite in xml:
    tests += suite.tests; failures += suite.failures; errors += suite.errors; skipped += suite.skipped
    props = {p.name: p.value for p in suite.properties()}
    lines.append("suite %s partial=%s timestamp=%s time=%s" % (suite.name, props.get("partial"), suite.timestamp, suite.time))
    for case in suite:
        for r in case.result:
            kind = type(r).__name__.lower()
            lines.append("  %s %s [%s] %s" % (kind, case.name, r.type, r.message))
print("tests=%d failures=%d errors=%d skipped=%d" % (tests, failures, errors, skipped))
print("\n".join(lines))
"#;
    run_python(&["junitparser"], script, &[file])
}

#[test]
fn junitparser_reads_the_expected_counts_and_messages() {
    let dir = scratch("junitparser");
    render_all_into(&dir);
    let view = |name: &str| junitparser_view(&dir.join(name).join("junit.xml"));

    let passing = view("passing");
    assert!(
        passing.starts_with("tests=15 failures=0 errors=0 skipped=0"),
        "{passing}"
    );

    let deviated = view("deviated");
    assert!(
        deviated.starts_with("tests=15 failures=2 errors=0 skipped=0"),
        "{deviated}"
    );
    // Step 1 ran from its StepStarted (08:00:01) to its StepFinished (08:03:11).
    assert!(
        deviated.contains(
            "suite checkout-pod-delete (step 1) partial=false timestamp=2027-01-15T08:00:01.000Z time=190.0"
        ),
        "{deviated}"
    );
    assert!(deviated.contains(
        "failure checkout error ratio below 1% [during] [SteadyStateDeviated] checkout error ratio below 1% during: 0.043 > 0.01 in 7/12 samples (tolerance 90%)"
    ), "{deviated}");
    assert!(
        deviated.contains(
            "[SteadyStateDeviated] checkout p95 latency below 300ms after: p95=0.331 > 0.3"
        ),
        "{deviated}"
    );

    let aborted = view("aborted");
    assert!(
        aborted.starts_with("tests=15 failures=1 errors=0 skipped=9"),
        "{aborted}"
    );
    assert!(
        aborted.contains(
            "skipped catalog p95 latency below 500ms [before] [None] step skipped: aborted:"
        ),
        "{aborted}"
    );

    // Nothing failed, but the run was interrupted: the run-outcome case says so.
    let interrupted = view("interrupted");
    assert!(
        interrupted.starts_with("tests=15 failures=0 errors=1 skipped="),
        "{interrupted}"
    );
    assert!(
        interrupted.contains("error run outcome [INTERRUPTED] interrupted by SIGINT"),
        "{interrupted}"
    );

    let prometheus = view("prometheus-error");
    assert!(prometheus.contains("failures=0 errors=3"), "{prometheus}");
    assert!(
        prometheus.contains(
            "[ProbeError] checkout error ratio below 1% before: Prometheus error on 3/3 attempts"
        ),
        "{prometheus}"
    );

    let truncated = view("truncated");
    assert!(truncated.contains("partial=true"), "{truncated}");
    assert!(!truncated.contains("partial=false"), "{truncated}");
    assert!(
        truncated.contains(
            "[NotReverted] 2 target(s) injected and never reverted: node/node-a-1, node/node-a-2"
        ),
        "{truncated}"
    );
    assert!(
        truncated.contains("error run outcome [PartialJournal] partial report"),
        "{truncated}"
    );

    let hostile = view("hostile");
    assert!(hostile.contains("[FaultInjectFailed]"), "{hostile}");
    assert!(hostile.contains("[RevertFailed]"), "{hostile}");
    assert!(
        hostile.contains("]]>"),
        "the CDATA terminator survives as text: {hostile}"
    );
    assert!(
        !hostile.contains('\u{1b}'),
        "ANSI escapes are stripped: {hostile}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_text_gives_well_formed_xml_and_svg() {
    let dir = scratch("hostile");
    render_all_into(&dir);
    let script = r#"
import sys, glob, os
import xml.etree.ElementTree as ET
files = sorted(glob.glob(os.path.join(sys.argv[1], "*", "junit.xml")) + glob.glob(os.path.join(sys.argv[1], "*", "charts", "*.svg")))
for f in files:
    ET.parse(f)
    text = open(f, encoding="utf-8").read()
    assert "\x1b" not in text, f
    assert not any(ord(c) < 32 and c not in "\n\t" for c in text), f
print(len(files))
"#;
    let out = run_python(&[], script, &[&dir]);
    let parsed: usize = out.trim().parse().expect("a count");
    assert!(
        parsed > FIXTURES.len(),
        "JUnit and SVG files parsed: {parsed}"
    );
    for name in FIXTURES {
        let md = std::fs::read_to_string(dir.join(name).join("report.md")).expect("report.md");
        assert!(!md.contains('\u{1b}'), "{name}: ANSI escape in Markdown");
        assert!(
            !md.contains("<exp>") && !md.contains("<b>"),
            "{name}: raw HTML in Markdown"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn cmark_gfm(markdown: &Path) -> String {
    let out = Command::new("cmark-gfm")
        .args(["--extension", "table", "--extension", "strikethrough"])
        .arg(markdown)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run cmark-gfm ({e}): run scripts/test.sh, or `apt-get install cmark-gfm`"
            )
        });
    assert!(out.status.success(), "cmark-gfm failed");
    String::from_utf8(out.stdout).expect("utf-8 HTML")
}

#[test]
fn markdown_verdict_tables_render_as_html_tables_in_cmark_gfm() {
    let dir = scratch("gfm");
    render_all_into(&dir);
    for name in FIXTURES {
        let html = cmark_gfm(&dir.join(name).join("report.md"));
        let tables = html.matches("<table>").count();
        // The run table, a verdict table per checked step, a table per hypothesis, the event log.
        assert!(tables >= 4, "{name}: only {tables} HTML tables\n{html}");
        assert!(
            html.contains("<th>verdict</th>"),
            "{name}: no verdict table"
        );
        assert!(
            html.contains("<pre><code class=\"language-mermaid\">gantt"),
            "{name}: no mermaid block"
        );
        assert!(
            !html.contains("<exp>") && !html.contains("<tag>"),
            "{name}: raw HTML passed through"
        );
    }
    let deviated = cmark_gfm(&dir.join("deviated").join("report.md"));
    assert!(deviated.contains("<td>❌ deviated</td>"));
    assert!(deviated.contains("<img src=\"charts/step-1-checkout-error-ratio-below-1.svg\""));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The gantt block, checked line by line against the subset of mermaid's grammar we emit.
fn check_gantt(name: &str, md: &str) {
    let start = md
        .find("```mermaid\n")
        .unwrap_or_else(|| panic!("{name}: no mermaid block"));
    let body = &md[start + "```mermaid\n".len()..];
    let end = body
        .find("\n```")
        .unwrap_or_else(|| panic!("{name}: unclosed mermaid block"));
    let lines: Vec<&str> = body[..end].lines().collect();
    assert_eq!(lines[0], "gantt", "{name}");
    assert!(lines[1].starts_with("    title "), "{name}");
    assert_eq!(lines[2], "    dateFormat YYYY-MM-DD HH:mm:ss", "{name}");
    assert_eq!(lines[3], "    axisFormat %H:%M:%S", "{name}");
    let mut ids = std::collections::BTreeSet::new();
    let mut in_section = false;
    for line in &lines[4..] {
        if let Some(section) = line.strip_prefix("    section ") {
            assert!(
                !section.trim().is_empty() && !section.contains(':'),
                "{name}: {line}"
            );
            in_section = true;
            continue;
        }
        assert!(in_section, "{name}: task before any section: {line}");
        let task = line
            .strip_prefix("    ")
            .unwrap_or_else(|| panic!("{name}: {line}"));
        let (label, data) = task
            .split_once(" :")
            .unwrap_or_else(|| panic!("{name}: {line}"));
        assert!(!label.trim().is_empty(), "{name}: {line}");
        assert!(
            !label.contains([':', '#', ';', ',']),
            "{name}: label breaks the grammar: {line}"
        );
        let fields: Vec<&str> = data.split(", ").collect();
        assert_eq!(fields.len(), 4, "{name}: tag, id, start, end: {line}");
        assert!(
            ["done", "crit", "active"].contains(&fields[0]),
            "{name}: {line}"
        );
        assert!(
            ids.insert(fields[1].to_owned()),
            "{name}: duplicate id: {line}"
        );
        let parse = |s: &str| {
            jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s)
                .unwrap_or_else(|e| panic!("{name}: bad date {s:?}: {e}"))
        };
        assert!(
            parse(fields[2]) < parse(fields[3]),
            "{name}: empty bar: {line}"
        );
    }
}

#[test]
fn mermaid_gantt_is_well_formed() {
    for name in FIXTURES {
        check_gantt(name, &main_file(name, Format::Markdown));
    }
}

/// A run far bigger than any report should show in full.
fn huge_run() -> Vec<Record> {
    let (mut records, _) = load("passing");
    let finished = records.pop().expect("runFinished");
    let mut seq = records.len() as u64;
    let at = records.last().expect("records").at;
    let mut push = |records: &mut Vec<Record>, line: String| {
        seq += 1;
        let mut record: Record = serde_json::from_str(&line).expect("valid record");
        record.seq = seq;
        record.at = at;
        records.push(record);
    };
    for i in 0..3_000 {
        let step = format!("x{i}");
        push(
            &mut records,
            format!(
                r#"{{"seq":0,"at":"2027-01-15T08:00:00Z","event":"stepStarted","step":"{step}"}}"#
            ),
        );
        let targets: Vec<String> = (0..40)
            .map(|t| format!("\"shop/pod-{i}-{t}-{}\"", "y".repeat(40)))
            .collect();
        push(
            &mut records,
            format!(
                r#"{{"seq":0,"at":"2027-01-15T08:00:00Z","event":"targetsSelected","step":"{step}","targets":[{}]}}"#,
                targets.join(",")
            ),
        );
        push(
            &mut records,
            format!(
                r#"{{"seq":0,"at":"2027-01-15T08:00:00Z","event":"faultInjected","step":"{step}","target":"shop/pod-{i}","detail":"{}"}}"#,
                "d".repeat(500)
            ),
        );
        push(
            &mut records,
            format!(
                r#"{{"seq":0,"at":"2027-01-15T08:00:00Z","event":"hypothesisVerdict","step":"{step}","hypothesis":"h{i}","phase":"during","verdict":"passed","expectation":"< 1","message":"{}","samples":1,"passed":1}}"#,
                "m".repeat(400)
            ),
        );
        push(
            &mut records,
            format!(
                r#"{{"seq":0,"at":"2027-01-15T08:00:00Z","event":"note","level":"info","message":"{}"}}"#,
                "n".repeat(300)
            ),
        );
        push(
            &mut records,
            format!(
                r#"{{"seq":0,"at":"2027-01-15T08:00:00Z","event":"stepFinished","step":"{step}","status":"completed"}}"#
            ),
        );
    }
    records.push(finished);
    records
}

#[test]
fn markdown_stays_under_one_mebibyte_and_says_what_it_cut() {
    let records = huge_run();
    let files = markdown::render(&records, false);
    let report = &files[0].contents;
    assert!(report.len() < markdown::LIMIT, "{} bytes", report.len());
    assert!(report.contains("✂️ **Truncated:**"), "truncation is marked");
    assert!(
        report.contains("## Notes"),
        "the notes section always survives"
    );
    assert!(report.contains("For the facilitator"));
    let fences = report.lines().filter(|l| l.starts_with("```")).count();
    assert_eq!(fences % 2, 0, "every code fence is closed");
}

#[test]
fn junit_and_summary_agree_on_the_exit_code_and_score() {
    let summary: serde_json::Value =
        serde_json::from_str(&main_file("deviated", Format::Json)).expect("summary is JSON");
    assert_eq!(summary["exitCode"], 1);
    assert_eq!(summary["verdict"], "DEVIATED");
    assert_eq!(summary["resilienceScore"]["score"], 0.7857);
    assert_eq!(summary["resilienceScore"]["heldChecks"], 9);
    assert_eq!(summary["resilienceScore"]["totalChecks"], 11);
    let recoveries = summary["recoveryTimes"].as_array().expect("recovery times");
    assert!(
        recoveries
            .iter()
            .any(|r| r["what"] == "deployment/shop/checkout" && r["afterMs"] == 11200)
    );
    let junit = main_file("deviated", Format::Junit);
    assert!(junit.contains(r#"<property name="exit_code" value="1"/>"#));

    let truncated: serde_json::Value =
        serde_json::from_str(&main_file("truncated", Format::Json)).expect("summary is JSON");
    assert_eq!(truncated["partial"], true);
    assert_eq!(truncated["status"], "unfinished");
    assert_eq!(
        truncated["exitCode"], 4,
        "a drained node was never uncordoned"
    );
    assert_eq!(
        truncated["steps"][0]["notReverted"],
        serde_json::json!(["node/node-a-1", "node/node-a-2"])
    );
}

/// The rows of the Markdown targets table under `### title`: (target, selected, hit).
fn target_rows(md: &str) -> Vec<(String, String, String)> {
    let start = md
        .find("## Targets and reproduction")
        .expect("a targets section");
    md[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| target |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect();
            (cells[0].clone(), cells[1].clone(), cells[2].clone())
        })
        .collect()
}

/// Regression (issue 12): the node-drain targets table said `node-a-1` selected but not
/// hit and `node/node-a-1` hit but not selected, and `summary.json` disagreed the same
/// way. A drained node is one target, selected and hit, in both.
#[test]
fn a_drained_node_is_one_target_selected_and_hit_in_the_table_and_the_summary() {
    let rows = target_rows(&main_file("drained", Format::Markdown));
    assert_eq!(
        rows,
        [
            ("node/node-a-1", "yes", "✅ yes"),
            ("shop/checkout-7d9f8-abcde", "no", "✅ yes"),
            ("shop/catalog-5c6b-qrstu", "no", "✅ yes"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned())),
        "the node once; the evicted pods hit, not selected"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&main_file("drained", Format::Json)).expect("summary is JSON");
    let step = &summary["steps"][0];
    assert_eq!(
        step["targetsSelected"],
        serde_json::json!(["node/node-a-1"])
    );
    let hit = step["targetsHit"].as_array().expect("targets hit");
    assert_eq!(hit[0], "node/node-a-1", "{hit:?}");
    assert_eq!(step["notReverted"], serde_json::json!([]), "uncordoned");
    // The table and the summary name the same targets, selected and hit alike.
    for (target, selected, hit_cell) in &rows {
        let in_selected = step["targetsSelected"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t == target.as_str()));
        let in_hit = hit.iter().any(|t| t == target.as_str());
        assert_eq!(in_selected, selected == "yes", "{target}");
        assert_eq!(in_hit, hit_cell.contains("yes"), "{target}");
    }
}

/// Regression (issue 12): a Kubernetes probe was shown as Rust debug
/// (`KubeProbe { deployment: Some("checkout"), … }`) inside a `promql` block.
#[test]
fn kube_and_http_probes_are_shown_in_words_and_promql_as_code() {
    let md = main_file("drained", Format::Markdown);
    let junit = main_file("drained", Format::Junit);
    assert!(
        md.contains("Probe: deployment shop/checkout ready replicas\n"),
        "{md}"
    );
    assert!(
        md.contains("Probe: GET https://shop.example/health (status 200)\n"),
        "{md}"
    );
    assert!(!md.contains("```promql"), "no PromQL block for words: {md}");
    assert!(
        junit.contains("probe: deployment shop/checkout ready replicas"),
        "{junit}"
    );
    assert!(!junit.contains("query:"), "{junit}");
    for text in [&md, &junit] {
        assert!(!text.contains("KubeProbe") && !text.contains("Some("));
    }
    // PromQL is still code.
    let passing = main_file("passing", Format::Markdown);
    assert!(passing.contains("```promql\nkube_deployment_status_replicas_available"));
}

/// The gantt bar of one task, by its label.
fn gantt_tag<'a>(md: &'a str, label: &str) -> &'a str {
    let line = md
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{label} :")))
        .unwrap_or_else(|| panic!("no bar {label:?} in {md}"));
    line.split_once(" :")
        .and_then(|(_, data)| data.split(", ").next())
        .unwrap_or_default()
}

/// Regression (issue 12): the failing check's bar in the mermaid timeline looked like the
/// passing ones. `crit` (red) marks a failing bar, and only that.
#[test]
fn failing_bars_are_crit_in_the_timeline_and_passing_ones_are_not() {
    let md = main_file("drained", Format::Markdown);
    assert_eq!(
        gantt_tag(&md, "during checkout keeps 3 ready replicas"),
        "crit"
    );
    assert_eq!(gantt_tag(&md, "step failed"), "crit");
    assert_eq!(gantt_tag(&md, "during shop health answers"), "done");
    assert_eq!(
        gantt_tag(&md, "before checkout keeps 3 ready replicas"),
        "done"
    );
    assert_eq!(
        gantt_tag(&md, "after checkout keeps 3 ready replicas"),
        "done"
    );
    assert_eq!(gantt_tag(&md, "fault node-drain"), "active");
    let passing = main_file("passing", Format::Markdown);
    let block = &passing[passing.find("```mermaid").expect("a gantt")..];
    let block = &block[..block.find("\n```\n").expect("closed")];
    assert!(
        !block.contains(":crit"),
        "a passing run has no red bar: {block}"
    );
}

// ---- `shakedown report` ----

fn shakedown(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(args)
        .output()
        .expect("run shakedown")
}

#[test]
fn report_command_writes_all_formats_and_exits_0_whatever_the_verdict() {
    let dir = scratch("cli-all");
    let out_dir = dir.to_str().expect("utf-8 path");
    let journal = fixture_path("deviated");
    let out = shakedown(&[
        "report",
        journal.to_str().expect("path"),
        "--output-dir",
        out_dir,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "junit.xml",
        "report.md",
        "summary.json",
        "charts/step-1-checkout-error-ratio-below-1.svg",
    ] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEVIATED (exit 1)"), "{stderr}");
    let written = std::fs::read_to_string(dir.join("junit.xml")).expect("junit");
    assert_eq!(
        written,
        main_file("deviated", Format::Junit),
        "the CLI writes what the renderer returns"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_command_renders_only_the_formats_asked_for() {
    let dir = scratch("cli-format");
    let journal = fixture_path("passing");
    let out = shakedown(&[
        "report",
        journal.to_str().expect("path"),
        "--format",
        "junit",
        "--format=json",
        "--output-dir",
        dir.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(dir.join("junit.xml").is_file());
    assert!(dir.join("summary.json").is_file());
    assert!(!dir.join("report.md").exists());
    assert!(!dir.join("charts").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_command_renders_a_truncated_journal_and_marks_it_partial() {
    let dir = scratch("cli-trunc");
    let journal = fixture_path("truncated");
    let out = shakedown(&[
        "report",
        journal.to_str().expect("path"),
        "--output-dir",
        dir.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("marked partial"));
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(md.contains("**Partial report.**"));
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml");
    assert!(junit.contains(r#"<property name="partial" value="true"/>"#));
    assert!(junit.contains("PARTIAL REPORT"), "system-out says so too");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_command_mirrors_the_runs_exit_code_when_asked() {
    let dir = scratch("cli-mirror");
    let cases = [
        ("passing", 0),
        ("deviated", 1),
        ("aborted", 1),
        ("prometheus-error", 3),
        ("hostile", 4),
        ("truncated", 4),
        ("interrupted", 130),
    ];
    for (name, code) in cases {
        let journal = fixture_path(name);
        let out = shakedown(&[
            "-q",
            "report",
            journal.to_str().expect("path"),
            "--mirror-exit-code",
            "--format",
            "json",
            "--output-dir",
            dir.to_str().expect("path"),
        ]);
        assert_eq!(out.status.code(), Some(code), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_command_exits_2_for_a_missing_corrupt_or_empty_journal() {
    let dir = scratch("cli-bad");
    let corrupt = dir.join("corrupt.jsonl");
    std::fs::write(&corrupt, "not json\n{\"seq\":1}\n").expect("write");
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").expect("write");
    let missing = dir.join("missing.jsonl");
    for journal in [&corrupt, &empty, &missing] {
        let out = shakedown(&[
            "report",
            journal.to_str().expect("path"),
            "--output-dir",
            dir.to_str().expect("path"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", journal.display());
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    assert!(
        !dir.join("junit.xml").exists(),
        "nothing rendered from a bad journal"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_help_documents_the_exit_code() {
    let out = shakedown(&["report", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit code: 0 when the reports were written"),
        "{help}"
    );
    assert!(help.contains("--mirror-exit-code"), "{help}");
}

// ---- test identities from a real run ----

/// Regression (issue 12): with `repeat: 2` and a scenario used twice, several test cases
/// had the same `classname` + `name`, and GitLab kept only the first. Each is now
/// `experiment › step id` + `hypothesis [phase]` or `fault … [action]`, with `file` and
/// `line` at the YAML that declared it; checked by junitparser and by xmlschema against
/// junit-10.xsd, which rejects nothing but those two attributes. The same run's
/// `-o json` output is checked against the published summary schema.
#[tokio::test(flavor = "multi_thread")]
async fn junit_identities_are_unique_across_repeats_and_reused_scenarios_and_point_at_the_yaml() {
    let handle = shakedown_sandbox::start(common::fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let dir = scratch("identities");
    let kubeconfig = dir.join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    std::fs::create_dir_all(dir.join("scenarios")).expect("dir");
    let scenario = "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {name: pd}\nspec:\n  safety: {allowedNamespaces: [shop]}\n  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault:\n    type: pod-delete\n  hypotheses:\n    - name: two stay ready\n      kube: {deployment: checkout, namespace: shop}\n      expect: \">= 2\"\n      phases: [before, after]\n  recovery: {within: 20s}\n";
    std::fs::write(dir.join("scenarios/pd.yaml"), scenario).expect("scenario");
    let experiment = "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {name: gate, labels: {team: shop, tier: gold}}\nspec:\n  safety: {allowedNamespaces: [shop]}\n  steps:\n    - scenario: scenarios/pd.yaml\n      repeat: 2\n    - scenario: scenarios/pd.yaml\n";
    std::fs::write(dir.join("gate.yaml"), experiment).expect("experiment");
    let junit = dir.join("gate-junit.xml");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"));
    command
        .current_dir(&dir)
        .args(["--kubeconfig", "kubeconfig", "--output-dir", "out"])
        .args([
            "--yes",
            "--seed",
            "7",
            "run",
            "-o",
            "json",
            "gate.yaml",
            "--junit",
        ])
        .arg(&junit)
        .kill_on_drop(true);
    for marker in shakedown::run::ci::MARKERS {
        command.env_remove(marker);
    }
    let out = command.output().await.expect("run shakedown");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = r#"
import sys, collections
from junitparser import JUnitXml
seen = collections.Counter()
for suite in JUnitXml.fromfile(sys.argv[1]):
    for case in suite:
        seen[(case.classname, case.name)] += 1
        print("%s | %s | %s:%s" % (case.classname, case.name, case._elem.get("file"), case._elem.get("line")))
dupes = [k for k, n in seen.items() if n > 1]
assert not dupes, dupes
"#;
    // `run -o json`: one versioned RunResult whose run is a valid summary.json.
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(result["apiVersion"], "shakedown.dev/v1");
    assert_eq!(result["kind"], "RunResult");
    assert_eq!(result["exitCode"], 0);
    let summary = &result["runs"][0];
    assert_eq!(
        summary["labels"],
        serde_json::json!({"team": "shop", "tier": "gold"})
    );
    assert_eq!(
        summary_schema_errors(&serde_json::json!({ "run": summary })),
        ""
    );
    let on_disk: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/latest/summary.json")).expect("summary.json"),
    )
    .expect("json");
    assert_eq!(summary, &on_disk, "stdout carries the run's summary.json");
    let cases = run_python(&["junitparser"], script, &[&junit]);
    let expected = [
        "gate › 1#1 | two stay ready [before] | scenarios/pd.yaml:10",
        "gate › 1#1 | two stay ready [after] | scenarios/pd.yaml:10",
        "gate › 1#1 | fault pod-delete once [inject] | scenarios/pd.yaml:7",
        "gate › 1#1 | fault pod-delete once [revert] | scenarios/pd.yaml:7",
        "gate › 1#1 | recovery deployment/shop/checkout within 20s | scenarios/pd.yaml:7",
        "gate › 1#2 | two stay ready [before] | scenarios/pd.yaml:10",
        "gate › 1#2 | two stay ready [after] | scenarios/pd.yaml:10",
        "gate › 1#2 | fault pod-delete once [inject] | scenarios/pd.yaml:7",
        "gate › 1#2 | fault pod-delete once [revert] | scenarios/pd.yaml:7",
        "gate › 1#2 | recovery deployment/shop/checkout within 20s | scenarios/pd.yaml:7",
        "gate › 2 | two stay ready [before] | scenarios/pd.yaml:10",
        "gate › 2 | two stay ready [after] | scenarios/pd.yaml:10",
        "gate › 2 | fault pod-delete once [inject] | scenarios/pd.yaml:7",
        "gate › 2 | fault pod-delete once [revert] | scenarios/pd.yaml:7",
        "gate › 2 | recovery deployment/shop/checkout within 20s | scenarios/pd.yaml:7",
    ];
    assert_eq!(cases.lines().collect::<Vec<_>>(), expected, "{cases}");
    let xsd = format!(
        "{LOCATED}{}",
        r#"
import sys, xmlschema
schema = xmlschema.XMLSchema(sys.argv[1])
count = 0
for e in schema.iter_errors(sys.argv[2]):
    if located(e):
        count += 1
        continue
    print(e.reason, e.path)
    sys.exit(1)
print(count)
"#
    );
    let located = run_python(
        &["xmlschema"],
        &xsd,
        &[Path::new("tests/fixtures/junit/junit-10.xsd"), &junit],
    );
    assert!(
        located
            .trim()
            .parse::<usize>()
            .is_ok_and(|n| n >= expected.len()),
        "every case carries file and line: {located}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- summary.json and its published schema ----

/// Checks `instances` (`name → JSON`) against the schema `shakedown schema --summary`
/// prints, with Python's `jsonschema`; returns `name: errors` for each failing one.
fn summary_schema_errors(instances: &serde_json::Value) -> String {
    // Tests call this in parallel: each call has its own folder.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = scratch(&format!("summary-schema-{call}"));
    let schema = shakedown(&["schema", "--summary"]);
    assert_eq!(schema.status.code(), Some(0));
    std::fs::write(dir.join("schema.json"), &schema.stdout).expect("write schema");
    std::fs::write(dir.join("instances.json"), instances.to_string()).expect("write");
    let script = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema)
for name, inst in json.load(open(sys.argv[2])).items():
    errs = sorted(e.message for e in v.iter_errors(inst))
    if errs:
        print(name + ": " + " | ".join(errs))
"#;
    let out = run_python(
        &["jsonschema"],
        script,
        &[&dir.join("schema.json"), &dir.join("instances.json")],
    );
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Issue 12: summary.json is versioned and now has a published JSON Schema; every
/// fixture's summary validates against it, and a schema that rejects a wrong summary is
/// checked too, so the test cannot pass on a schema that accepts anything.
#[test]
fn every_summary_validates_against_the_published_summary_schema() {
    let mut instances = serde_json::Map::new();
    for name in FIXTURES {
        let (records, truncated) = load(name);
        instances.insert(
            name.to_owned(),
            shakedown::report::json::value(&records, truncated),
        );
    }
    let errors = summary_schema_errors(&instances.into());
    assert_eq!(errors, "", "summaries the schema rejects");
    let (records, truncated) = load("passing");
    let mut wrong = shakedown::report::json::value(&records, truncated);
    wrong["exitCode"] = "zero".into();
    wrong["resilienceScore"]["score"] = "high".into();
    let errors = summary_schema_errors(&serde_json::json!({ "wrong": wrong }));
    assert!(
        errors.contains("'zero' is not of type 'integer'") && errors.contains("'high'"),
        "{errors}"
    );
}

/// Regression (issue 12): a run that could not reach Prometheus still scored 23.1 %. A
/// run that could not run has no score (`null`); its thresholds are numbers with units.
#[test]
fn a_run_that_could_not_run_has_no_score_and_thresholds_are_numbers() {
    let (records, truncated) = load("prometheus-error");
    let summary = shakedown::report::json::value(&records, truncated);
    assert_eq!(summary["exitCode"], 3, "{summary}");
    assert!(summary["resilienceScore"]["score"].is_null(), "{summary}");
    assert_eq!(summary["apiVersion"], "shakedown.dev/v1");
    assert_eq!(summary["kind"], "Summary");
    assert_eq!(summary["labels"], serde_json::json!({}));
    let (records, truncated) = load("passing");
    let summary = shakedown::report::json::value(&records, truncated);
    let h = &summary["steps"][0]["hypotheses"][0];
    assert_eq!(h["expectation"], "< 0.01", "{h}");
    assert_eq!(
        h["threshold"],
        serde_json::json!({"operator": "<", "value": 0.01})
    );
    assert_eq!(
        h["tolerance"],
        serde_json::json!({"value": 100.0, "unit": "percent"})
    );
}
