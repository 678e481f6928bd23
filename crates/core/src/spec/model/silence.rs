//! The `silence` block: an Alertmanager silence a rehearsal puts up for its own window
//! (a scenario's step, or an experiment's whole run) plus a margin, so a known fault
//! pages nobody. Its matchers take Alertmanager's API v2 shape, or the string form
//! `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`; `read/silence.rs`
//! parses and checks both.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Serialize;

use super::{Span, defaults};

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Silence {
    /// Which alerts it silences: at least one, and not all of them matching the empty
    /// string (Alertmanager refuses a silence that would match every alert).
    #[schemars(length(min = 1))]
    pub matchers: Vec<SilenceMatcher>,
    /// Why, for whoever looks at Alertmanager; shakedown prefixes it with the run id
    /// (`shakedown run <id>: <comment>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::optional_non_blank")]
    pub comment: Option<String>,
    /// How long the silence outlasts its window (`endsAt` = window end + margin), so an
    /// alert still resolving after the revert pages nobody even if shakedown dies.
    #[serde(default = "defaults::silence_margin")]
    #[schemars(schema_with = "super::schema::duration_or_zero")]
    pub margin: Span,
}

/// One matcher, in Alertmanager's API v2 shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
}

impl SilenceMatcher {
    /// The operator, as the string form and Alertmanager's own UI write it.
    pub fn operator(&self) -> &'static str {
        match (self.is_equal, self.is_regex) {
            (true, false) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (false, true) => "!~",
        }
    }
}

/// `service=~"a|b"`: the string form, value quoted like a PromQL string.
impl fmt::Display for SilenceMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let escaped = self
            .value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        write!(f, "{}{}\"{escaped}\"", self.name, self.operator())
    }
}

/// The string form's grammar (`read/silence.rs` parses it).
pub const MATCHER_PATTERN: &str =
    r#"^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*("(\\.|[^"\\])*"|[^"\s]*)\s*$"#;

impl JsonSchema for SilenceMatcher {
    fn schema_name() -> Cow<'static, str> {
        "SilenceMatcher".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "oneOf": [
                {
                    "type": "object",
                    "description": "Alertmanager API v2 matcher",
                    "additionalProperties": false,
                    "required": ["name", "value"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
                        "value": {"type": "string"},
                        "isRegex": {"type": "boolean", "default": false},
                        "isEqual": {"type": "boolean", "default": true}
                    }
                },
                {
                    "type": "string",
                    "description": "name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\"",
                    "pattern": MATCHER_PATTERN
                }
            ]
        })
    }
}
