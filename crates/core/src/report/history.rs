//! Game-day history: reading the runs already on disk (`OUTPUT_DIR/<run-id>/summary.json`)
//! and saying how they changed: the `history` table, the `compare` Markdown diff and the
//! regression gate's judgement.
//!
//! It reads only what `summary.json` publishes (its schema, `shakedown.dev/summary/v1`),
//! never a journal, so it works on a folder copied from CI artifacts. A summary it cannot
//! read (another schema version, damaged JSON, larger than [`SUMMARY_CAP`]) is named as
//! unreadable and skipped, never a crash. [`scan`] is the only function here that touches
//! the disk, and only to read; everything else is a pure function of parsed summaries.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{JSON_FILE, json, text};

/// A `summary.json` larger than this is unreadable, not loaded: one odd file in a copied
/// artifact folder must not make `history` hold gigabytes.
pub const SUMMARY_CAP: u64 = 8 * 1024 * 1024;

/// Every run folder holds its journal; a folder with neither it nor a summary is no run.
const JOURNAL_FILE: &str = "journal.jsonl";

/// The folder (or file) shakedown keeps pointing at the newest run.
const LATEST: &str = "latest";

/// What `history`, `compare` and the gate know of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// The run's folder under the output directory.
    pub folder: String,
    pub run_id: String,
    pub experiment: String,
    pub started_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub verdict: String,
    pub exit_code: u8,
    /// Between 0 and 1; `None` when the run could not judge anything.
    pub score: Option<f64>,
    /// Per owner (workload), the longest time it took to recover in this run.
    pub owners: BTreeMap<String, OwnerRecovery>,
    /// Per hypothesis (by name), its time to recover after the revert.
    pub hypotheses: BTreeMap<String, Option<u64>>,
    /// Every check's verdict, keyed `step id · hypothesis · phase`.
    pub checks: BTreeMap<String, String>,
    /// Per alert, keyed `step id · alert probe`: its time to detect and to resolve.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub alerts: BTreeMap<String, AlertTimes>,
}

/// One alert's times in one run (from summary.json's `alerts`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertTimes {
    pub detect_ms: Option<u64>,
    pub resolve_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRecovery {
    pub after_ms: u64,
    /// Its recovery-time objective, when the run had one.
    pub within_ms: Option<u64>,
}

/// One folder of the output directory: a run, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Run(Box<RunSummary>),
    Unreadable { folder: String, reason: String },
}

// The subset of summary.json this module reads; every field but the identity defaults,
// so a summary written before a field existed still reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryDoc {
    run_id: String,
    #[serde(default)]
    experiment: String,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    exit_code: u8,
    #[serde(default)]
    resilience_score: ScoreDoc,
    #[serde(default)]
    steps: Vec<StepDoc>,
    #[serde(default)]
    experiment_hypotheses: Vec<HypothesisDoc>,
    #[serde(default)]
    recovery_times: Vec<RecoveryDoc>,
    #[serde(default)]
    alerts: Vec<AlertDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlertDoc {
    #[serde(default)]
    step: Option<String>,
    alert: String,
    #[serde(flatten)]
    times: AlertTimes,
}

#[derive(Deserialize, Default)]
struct ScoreDoc {
    #[serde(default)]
    score: Option<f64>,
}

