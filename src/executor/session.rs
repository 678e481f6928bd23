//! A `shakedown run` session, callable without the CLI: connect once, plan and preflight
//! every file before anything is touched, run them one after another, and write every
//! report on every exit path.
//!
//! Every run keeps its own folder, `OUTPUT_DIR/<run-id>/` (journal, JUnit, Markdown,
//! summary, charts), whether the session runs one file or many, and `OUTPUT_DIR/latest`
//! points at the newest one. A second run into the same directory never overwrites the
//! first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::events::Record;
use crate::exit::{CouldNotRun, Failure, InvalidInput, Outcome};
use crate::journal::JournalWriter;
use crate::plan::{DryRun, Plan, PlanSettings};
use crate::probes::prometheus::{PrometheusEndpoint, PrometheusSettings, Secret};
use crate::run::stop::{Stop, unless_signalled};
use crate::{cluster, executor, plan as planner, report as reports, spec};

/// Every choice a session needs, settled once from the flags (or by the demo).
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// `-n`: the namespace for pod targets that name none.
    pub namespace: Option<String>,
    pub prometheus_url: Option<String>,
    pub prometheus_token: Option<Secret>,
    pub prometheus_token_file: Option<PathBuf>,
    pub output_dir: PathBuf,
    pub seed: Option<u64>,
    pub dry_run: DryRun,
    /// `--yes`: act on a context without asking.
    pub yes: bool,
    pub quiet: bool,
    pub verbose: bool,
    /// `--color`: `Some` when forced on or off, `None` for auto (`run::console`).
    pub color: Option<bool>,
    pub revert_timeout: Duration,
    /// `--junit PATH`: also write the combined JUnit file there.
    pub junit: Option<PathBuf>,
    /// `--lock-namespace` and `--wait-for-lock`: where run locks live, how long to wait.
    pub lock: cluster::lease::LockSettings,
    /// `-o json|yaml`: print a `RunResult` on stdout when the runs end.
    pub output: Option<crate::output::Format>,
    /// `--connect-timeout`: how long the API server may take to answer at all.
    pub connect_timeout: Duration,
    /// `--halt-namespace`: where the kill switch's marker is (`cluster::halt`).
    pub halt_namespace: String,
    /// `run --baseline`: per experiment name, the run it is judged against.
    pub baselines: std::collections::BTreeMap<String, crate::report::history::Baseline>,
    /// How many earlier runs of an experiment the report's recovery trend shows (0: none).
    pub trend_runs: usize,
    /// `run --upload URL`: where each run's folder is PUT once its reports are written
    /// (over an experiment's `upload.url`; `executor::upload`).
    pub upload: Option<String>,
    /// `run --notify URL`: CloudEvents webhooks besides the experiment's `notify:`.
    pub notify: Vec<String>,
    /// `run --pushgateway URL`: overrides the URL of the experiment's `pushgateway:`.
    pub pushgateway: Option<String>,
}

/// Runs every file and returns the worst outcome (the runs report their own verdicts);
/// `Err` when the session could not start them, which the caller prints. A report that
/// could not be written (the output directory, `--junit PATH`) makes the session exit 3,
/// whatever the run's verdict: a gate without its evidence did not pass.
///
/// Terminating signals are watched from the session's first moment to its last report:
/// one that arrives while connecting, during preflight (nothing touched yet) or while
/// the reports are written ends the session in order, with its reports and exit 128+n,
/// instead of killing it.
pub async fn run_files(
    loaded: &[spec::Loaded],
    global: &SessionOptions,
) -> Result<Outcome, Failure> {
    prometheus_configured(loaded, global)?;
    let deliveries =
        super::deliveries::settle(loaded, &global.notify, global.pushgateway.as_deref())?;
    if global.dry_run != DryRun::Client {
        // Found out before anything is touched, not after the fault.
        reports_writable(global).map_err(|e| CouldNotRun::WriteReport(Box::new(e)))?;
    }
    // Set up before anything is touched: a target that cannot even be configured is
    // found now, not after the faults.
    let uploads = upload_targets(loaded, global)?;
    let (stop, _) = watch::channel(Stop::Running);
    let signals = executor::signals::install(stop.clone());
    let result = session(loaded, global, &stop, &uploads, &deliveries).await;
    signals.abort();
    match (result, signal_of(&stop)) {
        // After the last run ended some other way, e.g. while its reports were
        // written: they are complete, and the exit code says what happened.
        (Ok(outcome), Some(signal)) => Ok(outcome.worse(Outcome::Interrupted(signal))),
        (result, _) => result,
    }
}

