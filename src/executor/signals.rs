//! Signals into the run's stop channel (`crate::run::stop`): the revert runs no matter
//! which one fired.

use tokio::sync::watch;

pub use crate::run::stop::Stop;

/// Forwards SIGINT and SIGTERM into the stop channel until the run ends.
pub fn install(stop: watch::Sender<Stop>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let reason = tokio::select! {
                _ = int.recv() => Stop::Interrupted,
                _ = term.recv() => Stop::Terminated,
            };
            // The first signal wins; a second Ctrl-C must not skip the revert.
            stop.send_if_modified(|current| {
                if matches!(current, Stop::Running | Stop::Aborted(_)) {
                    *current = reason.clone();
                    true
                } else {
                    false
                }
            });
            crate::say!("shakedown: {reason:?}; reverting every injected fault before exiting");
        }
    })
}
