//! Signals and the kill switch into the run's stop channel (`crate::run::stop`): the
//! revert runs no matter which one fired.

use tokio::signal::unix::{self, SignalKind};
use tokio::sync::watch;

use crate::cluster::halt;
use crate::events::{NoteLevel, RunEvent};
use crate::exit::Signal;
use crate::run::bus::EventBus;
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
                    Stop::Running | Stop::Aborted(_) | Stop::LockLost(_) | Stop::SkipStep
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

/// Watches the cluster's halt marker (`cluster::halt`) in `namespace` until the run
/// ends; when it appears, the run stops with [`Stop::Halted`] (a signal or a halt that
/// came first wins) and the journal says who halted, when and why. A marker that cannot
/// be read is said once, as a warning: the run goes on, but the report shows the
/// switch was blind.
pub fn watch_halt(
    client: kube::Client,
    namespace: String,
    stop: watch::Sender<Stop>,
    bus: EventBus,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut warned = false;
        let notice = halt::wait_for_halt(&client, &namespace, |e| {
            if !std::mem::replace(&mut warned, true) {
                bus.emit(RunEvent::Note {
                    level: NoteLevel::Warning,
                    message: format!(
                        "the kill switch cannot see its marker ({e}); `shakedown halt` may not stop this run"
                    ),
                });
            }
        })
        .await;
        let halted = stop.send_if_modified(|current| {
            if matches!(
                current,
                Stop::Running | Stop::Aborted(_) | Stop::LockLost(_) | Stop::SkipStep
            ) {
                *current = Stop::Halted(notice.clone());
                true
            } else {
                false
            }
        });
        if halted {
            bus.emit(RunEvent::Note {
                level: NoteLevel::Warning,
                message: format!(
                    "kill switch: {notice} (configmap {namespace}/{}); reverting every injected fault",
                    halt::MARKER_NAME
                ),
            });
        }
    })
}
