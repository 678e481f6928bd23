//! The run journal: one JSON record per line, streamed and fsynced as the run goes, so
//! a crash leaves a readable record up to the moment it happened (Chaos Toolkit writes
//! its journal only at the end; a killed run there leaves nothing).
//!
//! Writes are group-committed ([`GroupCommit`]): a dedicated thread (never an async
//! worker) writes the records that arrive within a short window with one `write` and
//! one `fsync`. A caller that must not go on before its record is on disk (a fault's
//! intent, before the mutation it announces) asks for it and waits; nobody else waits.
//! Queueing a record never wakes the thread: within a window it sleeps until the
//! window ends, or until someone waits, so a burst of 1,000 records costs a handful of
//! wake-ups, not one (and a context switch) per record.
//!
//! Every record carries a sequence number, and a record that could not be written still
//! uses up its number, so a reader sees where records are missing. Readers survive
//! damage anywhere: a line that is not a record (torn by a full disk, overwritten) is
//! skipped and counted, and everything readable around it is used.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::events::{Record, RunEvent};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write journal {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read journal {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Appends records durably. Times come from the caller so tests can pin them.
pub struct JournalWriter {
    path: PathBuf,
    file: File,
    next_seq: u64,
    /// The file's length after the last complete record: a failed write is cut back to
    /// it, so a torn fragment never glues itself to the next record.
    clean_len: u64,
    /// A failed write left bytes that could not be cut off: start the next record on a
    /// line of its own.
    needs_newline: bool,
    /// How long [`GroupCommit`] gathers records into one fsync.
    window: Duration,
    /// fsyncs of written records so far.
    fsyncs: u64,
}

/// The default group-commit window: short next to a probe interval or an API call, long
/// enough that a burst (1,000 pods deleted, 100 probes sampled) shares a few fsyncs.
pub const COMMIT_WINDOW: Duration = Duration::from_millis(2);

