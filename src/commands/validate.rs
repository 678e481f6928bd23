//! `shakedown validate`: every file and what it references, every problem at once.

use std::path::PathBuf;

use crate::cli::GlobalArgs;
use crate::exit::{Failure, InvalidInput, Outcome};
use crate::spec;

/// Validates every file (and what it references) and reports every problem found.
pub fn validate(files: &[PathBuf], global: &GlobalArgs) -> Result<Outcome, Failure> {
    let mut invalid = Vec::new();
    for file in files {
        match super::load_spec(file, global) {
            Ok(loaded) => {
                if !global.quiet {
                    let kind = match loaded.document {
                        spec::Document::Scenario(_) => "Scenario",
                        spec::Document::Experiment(_) => "Experiment",
                    };
                    crate::out!("ok: {} ({kind} {})", file.display(), loaded.name());
                }
            }
            Err(diagnostics) => invalid.push(diagnostics),
        }
    }
    if invalid.is_empty() {
        Ok(Outcome::Passed)
    } else {
        Err(InvalidInput::Validation {
            diagnostics: invalid,
            checked: files.len(),
        }
        .into())
    }
}
