//! Kubernetes label and field selectors: parsing and matching.
//!
//! Pure code, shared by the spec validator (so a typo is caught before anything runs),
//! the planner, and the sandbox API server (which must filter exactly like a real one).
//! The grammar follows k8s.io/apimachinery `labels.Parse`: `k=v`, `k==v`, `k!=v`,
//! `k in (a,b)`, `k notin (a,b)`, `k` (exists) and `!k` (does not exist).
//!
//! Written by hand on purpose: no maintained crate parses Kubernetes selectors with
//! apimachinery's exact rules and error positions, and the sandbox must reject exactly
//! what a real API server rejects. kube-rs only builds selectors, it does not parse them.

use std::collections::BTreeMap;
use std::fmt;

/// A parse failure, with the character offset into the selector text where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectorError {
    pub offset: usize,
    pub message: String,
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, SelectorError> {
    Err(SelectorError {
        offset,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Operator,
    /// Sorted and deduplicated, so `Display` is canonical.
    pub values: Vec<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.contains(v))
            }
        }
    }
}

/// A parsed label selector. The empty selector matches everything, as in Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut lexer = Lexer::new(text);
        let mut requirements = Vec::new();
        if lexer.peek_token().is_none() {
            return Ok(Self::default());
        }
        loop {
            requirements.push(parse_requirement(&mut lexer)?);
            match lexer.next_token() {
                None => break,
                Some((_, Token::Comma)) => continue,
                Some((at, token)) => {
                    return fail(
                        at,
                        format!("expected `,` or end of selector, found {token}"),
                    );
                }
            }
        }
        Ok(Self { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r.op {
                Operator::Exists => write!(f, "{}", r.key)?,
                Operator::DoesNotExist => write!(f, "!{}", r.key)?,
                Operator::Equals => write!(f, "{}={}", r.key, r.values[0])?,
                Operator::NotEquals => write!(f, "{}!={}", r.key, r.values[0])?,
                Operator::In => write!(f, "{} in ({})", r.key, r.values.join(","))?,
                Operator::NotIn => write!(f, "{} notin ({})", r.key, r.values.join(","))?,
            }
        }
        Ok(())
    }
}

fn parse_requirement(lexer: &mut Lexer) -> Result<Requirement, SelectorError> {
    let (at, token) = lexer.next_token().ok_or_else(|| SelectorError {
        offset: lexer.len,
        message: "expected a label key".into(),
    })?;
    let (key_at, key, negated) = match token {
        Token::Bang => match lexer.next_token() {
            Some((at, Token::Word(key))) => (at, key, true),
            _ => return fail(at + 1, "expected a label key after `!`"),
        },
        Token::Word(key) => (at, key, false),
        other => return fail(at, format!("expected a label key, found {other}")),
    };
    validate_key(&key).map_err(|m| SelectorError {
        offset: key_at,
        message: m,
    })?;
    if negated {
        return Ok(Requirement {
            key,
            op: Operator::DoesNotExist,
            values: vec![],
        });
    }
    let op = match lexer.peek_token() {
        None | Some((_, Token::Comma)) => {
            return Ok(Requirement {
                key,
                op: Operator::Exists,
                values: vec![],
            });
        }
        Some((_, Token::Eq | Token::EqEq)) => Operator::Equals,
        Some((_, Token::NotEq)) => Operator::NotEquals,
        Some((_, Token::Word(w))) if w == "in" => Operator::In,
        Some((_, Token::Word(w))) if w == "notin" => Operator::NotIn,
        Some((at, other)) => {
            return fail(
                at,
                format!("unknown operator {other} (valid: =, ==, !=, in, notin)"),
            );
        }
    };
    lexer.next_token();
    let values = match op {
        Operator::In | Operator::NotIn => parse_value_set(lexer)?,
        _ => vec![parse_single_value(lexer)?],
    };
    Ok(Requirement { key, op, values })
}

