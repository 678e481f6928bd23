//! `shakedown recover`: revert what shakedown left in the cluster, from its marks.

use std::path::Path;

use crate::cli::{DryRun, GlobalArgs};
use crate::exit::{CouldNotRun, Failure, Outcome};
use crate::{cluster, executor};

/// Reverts every fault shakedown left in the cluster; exit 4 if something stays faulted
/// (each such fault is named on stderr before).
pub async fn recover(journal: Option<&Path>, global: &GlobalArgs) -> Result<Outcome, Failure> {
    let conn = cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref())
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
    crate::out!(
        "recover: {} reverted, {} failed, {} needing a human",
        done.reverted.len(),
        done.failed.len(),
        done.unmarked.len()
    );
    Ok(done.outcome())
}