impl JournalWriter {
    pub fn create(path: &Path) -> Result<Self, JournalError> {
        let wrap = |source| JournalError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(wrap)?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(wrap)?;
        let clean_len = file.metadata().map_err(wrap)?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            next_seq: 1,
            clean_len,
            needs_newline: false,
            window: COMMIT_WINDOW,
            fsyncs: 0,
        })
    }

    /// The same writer with another group-commit window.
    pub fn with_commit_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record and waits until it is on disk. The record's sequence number is
    /// used up even when the write fails, so the gap shows where records were lost.
    pub fn append(&mut self, at: Timestamp, event: RunEvent) -> Result<Record, JournalError> {
        let record = Record {
            seq: self.next_seq,
            at,
            event,
        };
        self.next_seq += 1;
        self.write_batch(std::slice::from_ref(&record))
            .map(|()| record)
    }

    /// Writes numbered records with one write and one fsync; on failure the whole batch
    /// is lost (its numbers stay used up) and nothing of it is left to glue onto the next.
    fn write_batch(&mut self, records: &[Record]) -> Result<(), JournalError> {
        let mut lines = Vec::new();
        if self.needs_newline {
            lines.push(b'\n');
        }
        for record in records {
            lines.extend(serde_json::to_vec(record).unwrap_or_default());
            lines.push(b'\n');
        }
        let written = self
            .file
            .write_all(&lines)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.fsyncs += 1;
                self.clean_len += lines.len() as u64;
                self.needs_newline = false;
                Ok(())
            }
            Err(source) => {
                // Drop whatever part of the lines reached the file; if even that fails,
                // the next record starts on a fresh line instead of completing this one.
                let cut = self
                    .file
                    .set_len(self.clean_len)
                    .and_then(|()| self.file.sync_data());
                self.needs_newline = cut.is_err();
                Err(JournalError::Write {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }
}

/// A [`JournalWriter`] on its own thread, committing records in groups. `submit` numbers
/// a record and hands it over without waiting; [`durable`](Self::durable) (async) and
/// [`flush`](Self::flush) (blocking) wait until a record is on disk. Dropping it writes
/// everything submitted and stops the thread.
pub struct GroupCommit {
    path: PathBuf,
    next_seq: u64,
    queue: Option<Queue>,
    shared: Arc<Shared>,
    written: tokio::sync::watch::Receiver<u64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The way to the journal thread: records are queued without waking it; a wait
/// (`Commit::Now`) wakes it, so the window is cut short.
#[derive(Clone)]
struct Queue {
    tx: mpsc::Sender<Commit>,
    thread: std::thread::Thread,
}

impl Queue {
    fn record(&self, record: Record) -> bool {
        self.tx.send(Commit::Record(Box::new(record))).is_ok()
    }

    fn now(&self) {
        let _ = self.tx.send(Commit::Now);
        self.thread.unpark();
    }
}

enum Commit {
    Record(Box<Record>),
    /// Someone waits: write what is gathered now instead of at the window's end.
    Now,
}

#[derive(Default)]
struct Shared {
    state: Mutex<CommitState>,
    changed: Condvar,
}

#[derive(Default, Clone)]
struct CommitState {
    /// Every record up to this number was written (or failed to be).
    processed: u64,
    /// The first write that failed; later records may still have been written.
    error: Option<String>,
    fsyncs: u64,
    /// How often the thread woke up (a record after idling, a window's end, a wait).
    wakeups: u64,
}

impl GroupCommit {
    pub fn start(mut writer: JournalWriter) -> Self {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let (written_tx, written) = tokio::sync::watch::channel(writer.next_seq - 1);
        let path = writer.path.clone();
        let next_seq = writer.next_seq;
        shared.lock().processed = next_seq - 1;
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("shakedown-journal".into())
            .spawn(move || {
                let mut wakeups = 0;
                while let Some(batch) = gather(&rx, writer.window, &mut wakeups) {
                    let Some(last) = batch.last().map(|r| r.seq) else {
                        continue;
                    };
                    let result = writer.write_batch(&batch);
                    let mut done = state.lock();
                    done.processed = last;
                    done.fsyncs = writer.fsyncs;
                    done.wakeups = wakeups;
                    if let Err(e) = result {
                        done.error.get_or_insert_with(|| e.to_string());
                    }
                    drop(done);
                    state.changed.notify_all();
                    written_tx.send_replace(last);
                }
            })
            .ok();
        let queue = thread.as_ref().map(|thread| Queue {
            tx,
            thread: thread.thread().clone(),
        });
        Self {
            path,
            next_seq,
            queue,
            shared,
            written,
            thread,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Numbers the record and queues it; returns at once. Its number is used up even if
    /// it never reaches the disk.
    pub fn submit(&mut self, at: Timestamp, event: RunEvent) -> Record {
        let record = Record {
            seq: self.next_seq,
            at,
            event,
        };
        self.next_seq += 1;
        let sent = self
            .queue
            .as_ref()
            .is_some_and(|queue| queue.record(record.clone()));
        if !sent {
            let mut state = self.shared.lock();
            state.processed = record.seq;
            state
                .error
                .get_or_insert_with(|| "the journal writer thread is gone".into());
        }
        record
    }

    /// The number of the last record submitted.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// A handle that waits (async) until a record is on disk, without holding `self`.
    pub fn waiter(&self) -> CommitWaiter {
        CommitWaiter {
            queue: self.queue.clone(),
            shared: self.shared.clone(),
            written: self.written.clone(),
        }
    }

    /// Blocks until every record submitted so far was written (or failed): the end of a
    /// run, where nothing else is left to do. Returns the first write error, if any.
    pub fn flush(&self) -> Option<String> {
        let seq = self.last_seq();
        if let Some(queue) = &self.queue {
            queue.now();
        }
        let mut state = self.shared.lock();
        while state.processed < seq && self.queue.is_some() {
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.error.clone()
    }

    /// The first write error so far, without waiting.
    pub fn error(&self) -> Option<String> {
        self.shared.lock().error.clone()
    }

    /// How many fsyncs the records have cost so far.
    pub fn fsyncs(&self) -> u64 {
        self.shared.lock().fsyncs
    }

    /// How often the journal thread has woken up so far (as of its last write).
    pub fn wakeups(&self) -> u64 {
        self.shared.lock().wakeups
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the channel makes the thread write what is queued and stop; woken after
        // it is closed (not before: it would find it open and sleep on), it does so now
        // rather than at its window's end.
        if let Some(Queue { tx, thread }) = self.queue.take() {
            drop(tx);
            thread.unpark();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits for one record to be durable: see [`GroupCommit::waiter`].
pub struct CommitWaiter {
    queue: Option<Queue>,
    shared: Arc<Shared>,
    written: tokio::sync::watch::Receiver<u64>,
}

impl CommitWaiter {
    /// Waits until record `seq` is on disk; `Err` with the journal's first write error
    /// when it (or an earlier record) could not be written.
    pub async fn durable(mut self, seq: u64) -> Result<(), String> {
        let Some(queue) = self.queue.take() else {
            return Err(self
                .shared
                .lock()
                .error
                .clone()
                .unwrap_or_else(|| "the journal writer thread is gone".into()));
        };
        queue.now();
        if self.written.wait_for(|&done| done >= seq).await.is_err() {
            return Err("the journal writer thread stopped".into());
        }
        match self.shared.lock().error.clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, CommitState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The next group: the first record to arrive, then whatever else arrives within
/// `window` of it, cut short when someone waits. `None` once the channel is closed and
/// drained.
///
/// Only the first record is waited for on the channel (a send to a waiting receiver
/// wakes it). Within the window the thread sleeps (`park_timeout`) and takes what was
/// queued meanwhile; a `Commit::Now` comes with an unpark, and an unpark that lands
/// before the park makes the park return at once, so no wait is missed.
fn gather(rx: &mpsc::Receiver<Commit>, window: Duration, wakeups: &mut u64) -> Option<Vec<Record>> {
    let mut batch = Vec::new();
    loop {
        let commit = rx.recv().ok()?;
        *wakeups += 1;
        match commit {
            Commit::Record(r) => {
                batch.push(*r);
                break;
            }
            // A wait with nothing queued: everything before it is already written.
            Commit::Now => {}
        }
    }
    let until = Instant::now() + window;
    loop {
        let mut waited_for = false;
        loop {
            match rx.try_recv() {
                Ok(Commit::Record(r)) => batch.push(*r),
                // Take what is already queued too: it costs nothing more.
                Ok(Commit::Now) => waited_for = true,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return Some(batch),
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if waited_for || left.is_zero() {
            return Some(batch);
        }
        std::thread::park_timeout(left);
        *wakeups += 1;
    }
}

/// A journal read back: every readable record, whether it ends before the run finished,
/// and what could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalContents {
    pub path: PathBuf,
    pub records: Vec<Record>,
    /// The run's end is missing: a torn last line, or no `RunFinished`.
    pub truncated: bool,
    /// 1-based numbers of the lines that are not records (a torn last line aside), which
    /// were skipped.
    pub damaged_lines: Vec<usize>,
    /// Sequence numbers missing between the records read, as inclusive ranges: records
    /// lost to a failed write or a damaged line.
    pub missing: Vec<(u64, u64)>,
}

impl JournalContents {
    /// Whether some of the run's records could not be read (beyond a cut-short end).
    pub fn is_damaged(&self) -> bool {
        !self.damaged_lines.is_empty() || !self.missing.is_empty()
    }

    /// One warning naming the damaged lines and the missing records, or `None` when every
    /// record is there: `journal.jsonl: 2 damaged line(s) skipped (lines 4, 9); records
    /// 4–6 missing`.
    pub fn damage(&self) -> Option<String> {
        if !self.is_damaged() {
            return None;
        }
        let mut parts = Vec::new();
        if !self.damaged_lines.is_empty() {
            let lines: Vec<String> = self.damaged_lines.iter().map(usize::to_string).collect();
            parts.push(format!(
                "{} damaged line(s) skipped (line{} {})",
                lines.len(),
                if lines.len() == 1 { "" } else { "s" },
                capped(&lines)
            ));
        }
        if !self.missing.is_empty() {
            let ranges: Vec<String> = self
                .missing
                .iter()
                .map(|&(a, b)| {
                    if a == b {
                        format!("record {a}")
                    } else {
                        format!("records {a}–{b}")
                    }
                })
                .collect();
            parts.push(format!("{} missing", capped(&ranges)));
        }
        Some(format!(
            "{}: {}; the rest of the journal is used",
            self.path.display(),
            parts.join("; ")
        ))
    }
}

/// The first few items, then how many more: one warning line, however damaged the file.
fn capped(items: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = items[..items.len().min(SHOWN)].join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

/// Reads a journal, using every readable record. A line that is not a record is skipped
/// and listed in `damaged_lines` (a torn final line only marks the journal `truncated`);
/// sequence numbers that never appear are listed in `missing`. Only a file that cannot
/// be read at all is an error.
pub fn read(path: &Path) -> Result<JournalContents, JournalError> {
    let file = File::open(path).map_err(|source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| JournalError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let mut records = Vec::with_capacity(lines.len());
    let mut truncated = false;
    let mut damaged_lines = Vec::new();
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(record) => records.push(record),
            Err(_) if Some(i) == last => truncated = true,
            Err(_) => damaged_lines.push(i + 1),
        }
    }
    let finished = records
        .iter()
        .any(|r| matches!(r.event, RunEvent::RunFinished(_)));
    Ok(JournalContents {
        path: path.to_path_buf(),
        missing: missing_seqs(&records),
        records,
        truncated: truncated || !finished,
        damaged_lines,
    })
}

/// The sequence numbers skipped between the records, in file order, counting from 1
/// (a journal whose first records were lost starts with a gap).
fn missing_seqs(records: &[Record]) -> Vec<(u64, u64)> {
    let mut missing = Vec::new();
    let mut expected = 1u64;
    for record in records {
        if record.seq > expected {
            missing.push((expected, record.seq - 1));
        }
        expected = expected.max(record.seq.saturating_add(1));
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::NoteLevel;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("valid time")
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_tolerated() {
        let dir = std::env::temp_dir().join(format!("shakedown-journal-{}", std::process::id()));
        let path = dir.join("run.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut writer = JournalWriter::create(&path).unwrap();
        let first = writer
            .append(at(0), RunEvent::StepStarted { step: "1".into() })
            .unwrap();
        writer
            .append(
                at(1),
                RunEvent::Note {
                    level: NoteLevel::Warning,
                    message: "slow API".into(),
                },
            )
            .unwrap();
        assert_eq!(first.seq, 1);
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.records.len(), 2);
        assert_eq!(read_back.records[0], first);
        assert!(
            read_back.truncated,
            "no RunFinished yet, so the run is incomplete"
        );

        let mut file = File::options().append(true).open(&path).unwrap();
        file.write_all(br#"{"seq":3,"at":"2027-01-15T08:00:02Z","event":"stepStar"#)
            .unwrap();
        let torn = read(&path).unwrap();
        assert_eq!(torn.records.len(), 2);
        assert!(torn.truncated);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("shakedown-journal-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn line(seq: u64) -> String {
        let record = Record {
            seq,
            at: at(seq as i64),
            event: RunEvent::StepStarted {
                step: seq.to_string(),
            },
        };
        serde_json::to_string(&record).unwrap()
    }

    /// Regression: a torn line followed by good records (the disk filled, then freed)
    /// made `report` exit 2 and `recover --journal` exit 3 without reading anything.
    #[test]
    fn a_damaged_line_in_the_middle_is_skipped_counted_and_the_rest_is_read() {
        let dir = scratch("middle");
        let path = dir.join("run.jsonl");
        let text = [
            line(1),
            line(2),
            r#"{"seq":3,"at":"2027-01-15T08:00:02Z","event":"stepSta"#.to_owned(),
            line(4),
            "\u{0}\u{0}garbage".to_owned(),
            line(5),
        ]
        .join("\n");
        std::fs::write(&path, text + "\n").unwrap();
        let contents = read(&path).unwrap();
        let seqs: Vec<u64> = contents.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 4, 5], "every readable record is used");
        assert_eq!(contents.damaged_lines, [3, 5]);
        assert_eq!(contents.missing, [(3, 3)]);
        let damage = contents.damage().unwrap();
        assert!(
            damage.contains("2 damaged line(s) skipped (lines 3, 5)"),
            "{damage}"
        );
        assert!(damage.contains("record 3 missing"), "{damage}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Regression: a journal whose first records were lost started at `seq: 1` with no
    /// visible gap.
    #[test]
    fn missing_records_are_reported_as_ranges_including_at_the_start() {
        let dir = scratch("gaps");
        let path = dir.join("run.jsonl");
        let text = [line(3), line(4), line(8), line(9)].join("\n");
        std::fs::write(&path, text + "\n").unwrap();
        let contents = read(&path).unwrap();
        assert_eq!(contents.missing, [(1, 2), (5, 7)]);
        assert!(contents.damaged_lines.is_empty());
        let damage = contents.damage().unwrap();
        assert!(
            damage.contains("records 1–2, records 5–7 missing"),
            "{damage}"
        );
        let many: Vec<String> = (1..=30).map(|n| line(2 * n)).collect();
        let holey = dir.join("holey.jsonl");
        std::fs::write(&holey, many.join("\n") + "\n").unwrap();
        let damage = read(&holey).unwrap().damage().unwrap();
        assert!(damage.contains("record 19 and 20 more missing"), "{damage}");
        let whole = dir.join("whole.jsonl");
        std::fs::write(&whole, [line(1), line(2)].join("\n") + "\n").unwrap();
        assert_eq!(read(&whole).unwrap().damage(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Queueing a record does not wake the journal thread: 200 records arriving one by
    /// one, as a pod-delete's do, in one long window cost a wake-up for the first and
    /// one for the flush that ends the window, not one each (a thread waiting on the
    /// channel is woken by every send).
    #[test]
    fn queued_records_do_not_wake_the_journal_thread() {
        let dir = std::env::temp_dir().join(format!("shakedown-wakeups-{}", std::process::id()));
        let writer = JournalWriter::create(&dir.join("journal.jsonl"))
            .unwrap()
            .with_commit_window(Duration::from_secs(5));
        let mut commit = GroupCommit::start(writer);
        for i in 0..200 {
            commit.submit(
                at(i),
                RunEvent::Note {
                    level: NoteLevel::Info,
                    message: format!("sample {i}"),
                },
            );
            // The spacing of DELETE answers: the thread would be asleep by the next one.
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(commit.flush(), None);
        let (wakeups, fsyncs) = (commit.wakeups(), commit.fsyncs());
        assert!(wakeups <= 3, "{wakeups} wake-ups for 200 records");
        assert_eq!(fsyncs, 1);
        drop(commit);
        assert_eq!(read(&dir.join("journal.jsonl")).unwrap().records.len(), 200);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Dropping the writer writes what is queued and stops its thread at once, even in
    /// the middle of a long window (it sleeps there, and must be woken after the channel
    /// is closed, or it sleeps the window out).
    #[test]
    fn dropping_the_journal_writes_the_queue_without_waiting_out_the_window() {
        let dir = std::env::temp_dir().join(format!("shakedown-drop-{}", std::process::id()));
        let writer = JournalWriter::create(&dir.join("journal.jsonl"))
            .unwrap()
            .with_commit_window(Duration::from_secs(600));
        let mut commit = GroupCommit::start(writer);
        for i in 0..3 {
            commit.submit(
                at(i),
                RunEvent::Note {
                    level: NoteLevel::Info,
                    message: format!("sample {i}"),
                },
            );
            // Asleep in its window by the time it is dropped.
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = Instant::now();
        drop(commit);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the drop waited out the window"
        );
        assert_eq!(read(&dir.join("journal.jsonl")).unwrap().records.len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A record that could not be written still uses up its number, so readers see the
    /// gap where it was lost (`/dev/full` fails every write with ENOSPC).
    #[test]
    fn a_failed_write_uses_up_its_sequence_number() {
        let path = Path::new("/dev/full");
        if !path.exists() {
            eprintln!("skipped: no /dev/full on this system");
            return;
        }
        let mut writer = JournalWriter::create(path).unwrap();
        let step = |s: &str| RunEvent::StepStarted { step: s.into() };
        assert!(writer.append(at(0), step("1")).is_err());
        assert!(writer.append(at(1), step("2")).is_err());
        assert_eq!(writer.next_seq, 3, "both numbers are spent");
    }

    /// A write that failed halfway leaves no fragment for the next record to glue onto.
    #[test]
    fn after_a_failed_write_the_next_record_is_still_readable() {
        let dir = scratch("torn-then-good");
        let path = dir.join("run.jsonl");
        let mut writer = JournalWriter::create(&path).unwrap();
        writer
            .append(at(0), RunEvent::StepStarted { step: "1".into() })
            .unwrap();
        // What a partial write leaves behind, as the writer would have seen it fail.
        let mut raw = File::options().append(true).open(&path).unwrap();
        raw.write_all(br#"{"seq":2,"at":"2027-01"#).unwrap();
        writer.needs_newline = true;
        writer.next_seq = 3;
        writer
            .append(at(2), RunEvent::StepStarted { step: "3".into() })
            .unwrap();
        let contents = read(&path).unwrap();
        let seqs: Vec<u64> = contents.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 3]);
        assert_eq!(contents.damaged_lines, [2]);
        assert_eq!(contents.missing, [(2, 2)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
