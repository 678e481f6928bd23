//! The event bus: the executor's only way to say anything. Each event is stamped,
//! handed to the journal's group commit (which writes and fsyncs it off the async
//! workers within a few milliseconds), then shown on the progress sink. A record a
//! mutation depends on (a fault's intent) goes through [`EventBus::emit_durably`], which
//! returns only once it is on disk, so the intent always reaches the disk before the
//! mutation it announces; the run's last record is flushed before `emit` returns. Every
//! event is scrubbed of secrets (`run::redact`) as it enters, so the journal, the live
//! view and every report rendered from the records are scrubbed too. The progress sink
//! words each event as the report's event log does (`report::words`), so the live view
//! and the write-up never disagree. Notifications and Pushgateway pushes are offered
//! each record without waiting (`run::outbound`): no receiver can slow an emit.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use crate::events::{Record, RunEvent};
use crate::journal::{GroupCommit, JournalWriter};
use crate::report::words;

/// Where time comes from; tests pin it so journals and reports are stable.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Mutex<Sinks>>,
    clock: Clock,
}

struct Sinks {
    journal: Option<GroupCommit>,
    progress: Progress,
    records: Vec<Record>,
    /// Notification and Pushgateway queues (`run::outbound`), offered each record
    /// without waiting.
    outbound: Vec<super::outbound::Feed>,
}

