//! Validation errors a user can act on: `file:line:col: what is wrong (what would be valid)`,
//! followed by the offending line with a caret under the spot.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::node::Pos;

/// One problem found in a spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// What would be valid, when we can say.
    pub hint: Option<String>,
    /// The source line the position points into, for the snippet.
    pub line_text: Option<String>,
}

impl Diagnostic {
    /// The one-line form `file:line:col: message (hint)`.
    pub fn headline(&self) -> String {
        let mut out = format!(
            "{}:{}:{}: {}",
            self.path.display(),
            self.pos.line,
            self.pos.col,
            self.message
        );
        if let Some(hint) = &self.hint {
            out.push_str(&format!(" ({hint})"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.headline())?;
        if let Some(line) = &self.line_text {
            let number = self.pos.line.to_string();
            let gutter = " ".repeat(number.len());
            // Tabs would misalign the caret, so render them as single spaces.
            let shown: String = line
                .chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            let caret_at = (self.pos.col.max(1) - 1) as usize;
            writeln!(f, "{gutter} |")?;
            writeln!(f, "{number} | {shown}")?;
            writeln!(
                f,
                "{gutter} | {}^",
                " ".repeat(caret_at.min(shown.chars().count()))
            )?;
        }
        Ok(())
    }
}

/// Every problem found in one validation pass, in file and position order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn sorted(mut self) -> Self {
        self.0
            .sort_by(|a, b| (&a.path, a.pos).cmp(&(&b.path, b.pos)));
        self.0.dedup();
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The text of a spec file, kept so diagnostics can quote the offending line.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    pub fn line(&self, line: u32) -> Option<String> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        self.text.lines().nth(index).map(str::to_owned)
    }

    pub fn diagnostic(
        &self,
        pos: Pos,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            path: self.path.clone(),
            pos,
            message: message.into(),
            hint,
            line_text: self.line(pos.line),
        }
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
///
/// The distance is optimal string alignment: like Levenshtein, but a swap of two
/// neighbours (`nmae` for `name`) costs one edit, which is the commonest typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::osa_distance(&word_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["mode", "count", "percent", "selector"];
        assert_eq!(did_you_mean("modee", keys), Some("mode"));
        assert_eq!(did_you_mean("selecter", keys), Some("selector"));
        assert_eq!(did_you_mean("Count", keys), Some("count"));
        assert_eq!(did_you_mean("moed", keys), Some("mode"));
        assert_eq!(did_you_mean("banana", keys), None);
    }

    #[test]
    fn renders_headline_and_caret() {
        let file = SourceFile::new(Path::new("s.yaml"), "a: 1\n  modee: one\n".into());
        let d = file.diagnostic(
            Pos { line: 2, col: 3 },
            "unknown key `modee`",
            Some("did you mean `mode`?".into()),
        );
        let text = d.to_string();
        assert!(
            text.starts_with("error: s.yaml:2:3: unknown key `modee` (did you mean `mode`?)\n"),
            "{text}"
        );
        assert!(text.contains("2 |   modee: one\n  |   ^\n"), "{text}");
    }
}
