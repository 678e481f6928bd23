//! Reports rendered from a run's journal: JUnit XML for CI gates, Markdown (with SVG
//! charts) for game days and drills, and a JSON summary for machines.
//!
//! Every renderer is a pure function of `&[Record]` and the journal's `truncated` flag: it
//! never reads the clock, the environment, the cluster or Prometheus, and never writes a
//! file. The same journal always gives byte-identical reports, so `shakedown report` can
//! re-render any run offline, including one cut short by a crash. [`write`] is the only
//! function here that writes to the disk; [`history`] reads earlier runs' summaries.

pub mod history;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod svg;
pub mod text;
pub mod words;

use std::path::{Path, PathBuf};

use crate::events::Record;

/// A report format `shakedown report --format` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Junit,
    Markdown,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Junit, Format::Markdown, Format::Json];
}

/// One file a report consists of, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub contents: String,
}

pub const JUNIT_FILE: &str = "junit.xml";
pub const MARKDOWN_FILE: &str = "report.md";
pub const JSON_FILE: &str = "summary.json";
/// Charts live beside the report, in this folder, and are linked relatively.
pub const CHART_DIR: &str = "charts";

/// Renders the asked formats (all of them when `formats` is empty), in a fixed order.
pub fn render(records: &[Record], truncated: bool, formats: &[Format]) -> Vec<RenderedFile> {
    let mut wanted: Vec<Format> = if formats.is_empty() {
        Format::ALL.to_vec()
    } else {
        formats.to_vec()
    };
    wanted.sort();
    wanted.dedup();
    let mut files = Vec::new();
    for format in wanted {
        match format {
            Format::Junit => files.push(RenderedFile {
                path: JUNIT_FILE.into(),
                contents: junit::render(records, truncated),
            }),
            Format::Markdown => files.extend(markdown::render(records, truncated)),
            Format::Json => files.push(RenderedFile {
                path: JSON_FILE.into(),
                contents: json::render(records, truncated),
            }),
        }
    }
    files
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write report {path}: {source}")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes rendered files under `dir`. Each file is written to a temporary name and renamed,
/// so a reader (a CI upload step) never sees half a report. Returns the paths written.
pub fn write(dir: &Path, files: &[RenderedFile]) -> Result<Vec<PathBuf>, WriteError> {
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let path = dir.join(&file.path);
        let wrap = |source| WriteError {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(wrap)?;
        }
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, &file.contents).map_err(wrap)?;
        std::fs::rename(&tmp, &path).map_err(wrap)?;
        written.push(path);
    }
    Ok(written)
}