fn parse_single_value(lexer: &mut Lexer) -> Result<String, SelectorError> {
    match lexer.peek_token() {
        // `key=` selects the empty value, exactly like kubectl.
        None | Some((_, Token::Comma)) => Ok(String::new()),
        Some((at, Token::Word(value))) => {
            lexer.next_token();
            validate_value(&value).map_err(|m| SelectorError {
                offset: at,
                message: m,
            })?;
            Ok(value)
        }
        Some((at, other)) => fail(at, format!("expected a label value, found {other}")),
    }
}

fn parse_value_set(lexer: &mut Lexer) -> Result<Vec<String>, SelectorError> {
    match lexer.next_token() {
        Some((_, Token::Open)) => {}
        Some((at, other)) => {
            return fail(
                at,
                format!("expected `(` to start a value set, found {other}"),
            );
        }
        None => return fail(lexer.len, "expected `(` to start a value set"),
    }
    let mut values = Vec::new();
    loop {
        match lexer.next_token() {
            Some((at, Token::Word(value))) => {
                validate_value(&value).map_err(|m| SelectorError {
                    offset: at,
                    message: m,
                })?;
                values.push(value);
            }
            Some((at, other)) => return fail(at, format!("expected a label value, found {other}")),
            None => return fail(lexer.len, "unclosed value set: expected `)`"),
        }
        match lexer.next_token() {
            Some((_, Token::Comma)) => continue,
            Some((_, Token::Close)) => break,
            Some((at, other)) => return fail(at, format!("expected `,` or `)`, found {other}")),
            None => return fail(lexer.len, "unclosed value set: expected `)`"),
        }
    }
    values.sort();
    values.dedup();
    Ok(values)
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters that starts and ends alphanumeric, with `-`, `_`, `.` inside.
pub fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !valid {
            return Err(format!(
                "invalid label key prefix `{prefix}` (a lowercase DNS subdomain such as `app.kubernetes.io`)"
            ));
        }
    }
    if name.is_empty() || !is_qualified_name(name) {
        return Err(format!(
            "invalid label key `{key}` (at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric, with an optional `prefix/`)"
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters with the same shape as a key's name.
pub fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_qualified_name(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value `{value}` (at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric)"
        ))
    }
}

fn is_qualified_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    s.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Comma,
    Open,
    Close,
    Bang,
    Eq,
    EqEq,
    NotEq,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "`{w}`"),
            Token::Comma => f.write_str("`,`"),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
            Token::Bang => f.write_str("`!`"),
            Token::Eq => f.write_str("`=`"),
            Token::EqEq => f.write_str("`==`"),
            Token::NotEq => f.write_str("`!=`"),
        }
    }
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    len: usize,
    peeked: Option<Option<(usize, Token)>>,
}

impl Lexer {
    fn new(text: &str) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let len = chars.len();
        Self {
            chars,
            at: 0,
            len,
            peeked: None,
        }
    }

    fn peek_token(&mut self) -> Option<(usize, Token)> {
        if self.peeked.is_none() {
            self.peeked = Some(self.scan());
        }
        self.peeked.clone().flatten()
    }

    fn next_token(&mut self) -> Option<(usize, Token)> {
        match self.peeked.take() {
            Some(token) => token,
            None => self.scan(),
        }
    }

    fn scan(&mut self) -> Option<(usize, Token)> {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
        let start = self.at;
        let c = *self.chars.get(start)?;
        let next = self.chars.get(start + 1).copied();
        let (token, width) = match (c, next) {
            (',', _) => (Token::Comma, 1),
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            ('!', Some('=')) => (Token::NotEq, 2),
            ('!', _) => (Token::Bang, 1),
            ('=', Some('=')) => (Token::EqEq, 2),
            ('=', _) => (Token::Eq, 1),
            _ => {
                let mut end = start;
                while self
                    .chars
                    .get(end)
                    .is_some_and(|c| !c.is_whitespace() && !",()!=".contains(*c))
                {
                    end += 1;
                }
                let word: String = self.chars[start..end].iter().collect();
                (Token::Word(word), end - start)
            }
        };
        self.at = start + width;
        Some((start, token))
    }
}

