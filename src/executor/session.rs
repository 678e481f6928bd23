//! A `shakedown run` session, callable without the CLI: connect once, plan and preflight
//! every file before anything is touched, run them one after another, and write every
//! report on every exit path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::events::Record;
use crate::exit::{CouldNotRun, Failure, InvalidInput, Outcome};
use crate::journal::JournalWriter;
use crate::plan::{DryRun, Plan, PlanSettings};
use crate::probes::prometheus::Secret;
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
    pub revert_timeout: Duration,
    /// `--junit PATH`: also write the combined JUnit file there.
    pub junit: Option<PathBuf>,
}

/// Runs every file and returns the worst outcome (the runs report their own verdicts);
/// `Err` when the session could not start them, which the caller prints.
pub async fn run_files(
    loaded: &[spec::Loaded],
    global: &SessionOptions,
) -> Result<Outcome, Failure> {
    let conn = cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref())
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
    let mut problems = Vec::new();
    let mut unreadable = None;
    for plan in &mut plans {
        let (namespaces, with_nodes) = plan.inventory_needs();
        match cluster::inventory(&conn, &namespaces, with_nodes, Duration::from_secs(30)).await {
            Ok(inventory) => {
                plan.pick_targets(&inventory);
                problems.extend(executor::preflight(&conn, plan).await);
            }
            Err(e) => {
                unreadable = Some(e);
                break;
            }
        }
    }
    let stopped: Option<Failure> = match unreadable {
        Some(e) => Some(CouldNotRun::ReadCluster(Box::new(e)).into()),
        None if !problems.is_empty() => Some(CouldNotRun::Preflight { problems }.into()),
        None => None,
    };
    if let Some(failure) = stopped {
        // A client dry run writes nothing; every other run leaves its evidence, so a CI
        // reporter shows the cause instead of "no tests".
        if global.dry_run != DryRun::Client {
            let runs: Vec<Vec<Record>> = loaded
                .iter()
                .zip(&plans)
                .map(|(file, plan)| {
                    report_not_run(loaded.len(), file, plan, &conn, global, &failure)
                })
                .collect();
            write_combined_junit(global, &runs);
        }
        return Err(failure);
    }
    if global.dry_run == DryRun::Client {
        for plan in &plans {
            crate::out_raw!("{plan}");
        }
        crate::say!("shakedown: --dry-run=client: planned and checked; nothing was touched");
        return Ok(Outcome::Passed);
    }
    let mut overall = Outcome::Passed;
    let mut runs = Vec::new();
    for (file, plan) in loaded.iter().zip(&plans) {
        let dir = run_dir(global, loaded.len(), file);
        let journal = fresh_journal(&dir).map_err(|e| CouldNotRun::Journal(Box::new(e)))?;
        let journal_path = journal.path().to_path_buf();
        let bus = crate::run::bus::EventBus::new(
            Some(journal),
            crate::run::bus::Progress::for_terminal(global.quiet, global.verbose),
            crate::run::bus::system_clock(),
        );
        let outcome = executor::run(plan, conn.clone(), bus.clone(), run_options(global)).await;
        let records = bus.records();
        write_reports(&dir, &records, global.quiet);
        runs.push(records);
        if global.quiet
            && let Some(message) = runs
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
            "shakedown: `{}` finished with exit {} (journal {})",
            file.name(),
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
    write_combined_junit(global, &runs);
    Ok(overall)
}

/// One release gate, one JUnit file: every experiment's suites together, in the output
/// directory when there are several, and at `--junit PATH` when asked.
fn write_combined_junit(global: &SessionOptions, runs: &[Vec<Record>]) {
    let all: Vec<(&[Record], bool)> = runs.iter().map(|r| (r.as_slice(), false)).collect();
    let combined = reports::junit::render_many(&all);
    if runs.len() > 1 {
        let file = reports::RenderedFile {
            path: reports::JUNIT_FILE.into(),
            contents: combined.clone(),
        };
        if let Err(e) = reports::write(&global.output_dir, &[file]) {
            crate::say!("shakedown: {e}");
        }
    }
    if let Some(path) = global.junit.as_deref().filter(|_| !runs.is_empty())
        && let Err(e) = std::fs::write(path, &combined)
    {
        crate::say!("shakedown: cannot write {}: {e}", path.display());
    }
}

/// Where one file's journal and reports go: the output directory itself for a single
/// file, a folder per experiment for several.
fn run_dir(global: &SessionOptions, files: usize, file: &spec::Loaded) -> PathBuf {
    if files == 1 {
        global.output_dir.clone()
    } else {
        global.output_dir.join(file.name())
    }
}

/// The journal and reports of a run that never started: every step skipped with the
/// reason that stopped it, and the run's verdict. Best effort: the failure is what the
/// caller reports; a report that cannot be written is said, not fatal.
fn report_not_run(
    files: usize,
    file: &spec::Loaded,
    plan: &Plan,
    conn: &cluster::Connection,
    global: &SessionOptions,
    failure: &Failure,
) -> Vec<Record> {
    let dir = run_dir(global, files, file);
    let journal = fresh_journal(&dir).ok();
    let bus = crate::run::bus::EventBus::new(
        journal,
        crate::run::bus::Progress::Quiet,
        crate::run::bus::system_clock(),
    );
    let options = run_options(global);
    executor::record_not_run(plan, conn, &options, &bus, failure);
    let records = bus.records();
    write_reports(&dir, &records, global.quiet);
    records
}

/// A new, empty journal in `dir`: a run never appends to the previous run's records.
fn fresh_journal(dir: &Path) -> Result<JournalWriter, crate::journal::JournalError> {
    let path = dir.join("journal.jsonl");
    let _ = std::fs::remove_file(&path);
    JournalWriter::create(&path)
}

fn run_options(global: &SessionOptions) -> executor::RunOptions {
    executor::RunOptions {
        run_id: new_run_id(),
        server_dry_run: global.dry_run == DryRun::Server,
        prometheus_url: global.prometheus_url.clone(),
        prometheus_token: global.prometheus_token.clone(),
        prometheus_token_file: global.prometheus_token_file.clone(),
        revert_timeout: global.revert_timeout,
    }
}

/// Renders every report format into `dir`. Runs on every exit path of a run, so a
/// partial run still leaves its evidence.
fn write_reports(dir: &Path, records: &[crate::events::Record], quiet: bool) {
    let files = reports::render(records, false, &reports::Format::ALL);
    match reports::write(dir, &files) {
        Ok(paths) if !quiet => {
            for path in paths
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e != "svg"))
            {
                crate::say!("shakedown: wrote {}", path.display());
            }
        }
        Ok(_) => {}
        Err(e) => crate::say!("shakedown: {e}"),
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

fn new_run_id() -> String {
    let now = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    format!("{now}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}
