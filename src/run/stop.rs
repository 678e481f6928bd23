//! Why a run stops early, and the waits that notice it. Terminating signals and
//! `abort: true` breaches all land in one `watch` channel; every wait in faults, probes and the
//! executor watches it, so a stop is never missed by a sleeping task.

use tokio::sync::watch;

use crate::exit::Signal;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Running,
    /// A terminating signal: revert everything, write the reports, exit 128 + n.
    Signalled(Signal),
    /// An `abort: true` hypothesis breached (its name).
    Aborted(String),
    /// The run lost one of its locks (`cluster::lease`): another run may now fault the
    /// same targets, so this one reverts and stops, and exits 3.
    LockLost(String),
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

impl Stop {
    /// A terminating signal: the run must wind down now, after-phases included.
    pub fn is_signal(&self) -> bool {
        matches!(self, Stop::Signalled(_))
    }
}

/// Like [`wait_or_stop`], but only a signal cuts the wait short, not an abort. After an
/// `abort: true` breach the fault is reverted early, and recovery is still measured.
pub async fn wait_or_signal(
    stopped: &mut watch::Receiver<Stop>,
    until: tokio::time::Instant,
) -> bool {
    loop {
        if stopped.borrow().is_signal() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return false,
            changed = stopped.changed() => if changed.is_err() {
                // The run is over; nobody can signal it any more.
                tokio::time::sleep_until(until).await;
                return false;
            },
        }
    }
}