/// One `field=value` or `field!=value` term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub negated: bool,
    pub value: String,
}

/// A parsed field selector (`status.phase=Running,spec.nodeName!=node-1`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        let mut offset = 0;
        for term in text.split(',') {
            let trimmed = term.trim();
            let term_at = offset + (term.len() - term.trim_start().len());
            offset += term.chars().count() + 1;
            if trimmed.is_empty() {
                if text.trim().is_empty() {
                    break;
                }
                return fail(term_at, "empty term in field selector");
            }
            let (field, negated, value) = if let Some((f, v)) = trimmed.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = trimmed.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = trimmed.split_once('=') {
                (f, false, v)
            } else {
                return fail(
                    term_at,
                    format!("`{trimmed}` is not `field=value` or `field!=value`"),
                );
            };
            if field.trim().is_empty() {
                return fail(term_at, "missing field name before the operator");
            }
            requirements.push(FieldRequirement {
                field: field.trim().to_owned(),
                negated,
                value: value.trim().to_owned(),
            });
        }
        Ok(Self { requirements })
    }

    /// Matches against a lookup of field values; an unknown field has the empty value.
    pub fn matches(&self, field_value: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field_value(&r.field).unwrap_or_default();
            (actual == r.value) != r.negated
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if r.negated { "!=" } else { "=" };
            write!(f, "{}{op}{}", r.field, r.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_the_full_grammar() {
        let s = LabelSelector::parse(
            "app=web, tier==front,env!=prod,zone in (a, b),track notin (canary),release,!legacy",
        )
        .unwrap();
        assert_eq!(s.requirements.len(), 7);
        assert_eq!(
            s.to_string(),
            "app=web,tier=front,env!=prod,zone in (a,b),track notin (canary),release,!legacy"
        );
        let ops: Vec<_> = s.requirements.iter().map(|r| r.op.clone()).collect();
        assert_eq!(
            ops,
            vec![
                Operator::Equals,
                Operator::Equals,
                Operator::NotEquals,
                Operator::In,
                Operator::NotIn,
                Operator::Exists,
                Operator::DoesNotExist
            ]
        );
    }

    #[test]
    fn matching_follows_kubernetes_semantics() {
        let pod = labels(&[("app", "web"), ("zone", "a")]);
        let yes = [
            "app=web",
            "app in (web,api)",
            "env!=prod",
            "track notin (canary)",
            "zone",
            "!legacy",
            "",
        ];
        let no = [
            "app=api",
            "app notin (web)",
            "zone!=a",
            "env",
            "!app",
            "env in (prod)",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).unwrap().matches(&pod),
                "{s} should match"
            );
        }
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(&pod),
                "{s} should not match"
            );
        }
    }

    #[test]
    fn rejects_bad_syntax_with_an_offset() {
        let cases = [
            ("app in web", 7),
            ("app in (web", 11),
            ("app ~ web", 4),
            ("-app=web", 0),
            ("app=web,", 8),
            ("app=we b", 7),
            ("Bad_Prefix/app=x", 0),
            ("app=-x", 4),
        ];
        for (text, offset) in cases {
            let err = LabelSelector::parse(text).unwrap_err();
            assert_eq!(err.offset, offset, "{text}: {err}");
        }
    }

    #[test]
    fn field_selectors_parse_and_match() {
        let s = FieldSelector::parse("status.phase=Running,spec.nodeName!=node-1").unwrap();
        let lookup = |phase: &'static str, node: &'static str| {
            move |f: &str| match f {
                "status.phase" => Some(phase.to_string()),
                "spec.nodeName" => Some(node.to_string()),
                _ => None,
            }
        };
        assert!(s.matches(lookup("Running", "node-2")));
        assert!(!s.matches(lookup("Running", "node-1")));
        assert!(!s.matches(lookup("Pending", "node-2")));
        assert_eq!(s.to_string(), "status.phase=Running,spec.nodeName!=node-1");
        assert!(FieldSelector::parse("status.phase").is_err());
        assert!(FieldSelector::parse("").unwrap().requirements.is_empty());
    }
}
