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

/// Runs `work` unless the run stops first (any [`Stop`] but `Running`), then `None`:
/// `work` is dropped, so a call in flight or a backoff sleep (a PodDisruptionBudget can
/// block an eviction for minutes) never delays a stop. A closed channel never stops it.
pub async fn unless_stopped<F: Future>(
    stopped: &mut watch::Receiver<Stop>,
    work: F,
) -> Option<F::Output> {
    until(stopped, |s| !matches!(s, Stop::Running), work).await
}

/// Like [`unless_stopped`], but only a terminating signal cuts `work` short, not an
/// abort (after an abort, recovery is still measured).
pub async fn unless_signalled<F: Future>(
    stopped: &mut watch::Receiver<Stop>,
    work: F,
) -> Option<F::Output> {
    until(stopped, Stop::is_signal, work).await
}

async fn until<F: Future>(
    stopped: &mut watch::Receiver<Stop>,
    ends: impl Fn(&Stop) -> bool,
    work: F,
) -> Option<F::Output> {
    let ended = async {
        loop {
            if ends(&stopped.borrow_and_update()) {
                return;
            }
            if stopped.changed().await.is_err() {
                // The sender is gone: nobody can stop this any more.
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        biased;
        () = ended => None,
        out = work => Some(out),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::exit::Signal;

    #[tokio::test(start_paused = true)]
    async fn a_stop_cuts_a_long_wait_short_and_an_abort_does_not_cut_a_signal_only_wait() {
        let (tx, rx) = watch::channel(Stop::Running);
        let long = || tokio::time::sleep(Duration::from_secs(120));
        let started = tokio::time::Instant::now();
        let waiting = tokio::spawn({
            let mut rx = rx.clone();
            async move { unless_stopped(&mut rx, long()).await }
        });
        let signal_only = tokio::spawn({
            let mut rx = rx.clone();
            async move { unless_signalled(&mut rx, long()).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send_replace(Stop::Aborted("h".into()));
        assert_eq!(waiting.await.ok(), Some(None), "an abort stops the wait");
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        tx.send_replace(Stop::Signalled(Signal::Int));
        assert_eq!(signal_only.await.ok(), Some(None), "a signal stops it");
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_first_is_returned_and_a_closed_channel_never_stops_it() {
        let (tx, mut rx) = watch::channel(Stop::Running);
        assert_eq!(unless_stopped(&mut rx, async { 7 }).await, Some(7));
        drop(tx);
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(unless_stopped(&mut rx, slow).await, Some(()));
    }
}
