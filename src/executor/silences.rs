//! A run's Alertmanager silences: put up like a fault is injected (intent journaled
//! durably, then the POST, then its id in the ledger) and taken down by the ledger's
//! revert machinery like any fault, so every exit path expires them. A step's silence
//! lasts until the step ends (its `after` phase included); the run's until the run ends.

use std::time::Duration;

use super::Runner;
use crate::events::{NoteLevel, RunEvent, SilenceIntent};
use crate::faults::Undo;
use crate::faults::silence::{self, SilenceApi};
use crate::probes::alert::AlertSource;
use crate::spec::Silence;

/// The ledger's key for the run's own silence (step ids are numbers: `1`, `3#2`, `4.1`).
pub(super) const RUN_SILENCE: &str = "run";

impl Runner {
    /// The Alertmanager silences are created in: the `alertmanager:` block's.
    fn silence_api(&self) -> Result<SilenceApi, String> {
        match self.alerts.as_ref() {
            Ok(AlertSource::Alertmanager(endpoint)) => Ok(SilenceApi(endpoint.clone())),
            Ok(AlertSource::Prometheus(_)) => {
                Err("there is no `alertmanager:` block to create the silence in".into())
            }
            Err(why) => Err(format!("Alertmanager cannot be used: {why}")),
        }
    }

    /// Creates `silence` for `step` (`None`: the whole run) until `window` + its margin
    /// from now. `Err` says why it was not created; then nothing must be injected.
    pub(super) async fn put_up_silence(
        &self,
        step: Option<&str>,
        silence: &Silence,
        window: Duration,
    ) -> Result<(), String> {
        if self.options.server_dry_run {
            // Alertmanager has no dry run: creating it would silence real alerts.
            self.note(
                NoteLevel::Info,
                "dry run: the silence is not created (Alertmanager has no dry run)".into(),
            );
            return Ok(());
        }
        let api = self.silence_api()?;
        // Alertmanager keeps milliseconds: the journal says what it holds.
        let now = jiff::Timestamp::now();
        let starts_at = jiff::Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now);
        let ends_at = silence::ends_at(starts_at, window, silence.margin.0);
        let comment = silence::comment(&self.options.run_id, silence.comment.as_deref());
        let intent = RunEvent::SilenceIntent(SilenceIntent {
            step: step.map(str::to_owned),
            alertmanager: api.0.display_url().to_owned(),
            matchers: silence.matchers.iter().map(ToString::to_string).collect(),
            comment: comment.clone(),
            starts_at,
            ends_at,
        });
        // No silence without its intent on disk: `recover` finds it from there.
        self.bus.emit_durably(intent).await.map_err(|e| {
            format!("the journal cannot be written ({e}); the silence was not created")
        })?;
        let body = silence::postable(&silence.matchers, &comment, starts_at, ends_at);
        let id = silence::create(&api, &body)
            .await
            .map_err(|e| format!("the silence could not be created: {e}"))?;
        self.ledger.record(
            step.unwrap_or(RUN_SILENCE),
            Undo::ExpireSilence {
                id: id.clone(),
                alertmanager: api,
            },
        );
        self.bus.emit(RunEvent::SilenceCreated {
            step: step.map(str::to_owned),
            id,
            ends_at,
        });
        Ok(())
    }

    /// Expires what is left of step `id` in the ledger: its silence, at the step's end.
    pub(super) async fn end_of_step(&self, id: &str) {
        let left = self.ledger.take_step(id);
        self.revert_entries(left.into_iter().map(|e| (id.to_owned(), e)).collect())
            .await;
    }

    /// Reports a silence's expiry; a failure leaves it for `recover` (exit 4).
    pub(super) fn silence_expired(
        &self,
        step: &str,
        id: &str,
        result: Result<crate::faults::Reverted, crate::faults::RevertError>,
    ) {
        let step = (step != RUN_SILENCE).then(|| step.to_owned());
        match result {
            Ok(done) => self.bus.emit(RunEvent::SilenceExpired {
                step,
                id: id.to_owned(),
                detail: done.detail(),
            }),
            Err(e) => {
                let error = e.to_string();
                self.bus.emit(RunEvent::SilenceNotExpired {
                    step,
                    id: id.to_owned(),
                    error: error.clone(),
                });
                self.tally()
                    .revert_failures
                    .push(format!("silence/{id} (Alertmanager): {error}"));
                self.bus.emit(RunEvent::Note {
                    level: NoteLevel::Warning,
                    message: format!(
                        "silence {id} is still active: run `shakedown recover --journal <this run's journal>` to expire it"
                    ),
                })
            }
        };
    }
}
