//! `shakedown report`: re-render a run's reports offline from its journal.

use std::path::Path;

use crate::cli::{GlobalArgs, ReportFormat};
use crate::exit::{CouldNotRun, Failure, InvalidInput, Outcome};
use crate::{journal, report as reports};

/// Renders reports from a journal into the output directory. Exit 0 once written (or the
/// run's own code with `mirror_exit_code`); 2 for an unreadable, corrupt or empty journal;
/// 3 when a file cannot be written.
pub fn report(
    path: &Path,
    formats: &[ReportFormat],
    mirror_exit_code: bool,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let contents = journal::read(path).map_err(|e| InvalidInput::Journal(Box::new(e)))?;
    if contents.records.is_empty() {
        return Err(InvalidInput::EmptyJournal {
            path: path.to_path_buf(),
        }
        .into());
    }
    let formats: Vec<reports::Format> = formats
        .iter()
        .map(|f| match f {
            ReportFormat::Junit => reports::Format::Junit,
            ReportFormat::Markdown => reports::Format::Markdown,
            ReportFormat::Json => reports::Format::Json,
        })
        .collect();
    let files = reports::render(&contents.records, contents.truncated, &formats);
    reports::write(&global.output_dir, &files)
        .map_err(|e| CouldNotRun::WriteReport(Box::new(e)))?;
    let view = reports::model::analyze(&contents.records, contents.truncated);
    if !global.quiet {
        for file in &files {
            crate::out!("{}", global.output_dir.join(&file.path).display());
        }
        if view.partial {
            crate::say!(
                "shakedown: {}: the journal ends before the run finished; the reports are marked partial",
                path.display()
            );
        }
        crate::say!(
            "shakedown: run {}: {} (exit {})",
            reports::text::clean_line(view.run_id()),
            view.verdict_label(),
            view.exit_code()
        );
    }
    Ok(if mirror_exit_code {
        // A code no outcome has (a hand-edited journal) still fails the gate.
        view.outcome().unwrap_or(Outcome::CouldNotRun)
    } else {
        Outcome::Passed
    })
}
