//! `shakedown history`: the runs kept in the output directory, newest first, from their
//! `summary.json` alone (a folder copied from CI artifacts works the same).

use std::time::Duration;

use serde::Serialize;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::exit::{Failure, InvalidInput, Outcome};
use crate::report::history::{self, Entry, RunSummary};

/// `-o json|yaml`: a `History` document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryDoc<'a> {
    output_dir: String,
    runs: Vec<&'a RunSummary>,
    unreadable: Vec<Unreadable<'a>>,
}

#[derive(Serialize)]
struct Unreadable<'a> {
    folder: &'a str,
    reason: &'a str,
}

/// Lists the runs. Exit 0 (unreadable summaries are named, never fatal); 2 when the
/// output directory cannot be listed.
pub fn history(
    experiment: Option<&str>,
    since: Option<Duration>,
    output: OutputFormat,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let dir = &global.output_dir;
    let entries = history::scan(dir).map_err(|e| {
        InvalidInput::Flag(format!("--output-dir {}: cannot list it: {e}", dir.display()).into())
    })?;
    let since = since.and_then(|d| {
        let span = jiff::SignedDuration::try_from(d).ok()?;
        jiff::Timestamp::now().checked_sub(span).ok()
    });
    let runs = history::select(&entries, experiment, since);
    let unreadable: Vec<(&str, &str)> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Unreadable { folder, reason } => Some((folder.as_str(), reason.as_str())),
            Entry::Run(_) => None,
        })
        .collect();
    match output.machine() {
        Some(format) => {
            let doc = HistoryDoc {
                output_dir: dir.display().to_string(),
                runs,
                unreadable: unreadable
                    .iter()
                    .map(|(folder, reason)| Unreadable { folder, reason })
                    .collect(),
            };
            crate::out_raw!("{}", crate::output::render(format, "History", &doc));
        }
        None => {
            crate::out_raw!("{}", history::table(&runs, &unreadable));
            if runs.is_empty() && !global.quiet {
                crate::say!("shakedown: no run in {} matches", dir.display());
            }
        }
    }
    Ok(Outcome::Passed)
}
