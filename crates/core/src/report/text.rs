//! Text shaping shared by the renderers: removing what terminals and XML cannot take,
//! escaping for Markdown and XML, and formatting numbers, times and durations the same
//! way everywhere.

use jiff::Timestamp;

/// The one terminal- and report-safe form of text that came from users, the cluster or
/// Prometheus (names, labels, error messages): every character a terminal or a report
/// reader would act on is written out instead of passed through, so a name can neither
/// rewrite earlier lines nor reorder what is shown.
///
/// - C0 controls and DEL become `\x1b`-style escapes (an ANSI sequence shows as
///   `\x1b[31m`); tab and newline stay, CRLF becomes a newline and a lone CR is `\r`;
/// - C1 controls, bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069,
///   LRM, RLM, ALM), line and paragraph separators and U+FFFE/U+FFFF become `\u202e`-style
///   escapes: the JSON spelling, so a JSON document stays valid when its text is escaped.
///
/// Every renderer (JUnit, Markdown, SVG, summary, the event words on the terminal) and
/// the terminal print sites call this; the result is also valid XML 1.0 text.
pub fn clean(input: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            '\u{80}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{fffe}'
            | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            _ => out.push(c),
        }
    }
    out
}

/// [`clean`], on one line: newlines and tabs become single spaces.
pub fn clean_line(input: &str) -> String {
    let cleaned = clean(input);
    let mut out = String::with_capacity(cleaned.len());
    let mut last_space = false;
    for c in cleaned.trim().chars() {
        let space = c == '\n' || c == '\t' || c == ' ';
        if space {
            if !last_space {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
        last_space = space;
    }
    out
}

/// Escapes text for XML content and attribute values (after [`clean`]).
pub fn xml(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in clean(input).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text for a Markdown paragraph or table cell: one line, with Markdown and HTML
/// metacharacters escaped, so a hypothesis name can never open a link, a table column or
/// a tag.
pub fn md(input: &str) -> String {
    let mut out = String::new();
    for c in clean_line(input).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Inline code for a table cell: like [`md_code_text`], with `|` escaped (GFM splits
/// cells on it even inside code spans, and removes the backslash when rendering).
pub fn md_code(input: &str) -> String {
    code_span(&clean_line(input).replace('|', "\\|"))
}

/// Inline code outside tables: backticks cannot be escaped inside a code span, so the
/// fence is made longer than any run of backticks in the text.
pub fn md_code_text(input: &str) -> String {
    code_span(&clean_line(input))
}

fn code_span(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let fence = "`".repeat(longest_backtick_run(text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn longest_backtick_run(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// A fenced code block whose fence is longer than any backtick run in the text.
pub fn md_block(lang: &str, input: &str) -> String {
    let text = clean(input);
    let fence = "`".repeat(longest_backtick_run(&text).max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}\n", text.trim_end())
}

/// `a-z0-9` and dashes, for file names.
pub fn slug(input: &str) -> String {
    let mut out = String::new();
    for c in clean(input).chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(60).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    if trimmed.is_empty() {
        "x".into()
    } else {
        trimmed
    }
}

/// `850ms`, `9.0s`, `2m05s`, `1h02m`.
pub fn duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// `+1:05` from the run's start (`+1:02:03` past an hour).
pub fn offset(start: Option<Timestamp>, at: Timestamp) -> String {
    let Some(start) = start else {
        return "+?".into();
    };
    let secs = (at.as_millisecond() - start.as_millisecond()).max(0) / 1000;
    if secs >= 3600 {
        format!(
            "+{}:{:02}:{:02}",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60
        )
    } else {
        format!("+{}:{:02}", secs / 60, secs % 60)
    }
}

/// RFC 3339 in UTC, to the second (milliseconds only when present).
pub fn time(at: Timestamp) -> String {
    let ms = at.subsec_millisecond();
    let whole = Timestamp::from_second(at.as_second()).unwrap_or(at);
    let text = whole.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if ms == 0 {
        format!("{text}Z")
    } else {
        format!("{text}.{ms:03}Z")
    }
}

/// A number as people write it: shortest round-trip form, `NaN` for missing.
pub fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value != 0.0 && (value.abs() >= 1e9 || value.abs() < 1e-4) {
        format!("{value:e}")
    } else {
        let rounded = (value * 1e6).round() / 1e6;
        format!("{rounded}")
    }
}

/// Keeps the first `max` items; says how many were left out.
pub fn cap<T>(items: &[T], max: usize) -> (&[T], usize) {
    if items.len() > max {
        (&items[..max], items.len() - max)
    } else {
        (items, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_writes_out_ansi_controls_bidi_overrides_and_non_characters() {
        let dirty =
            "\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7} ok\u{1}\u{7f}\u{85}\u{fffe} ]]>\r\nx\ry";
        assert_eq!(
            clean(dirty),
            "\\x1b[31mred\\x1b[0m \\x1b]0;title\\x07 ok\\x01\\x7f\\u0085\\ufffe ]]>\nx\\ry"
        );
        assert_eq!(
            clean("invoice\u{202e}fdp.exe \u{2066}x\u{2069}\u{200f}"),
            "invoice\\u202efdp.exe \\u2066x\\u2069\\u200f"
        );
        assert_eq!(
            clean("tab\tand\nnewline, ünïcödé ✓"),
            "tab\tand\nnewline, ünïcödé ✓"
        );
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let shown = clean(&c.to_string());
            let control = c.is_control() && c != '\n' && c != '\t';
            assert!(!(control && shown.contains(c)), "{c:?} passed through");
        }
    }

    #[test]
    fn escaped_text_stays_valid_json_inside_a_json_string() {
        let json = serde_json::to_string(&"a\u{202e}b\u{85}c").unwrap();
        let escaped = clean(&json);
        assert_eq!(escaped, "\"a\\u202eb\\u0085c\"");
        let back: String = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, "a\u{202e}b\u{85}c");
    }

    #[test]
    fn markdown_escaping_keeps_tables_and_tags_intact() {
        assert_eq!(md("a|b <i>*x*</i>"), "a\\|b &lt;i&gt;\\*x\\*&lt;/i&gt;");
        assert_eq!(md_code("a`b"), "``a`b``");
    }

    #[test]
    fn numbers_durations_and_slugs() {
        assert_eq!(number(0.043), "0.043");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(duration(9_000), "9.0s");
        assert_eq!(duration(125_000), "2m05s");
        assert_eq!(
            slug("Checkout p95 latency < 300ms!"),
            "checkout-p95-latency-300ms"
        );
    }
}