async fn session(
    loaded: &[spec::Loaded],
    global: &SessionOptions,
    stop: &watch::Sender<Stop>,
    uploads: &[Option<Arc<PrometheusEndpoint>>],
    deliveries: &[super::deliveries::Deliveries],
) -> Result<Outcome, Failure> {
    let conn = cluster::connect_with(
        global.kubeconfig.as_deref(),
        global.context.as_deref(),
        global.connect_timeout,
    )
    .await
    .map_err(|e| CouldNotRun::Connect(Box::new(e)))?;
    crate::say!(
        "shakedown: context `{}`, API server {}",
        conn.context,
        conn.server
    );
    // Every environment choice is settled here, once, into the plans.
    let settings = PlanSettings {
        seed: global.seed.unwrap_or_else(planner::fresh_seed),
        default_namespace: Some(conn.namespace_for(global.namespace.as_deref())),
    };
    let mut plans: Vec<Plan> = loaded
        .iter()
        .map(|file| planner::plan(file, &settings))
        .collect();
    if global.dry_run != DryRun::Client {
        context_allowed(&plans, &conn.context, global.yes)
            .map_err(|why| InvalidInput::Flag(Box::new(why)))?;
    }
    let seed = settings.seed;
    crate::say!("shakedown: seed {seed} (replay with --seed {seed})");
    // Each file's run id is fixed now, so every request of its run, the preflight's
    // included, names it in its User-Agent.
    let runs: Vec<(String, cluster::Connection)> = loaded
        .iter()
        .map(|_| {
            let id = fresh_run_id(&global.output_dir);
            conn.for_run(&id).map(|c| (id, c))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| CouldNotRun::Connect(Box::new(e)))?;
    let mut problems = Vec::new();
    let mut unreadable = None;
    let mut interrupted = None;
    let mut watching = stop.subscribe();
    // Asked with the first run's connection, so even this request names its run.
    let first_conn = runs.first().map_or(&conn, |(_, c)| c);
    let unreachable = cluster::ensure_reachable(first_conn, global.connect_timeout)
        .await
        .err();
    let mut refused = None;
    for (plan, (_, conn)) in plans
        .iter_mut()
        .zip(&runs)
        .filter(|_| unreachable.is_none())
    {
        // Through the run's own connection: every request names its run.
        refused = kill_switch(conn, &global.halt_namespace).await;
        if refused.is_some() {
            break;
        }
        let (namespaces, with_nodes) = plan.inventory_needs();
        // Reading the cluster and asking about RBAC can take a while on a slow API
        // server; a signal meanwhile ends the session before anything is touched.
        let checked = unless_signalled(&mut watching, async {
            let inventory =
                cluster::inventory(conn, &namespaces, with_nodes, Duration::from_secs(30)).await?;
            plan.pick_targets(&inventory);
            // A dry run takes no lock, and neither does a plan with no fault (pauses only).
            let locks = global.dry_run == DryRun::None && !plan.fault_steps().is_empty();
            let run_wide = executor::RunWide {
                lock_namespace: locks.then_some(global.lock.namespace.as_str()),
                halt_namespace: &global.halt_namespace,
            };
            let mut found = executor::preflight(conn, plan, &run_wide).await;
            found.extend(executor::prometheus_preflight(plan, &prometheus_settings(global)).await);
            found.extend(executor::alertmanager_preflight(plan).await);
            Ok::<_, cluster::ClusterError>(found)
        })
        .await;
        match checked {
            Some(Ok(found)) => problems.extend(found),
            Some(Err(e)) => {
                unreadable = Some(e);
                break;
            }
            None => {
                interrupted = signal_of(stop);
                break;
            }
        }
    }
    let stopped: Option<Failure> =
        refused.or_else(|| match (interrupted, unreachable, unreadable) {
            (Some(signal), _, _) => Some(Failure::interrupted(signal)),
            (None, Some(e), _) => Some(CouldNotRun::Connect(Box::new(e)).into()),
            (None, None, Some(e)) => Some(CouldNotRun::ReadCluster(Box::new(e)).into()),
            (None, None, None) if !problems.is_empty() => {
                Some(CouldNotRun::Preflight { problems }.into())
            }
            (None, None, None) => None,
        });
    if let Some(failure) = stopped {
        // A client dry run writes nothing; every other run leaves its evidence, so a CI
        // reporter shows the cause instead of "no tests".
        if global.dry_run != DryRun::Client {
            let mut unwritten = Vec::new();
            let mut records: Vec<Vec<Record>> = Vec::new();
            for ((plan, run), upload) in plans.iter().zip(&runs).zip(uploads) {
                let (written, failed) = report_not_run(plan, run, global, &failure);
                unwritten.extend(failed);
                records.push(written);
                // A refused run's evidence leaves the pod too: it says why nothing ran.
                if let Some(target) = upload {
                    upload_run(target, &run_dir(&global.output_dir, &run.0), &run.0, global).await;
                }
            }
            unwritten.extend(write_combined_junit(global, &records));
            say_unwritten(&unwritten);
            print_result(global, &records, failure.outcome(), &[]);
        }
        return Err(failure);
    }
    if global.dry_run == DryRun::Client {
        if global.output.is_some() {
            print_result(global, &[], Outcome::DryRun, &plans);
        }
        for plan in plans.iter().filter(|_| global.output.is_none()) {
            crate::out_raw!("{plan}");
        }
        crate::say!("shakedown: --dry-run=client: planned and checked; nothing was touched");
        return Ok(Outcome::DryRun);
    }
    // `worse` ranks DRY RUN with PASSED, so a dry run's session starts from its own.
    let mut overall = if global.dry_run == DryRun::Server {
        Outcome::DryRun
    } else {
        Outcome::Passed
    };
    let mut finished = Vec::new();
    let mut unwritten = Vec::new();
    // The console's `p` holds across the session's files, like its keys.
    let pause = crate::run::stop::PauseGate::default();
    for ((((file, plan), (run_id, conn)), upload), deliveries) in loaded
        .iter()
        .zip(&plans)
        .zip(runs)
        .zip(uploads)
        .zip(deliveries)
    {
        // The channel is the session's: an earlier run's abort must not stop this one
        // (a signal does: this run then skips its steps and writes its reports).
        stop.send_if_modified(|s| {
            let aborted = matches!(s, Stop::Aborted(_) | Stop::SkipStep);
            if aborted {
                *s = Stop::Running;
            }
            aborted
        });
        let dir = run_dir(&global.output_dir, &run_id);
        let journal = fresh_journal(&dir).map_err(|e| CouldNotRun::Journal(Box::new(e)))?;
        let journal_path = journal.path().to_path_buf();
        point_latest_at(&global.output_dir, &run_id);
        let bus = crate::run::bus::EventBus::new(
            Some(journal),
            crate::run::bus::Progress::console(
                global.quiet,
                crate::run::console::ConsoleOptions {
                    verbose: global.verbose,
                    color: global.color,
                    stop: Some(stop.clone()),
                    pause: Some(pause.clone()),
                },
            ),
            crate::run::bus::system_clock(),
        );
        let mut options = run_options(global, run_id.clone());
        options.pause = pause.clone();
        options.baseline = global.baselines.get(file.name()).cloned();
        options.earlier_runs =
            reports::history::earlier_runs(&global.output_dir, file.name(), global.trend_runs);
        let outbound = deliveries.start(&bus, file.name(), &dir.display().to_string());
        let mut outcome =
            executor::run_with_stop(plan, conn, bus.clone(), options, stop.clone()).await;
        // At most `run::outbound::DRAIN` (2 s), before the reports: missed deliveries are in them.
        outbound.finish(&bus).await;
        let failed = write_reports(&dir, &bus.records(), global.quiet);
        if !failed.is_empty() {
            outcome = amend_finish(&bus, outcome, &failed);
        }
        unwritten.extend(failed);
        finished.push(bus.records());
        // After every revert and every report: nothing here can change the cluster, the
        // reports, or the outcome.
        if let Some(target) = upload {
            upload_run(target, &dir, &run_id, global).await;
        }
        if global.quiet
            && let Some(message) =
                finished
                    .last()
                    .into_iter()
                    .flatten()
                    .rev()
                    .find_map(|r: &Record| match &r.event {
                        crate::events::RunEvent::RunFinished(f) => f.message.clone(),
                        _ => None,
                    })
        {
            // Even quiet runs say how they ended: exit 4 must name what is left faulted.
            crate::say!("shakedown: {message}");
        }
        if let Some(e) = bus.journal_error() {
            crate::say!("shakedown: warning: the journal could not be written completely: {e}");
        }
        crate::say!(
            "shakedown: `{}` finished: {} (exit {}, journal {})",
            file.name(),
            outcome.label(false),
            outcome.code(),
            journal_path.display()
        );
        overall = overall.worse(outcome);
        if matches!(
            outcome,
            Outcome::Interrupted(_) | Outcome::Halted | Outcome::RevertFailed
        ) {
            break;
        }
    }
    unwritten.extend(write_combined_junit(global, &finished));
    if !unwritten.is_empty() {
        say_unwritten(&unwritten);
        overall = overall.worse(Outcome::CouldNotRun);
    }
    print_result(global, &finished, overall, &[]);
    Ok(overall)
}

/// A report that could not be written makes the run exit 3; its journal says so too: a
/// second `runFinished` with the exit the process has supersedes the first (readers,
/// `shakedown report` among them, take the last), so the journal never says 0 while the
/// process says 3. Returns the amended outcome.
fn amend_finish(
    bus: &crate::run::bus::EventBus,
    outcome: Outcome,
    unwritten: &[String],
) -> Outcome {
    let amended = outcome.worse(Outcome::CouldNotRun);
    let last = bus.records().into_iter().rev().find_map(|r| match r.event {
        crate::events::RunEvent::RunFinished(f) => Some(f),
        _ => None,
    });
    let Some(mut finish) = last.filter(|_| amended != outcome) else {
        return amended;
    };
    let said = finish.message.take().unwrap_or_default();
    finish.message = Some(format!(
        "{said}; then {} report(s) could not be written, so the run cannot pass: {}",
        unwritten.len(),
        unwritten.join("; ")
    ));
    finish.exit_code = amended.code();
    finish.outcome = Some(amended);
    bus.emit(crate::events::RunEvent::RunFinished(finish));
    amended
}

/// Each file's upload target (`executor::upload`), in the files' order. One that cannot
/// be set up is invalid input (exit 2), found before anything is touched.
fn upload_targets(
    loaded: &[spec::Loaded],
    global: &SessionOptions,
) -> Result<Vec<Option<Arc<PrometheusEndpoint>>>, Failure> {
    if global.dry_run == DryRun::Client {
        // A client dry run writes no report, so there is nothing to send.
        return Ok(vec![None; loaded.len()]);
    }
    loaded
        .iter()
        .map(|file| {
            executor::upload::target(global.upload.as_deref(), file)
                .transpose()
                .map_err(|e| {
                    let why = format!(
                        "{}: upload: {}",
                        file.path.display(),
                        shakedown_vocab::error_chain(&e)
                    );
                    InvalidInput::Flag(why.into()).into()
                })
        })
        .collect()
}

/// Sends a run's folder and says how it went: a failure is a warning with every file
/// that did not arrive, and never changes the exit code (the folder is still on disk).
async fn upload_run(
    target: &PrometheusEndpoint,
    dir: &Path,
    run_id: &str,
    global: &SessionOptions,
) {
    let shipped = executor::upload::ship(target, dir, run_id).await;
    let to = format!("{}/{run_id}/", target.display_url());
    if shipped.failed.is_empty() {
        if !global.quiet {
            crate::say!("shakedown: uploaded {} file(s) to {to}", shipped.uploaded);
        }
        return;
    }
    crate::say!(
        "shakedown: warning: the upload to {to} is incomplete ({} file(s) sent; the exit code is unchanged and the reports are in {}): {}",
        shipped.uploaded,
        dir.display(),
        shipped.failed.join("; ")
    );
}

/// Says which reports are missing, once, after the run's own lines.
fn say_unwritten(unwritten: &[String]) {
    if unwritten.is_empty() {
        return;
    }
    crate::say!(
        "shakedown: {} report(s) could not be written, so the run cannot pass (exit 3): {}",
        unwritten.len(),
        unwritten.join("; ")
    );
}

/// Whether the output directory and `--junit PATH` can be written, tried by writing (a
/// permission bit or a read-only mount only shows then). A file that did not exist is
/// removed again; an existing `--junit` file is opened for append, so it is not changed.
fn reports_writable(global: &SessionOptions) -> Result<(), reports::WriteError> {
    let dir = &global.output_dir;
    let wrap = |path: &Path| {
        let path = path.to_path_buf();
        move |source| reports::WriteError { path, source }
    };
    std::fs::create_dir_all(dir).map_err(wrap(dir))?;
    let probe = dir.join(format!(".shakedown-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(wrap(dir))?;
    let _ = std::fs::remove_file(&probe);
    if let Some(junit) = global.junit.as_deref() {
        let existed = junit.exists();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(junit)
            .map_err(wrap(junit))?;
        if !existed {
            let _ = std::fs::remove_file(junit);
        }
    }
    Ok(())
}

/// The Prometheus flags, as every plan's endpoint starts from them.
fn prometheus_settings(global: &SessionOptions) -> PrometheusSettings {
    PrometheusSettings {
        url: global.prometheus_url.clone(),
        token: global.prometheus_token.clone(),
        token_file: global.prometheus_token_file.clone(),
        spec: None,
    }
}

/// A PromQL hypothesis with no Prometheus anywhere (no `spec.prometheus.url` in the
/// file or what it includes, no `--prometheus-url`) is invalid input: refused before
/// the cluster is even contacted, by the check `validate` and `plan` make too.
fn prometheus_configured(loaded: &[spec::Loaded], global: &SessionOptions) -> Result<(), Failure> {
    let invalid: Vec<spec::Diagnostics> = loaded
        .iter()
        .map(|file| planner::unconfigured_prometheus(file, global.prometheus_url.is_some()))
        .filter(|found| !found.is_empty())
        .collect();
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(InvalidInput::Specs(invalid).into())
    }
}

/// The kill switch, checked before anything is touched: a halted cluster refuses the
/// run (exit 3, saying who halted, when and why), and so does a marker that cannot be
/// read, since a run that cannot see it could not be halted.
async fn kill_switch(conn: &cluster::Connection, namespace: &str) -> Option<Failure> {
    match cluster::halt::read(&conn.client, namespace).await {
        Ok(None) => None,
        Ok(Some(notice)) => Some(CouldNotRun::ClusterHalted(notice).into()),
        Err(e) => Some(CouldNotRun::ReadCluster(Box::new(e)).into()),
    }
}

/// `-o json|yaml`: a `RunResult` on stdout, the summary.json of every run in order (and,
/// for `--dry-run=client`, which runs nothing, the plans).
fn print_result(global: &SessionOptions, runs: &[Vec<Record>], outcome: Outcome, plans: &[Plan]) {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct RunResult<'a> {
        exit_code: u8,
        runs: Vec<serde_json::Value>,
        #[serde(skip_serializing_if = "<[Plan]>::is_empty")]
        plans: &'a [Plan],
    }
    let Some(format) = global.output else {
        return;
    };
    let result = RunResult {
        exit_code: outcome.code(),
        runs: runs
            .iter()
            .map(|records| reports::json::value(records, false))
            .collect(),
        plans,
    };
    crate::out_raw!("{}", crate::output::render(format, "RunResult", &result));
}

/// One release gate, one JUnit file: every experiment's suites together, at
/// `--junit PATH` when asked (each run's own `junit.xml` is in its folder). Returns
/// what could not be written.
fn write_combined_junit(global: &SessionOptions, runs: &[Vec<Record>]) -> Vec<String> {
    let Some(path) = global.junit.as_deref().filter(|_| !runs.is_empty()) else {
        return Vec::new();
    };
    let all: Vec<(&[Record], bool)> = runs.iter().map(|r| (r.as_slice(), false)).collect();
    match std::fs::write(path, reports::junit::render_many(&all)) {
        Ok(()) => Vec::new(),
        Err(e) => vec![format!("--junit {}: {e}", path.display())],
    }
}

/// The name, inside the output directory, that points at the newest run's folder.
pub const LATEST: &str = "latest";

/// Where one run's journal and reports go: its own folder, named after its run id.
fn run_dir(output_dir: &Path, run_id: &str) -> PathBuf {
    output_dir.join(run_id)
}

/// A new run id whose folder does not exist yet: a run id names the run's folder, and
/// a run never writes into another's.
fn fresh_run_id(output_dir: &Path) -> String {
    std::iter::repeat_with(new_run_id)
        .take(100)
        .find(|id| !run_dir(output_dir, id).exists())
        .unwrap_or_else(new_run_id)
}

/// Points `OUTPUT_DIR/latest` at the run's folder, relatively (so the tree can be moved or
/// archived as a CI artifact). The link is made under a temporary name and renamed over
/// the old one, so a reader never finds `latest` missing or half-written. Where symlinks
/// are not available, `latest` is a file holding the run id. Best effort: the run's own
/// folder is what matters, so a failure is said, not fatal.
fn point_latest_at(output_dir: &Path, run_id: &str) {
    let latest = output_dir.join(LATEST);
    let tmp = output_dir.join(format!(".{LATEST}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink(run_id, &tmp);
    #[cfg(not(unix))]
    let made = std::fs::write(&tmp, format!("{run_id}\n"));
    if let Err(e) = made.and_then(|()| std::fs::rename(&tmp, &latest)) {
        let _ = std::fs::remove_file(&tmp);
        crate::say!(
            "shakedown: warning: cannot point {} at {run_id}: {e}",
            latest.display()
        );
    }
}

/// The newest run's folder in `output_dir`, through `latest` (a symlink, or a file holding
/// the run id where symlinks are not available).
pub fn latest_run_dir(output_dir: &Path) -> Option<PathBuf> {
    let latest = output_dir.join(LATEST);
    if latest.is_dir() {
        return Some(latest);
    }
    let run_id = std::fs::read_to_string(&latest).ok()?;
    let dir = run_dir(output_dir, run_id.trim());
    dir.is_dir().then_some(dir)
}

/// The journal and reports of a run that never started: every step skipped with the
/// reason that stopped it, and the run's verdict. Best effort: the failure is what the
/// caller reports; a report that cannot be written is said, not fatal.
fn report_not_run(
    plan: &Plan,
    (run_id, conn): &(String, cluster::Connection),
    global: &SessionOptions,
    failure: &Failure,
) -> (Vec<Record>, Vec<String>) {
    let dir = run_dir(&global.output_dir, run_id);
    let journal = fresh_journal(&dir).ok();
    if journal.is_some() {
        point_latest_at(&global.output_dir, run_id);
    }
    let bus = crate::run::bus::EventBus::new(
        journal,
        crate::run::bus::Progress::Quiet,
        crate::run::bus::system_clock(),
    );
    let options = run_options(global, run_id.clone());
    executor::record_not_run(plan, conn, &options, &bus, failure);
    let records = bus.records();
    let unwritten = write_reports(&dir, &records, global.quiet);
    (records, unwritten)
}

/// A new, empty journal in `dir`: a run never appends to the previous run's records.
fn fresh_journal(dir: &Path) -> Result<JournalWriter, crate::journal::JournalError> {
    let path = dir.join("journal.jsonl");
    let _ = std::fs::remove_file(&path);
    JournalWriter::create(&path)
}

fn run_options(global: &SessionOptions, run_id: String) -> executor::RunOptions {
    executor::RunOptions {
        run_id,
        server_dry_run: global.dry_run == DryRun::Server,
        prometheus_url: global.prometheus_url.clone(),
        prometheus_token: global.prometheus_token.clone(),
        prometheus_token_file: global.prometheus_token_file.clone(),
        revert_timeout: global.revert_timeout,
        halt_namespace: global.halt_namespace.clone(),
        pause: Default::default(),
        // A server dry run changes nothing, so it has nothing to lock.
        lock: (global.dry_run == DryRun::None).then(|| global.lock.clone()),
        baseline: None,
        earlier_runs: Vec::new(),
    }
}

/// Renders every report format into `dir`. Runs on every exit path of a run, so a
/// partial run still leaves its evidence. Returns what could not be written.
fn write_reports(dir: &Path, records: &[crate::events::Record], quiet: bool) -> Vec<String> {
    let files = reports::render(records, false, &reports::Format::ALL);
    match reports::write(dir, &files) {
        Ok(paths) if !quiet => {
            for path in paths
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e != "svg"))
            {
                crate::say!("shakedown: wrote {}", path.display());
            }
            Vec::new()
        }
        Ok(_) => Vec::new(),
        Err(e) => {
            crate::say!("shakedown: {e}");
            vec![e.to_string()]
        }
    }
}

/// Why a session will not act on the current context without `--yes`.
#[derive(Debug, thiserror::Error)]
pub enum ContextRefused {
    #[error(
        "about to inject faults into context `{context}`; pass --yes to confirm (or run with CI=true)"
    )]
    Unconfirmed { context: String },
    #[error("context `{context}` is not in safety.allowedContexts; pass --yes to act on it anyway")]
    NotAllowed { context: String },
}

/// `--yes` is needed unless under CI (`run::ci`) and the context is on every file's allow-list.
fn context_allowed(plans: &[Plan], context: &str, yes: bool) -> Result<(), ContextRefused> {
    if yes {
        return Ok(());
    }
    let in_ci = crate::run::ci::detected();
    let listed = plans.iter().all(|plan| {
        plan.safety
            .as_ref()
            .is_some_and(|s| s.allowed_contexts.iter().any(|c| c == context))
    });
    if in_ci && listed {
        Ok(())
    } else if listed {
        Err(ContextRefused::Unconfirmed {
            context: context.to_owned(),
        })
    } else {
        Err(ContextRefused::NotAllowed {
            context: context.to_owned(),
        })
    }
}

/// The signal that stopped the session, if one did.
fn signal_of(stop: &watch::Sender<Stop>) -> Option<crate::exit::Signal> {
    match &*stop.borrow() {
        Stop::Signalled(signal) => Some(*signal),
        _ => None,
    }
}

fn new_run_id() -> String {
    let now = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    format!("{now}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}
