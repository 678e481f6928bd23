//! `shakedown report`: re-render a run's reports offline from its journal.

use std::path::Path;

use crate::cli::{GlobalArgs, ReportFormat};
use crate::exit::{CouldNotRun, Failure, InvalidInput, Outcome};
use crate::{journal, report as reports};

/// Renders reports from a journal into the output directory. Exit 0 once written (or the
/// run's own code with `mirror_exit_code`); 2 for an unreadable journal or one without a
/// single readable record; 3 when a file cannot be written. Damaged lines anywhere are
/// skipped with one warning naming them (and the missing records), and the reports are
/// marked partial: they are built from what could be read.
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
    let damage = contents.damage();
    if let Some(damage) = &damage {
        // Said even with --quiet: the reports lack records, and whoever reads them must
        // be able to find out which.
        crate::say!("shakedown: warning: {damage}");
    }
    let partial = contents.truncated || damage.is_some();
    let files = reports::render(&contents.records, partial, &formats);
    reports::write(&global.output_dir, &files)
        .map_err(|e| CouldNotRun::WriteReport(Box::new(e)))?;
    let view = reports::model::analyze(&contents.records, partial);
    if !global.quiet {
        for file in &files {
            crate::out!("{}", global.output_dir.join(&file.path).display());
        }
        if contents.truncated {
            crate::say!(
                "shakedown: {}: the journal ends before the run finished; the reports are marked partial",
                path.display()
            );
        } else if damage.is_some() {
            crate::say!(
                "shakedown: {}: records are missing; the reports are marked partial",
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
