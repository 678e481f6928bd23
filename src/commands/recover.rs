//! `shakedown recover`: revert what shakedown left in the cluster, from its marks.

use std::path::Path;

use crate::cli::{DryRun, GlobalArgs, OutputFormat};
use crate::exit::{CouldNotRun, Failure, Outcome};
use crate::{cluster, executor};

/// Reverts every fault shakedown left in the cluster; exit 4 if something stays faulted
/// (each such fault is named on stderr before).
pub async fn recover(
    journal: Option<&Path>,
    format: OutputFormat,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
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
        "shakedown: recovering in context `{}`, API server {}",
        conn.context,
        conn.server
    );
    let bus = crate::run::bus::EventBus::new(
        None,
        crate::run::bus::Progress::for_terminal(global.quiet, global.verbose > 0),
        crate::run::bus::system_clock(),
    );
    let done = executor::recover::recover(&conn, journal, global.dry_run == DryRun::Server, bus)
        .await
        .map_err(|e| CouldNotRun::Recover(e.into()))?;
    for line in done.unmarked.iter().chain(&done.failed) {
        crate::say!("shakedown: NOT RECOVERED: {line}");
    }
    match format.machine() {
        Some(format) => crate::out_raw!("{}", recover_result(format, &done)),
        None => crate::out!(
            "recover: {} reverted, {} failed, {} needing a human",
            done.reverted.len(),
            done.failed.len(),
            done.unmarked.len()
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
    }
    let result = RecoverResult {
        exit_code: done.outcome().code(),
        reverted: &done.reverted,
        failed: &done.failed,
        needs_human: &done.unmarked,
    };
    crate::output::render(format, "RecoverResult", &result)
}