#[derive(Deserialize)]
struct StepDoc {
    id: String,
    #[serde(default)]
    hypotheses: Vec<HypothesisDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HypothesisDoc {
    name: String,
    #[serde(default)]
    recovery_ms: Option<u64>,
    #[serde(default)]
    checks: Vec<CheckDoc>,
}

#[derive(Deserialize)]
struct CheckDoc {
    phase: String,
    verdict: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryDoc {
    what: String,
    kind: String,
    after_ms: u64,
    #[serde(default)]
    within_ms: Option<u64>,
}

/// Reads one `summary.json`'s text. The error says why it is unreadable.
pub fn parse(folder: &str, text: &str) -> Result<RunSummary, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(json::SCHEMA) => {}
        Some(other) => {
            return Err(format!(
                "schema `{}` (this shakedown reads `{}`)",
                text::clean_line(other),
                json::SCHEMA
            ));
        }
        None => return Err(format!("no `schema` (not a `{}`)", json::SCHEMA)),
    }
    let doc: SummaryDoc = serde_json::from_value(value).map_err(|e| format!("{e}"))?;
    let mut owners = BTreeMap::new();
    for r in doc.recovery_times.iter().filter(|r| r.kind == "workload") {
        let entry = owners
            .entry(text::clean_line(&r.what))
            .or_insert(OwnerRecovery {
                after_ms: 0,
                within_ms: None,
            });
        entry.after_ms = entry.after_ms.max(r.after_ms);
        entry.within_ms = entry.within_ms.or(r.within_ms);
    }
    let mut hypotheses = BTreeMap::new();
    let mut checks = BTreeMap::new();
    let all = doc
        .steps
        .iter()
        .flat_map(|s| s.hypotheses.iter().map(move |h| (Some(s.id.as_str()), h)))
        .chain(doc.experiment_hypotheses.iter().map(|h| (None, h)));
    for (step, h) in all {
        let name = text::clean_line(&h.name);
        let slot = hypotheses.entry(name.clone()).or_insert(None);
        if let Some(ms) = h.recovery_ms {
            *slot = Some(slot.map_or(ms, |old: u64| old.max(ms)));
        }
        for c in &h.checks {
            let key = format!("{} · {name} · {}", step.unwrap_or("run"), c.phase);
            checks.insert(key, text::clean_line(&c.verdict));
        }
    }
    let alerts = doc
        .alerts
        .iter()
        .map(|a| {
            let step = a.step.as_deref().unwrap_or("run");
            (
                format!(
                    "{} · {}",
                    text::clean_line(step),
                    text::clean_line(&a.alert)
                ),
                a.times,
            )
        })
        .collect();
    Ok(RunSummary {
        alerts,
        folder: folder.to_owned(),
        run_id: text::clean_line(&doc.run_id),
        experiment: text::clean_line(&doc.experiment),
        started_at: doc.started_at.map(|s| text::clean_line(&s)),
        duration_ms: doc.duration_ms,
        verdict: text::clean_line(&doc.verdict),
        exit_code: doc.exit_code,
        score: doc.resilience_score.score,
        owners,
        hypotheses,
        checks,
    })
}

impl RunSummary {
    /// The start as a timestamp, when the summary has a readable one.
    pub fn started(&self) -> Option<Timestamp> {
        self.started_at.as_deref().and_then(|s| s.parse().ok())
    }
}

/// Reads one run folder's `summary.json`, refusing one over [`SUMMARY_CAP`].
pub fn read_folder(dir: &Path) -> Result<RunSummary, String> {
    let folder = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
    let path = dir.join(JSON_FILE);
    let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("no {JSON_FILE} (a run still going, or one cut short)")
        }
        _ => format!("cannot open {JSON_FILE}: {e}"),
    })?;
    let mut bytes = Vec::new();
    file.take(SUMMARY_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {JSON_FILE}: {e}"))?;
    if bytes.len() as u64 > SUMMARY_CAP {
        return Err(format!(
            "{JSON_FILE} is larger than {} MiB",
            SUMMARY_CAP / 1024 / 1024
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{JSON_FILE} is not UTF-8"))?;
    parse(&folder, &text)
}

/// Every run folder of `dir` (`latest` and hidden entries aside), newest first: by start
/// time, then by folder name (run ids begin with their UTC start). Unreadable ones come
/// last, by name. A missing or unreadable `dir` is an error.
pub fn scan(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut runs = Vec::new();
    let mut unreadable = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == LATEST || name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        // A folder with neither file is not a run (the demo keeps its specs and its
        // Prometheus beside its runs); one with only a journal is a run without summary.
        let path = entry.path();
        if !path.join(JSON_FILE).exists() && !path.join(JOURNAL_FILE).exists() {
            continue;
        }
        match read_folder(&entry.path()) {
            Ok(run) => runs.push(run),
            Err(reason) => unreadable.push(Entry::Unreadable {
                folder: text::clean_line(&name),
                reason,
            }),
        }
    }
    sort_newest_first(&mut runs);
    unreadable.sort_by(|a, b| match (a, b) {
        (Entry::Unreadable { folder: x, .. }, Entry::Unreadable { folder: y, .. }) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    });
    let mut out: Vec<Entry> = runs.into_iter().map(|r| Entry::Run(Box::new(r))).collect();
    out.extend(unreadable);
    Ok(out)
}

fn sort_newest_first(runs: &mut [RunSummary]) {
    runs.sort_by(|a, b| {
        b.started()
            .cmp(&a.started())
            .then_with(|| b.folder.cmp(&a.folder))
    });
}

/// The runs of `entries` that match the filters, newest first.
pub fn select<'a>(
    entries: &'a [Entry],
    experiment: Option<&str>,
    since: Option<Timestamp>,
) -> Vec<&'a RunSummary> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Run(r) => Some(r.as_ref()),
            Entry::Unreadable { .. } => None,
        })
        .filter(|r| experiment.is_none_or(|x| r.experiment == x))
        .filter(|r| since.is_none_or(|t| r.started().is_some_and(|s| s >= t)))
        .collect()
}

