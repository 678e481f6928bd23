//! `shakedown schema`: the JSON Schema of scenario and experiment files.

use crate::exit::Outcome;
use crate::spec;

/// Prints the schema editors use to flag mistakes as you type.
pub fn schema() -> Outcome {
    let schema = spec::json_schema();
    crate::out!(
        "{}",
        serde_json::to_string_pretty(&schema).unwrap_or_default()
    );
    Outcome::Passed
}
