//! Machine output of the commands (`-o json`, `-o yaml`): one versioned envelope, the way
//! kubectl prints objects, so a script keys on `apiVersion` and `kind` and never on Rust's
//! shapes (no `Ok`/`Err` wrappers, no enum variant names).
//!
//! Kinds, all under [`API_VERSION`]:
//! - `ValidationResult` (`validate`): every file, valid or with its problems at
//!   `file:line:col`.
//! - `Plan` (`plan`): the timeline, and the targets when the cluster answered.
//! - `RunResult` (`run`): the `summary.json` of every file run, in order.
//! - `RecoverResult` (`recover`): what was reverted, what failed, what needs a human.
//!
//! Adding a field keeps the version; changing or removing one bumps it. Pure: it renders
//! strings, the command prints them.

use serde::Serialize;

use crate::spec::Diagnostic;

/// The version of every machine-output kind.
pub const API_VERSION: &str = "shakedown.dev/v1";

/// `-o`: how a command prints its result on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, T: Serialize> {
    api_version: &'static str,
    kind: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// `body`'s fields after `apiVersion` and `kind`, as pretty JSON or YAML, ending in a
/// newline.
pub fn render<T: Serialize>(format: Format, kind: &str, body: &T) -> String {
    let envelope = Envelope {
        api_version: API_VERSION,
        kind,
        body,
    };
    let mut text = match format {
        Format::Json => serde_json::to_string_pretty(&envelope).map_err(|e| e.to_string()),
        Format::Yaml => serde_saphyr::to_string(&envelope).map_err(|e| e.to_string()),
    }
    // Only a map with non-string keys or a failing `Serialize` impl can fail, and none of
    // ours does; still, a script must get a document it can parse, not nothing.
    .unwrap_or_else(|e| {
        serde_json::json!({"apiVersion": API_VERSION, "kind": "Error", "message": e}).to_string()
    });
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// `validate`'s result: one entry per file named on the command line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationResult {
    pub valid: bool,
    pub files: Vec<ValidatedFile>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatedFile {
    pub path: String,
    pub valid: bool,
    /// `Scenario` or `Experiment`, when the file is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// `metadata.name`, when the file is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Every problem, in this file or in a file it references.
    pub errors: Vec<Problem>,
}

/// One problem, where it is and what would be right.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub hint: Option<String>,
}

impl From<&Diagnostic> for Problem {
    fn from(d: &Diagnostic) -> Self {
        Problem {
            file: d.path.display().to_string(),
            line: d.pos.line,
            column: d.pos.col,
            message: d.message.clone(),
            hint: d.hint.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        items: Vec<u8>,
    }

    #[test]
    fn every_document_starts_with_its_version_and_kind() {
        let body = Body { items: vec![1, 2] };
        let json: serde_json::Value =
            serde_json::from_str(&render(Format::Json, "Thing", &body)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"apiVersion": "shakedown.dev/v1", "kind": "Thing", "items": [1, 2]})
        );
        let yaml = render(Format::Yaml, "Thing", &body);
        assert!(
            yaml.starts_with("apiVersion: shakedown.dev/v1\nkind: Thing\n"),
            "{yaml}"
        );
    }
}