/// Which run `reference` names: `latest` (the newest readable run), `previous` (the one
/// before it), a folder holding a `summary.json`, or a run id under `output_dir`.
pub fn resolve(output_dir: &Path, reference: &str) -> Result<RunSummary, String> {
    let nth = match reference {
        "latest" => Some(0),
        "previous" => Some(1),
        _ => None,
    };
    if let Some(nth) = nth {
        let entries =
            scan(output_dir).map_err(|e| format!("cannot list {}: {e}", output_dir.display()))?;
        let runs = select(&entries, None, None);
        return runs.get(nth).map(|r| (*r).clone()).ok_or_else(|| {
            format!(
                "`{reference}`: {} holds {} readable run(s)",
                output_dir.display(),
                runs.len()
            )
        });
    }
    let direct = PathBuf::from(reference);
    let dir = if direct.join(JSON_FILE).is_file() {
        direct
    } else if direct.file_name().is_some_and(|n| n == JSON_FILE) && direct.is_file() {
        direct
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    } else {
        output_dir.join(reference)
    };
    if !dir.is_dir() {
        return Err(format!(
            "`{reference}` is neither `latest`, `previous`, a run folder nor a run id in {}",
            output_dir.display()
        ));
    }
    read_folder(&dir).map_err(|why| format!("{}: {why}", dir.display()))
}

/// The baseline `run --baseline` names for `experiment`: `latest`/`previous` are the
/// newest/second newest readable run *of that experiment* (`None` when there is none
/// yet: a gate's first run is not judged); a folder or run id must exist and read.
pub fn resolve_for(
    output_dir: &Path,
    reference: &str,
    experiment: &str,
) -> Result<Option<RunSummary>, String> {
    let nth = match reference {
        "latest" => 0,
        "previous" => 1,
        _ => return resolve(output_dir, reference).map(Some),
    };
    let entries = match scan(output_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot list {}: {e}", output_dir.display())),
    };
    Ok(select(&entries, Some(experiment), None)
        .get(nth)
        .map(|r| (*r).clone()))
}

/// The trend's runs: the newest `n` readable runs of `experiment` in `output_dir`, oldest
/// first (a missing folder has none).
pub fn earlier_runs(
    output_dir: &Path,
    experiment: &str,
    n: usize,
) -> Vec<crate::events::EarlierRun> {
    let Ok(entries) = scan(output_dir) else {
        return Vec::new();
    };
    let mut runs: Vec<crate::events::EarlierRun> = select(&entries, Some(experiment), None)
        .into_iter()
        .take(n)
        .map(|r| crate::events::EarlierRun {
            run_id: r.run_id.clone(),
            started_at: r.started_at.clone(),
            owners: r
                .owners
                .iter()
                .map(|(o, rec)| (o.clone(), rec.after_ms))
                .collect(),
        })
        .collect();
    runs.reverse();
    runs
}

/// A run to judge against, and how much worse this one may be (`run --baseline`).
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub run: RunSummary,
    pub limits: RegressionLimits,
    /// The limits as the user wrote them, for the reports.
    pub limits_text: String,
}

impl Baseline {
    /// Judges a run from its records so far (its summary, as `summary.json` would say
    /// it): the `BaselineCompared` event the executor journals before `RunFinished`.
    pub fn judge(&self, records: &[crate::events::Record]) -> crate::events::BaselineCompared {
        let regressions = parse("", &json::render(records, false))
            .map(|current| regressions(&self.run, &current, &self.limits))
            .unwrap_or_default();
        crate::events::BaselineCompared {
            baseline: self.run.run_id.clone(),
            baseline_started_at: self.run.started_at.clone(),
            limits: self.limits_text.clone(),
            regressions,
        }
    }
}

/// The widest line the `history` table prints.
pub const TABLE_WIDTH: usize = 100;

/// The `history` table: one line per run, newest first, no wider than [`TABLE_WIDTH`];
/// then one line per unreadable folder.
pub fn table(runs: &[&RunSummary], unreadable: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16}  {:<20}  {:<9}  {:>5}  {:>7}  RECOVERY (owners; alerts; hyp.)",
        "STARTED (UTC)", "EXPERIMENT", "VERDICT", "SCORE", "TOOK"
    );
    for r in runs {
        let started = r
            .started()
            .map_or_else(|| "?".into(), |t| t.strftime("%Y-%m-%d %H:%M").to_string());
        let score = r.score.map_or_else(|| "-".into(), percent);
        let took = r.duration_ms.map_or_else(|| "-".into(), text::duration);
        let line = format!(
            "{started:<16}  {:<20}  {:<9}  {score:>5}  {took:>7}  {}",
            fit(&r.experiment, 20),
            fit(&r.verdict, 9),
            recovery_cell(r)
        );
        let _ = writeln!(out, "{}", fit(&line, TABLE_WIDTH));
    }
    for (folder, reason) in unreadable {
        let line = format!("unreadable: {folder}: {reason}");
        let _ = writeln!(out, "{}", fit(&line, TABLE_WIDTH));
    }
    out
}

