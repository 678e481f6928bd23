//! `shakedown recover`: revert what shakedown left in the cluster, from its marks.

use std::path::Path;

use crate::cli::{DryRun, GlobalArgs};
use crate::exit::{CouldNotRun, Failure, Outcome};
use crate::{cluster, executor};

/// Reverts every fault shakedown left in the cluster; exit 4 if something stays faulted
/// (each such fault is named on stderr before).
pub async fn recover(
    journal: Option<&Path>,
    force: bool,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
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
    let live_runs = executor::recover::LiveRuns {
        lock_namespace: global.lock_namespace.clone(),
        force,
    };
    let server_dry_run = global.dry_run == DryRun::Server;
    let done = executor::recover::recover(&conn, journal, server_dry_run, bus, &live_runs)
        .await
        .map_err(|e| CouldNotRun::Recover(e.into()))?;
    for line in done.unmarked.iter().chain(&done.failed) {
        crate::say!("shakedown: NOT RECOVERED: {line}");
    }
    for line in &done.held {
        crate::say!("shakedown: LEFT TO A LIVE RUN: {line}");
    }
    crate::out!(
        "recover: {} reverted, {} failed, {} needing a human, {} left to live runs",
        done.reverted.len(),
        done.failed.len(),
        done.unmarked.len(),
        done.held.len()
    );
    Ok(done.outcome())
}
