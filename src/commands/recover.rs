//! `shakedown recover`: revert what shakedown left in the cluster, from its marks.

use std::path::Path;

use crate::cli::{DryRun, GlobalArgs};
use crate::exit::Outcome;
use crate::{cluster, executor};

/// Reverts every fault shakedown left in the cluster; exit 4 if something stays faulted.
pub async fn recover(journal: Option<&Path>, global: &GlobalArgs) -> Outcome {
    {
        let conn =
            match cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await {
                Ok(conn) => conn,
                Err(e) => {
                    crate::say!("shakedown: could not connect to the cluster: {e}");
                    return Outcome::CouldNotRun;
                }
            };
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
        match executor::recover::recover(&conn, journal, global.dry_run == DryRun::Server, bus)
            .await
        {
            Ok(done) => {
                for line in &done.unmarked {
                    crate::say!("shakedown: NOT RECOVERED: {line}");
                }
                for line in &done.failed {
                    crate::say!("shakedown: NOT RECOVERED: {line}");
                }
                println!(
                    "recover: {} reverted, {} failed, {} needing a human",
                    done.reverted.len(),
                    done.failed.len(),
                    done.unmarked.len()
                );
                done.outcome()
            }
            Err(e) => {
                crate::say!("shakedown: {e}");
                Outcome::CouldNotRun
            }
        }
    }
}