/// `checkout 1.5s, cart 2.0s; error ratio 3.1s`: owners by their short name.
fn recovery_cell(r: &RunSummary) -> String {
    let owners: Vec<String> = r
        .owners
        .iter()
        .map(|(owner, rec)| format!("{} {}", short_owner(owner), text::duration(rec.after_ms)))
        .collect();
    let hypotheses: Vec<String> = r
        .hypotheses
        .iter()
        .filter_map(|(name, ms)| ms.map(|ms| format!("{name} {}", text::duration(ms))))
        .collect();
    let mut cell = match (owners.is_empty(), hypotheses.is_empty()) {
        (true, true) => "-".into(),
        (false, true) => owners.join(", "),
        (true, false) => format!("; {}", hypotheses.join(", ")),
        (false, false) => format!("{}; {}", owners.join(", "), hypotheses.join(", ")),
    };
    // Alerts go before the hypotheses, whose long names the table's width cuts first.
    let alerts = alert_cell(r);
    if !alerts.is_empty() {
        let (owners, hypotheses) = cell.split_once("; ").unwrap_or((cell.as_str(), ""));
        let owners = if owners == "-" { "" } else { owners };
        cell = format!("{owners}; {alerts}; {hypotheses}");
        cell = cell.trim_end_matches("; ").to_owned();
    }
    cell
}

/// `CheckoutHighLatency detect 3.0s resolve 4.2s`: each alert by its name alone.
fn alert_cell(r: &RunSummary) -> String {
    let shown: Vec<String> = r
        .alerts
        .iter()
        .filter(|(_, t)| t.detect_ms.is_some() || t.resolve_ms.is_some())
        .map(|(key, t)| {
            let probe = key.split_once(" · ").map_or(key.as_str(), |(_, p)| p);
            let name = probe.trim_start_matches("alert ");
            let name = name.split('{').next().unwrap_or(name);
            let mut out = name.to_owned();
            if let Some(ms) = t.detect_ms {
                out.push_str(&format!(" detect {}", text::duration(ms)));
            }
            if let Some(ms) = t.resolve_ms {
                out.push_str(&format!(" resolve {}", text::duration(ms)));
            }
            out
        })
        .collect();
    shown.join(", ")
}

/// `deployment/shop/checkout` → `checkout`: the table has no room for the kind and
/// namespace (`-o json` and `compare` keep the whole name).
fn short_owner(owner: &str) -> &str {
    owner.rsplit('/').next().unwrap_or(owner)
}

/// `text` cut to `width` characters, with `…` when cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn percent(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}

/// The `compare` diff, Markdown for a post-mortem: the runs, the verdict and score, every
/// check whose verdict changed, recovery times side by side with their change, and the
/// hypotheses only one run has.
pub fn compare(a: &RunSummary, b: &RunSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## {} compared with {}\n",
        text::md_code(&b.run_id),
        text::md_code(&a.run_id)
    );
    let _ = writeln!(out, "| | before | after | change |");
    let _ = writeln!(out, "|---|---|---|---|");
    let _ = writeln!(
        out,
        "| run | {} | {} | |",
        text::md_code(&a.run_id),
        text::md_code(&b.run_id)
    );
    let _ = writeln!(
        out,
        "| experiment | {} | {} | |",
        text::md(&a.experiment),
        text::md(&b.experiment)
    );
    let _ = writeln!(
        out,
        "| started | {} | {} | |",
        a.started_at.as_deref().unwrap_or("?"),
        b.started_at.as_deref().unwrap_or("?")
    );
    let changed = if a.verdict == b.verdict {
        ""
    } else {
        "changed"
    };
    let _ = writeln!(
        out,
        "| verdict | {} | {} | {changed} |",
        text::md(&a.verdict),
        text::md(&b.verdict)
    );
    let score_change = match (a.score, b.score) {
        (Some(x), Some(y)) => format!("{:+.0} points", (y - x) * 100.0),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "| score | {} | {} | {score_change} |",
        a.score.map_or_else(|| "-".into(), percent),
        b.score.map_or_else(|| "-".into(), percent)
    );
    let _ = writeln!(
        out,
        "| took | {} | {} | |",
        a.duration_ms.map_or_else(|| "-".into(), text::duration),
        b.duration_ms.map_or_else(|| "-".into(), text::duration)
    );

    out.push_str("\n### Checks whose verdict changed\n\n");
    let keys: BTreeSet<&String> = a.checks.keys().chain(b.checks.keys()).collect();
    let flips: Vec<(&String, &str, &str)> = keys
        .into_iter()
        .filter_map(|k| {
            let x = a.checks.get(k).map_or("-", String::as_str);
            let y = b.checks.get(k).map_or("-", String::as_str);
            (x != y).then_some((k, x, y))
        })
        .collect();
    if flips.is_empty() {
        out.push_str("None: every check has the same verdict.\n");
    } else {
        out.push_str("| check (step · hypothesis · phase) | before | after |\n|---|---|---|\n");
        for (k, x, y) in flips {
            let _ = writeln!(out, "| {} | {x} | {y} |", text::md(k));
        }
    }

    out.push_str("\n### Recovery times\n\n");
    let rows = recovery_rows(a, b);
    if rows.is_empty() {
        out.push_str("Neither run measured a recovery.\n");
    } else {
        times_table(&mut out, rows);
    }
    let rows = alert_rows(a, b);
    if !rows.is_empty() {
        out.push_str("\n### Alert times\n\n");
        times_table(&mut out, rows);
    }

    let names_a: BTreeSet<&String> = a.hypotheses.keys().collect();
    let names_b: BTreeSet<&String> = b.hypotheses.keys().collect();
    for (title, names) in [
        ("New hypotheses", names_b.difference(&names_a)),
        ("Vanished hypotheses", names_a.difference(&names_b)),
    ] {
        let names: Vec<String> = names.map(|n| format!("- {}", text::md(n))).collect();
        if !names.is_empty() {
            let _ = writeln!(out, "\n### {title}\n\n{}", names.join("\n"));
        }
    }
    out
}

