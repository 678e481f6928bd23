//! A small toolkit for turning a located YAML tree into typed values while collecting
//! *every* problem, instead of stopping at the first like serde would.
//!
//! Decoders return `Option<T>`: `None` means "a diagnostic was recorded, keep going".

use std::sync::Arc;
use std::time::Duration;

use super::diagnostic::{Diagnostic, SourceFile, did_you_mean};
use super::duration::parse_duration;
use super::node::{Node, Pos, Value};

pub struct Decoder {
    pub file: Arc<SourceFile>,
    pub errors: Vec<Diagnostic>,
}

impl Decoder {
    pub fn new(file: Arc<SourceFile>) -> Self {
        Self {
            file,
            errors: Vec::new(),
        }
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<Option<String>>) {
        let diagnostic = self.file.diagnostic(pos, message, hint.into());
        self.errors.push(diagnostic);
    }

    /// [`error`](Self::error) for a value that holds a credential: the diagnostic names the
    /// place but does not quote the source line, which would print the credential.
    pub fn secret_error(
        &mut self,
        pos: Pos,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        let mut diagnostic = self.file.diagnostic(pos, message, hint.into());
        diagnostic.line_text = None;
        self.errors.push(diagnostic);
    }

    /// Opens a mapping, or records "expected a mapping".
    pub fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<MapReader<'n>> {
        match &node.value {
            Value::Map(entries) => {
                let mut keys = Vec::with_capacity(entries.len());
                for (key, _) in entries {
                    match &key.value {
                        Value::Str(s) => keys.push(Some(s.as_str())),
                        other => {
                            self.error(
                                key.pos,
                                format!("keys in {what} must be strings, found {}", other.kind()),
                                None,
                            );
                            keys.push(None);
                        }
                    }
                }
                Some(MapReader {
                    pos: node.pos,
                    what: what.to_owned(),
                    entries,
                    keys,
                    known: Vec::new(),
                })
            }
            other => {
                self.error(
                    node.pos,
                    format!("{what} must be a mapping, found {}", other.kind()),
                    None,
                );
                None
            }
        }
    }

    pub fn seq<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            other => {
                self.error(
                    node.pos,
                    format!("{what} must be a list, found {}", other.kind()),
                    None,
                );
                None
            }
        }
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) if s.trim().is_empty() => {
                self.error(node.pos, format!("{what} must not be empty"), None);
                None
            }
            Value::Str(s) => Some(s.clone()),
            other => {
                self.error(
                    node.pos,
                    format!("{what} must be a string, found {}", other.kind()),
                    quote_hint(other),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    node.pos,
                    format!("{what} must be true or false, found {}", other.kind()),
                    None,
                );
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn int(&mut self, node: &Node, what: &str, min: i64, max: i64) -> Option<i64> {
        match &node.value {
            Value::Int(n) if (min..=max).contains(n) => Some(*n),
            Value::Int(n) => {
                self.error(
                    node.pos,
                    format!("{what} is {n}, out of range"),
                    Some(format!("between {min} and {max}")),
                );
                None
            }
            other => {
                self.error(
                    node.pos,
                    format!("{what} must be an integer, found {}", other.kind()),
                    Some(format!("between {min} and {max}")),
                );
                None
            }
        }
    }

    /// A percentage in 0..=100, written `30`, `30%` or `12.5%`. Fractions like `0.3` are
    /// refused because at 2 a.m. nobody can tell whether that meant 0.3 % or 30 %.
    pub fn percent(&mut self, node: &Node, what: &str) -> Option<f64> {
        let valid = "a percentage such as `30%` or `30`, between 0 and 100";
        let value = match &node.value {
            Value::Int(n) => *n as f64,
            Value::Float(f) if *f > 0.0 && *f < 1.0 => {
                self.error(
                    node.pos,
                    format!("{what} is {f}, which reads as a fraction"),
                    Some(format!("write percentages as `{}%`", f * 100.0)),
                );
                return None;
            }
            Value::Float(f) => *f,
            Value::Str(s) => match s
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
            {
                Some(v) => v,
                None => {
                    self.error(
                        node.pos,
                        format!("{what} `{s}` is not a percentage"),
                        Some(valid.into()),
                    );
                    return None;
                }
            },
            other => {
                self.error(
                    node.pos,
                    format!("{what} must be a percentage, found {}", other.kind()),
                    Some(valid.into()),
                );
                return None;
            }
        };
        if !(0.0..=100.0).contains(&value) || value.is_nan() {
            self.error(
                node.pos,
                format!("{what} is {value}%, out of range"),
                Some(valid.into()),
            );
            return None;
        }
        Some(value)
    }

    /// A duration such as `30s`, `2m`, `1h30m`, `500ms`; zero is refused when `allow_zero` is false.
    pub fn duration(&mut self, node: &Node, what: &str, allow_zero: bool) -> Option<Duration> {
        let hint = "a duration such as `30s`, `2m`, `1h30m` or `500ms`";
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(0) if allow_zero => return Some(Duration::ZERO),
            Value::Int(n) => {
                self.error(
                    node.pos,
                    format!("{what} `{n}` has no unit"),
                    Some(format!("write `{n}s` for seconds")),
                );
                return None;
            }
            other => {
                self.error(
                    node.pos,
                    format!("{what} must be a duration, found {}", other.kind()),
                    Some(hint.into()),
                );
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) if d.is_zero() && !allow_zero => {
                self.error(
                    node.pos,
                    format!("{what} must be greater than zero"),
                    Some(hint.into()),
                );
                None
            }
            Ok(d) => Some(d),
            Err(problem) => {
                self.error(
                    node.pos,
                    format!("{what} `{text}` is not a valid duration: {problem}"),
                    Some(hint.into()),
                );
                None
            }
        }
    }

    /// A string of a constrained shape (names that reach a shell or an API).
    pub fn shaped(
        &mut self,
        node: &Node,
        what: &str,
        noun: &str,
        valid: impl Fn(&str) -> bool,
        hint: &str,
    ) -> Option<String> {
        let text = self.string(node, what)?;
        if valid(&text) {
            return Some(text);
        }
        self.error(
            node.pos,
            format!("{what} `{text}` is not a valid {noun}"),
            Some(hint.to_owned()),
        );
        None
    }

    /// One of a fixed set of words, with a "did you mean" for near misses.
    pub fn one_of<'v>(&mut self, node: &Node, what: &str, valid: &[&'v str]) -> Option<&'v str> {
        let Value::Str(s) = &node.value else {
            self.error(
                node.pos,
                format!(
                    "{what} must be one of {}, found {}",
                    valid.join(", "),
                    node.value.kind()
                ),
                None,
            );
            return None;
        };
        if let Some(hit) = valid.iter().find(|v| **v == s.as_str()) {
            return Some(hit);
        }
        let hint = match did_you_mean(s, valid.iter().copied()) {
            Some(close) => format!("did you mean `{close}`? valid: {}", valid.join(", ")),
            None => format!("valid: {}", valid.join(", ")),
        };
        self.error(node.pos, format!("unknown {what} `{s}`"), Some(hint));
        None
    }

    /// A list of non-empty strings; a single string is accepted as a one-item list.
    pub fn string_list(&mut self, node: &Node, what: &str) -> Option<Vec<(Pos, String)>> {
        if let Value::Str(_) = node.value {
            return self.string(node, what).map(|s| vec![(node.pos, s)]);
        }
        let items = self.seq(node, what)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.string(item, &format!("each entry of {what}")) {
                Some(s) => out.push((item.pos, s)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

fn quote_hint(found: &Value) -> Option<String> {
    match found {
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            Some("quote it to make it a string".into())
        }
        _ => None,
    }
}

/// Reads a mapping key by key, remembering which keys were expected so that every
/// leftover key can be reported as unknown, with a suggestion.
pub struct MapReader<'n> {
    pub pos: Pos,
    what: String,
    entries: &'n [(Node, Node)],
    keys: Vec<Option<&'n str>>,
    known: Vec<&'static str>,
}

impl<'n> MapReader<'n> {
    /// The value of an optional key.
    pub fn get(&mut self, key: &'static str) -> Option<&'n Node> {
        self.known.push(key);
        self.keys
            .iter()
            .position(|k| *k == Some(key))
            .map(|i| &self.entries[i].1)
    }

    /// The value of an optional key that is not null (`key:` with nothing after it is absent).
    pub fn opt(&mut self, key: &'static str) -> Option<&'n Node> {
        self.get(key).filter(|n| n.value != Value::Null)
    }

    /// The value of a required key, or a "missing" diagnostic at the mapping.
    pub fn required(&mut self, d: &mut Decoder, key: &'static str) -> Option<&'n Node> {
        match self.get(key) {
            Some(node) if node.value == Value::Null => {
                d.error(
                    node.pos,
                    format!("`{key}` in {} has no value", self.what),
                    None,
                );
                None
            }
            Some(node) => Some(node),
            None => {
                d.error(
                    self.pos,
                    format!("missing required key `{key}` in {}", self.what),
                    None,
                );
                None
            }
        }
    }

    /// Whether the mapping has this key at all (registers it as known).
    pub fn has(&mut self, key: &'static str) -> bool {
        self.get(key).is_some()
    }

    /// The position of a key's name, for errors about the key itself.
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        self.keys
            .iter()
            .position(|k| *k == Some(key))
            .map(|i| self.entries[i].0.pos)
    }

    /// Reports every key nobody asked for.
    pub fn finish(self, d: &mut Decoder) {
        for (i, key) in self.keys.iter().enumerate() {
            let Some(key) = key else { continue };
            if self.known.contains(key) {
                continue;
            }
            let mut valid: Vec<&str> = self.known.clone();
            valid.sort_unstable();
            valid.dedup();
            let hint = match did_you_mean(key, valid.iter().copied()) {
                Some(close) => format!("did you mean `{close}`? valid keys: {}", valid.join(", ")),
                None => format!("valid keys: {}", valid.join(", ")),
            };
            let message = format!("unknown key `{key}` in {}", self.what);
            // `password: hunter2` where `passwordEnv` belongs: name it, do not quote it.
            if super::url::is_credential_name(key) {
                d.secret_error(self.entries[i].0.pos, message, Some(hint));
            } else {
                d.error(self.entries[i].0.pos, message, Some(hint));
            }
        }
    }
}
