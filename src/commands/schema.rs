//! `shakedown schema`: the JSON Schema of scenario and experiment files, or (`--summary`)
//! of the `summary.json` every run writes.

use crate::exit::Outcome;
use crate::{report, spec};

/// Prints the schema editors use to flag mistakes as you type, or the one scripts
/// validate `summary.json` against.
pub fn schema(summary: bool) -> Outcome {
    let schema = if summary {
        report::json::schema()
    } else {
        serde_json::to_value(spec::json_schema()).unwrap_or_default()
    };
    crate::out!(
        "{}",
        serde_json::to_string_pretty(&schema).unwrap_or_default()
    );
    Outcome::Passed
}