/// `| what | before | after | Δ | Δ% |`, one row per measured time.
fn times_table(out: &mut String, rows: Vec<(String, Option<u64>, Option<u64>)>) {
    out.push_str("| what | before | after | Δ | Δ% |\n|---|---|---|---|---|\n");
    for (what, x, y) in rows {
        let (delta, pct) = match (x, y) {
            (Some(x), Some(y)) => (delta_seconds(x, y), delta_percent(x, y)),
            _ => (String::new(), String::new()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {delta} | {pct} |",
            text::md(&what),
            x.map_or_else(|| "-".into(), text::duration),
            y.map_or_else(|| "-".into(), text::duration),
        );
    }
}

/// `(what, before, after)` of every alert's time to detect and to resolve either run
/// measured.
fn alert_rows(a: &RunSummary, b: &RunSummary) -> Vec<(String, Option<u64>, Option<u64>)> {
    let keys: BTreeSet<&String> = a.alerts.keys().chain(b.alerts.keys()).collect();
    let mut rows = Vec::new();
    for k in keys {
        let (x, y) = (a.alerts.get(k), b.alerts.get(k));
        for (what, pick) in [
            (
                "time to detect",
                (|t: &AlertTimes| t.detect_ms) as fn(&AlertTimes) -> Option<u64>,
            ),
            ("time to resolve", |t: &AlertTimes| t.resolve_ms),
        ] {
            let (x, y) = (x.and_then(pick), y.and_then(pick));
            if x.is_some() || y.is_some() {
                rows.push((format!("{what}: {k}"), x, y));
            }
        }
    }
    rows
}

/// `(what, before, after)` of every owner and hypothesis recovery either run measured.
fn recovery_rows(a: &RunSummary, b: &RunSummary) -> Vec<(String, Option<u64>, Option<u64>)> {
    let mut rows = Vec::new();
    let owners: BTreeSet<&String> = a.owners.keys().chain(b.owners.keys()).collect();
    for o in owners {
        rows.push((
            o.clone(),
            a.owners.get(o).map(|r| r.after_ms),
            b.owners.get(o).map(|r| r.after_ms),
        ));
    }
    let names: BTreeSet<&String> = a.hypotheses.keys().chain(b.hypotheses.keys()).collect();
    for n in names {
        let x = a.hypotheses.get(n).copied().flatten();
        let y = b.hypotheses.get(n).copied().flatten();
        if x.is_some() || y.is_some() {
            rows.push((format!("hypothesis: {n}"), x, y));
        }
    }
    rows
}

fn delta_seconds(before: u64, after: u64) -> String {
    format!("{:+.1}s", (after as f64 - before as f64) / 1000.0)
}

fn delta_percent(before: u64, after: u64) -> String {
    if before == 0 {
        return String::new();
    }
    format!(
        "{:+.0}%",
        (after as f64 - before as f64) / before as f64 * 100.0
    )
}

/// How much worse a run may be than its baseline before the gate fails it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RegressionLimits {
    /// A recovery time may grow by this share (0.2 for `20%`).
    pub recovery: Option<f64>,
    /// The score may drop by this many points (of 100).
    pub score: Option<f64>,
    /// A recovery that grew by less than this (ms) never fails, whatever the share:
    /// noise on tiny numbers must not fail a release.
    pub recovery_floor_ms: u64,
}

