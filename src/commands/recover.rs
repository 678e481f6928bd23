//! `shakedown recover`: revert what shakedown left in the cluster, from its marks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::exit::{CouldNotRun, Failure, InvalidInput, Outcome};
use crate::faults::silence::SilenceApi;
use crate::plan::{DryRun, PlanSettings};
use crate::probes::prometheus::PrometheusEndpoint;
use crate::{cluster, executor};

/// `--alertmanager-url` and `--alertmanager-from`.
#[derive(Debug, Default)]
pub struct AlertmanagerFlags {
    pub url: Option<String>,
    pub from: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "{}: --alertmanager-from needs an experiment or scenario with an `alertmanager:` block (its URL and connection options); this one has none",
    .0.display()
)]
struct NoAlertmanagerBlock(PathBuf);

/// The Alertmanager of `--alertmanager-from`'s spec, reached as its run reaches it (the
/// plan's `alertmanager:` block, so an experiment's or else its first scenario's).
fn alertmanager_from(file: &Path, global: &GlobalArgs) -> Result<SilenceApi, InvalidInput> {
    let loaded = super::load_spec(file, global).map_err(|d| InvalidInput::Specs(vec![d]))?;
    let settings = PlanSettings {
        seed: 0,
        default_namespace: None,
    };
    let Some(block) = crate::plan::plan(&loaded, &settings).alertmanager else {
        return Err(InvalidInput::Flag(Box::new(NoAlertmanagerBlock(
            file.to_owned(),
        ))));
    };
    PrometheusEndpoint::alertmanager(&block)
        .map(|endpoint| SilenceApi(Arc::new(endpoint)))
        .map_err(|e| InvalidInput::Flag(Box::new(e)))
}

/// Reverts every fault shakedown left in the cluster; exit 4 if something stays faulted
/// (each such fault is named on stderr before). `--dry-run=client` lists what it would
/// revert and touches nothing; `--dry-run=server` sends the reverts with `dryRun=All`.
/// Either dry run exits 0 (`DRY RUN`), or 3 when the API server refused a call. A fault
/// of a run whose lease is live is left alone unless `force`.
pub async fn recover(
    journal: Option<&Path>,
    force: bool,
    format: OutputFormat,
    global: &GlobalArgs,
    alertmanager: AlertmanagerFlags,
) -> Result<Outcome, Failure> {
    let dry_run = super::run::dry_run(global.dry_run);
    // Bad input is refused before the cluster is reached.
    let alertmanager_from = alertmanager
        .from
        .as_deref()
        .map(|file| alertmanager_from(file, global))
        .transpose()?;
    let conn = cluster::connect_with(
        global.kubeconfig.as_deref(),
        global.context.as_deref(),
        global.connect_timeout,
    )
    .await
    .map_err(|e| CouldNotRun::Connect(Box::new(e)))?;
    cluster::ensure_reachable(&conn, global.connect_timeout)
        .await
        .map_err(|e| CouldNotRun::Connect(Box::new(e)))?;
    crate::say!(
        "shakedown: recovering in context `{}`, API server {}{}",
        conn.context,
        conn.server,
        match dry_run {
            DryRun::None => "",
            DryRun::Client => " (dry run: client, nothing is sent)",
            DryRun::Server => " (dry run: server, every revert is sent with dryRun=All)",
        }
    );
    let bus = crate::run::bus::EventBus::new(
        None,
        crate::run::bus::Progress::for_terminal(global.quiet, global.verbose > 0),
        crate::run::bus::system_clock(),
    );
    let live_runs = executor::recover::LiveRuns {
        lock_namespace: global.lock_namespace.clone(),
        force,
        alertmanager_url: alertmanager.url,
        alertmanager: alertmanager_from,
    };
    let done = executor::recover::recover(&conn, journal, dry_run, bus, &live_runs)
        .await
        .map_err(|e| CouldNotRun::Recover(e.into()))?;
    if let Some(damage) = &done.journal_damage {
        crate::say!("shakedown: warning: {damage}");
    }
    for line in done.unmarked.iter().chain(&done.failed) {
        crate::say!("shakedown: NOT RECOVERED: {line}");
    }
    for line in &done.held {
        crate::say!("shakedown: LEFT TO A LIVE RUN: {line}");
    }
    if let Some(format) = format.machine() {
        crate::out_raw!("{}", recover_result(format, &done));
        return Ok(done.outcome());
    }
    match dry_run {
        DryRun::Client => {
            for line in &done.would_revert {
                crate::out!("would revert {line}");
            }
            crate::out!(
                "recover (dry run): {} to revert, {} needing a human; nothing was touched",
                done.would_revert.len(),
                done.unmarked.len()
            );
        }
        DryRun::Server => crate::out!(
            "recover (dry run): {} accepted by the API server, {} refused, {} needing a human; nothing was changed",
            done.reverted.len(),
            done.failed.len(),
            done.unmarked.len()
        ),
        DryRun::None => crate::out!(
            "recover: {} reverted, {} failed, {} needing a human, {} left to live runs",
            done.reverted.len(),
            done.failed.len(),
            done.unmarked.len(),
            done.held.len()
        ),
    }
    Ok(done.outcome())
}

/// `-o json|yaml`: a `RecoverResult` (see `crate::output`).
fn recover_result(format: crate::output::Format, done: &executor::recover::Recovery) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct RecoverResult<'a> {
        exit_code: u8,
        reverted: &'a [String],
        failed: &'a [String],
        /// Still faulted, but carrying no mark shakedown can act on.
        needs_human: &'a [String],
        /// Left alone: a live run holds them (its lease is renewed); `--force` reverts.
        left_to_live_runs: &'a [String],
        /// `--dry-run=client`: what a real recover would revert.
        would_revert: &'a [String],
    }
    let result = RecoverResult {
        exit_code: done.outcome().code(),
        reverted: &done.reverted,
        failed: &done.failed,
        needs_human: &done.unmarked,
        left_to_live_runs: &done.held,
        would_revert: &done.would_revert,
    };
    crate::output::render(format, "RecoverResult", &result)
}
