//! `shakedown report`: re-render a run's reports offline from its journal.

use std::path::Path;

use crate::cli::{GlobalArgs, ReportFormat};
use crate::exit::Outcome;
use crate::{journal, report as reports};

/// Renders reports from a journal into the output directory. Exit 0 once written (or the
/// run's own code with `mirror_exit_code`); 2 for an unreadable, corrupt or empty journal;
/// 3 when a file cannot be written.
pub fn report(
    path: &Path,
    formats: &[ReportFormat],
    mirror_exit_code: bool,
    global: &GlobalArgs,
) -> Outcome {
    let contents = match journal::read(path) {
        Ok(contents) => contents,
        Err(e) => {
            crate::say!("shakedown: {e}");
            return Outcome::InvalidInput;
        }
    };
    if contents.records.is_empty() {
        crate::say!(
            "shakedown: {}: the journal has no complete record; nothing to report",
            path.display()
        );
        return Outcome::InvalidInput;
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
    if let Err(e) = reports::write(&global.output_dir, &files) {
        crate::say!("shakedown: {e}");
        return Outcome::CouldNotRun;
    }
    let view = reports::model::analyze(&contents.records, contents.truncated);
    if !global.quiet {
        for file in &files {
            println!("{}", global.output_dir.join(&file.path).display());
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
    if mirror_exit_code {
        Outcome::from_code(view.exit_code()).unwrap_or(Outcome::CouldNotRun)
    } else {
        Outcome::Passed
    }
}