/// The floor when none is given.
pub const DEFAULT_RECOVERY_FLOOR_MS: u64 = 2_000;

/// `recovery=20%,score=5[,recoveryFloor=2s]`, as `--max-regression` takes it.
pub fn parse_limits(flag: &str) -> Result<RegressionLimits, String> {
    let mut limits = RegressionLimits {
        recovery_floor_ms: DEFAULT_RECOVERY_FLOOR_MS,
        ..RegressionLimits::default()
    };
    for part in flag.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not KEY=VALUE"))?;
        match key.trim() {
            "recovery" => {
                let share = value
                    .trim()
                    .strip_suffix('%')
                    .ok_or_else(|| format!("recovery `{value}` must be a share such as `20%`"))?;
                let share: f64 = share
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v: &f64| (0.0..=100.0).contains(v))
                    .ok_or_else(|| {
                        format!("recovery `{value}` is not a share between 0% and 100%")
                    })?;
                limits.recovery = Some(share / 100.0);
            }
            "score" => {
                let points: f64 = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite() && (0.0..=100.0).contains(v))
                    .ok_or_else(|| format!("score `{value}` is not points between 0 and 100"))?;
                limits.score = Some(points);
            }
            "recoveryFloor" => {
                let floor = crate::duration::parse_duration(value)
                    .map_err(|why| format!("recoveryFloor `{value}`: {why}"))?;
                limits.recovery_floor_ms = u64::try_from(floor.as_millis()).unwrap_or(u64::MAX);
            }
            other => {
                let hint = crate::spec::diagnostic::did_you_mean(
                    other,
                    ["recovery", "score", "recoveryFloor"],
                )
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
                return Err(format!(
                    "unknown key `{other}`{hint}: expected recovery, score or recoveryFloor"
                ));
            }
        }
    }
    Ok(limits)
}

pub use crate::events::Regression;

