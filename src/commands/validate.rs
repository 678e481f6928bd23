//! `shakedown validate`: every file and what it references, every problem at once.

use std::path::PathBuf;

use super::report_diagnostics;
use crate::cli::GlobalArgs;
use crate::exit::Outcome;
use crate::spec;

/// Validates every file (and what it references) and reports every problem found.
pub fn validate(files: &[PathBuf], global: &GlobalArgs) -> Outcome {
    let quiet = global.quiet;
    let mut failed = 0;
    for file in files {
        match spec::load(file) {
            Ok(loaded) => {
                if !quiet {
                    let kind = match loaded.document {
                        spec::Document::Scenario(_) => "Scenario",
                        spec::Document::Experiment(_) => "Experiment",
                    };
                    println!("ok: {} ({kind} {})", file.display(), loaded.name());
                }
            }
            Err(diagnostics) => {
                failed += 1;
                report_diagnostics(&diagnostics, global.color);
            }
        }
    }
    if failed > 0 {
        crate::say!(
            "shakedown: {failed} of {} file(s) invalid; nothing was run",
            files.len()
        );
        Outcome::InvalidInput
    } else {
        Outcome::Passed
    }
}
