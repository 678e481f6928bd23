//! The run journal: one JSON record per line, fsynced as it is written, so a crash
//! leaves a readable record up to the moment it happened (Chaos Toolkit writes its
//! journal only at the end; a killed run there leaves nothing).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

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
    #[error("{path}:{line}: not a journal record: {source}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Appends records durably. Times come from the caller so tests can pin them.
pub struct JournalWriter {
    path: PathBuf,
    file: File,
    next_seq: u64,
}

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
        Ok(Self {
            path: path.to_path_buf(),
            file,
            next_seq: 1,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record and waits until it is on disk.
    pub fn append(&mut self, at: Timestamp, event: RunEvent) -> Result<Record, JournalError> {
        let record = Record {
            seq: self.next_seq,
            at,
            event,
        };
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        let wrap = |source| JournalError::Write {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&line).map_err(wrap)?;
        self.file.sync_data().map_err(wrap)?;
        self.next_seq += 1;
        Ok(record)
    }
}

/// A journal read back, and whether its last line was cut off (the writer died mid-write).
#[derive(Debug, Clone, PartialEq)]
pub struct JournalContents {
    pub records: Vec<Record>,
    pub truncated: bool,
}

/// Reads a journal. A torn final line is tolerated (and reported as `truncated`); a bad
/// line in the middle is corruption.
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
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(record) => records.push(record),
            Err(_) if Some(i) == last => truncated = true,
            Err(source) => {
                return Err(JournalError::Corrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
                });
            }
        }
    }
    let finished = records
        .iter()
        .any(|r| matches!(r.event, RunEvent::RunFinished(_)));
    Ok(JournalContents {
        records,
        truncated: truncated || !finished,
    })
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

    #[test]
    fn corruption_in_the_middle_is_an_error() {
        let dir =
            std::env::temp_dir().join(format!("shakedown-journal-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.jsonl");
        std::fs::write(&path, "garbage\n{\"seq\":1}\n").unwrap();
        assert!(matches!(
            read(&path),
            Err(JournalError::Corrupt { line: 1, .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