/// Every regression of `current` against `baseline` beyond `limits`. A recovery only the
/// current run measured, or a score either run lacks, is not judged: there is nothing to
/// compare it with.
pub fn regressions(
    baseline: &RunSummary,
    current: &RunSummary,
    limits: &RegressionLimits,
) -> Vec<Regression> {
    let mut found = Vec::new();
    if let Some(share) = limits.recovery {
        for (what, before, after) in recovery_rows(baseline, current) {
            let (Some(before), Some(after)) = (before, after) else {
                continue;
            };
            let allowed = before as f64 * (1.0 + share);
            let grew = after.saturating_sub(before);
            if after as f64 > allowed && grew >= limits.recovery_floor_ms {
                found.push(Regression {
                    what: format!("recovery {what}"),
                    baseline: text::duration(before),
                    current: text::duration(after),
                    allowed: format!(
                        "+{}% (at most {}; growth under {} is ignored)",
                        text::number((share * 100.0 * 100.0).round() / 100.0),
                        text::duration(allowed as u64),
                        text::duration(limits.recovery_floor_ms)
                    ),
                });
            }
        }
    }
    if let (Some(points), Some(before), Some(after)) = (limits.score, baseline.score, current.score)
    {
        let dropped = (before - after) * 100.0;
        if dropped > points + 1e-9 {
            found.push(Regression {
                what: "score".into(),
                baseline: percent(before),
                current: percent(after),
                allowed: format!("a drop of {} points", text::number(points)),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(run: &str, started: &str, checkout_ms: u64, score: f64) -> String {
        serde_json::json!({
            "apiVersion": "shakedown.dev/v1", "kind": "Summary", "schema": json::SCHEMA,
            "runId": run, "experiment": "checkout-resilience", "startedAt": started,
            "durationMs": 12_000, "verdict": "PASSED", "exitCode": 0,
            "resilienceScore": {"score": score},
            "steps": [{"id": "1", "hypotheses": [{"name": "error ratio", "recoveryMs": 900,
                "checks": [{"phase": "before", "verdict": "passed"},
                           {"phase": "after", "verdict": if score < 1.0 {"deviated"} else {"passed"}}]}]}],
            "experimentHypotheses": [],
            "recoveryTimes": [
                {"step": "1", "what": "deployment/shop/checkout", "kind": "workload", "afterMs": checkout_ms, "withinMs": 30_000},
                {"step": "1", "what": "error ratio", "kind": "hypothesis", "afterMs": 900}
            ]
        })
        .to_string()
    }

    fn run(id: &str, started: &str, checkout_ms: u64, score: f64) -> RunSummary {
        parse(id, &summary(id, started, checkout_ms, score)).expect("parses")
    }

    #[test]
    fn a_summary_gives_its_owner_and_hypothesis_recoveries_and_checks() {
        let r = run("r1", "2026-11-01T10:00:00Z", 1500, 1.0);
        assert_eq!(r.owners["deployment/shop/checkout"].after_ms, 1500);
        assert_eq!(r.owners["deployment/shop/checkout"].within_ms, Some(30_000));
        assert_eq!(r.hypotheses["error ratio"], Some(900));
        assert_eq!(r.checks["1 · error ratio · after"], "passed");
        assert_eq!(r.score, Some(1.0));
    }

    /// Issue 16 item 3: compare shows each alert's time to detect and to resolve.
    #[test]
    fn compare_shows_each_alerts_time_to_detect_and_resolve() {
        let with_alert = |id: &str, detect: u64, resolve: Option<u64>| {
            let mut doc: serde_json::Value =
                serde_json::from_str(&summary(id, "2026-11-01T10:00:00Z", 1500, 1.0)).unwrap();
            doc["alerts"] = serde_json::json!([{"step": "2",
                "alert": "alert CheckoutHighLatency{service=\"checkout\"}",
                "detectMs": detect, "resolveMs": resolve, "hypotheses": ["fires"]}]);
            parse(id, &doc.to_string()).expect("parses")
        };
        let (a, b) = (
            with_alert("r1", 3000, Some(4000)),
            with_alert("r2", 4500, None),
        );
        let key = "2 · alert CheckoutHighLatency{service=\"checkout\"}";
        assert_eq!(
            a.alerts[key],
            AlertTimes {
                detect_ms: Some(3000),
                resolve_ms: Some(4000)
            }
        );
        let md = compare(&a, &b);
        let section = md.split("### Alert times").nth(1).expect(&md);
        assert!(section.contains("| time to detect: 2 · alert CheckoutHighLatency{service=\"checkout\"} | 3.0s | 4.5s | +1.5s | +50% |"), "{md}");
        assert!(section.contains("| time to resolve: 2 · alert CheckoutHighLatency{service=\"checkout\"} | 4.0s | - |"), "{md}");
        // `history` shows them before the hypotheses (the table's width cuts the end).
        let listed = table(&[&a], &[]);
        assert!(
            listed
                .lines()
                .next()
                .is_some_and(|l| l.ends_with("RECOVERY (owners; alerts; hyp.)")),
            "{listed}"
        );
        assert_eq!(
            recovery_cell(&a),
            "checkout 1.5s; CheckoutHighLatency detect 3.0s resolve 4.0s; error ratio 900ms"
        );
        // A run without alerts says nothing about them.
        let plain = run("r3", "2026-11-01T10:00:00Z", 1500, 1.0);
        assert!(plain.alerts.is_empty());
        assert!(!compare(&plain, &plain).contains("Alert times"));
    }

    #[test]
    fn another_schema_or_damaged_json_is_unreadable_with_the_reason() {
        let old = r#"{"schema": "shakedown.dev/summary/v0", "runId": "x"}"#;
        let why = parse("x", old).expect_err("old schema");
        assert!(why.contains("shakedown.dev/summary/v0"), "{why}");
        let why = parse("x", "{\"schema\": \"shakedown.dev/summary/v1\", \"runId\"").unwrap_err();
        assert!(why.starts_with("not JSON"), "{why}");
        let why = parse("x", "{\"runId\": \"x\"}").unwrap_err();
        assert!(why.contains("no `schema`"), "{why}");
    }

    /// A summary over the cap is named unreadable without being loaded whole; a run
    /// folder without one is named too; `latest` and a folder that holds no run are not
    /// runs.
    #[test]
    fn scan_names_oversized_and_missing_summaries_and_skips_latest() {
        let dir =
            std::env::temp_dir().join(format!("shakedown-history-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for folder in ["big", "empty", "ok", "latest", "prometheus"] {
            std::fs::create_dir_all(dir.join(folder)).expect("mkdir");
        }
        std::fs::write(dir.join("empty").join(JOURNAL_FILE), "").expect("write");
        let ok = summary("ok", "2026-11-01T10:00:00Z", 1500, 1.0);
        std::fs::write(dir.join("ok").join(JSON_FILE), &ok).expect("write");
        std::fs::write(dir.join("latest").join(JSON_FILE), &ok).expect("write");
        let big = std::fs::File::create(dir.join("big").join(JSON_FILE)).expect("create");
        big.set_len(SUMMARY_CAP + 1).expect("grow");
        let entries = scan(&dir).expect("scan");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert!(
            matches!(&entries[0], Entry::Run(r) if r.run_id == "ok"),
            "{entries:?}"
        );
        assert_eq!(
            entries[1],
            Entry::Unreadable {
                folder: "big".into(),
                reason: format!("{JSON_FILE} is larger than 8 MiB"),
            }
        );
        assert!(
            matches!(&entries[2], Entry::Unreadable { folder, reason } if folder == "empty" && reason.starts_with("no summary.json")),
            "{entries:?}"
        );
    }

    #[test]
    fn the_table_lists_newest_first_and_fits_100_columns() {
        let mut runs = vec![
            run("a", "2026-11-01T10:00:00Z", 1500, 1.0),
            run("c", "2026-11-03T10:00:00Z", 3500, 1.0),
            run("b", "2026-11-02T10:00:00Z", 2500, 1.0),
        ];
        runs[1].experiment = "an-experiment-with-a-very-long-name-indeed".into();
        let checkout = runs[0].owners["deployment/shop/checkout"];
        for i in 0..12 {
            runs[1]
                .owners
                .insert(format!("deployment/shop/svc-{i}"), checkout);
        }
        sort_newest_first(&mut runs);
        let refs: Vec<&RunSummary> = runs.iter().collect();
        let table = table(&refs, &[("broken", "not JSON: EOF")]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("2026-11-03 10:00"), "{table}");
        assert!(lines[2].contains("checkout 2.5s"), "{table}");
        assert!(
            lines[3].contains("checkout 1.5s; error ratio 900ms"),
            "{table}"
        );
        assert_eq!(lines[4], "unreadable: broken: not JSON: EOF");
        for line in lines {
            assert!(line.chars().count() <= TABLE_WIDTH, "{line}");
        }
    }

    #[test]
    fn compare_shows_the_change_in_seconds_and_percent_and_flipped_checks() {
        let a = run("a", "2026-11-01T10:00:00Z", 2000, 1.0);
        let mut b = run("b", "2026-11-02T10:00:00Z", 3000, 0.5);
        b.hypotheses.insert("p95 latency".into(), None);
        let md = compare(&a, &b);
        assert!(
            md.contains("| deployment/shop/checkout | 2.0s | 3.0s | +1.0s | +50% |"),
            "{md}"
        );
        assert!(
            md.contains("| 1 · error ratio · after | passed | deviated |"),
            "{md}"
        );
        assert!(md.contains("| score | 100% | 50% | -50 points |"), "{md}");
        assert!(md.contains("### New hypotheses\n\n- p95 latency"), "{md}");
        assert!(!md.contains("Vanished"), "{md}");
    }

    #[test]
    fn a_recovery_regression_needs_both_the_share_and_the_floor() {
        let limits = parse_limits("recovery=20%,score=5").expect("limits");
        assert_eq!(limits.recovery_floor_ms, DEFAULT_RECOVERY_FLOOR_MS);
        let base = run("a", "2026-11-01T10:00:00Z", 1000, 1.0);
        // +100% but only +1 s: under the floor.
        let noisy = run("b", "2026-11-02T10:00:00Z", 2000, 1.0);
        assert_eq!(regressions(&base, &noisy, &limits), vec![]);
        // +300% and +3 s.
        let slow = run("c", "2026-11-02T10:00:00Z", 4000, 1.0);
        let found = regressions(&base, &slow, &limits);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].what, "recovery deployment/shop/checkout");
        assert_eq!(
            (found[0].baseline.as_str(), found[0].current.as_str()),
            ("1.0s", "4.0s")
        );
        // Within the share.
        let base = run("a", "2026-11-01T10:00:00Z", 20_000, 1.0);
        let within = run("d", "2026-11-02T10:00:00Z", 23_000, 1.0);
        assert_eq!(regressions(&base, &within, &limits), vec![]);
    }

    #[test]
    fn a_score_drop_beyond_the_allowed_points_is_a_regression() {
        let limits = parse_limits("score=5").expect("limits");
        let base = run("a", "2026-11-01T10:00:00Z", 1000, 1.0);
        assert_eq!(
            regressions(
                &base,
                &run("b", "2026-11-02T10:00:00Z", 9000, 0.96),
                &limits
            ),
            vec![]
        );
        let found = regressions(&base, &run("c", "2026-11-02T10:00:00Z", 1000, 0.8), &limits);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].what, "score");
    }

    #[test]
    fn a_misspelt_limit_says_what_was_meant() {
        let why = parse_limits("recovry=20%").unwrap_err();
        assert!(why.contains("did you mean `recovery`"), "{why}");
        assert!(parse_limits("recovery=20").is_err());
        let floor = parse_limits("recovery=10%,recoveryFloor=500ms").expect("floor");
        assert_eq!(floor.recovery_floor_ms, 500);
    }
}
