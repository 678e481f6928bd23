//! Why a run stops early, and the waits that notice it. Terminating signals, the kill
//! switch (`shakedown halt`) and `abort: true` breaches all land in one `watch` channel;
//! every wait in faults, probes and the executor watches it, so a stop is never missed
//! by a sleeping task.

use tokio::sync::watch;

use crate::exit::{HaltNotice, Signal};

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
    /// The kill switch: a halt marker appeared in the cluster. Like a signal: stop
    /// injecting, revert everything, write the reports, exit 5.
    Halted(HaltNotice),
    /// The console's `s` key: the step under way ends now (its waits are cut short,
    /// its fault reverted) and is marked skipped; then the run goes on
    /// (`Runner::take_skip` puts the channel back to `Running`).
    SkipStep,
}

/// The console's `p`: while it is closed, the run waits before its next step (a step
/// under way runs on). Cheap to clone; every clone is the same gate.
#[derive(Debug, Clone)]
pub struct PauseGate(std::sync::Arc<watch::Sender<bool>>);

impl Default for PauseGate {
    fn default() -> Self {
        Self(std::sync::Arc::new(watch::channel(false).0))
    }
}

impl PauseGate {
    /// Pauses an open gate or resumes a paused one; returns whether it is now paused.
    pub fn toggle(&self) -> bool {
        let mut paused = false;
        self.0.send_modify(|p| {
            *p = !*p;
            paused = *p;
        });
        paused
    }

    pub fn is_paused(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits while paused. Any stop (a signal, an abort, a skip) ends the wait: the
    /// step that was waiting then deals with it as if it had never paused.
    pub async fn wait_open(&self, stopped: &mut watch::Receiver<Stop>) {
        let mut paused = self.0.subscribe();
        let mut can_stop = true;
        loop {
            if !*paused.borrow_and_update() || !matches!(*stopped.borrow(), Stop::Running) {
                return;
            }
            tokio::select! {
                changed = paused.changed() => if changed.is_err() {
                    return;
                },
                changed = stopped.changed(), if can_stop => if changed.is_err() {
                    // Nobody can stop the run any more; only a resume ends the wait.
                    can_stop = false;
                },
            }
        }
    }
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
    /// A terminating signal or the kill switch: the run must wind down now, without
    /// its after-phases. (An abort only ends the fault early; recovery is still measured.)
    pub fn is_shutdown(&self) -> bool {
        matches!(self, Stop::Signalled(_) | Stop::Halted(_))
    }
}

/// Like [`wait_or_stop`], but only a shutdown ([`Stop::is_shutdown`]: a signal or the
/// kill switch) cuts the wait short, not an abort. After an `abort: true` breach the
/// fault is reverted early, and recovery is still measured.
pub async fn wait_or_signal(
    stopped: &mut watch::Receiver<Stop>,
    until: tokio::time::Instant,
) -> bool {
    loop {
        if stopped.borrow().is_shutdown() {
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

/// Like [`unless_stopped`], but only a shutdown (a signal or the kill switch) cuts `work` short, not an
/// abort (after an abort, recovery is still measured).
pub async fn unless_signalled<F: Future>(
    stopped: &mut watch::Receiver<Stop>,
    work: F,
) -> Option<F::Output> {
    until(stopped, Stop::is_shutdown, work).await
}

/// For a mutating call that retries: like [`unless_stopped`] (nothing starts after a
/// stop), but an attempt in flight when the stop comes gets `grace` to finish, so a
/// mutation that went through is not missing from the record. A backoff wait (which
/// changes nothing) is dropped when the grace runs out.
pub async fn unless_stopped_after<F: Future>(
    stopped: &mut watch::Receiver<Stop>,
    grace: std::time::Duration,
    work: F,
) -> Option<F::Output> {
    if !matches!(*stopped.borrow(), Stop::Running) {
        return None;
    }
    let mut work = std::pin::pin!(work);
    if let Some(out) = unless_stopped(stopped, &mut work).await {
        return Some(out);
    }
    tokio::time::timeout(grace, work).await.ok()
}

/// How long a mutation in flight may finish after a stop: a local API answers in
/// milliseconds, and a signal must still be honoured well within a second.
pub const IN_FLIGHT_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

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
    async fn a_call_in_flight_gets_its_grace_and_nothing_starts_after_a_stop() {
        let (tx, rx) = watch::channel(Stop::Running);
        let grace = Duration::from_millis(300);
        let call = |ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        };
        let short = tokio::spawn({
            let mut rx = rx.clone();
            async move { unless_stopped_after(&mut rx, grace, call(150)).await }
        });
        let long = tokio::spawn({
            let mut rx = rx.clone();
            async move { unless_stopped_after(&mut rx, grace, call(5_000)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send_replace(Stop::Signalled(Signal::Int));
        assert_eq!(
            short.await.ok(),
            Some(Some(150)),
            "finished within its grace"
        );
        assert_eq!(long.await.ok(), Some(None), "cut when its grace ran out");
        let mut rx = rx.clone();
        assert_eq!(unless_stopped_after(&mut rx, grace, call(1)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_gate_holds_until_resumed_or_stopped() {
        let (tx, rx) = watch::channel(Stop::Running);
        let gate = PauseGate::default();
        let mut open = rx.clone();
        gate.wait_open(&mut open).await;
        assert!(gate.toggle(), "now paused");
        let waiting = tokio::spawn({
            let (gate, mut rx) = (gate.clone(), rx.clone());
            async move { gate.wait_open(&mut rx).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished(), "a paused gate holds");
        assert!(!gate.toggle(), "resumed");
        assert!(waiting.await.is_ok());
        gate.toggle();
        let stopped = tokio::spawn({
            let (gate, mut rx) = (gate.clone(), rx.clone());
            async move { gate.wait_open(&mut rx).await }
        });
        tx.send_replace(Stop::Signalled(Signal::Int));
        assert!(stopped.await.is_ok(), "a stop ends the pause");
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