impl EventBus {
    pub fn new(journal: Option<JournalWriter>, progress: Progress, clock: Clock) -> Self {
        let sinks = Sinks {
            journal: journal.map(GroupCommit::start),
            progress,
            records: Vec::new(),
            outbound: Vec::new(),
        };
        Self {
            inner: Arc::new(Mutex::new(sinks)),
            clock,
        }
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Records an event (the journal writes it within its commit window), then displays
    /// it; scrubbed of secrets first. The run's last record (`RunFinished`) is on disk
    /// when this returns.
    pub fn emit(&self, event: RunEvent) -> Record {
        let last = matches!(event, RunEvent::RunFinished(_));
        let record = self.record(event);
        if last {
            self.flush();
        }
        record
    }

    fn record(&self, event: RunEvent) -> Record {
        let event = super::redact::scrub_event(event);
        let at = self.now();
        let mut sinks = self.lock();
        let seq = sinks.records.len() as u64 + 1;
        let record = match sinks.journal.as_mut() {
            Some(journal) => journal.submit(at, event),
            None => Record { seq, at, event },
        };
        sinks.progress.show(&record);
        for feed in &sinks.outbound {
            feed.offer(&record);
        }
        sinks.records.push(record.clone());
        record
    }

    /// [`emit`](Self::emit) for a record a mutation depends on (a fault's intent):
    /// returns once it is on disk, `Err` when it did not get there or the journal
    /// already failed earlier, so the caller does not act without the record that lets
    /// `recover` find it. The wait is async: the disk is the journal thread's.
    pub async fn emit_durably(&self, event: RunEvent) -> Result<Record, String> {
        let record = self.record(event);
        let waiter = self.lock().journal.as_ref().map(GroupCommit::waiter);
        if let Some(waiter) = waiter {
            waiter.durable(record.seq).await?;
        }
        Ok(record)
    }

    /// Waits (blocking) until every record so far is on disk: the end of a run.
    fn flush(&self) -> Option<String> {
        let sinks = self.lock();
        sinks.journal.as_ref().and_then(GroupCommit::flush)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sinks> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many fsyncs the journal has cost so far (0 without one).
    pub fn journal_fsyncs(&self) -> u64 {
        self.lock().journal.as_ref().map_or(0, GroupCommit::fsyncs)
    }

    /// Everything emitted so far, in order.
    pub fn records(&self) -> Vec<Record> {
        self.inner
            .lock()
            .map(|s| s.records.clone())
            .unwrap_or_default()
    }

    /// The journal's first write error, once every record so far was written (a short
    /// blocking wait for the last commit: asked at the end of a run).
    pub fn journal_error(&self) -> Option<String> {
        self.flush()
    }

    /// Offers every record from now on to an outbound subscriber's queue.
    pub fn attach(&self, feed: super::outbound::Feed) {
        self.lock().outbound.push(feed);
    }

    /// Stops offering records to outbound subscribers (their queues then drain).
    pub fn detach_outbound(&self) {
        self.lock().outbound.clear();
    }

    pub fn finish_progress(&self) {
        if let Ok(mut sinks) = self.inner.lock() {
            sinks.progress.finish();
        }
    }
}

/// What people watching the run see on stderr: the console (`run::console`), live on
/// a terminal, plain lines elsewhere, or nothing.
pub enum Progress {
    Console(super::console::Console),
    Quiet,
}

impl Progress {
    /// The console without keys and with automatic colour (`recover`).
    pub fn for_terminal(quiet: bool, verbose: bool) -> Self {
        Self::console(
            quiet,
            super::console::ConsoleOptions {
                verbose,
                ..Default::default()
            },
        )
    }

    /// The live view only on a real terminal outside CI (CI often fakes a TTY); plain
    /// lines with a heartbeat everywhere else.
    pub fn console(quiet: bool, options: super::console::ConsoleOptions) -> Self {
        use super::console::{Console, live_possible};
        if quiet {
            Progress::Quiet
        } else if live_possible() {
            Progress::Console(Console::live(options))
        } else {
            Progress::Console(Console::plain(options.verbose))
        }
    }

    fn show(&mut self, record: &Record) {
        if let Progress::Console(console) = self {
            // Every line is worded; the console decides which to show (samples only
            // when verbose) and always learns from the event.
            console.show(record, live_line(record, true));
        }
    }

    fn finish(&mut self) {
        if let Progress::Console(console) = self {
            console.finish();
        }
    }
}

/// The whole live line: the time in UTC with its `Z` ([`words::clock`], as the reports
/// write times), then the event in the report's words.
fn live_line(record: &Record, verbose: bool) -> Option<String> {
    let line = describe(&record.event, verbose)?;
    Some(format!("{} {line}", words::clock(record.at)))
}

/// The event's line in the report's words ([`words::line`]); `None` hides probe samples
/// (one per hypothesis per interval) unless verbose.
fn describe(event: &RunEvent, verbose: bool) -> Option<String> {
    match event {
        RunEvent::ProbeSample(_) if !verbose => None,
        _ => Some(words::line(event)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ProbeSample, SampleOutcome};
    use crate::spec::Phase;

    #[test]
    fn the_live_line_is_the_report_line_and_samples_show_only_when_verbose() {
        let failed = RunEvent::RevertFailed {
            step: "2".into(),
            target: "node/a".into(),
            error: "timed out".into(),
        };
        assert_eq!(
            describe(&failed, false).as_deref(),
            Some("step 2: revert of node/a FAILED: timed out")
        );
        let sample = RunEvent::ProbeSample(ProbeSample {
            step: Some("1".into()),
            hypothesis: "up".into(),
            phase: Phase::During,
            eval_time: Timestamp::UNIX_EPOCH,
            query: "up".into(),
            values: Vec::new(),
            outcome: SampleOutcome::Error,
            detail: None,
        });
        assert_eq!(describe(&sample, false), None);
        assert_eq!(
            describe(&sample, true).as_deref(),
            Some("step 1: up (during): sample error: (empty)")
        );
    }

    /// Regression: the live log said `Pass`/`Fail`/`[Before]`/`Completed` and UTC times
    /// without a marker.
    #[test]
    fn the_live_log_speaks_the_reports_words_with_utc_times() {
        use crate::events::{HypothesisVerdict, StepStatus, Verdict};
        let at: Timestamp = "2027-01-15T08:00:02Z".parse().unwrap_or_default();
        let record = |seq, event| Record { seq, at, event };
        let lines: Vec<String> = [
            RunEvent::HypothesisVerdict(HypothesisVerdict {
                step: Some("1".into()),
                hypothesis: "errors below 1%".into(),
                phase: Phase::Before,
                verdict: Verdict::Passed,
                expectation: "< 0.01".into(),
                message: "0.002 < 0.01".into(),
                samples: 1,
                passed: 1,
                recovery_ms: None,
                detect_ms: None,
            }),
            RunEvent::ProbeSample(ProbeSample {
                step: Some("1".into()),
                hypothesis: "errors below 1%".into(),
                phase: Phase::During,
                eval_time: at,
                query: "up".into(),
                values: Vec::new(),
                outcome: SampleOutcome::Fail,
                detail: None,
            }),
            RunEvent::StepFinished {
                step: "1".into(),
                status: StepStatus::Completed,
            },
        ]
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| live_line(&record(i as u64 + 1, e), true))
        .collect();
        assert_eq!(
            lines,
            [
                "08:00:02Z step 1: errors below 1% (before): held: 0.002 < 0.01",
                "08:00:02Z step 1: errors below 1% (during): sample fail: (empty)",
                "08:00:02Z step 1 finished: completed",
            ]
        );
        for variant in ["Pass", "Fail", "Before", "During", "Completed", "Passed"] {
            assert!(
                lines.iter().all(|l| !l.contains(variant)),
                "{variant} in {lines:?}"
            );
        }
    }
}
