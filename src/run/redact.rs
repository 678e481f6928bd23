//! Secrets never leave the process: one [`Redactor`] holds every secret shakedown was
//! given, in every encoding it can travel in, and every output path asks it to scrub.
//!
//! The encodings of a secret `s` that are replaced by `***`:
//! - `s` itself (also inside the `Bearer s` header form);
//! - base64 of `s` (standard, unpadded and URL-safe);
//! - for basic auth, `user:password` and its base64 (the `Basic …` header value);
//! - percent-encoded `s` (`%2F` and `%2f`, and `+` for a space, as in a query string);
//! - JSON-escaped `s` (an error body quoting the request, `\"` and `\/`).
//!
//! Secrets shorter than [`MIN_SECRET_LEN`] characters are not scrubbed: replacing every
//! `ab` in a report would turn it into asterisks while protecting nothing (such a secret
//! is guessed, not leaked). [`register`] says so once on stderr, naming no value.
//!
//! The registry is process-wide on purpose: the bus (journal, live view, every report),
//! the `say!`/`out!` macros and the final error print all consult it, and a secret can
//! first be read deep inside a probe (a token file re-read after rotation). It only
//! ever grows, so scrubbing more than needed is the worst that can happen.
//!
//! Scrubbing an event walks its serialized form, so a field added to `RunEvent` later
//! is scrubbed without anyone remembering to. It must never log or return a secret.

use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};

use base64::Engine as _;
use base64::prelude::{BASE64_STANDARD, BASE64_STANDARD_NO_PAD, BASE64_URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::events::RunEvent;
use crate::report::text;

/// Shorter secrets are not scrubbed (see the module docs).
pub const MIN_SECRET_LEN: usize = 4;

/// What a scrubbed secret is replaced with.
pub const MASK: &str = "***";

/// Every configured secret, as the texts to replace: longest first, so an encoding that
/// contains another (`user:password` contains `password`) is replaced whole.
#[derive(Default)]
pub struct Redactor {
    patterns: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} patterns)", self.patterns.len())
    }
}

impl Redactor {
    /// Adds a secret in every encoding it can travel in; `false` when it is too short
    /// to be scrubbed (it is then not added).
    pub fn add(&mut self, secret: &str) -> bool {
        if secret.chars().count() < MIN_SECRET_LEN {
            return false;
        }
        for form in encodings(secret) {
            self.push(form);
        }
        true
    }

    /// Adds basic-auth credentials: the password alone, and `user:password` with its
    /// base64, which is what the `Authorization: Basic …` header carries.
    pub fn add_basic(&mut self, username: &str, password: &str) -> bool {
        let added = self.add(password);
        if !password.is_empty() {
            self.add(&format!("{username}:{password}"));
        }
        added
    }

