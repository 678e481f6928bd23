//! `shakedown validate`: every file and what it references, every problem at once.

use std::path::PathBuf;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::exit::{Failure, InvalidInput, Outcome};
use crate::output::{self, Problem, ValidatedFile, ValidationResult};
use crate::spec;

/// Validates every file (and what it references) and reports every problem found. With
/// `-o json|yaml` the result is also a `ValidationResult` on stdout; the problems still
/// go to stderr, and the exit code is the same.
pub fn validate(
    files: &[PathBuf],
    format: OutputFormat,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let machine = format.machine();
    let mut invalid = Vec::new();
    let mut results = Vec::new();
    for (file, loaded) in files.iter().zip(super::load_specs(files, global)) {
        // The spec alone, then what it needs from the flags: a Prometheus for its queries.
        let checked = loaded.and_then(|loaded| {
            let missing =
                crate::plan::unconfigured_prometheus(&loaded, global.prometheus_url.is_some());
            if missing.is_empty() {
                Ok(loaded)
            } else {
                Err(missing)
            }
        });
        match checked {
            Ok(loaded) => {
                let kind = match loaded.document {
                    spec::Document::Scenario(_) => "Scenario",
                    spec::Document::Experiment(_) => "Experiment",
                };
                if !global.quiet && machine.is_none() {
                    crate::out!("ok: {} ({kind} {})", file.display(), loaded.name());
                }
                results.push(ValidatedFile {
                    path: file.display().to_string(),
                    valid: true,
                    kind: Some(kind),
                    name: Some(loaded.name().to_owned()),
                    errors: Vec::new(),
                });
            }
            Err(diagnostics) => {
                results.push(ValidatedFile {
                    path: file.display().to_string(),
                    valid: false,
                    kind: None,
                    name: None,
                    errors: diagnostics.0.iter().map(Problem::from).collect(),
                });
                invalid.push(diagnostics);
            }
        }
    }
    if let Some(format) = machine {
        let result = ValidationResult {
            valid: invalid.is_empty(),
            files: results,
        };
        crate::out_raw!("{}", output::render(format, "ValidationResult", &result));
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
