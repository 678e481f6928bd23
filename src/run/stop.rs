//! Why a run stops early, and the waits that notice it. SIGINT/SIGTERM and `abort: true`
//! breaches all land in one `watch` channel; every wait in faults, probes and the
//! executor watches it, so a stop is never missed by a sleeping task.

use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Running,
    Interrupted,
    Terminated,
    /// An `abort: true` hypothesis breached (its name).
    Aborted(String),
}

/// Sleeps until `until`; returns true if the run was stopped first.
pub async fn wait_or_stop(
    stopped: &mut watch::Receiver<Stop>,
    until: tokio::time::Instant,
) -> bool {
    if !matches!(*stopped.borrow(), Stop::Running) {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(until) => false,
        changed = stopped.changed() => changed.is_err() || !matches!(*stopped.borrow(), Stop::Running),
    }
}