    fn push(&mut self, form: String) {
        if form.chars().count() < MIN_SECRET_LEN || self.patterns.contains(&form) {
            return;
        }
        self.patterns.push(form);
        self.patterns
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` with every encoding of every secret replaced by [`MASK`].
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for pattern in &self.patterns {
            if out.contains(pattern.as_str()) {
                out = Cow::Owned(out.replace(pattern.as_str(), MASK));
            }
        }
        out
    }

    /// The event with every string in it (values, label names, messages) scrubbed. An
    /// event without a secret is returned as it was.
    pub fn scrub_event(&self, event: RunEvent) -> RunEvent {
        if self.is_empty() {
            return event;
        }
        let Ok(mut tree) = serde_json::to_value(&event) else {
            return event;
        };
        if !self.scrub_value(&mut tree) {
            return event;
        }
        match serde_json::from_value(tree) {
            Ok(scrubbed) => scrubbed,
            // Cannot happen for a tree that was an event with only strings changed; if it
            // ever did, nothing of the original may pass, so say only what it was.
            Err(_) => RunEvent::Note {
                level: crate::events::NoteLevel::Warning,
                message: format!("an event held a secret and was withheld ({MASK})"),
            },
        }
    }

    /// Scrubs every string and object key in place; `true` when anything changed.
    fn scrub_value(&self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => match self.scrub(s) {
                Cow::Owned(clean) => {
                    *s = clean;
                    true
                }
                Cow::Borrowed(_) => false,
            },
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.scrub_value(v) | changed),
            Value::Object(map) => {
                let mut changed = false;
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    changed |= self.scrub_value(&mut v);
                    let key = match self.scrub(&key) {
                        Cow::Owned(clean) => {
                            changed = true;
                            clean
                        }
                        Cow::Borrowed(_) => key,
                    };
                    map.insert(key, v);
                }
                changed
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
}

/// `secret` as it may appear in text shakedown did not write itself.
fn encodings(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let mut forms = vec![
        secret.to_owned(),
        BASE64_STANDARD.encode(bytes),
        BASE64_STANDARD_NO_PAD.encode(bytes),
        BASE64_URL_SAFE_NO_PAD.encode(bytes),
        percent_encoded(secret, true, false),
        percent_encoded(secret, false, false),
        percent_encoded(secret, true, true),
    ];
    if let Ok(quoted) = serde_json::to_string(secret) {
        let escaped = quoted[1..quoted.len() - 1].to_owned();
        forms.push(escaped.replace('/', "\\/"));
        forms.push(escaped);
    }
    forms
}

/// RFC 3986 percent-encoding of everything but the unreserved characters; `plus` writes
/// a space as `+`, as HTML forms and many query strings do.
fn percent_encoded(text: &str, upper: bool, plus: bool) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char);
            }
            b' ' if plus => out.push('+'),
            _ if upper => out.push_str(&format!("%{byte:02X}")),
            _ => out.push_str(&format!("%{byte:02x}")),
        }
    }
    out
}

static REGISTRY: RwLock<Redactor> = RwLock::new(Redactor {
    patterns: Vec::new(),
});

/// Registers a secret for the whole process. A secret too short to scrub is said once
/// on stderr (never its value), since it may then appear in output.
pub fn register(what: &str, secret: &str) {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if !secret.is_empty() && !registry.add(secret) {
        warn_short(what);
    }
}

/// Registers basic-auth credentials for the whole process (see [`Redactor::add_basic`]).
pub fn register_basic(what: &str, username: &str, password: &str) {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if !password.is_empty() && !registry.add_basic(username, password) {
        warn_short(what);
    }
}

fn warn_short(what: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "shakedown: warning: {what} is shorter than {MIN_SECRET_LEN} characters and cannot be scrubbed from output"
        );
    });
}

/// `text` scrubbed of every registered secret.
pub fn scrub(text: &str) -> Cow<'_, str> {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .scrub(text)
}

/// The event scrubbed of every registered secret (see [`Redactor::scrub_event`]).
pub fn scrub_event(event: RunEvent) -> RunEvent {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .scrub_event(event)
}

/// Text for a terminal: scrubbed, then with every control character a terminal would
/// act on written out (`report::text::clean`, the renderers' one escaping function).
pub fn for_terminal(text: &str) -> String {
    text::clean(&scrub(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{NoteLevel, ProbeSample, SampleOutcome, SeriesValue};
    use crate::spec::Phase;

    #[test]
    fn every_encoding_of_a_secret_is_masked() {
        let mut r = Redactor::default();
        r.add("to/ken s3cret+\"x\"");
        let secret = "to/ken s3cret+\"x\"";
        for form in [
            secret.to_owned(),
            BASE64_STANDARD.encode(secret),
            BASE64_URL_SAFE_NO_PAD.encode(secret),
            "to%2Fken%20s3cret%2B%22x%22".to_owned(),
            "to%2fken%20s3cret%2b%22x%22".to_owned(),
            "to%2Fken+s3cret%2B%22x%22".to_owned(),
            r#"to/ken s3cret+\"x\""#.to_owned(),
            r#"to\/ken s3cret+\"x\""#.to_owned(),
        ] {
            let text = format!("echo: Bearer {form} end");
            assert_eq!(r.scrub(&text), "echo: Bearer *** end", "{form}");
        }
    }

    #[test]
    fn basic_auth_is_masked_as_the_pair_and_its_header_value() {
        let mut r = Redactor::default();
        r.add_basic("alice", "hunter22");
        let header = format!("Basic {}", BASE64_STANDARD.encode("alice:hunter22"));
        assert_eq!(r.scrub(&header), "Basic ***");
        assert_eq!(r.scrub("alice:hunter22@proxy"), "***@proxy");
        assert_eq!(r.scrub("password hunter22"), "password ***");
        assert_eq!(r.scrub("alice is a user"), "alice is a user");
    }

    #[test]
    fn short_secrets_are_not_scrubbed_and_say_so() {
        let mut r = Redactor::default();
        assert!(!r.add("abc"));
        assert!(r.is_empty());
        assert_eq!(r.scrub("abc abcd"), "abc abcd");
        assert!(r.add("abcd"));
        assert_eq!(r.scrub("abc abcd"), "abc ***");
    }

    #[test]
    fn events_are_scrubbed_in_every_string_and_label_name_and_left_alone_otherwise() {
        let mut r = Redactor::default();
        r.add("tok-12345");
        let sample = RunEvent::ProbeSample(ProbeSample {
            step: Some("1".into()),
            hypothesis: "h".into(),
            phase: Phase::During,
            eval_time: jiff::Timestamp::UNIX_EPOCH,
            query: "up".into(),
            values: vec![SeriesValue {
                labels: [("tok-12345".to_owned(), "x tok-12345 y".to_owned())].into(),
                value: Some(1.0),
            }],
            outcome: SampleOutcome::Pass,
            detail: Some("warning: tok-12345".into()),
        });
        let RunEvent::ProbeSample(s) = r.scrub_event(sample) else {
            panic!("not a sample");
        };
        assert_eq!(
            s.values[0].labels.get("***").map(String::as_str),
            Some("x *** y")
        );
        assert_eq!(s.detail.as_deref(), Some("warning: ***"));
        // Infinity does not survive JSON: an event without a secret must not be touched.
        let inf = RunEvent::ProbeSample(ProbeSample {
            step: None,
            hypothesis: "h".into(),
            phase: Phase::During,
            eval_time: jiff::Timestamp::UNIX_EPOCH,
            query: "up".into(),
            values: vec![SeriesValue {
                labels: Default::default(),
                value: Some(f64::INFINITY),
            }],
            outcome: SampleOutcome::Pass,
            detail: None,
        });
        assert_eq!(r.scrub_event(inf.clone()), inf);
        let note = RunEvent::Note {
            level: NoteLevel::Info,
            message: "nothing secret".into(),
        };
        assert_eq!(r.scrub_event(note.clone()), note);
    }
}
