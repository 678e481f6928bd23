//! Signals into the run's stop channel (`crate::run::stop`): the revert runs no matter
//! which one fired.

use tokio::signal::unix::{self, SignalKind};
use tokio::sync::watch;

use crate::exit::Signal;
pub use crate::run::stop::Stop;

/// Forwards every terminating signal shakedown handles ([`Signal::ALL`]: HUP, INT, QUIT,
/// USR1, USR2, ALRM, TERM) into the stop channel until the run ends. Without this a
/// dropped SSH session (HUP) would kill the run mid-fault with nothing reverted.
pub fn install(stop: watch::Sender<Stop>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for signal in Signal::ALL {
            let Ok(mut stream) = unix::signal(SignalKind::from_raw(i32::from(signal.number())))
            else {
                crate::say!(
                    "shakedown: cannot watch {}; it would not revert",
                    signal.name()
                );
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(signal).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(signal) = rx.recv().await {
            // The first signal wins; a second Ctrl-C must not skip the revert.
            stop.send_if_modified(|current| {
                if matches!(
                    current,
                    Stop::Running | Stop::Aborted(_) | Stop::LockLost(_)
                ) {
                    *current = Stop::Signalled(signal);
                    true
                } else {
                    false
                }
            });
            crate::say!(
                "shakedown: {}; reverting every injected fault before exiting",
                signal.name()
            );
        }
    })
}
