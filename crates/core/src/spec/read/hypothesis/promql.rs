//! A hypothesis's `promql:` query, checked with promql-parser (a port of Prometheus's own
//! grammar, function table and type checks) so that a typo is reported at validation time
//! with a position, instead of as a 400 from Prometheus in the middle of a game day.
//!
//! The parser decides what is valid; this module only says *where*. promql-parser reports
//! an error as a bare string without an offset, so `locate` finds the spot the message
//! names (the unknown function, the bad duration, the unclosed bracket) in the query, and
//! `source_pos` maps that byte offset back to a line and column in the YAML file. When
//! either step cannot be sure, the diagnostic points at the start of the query instead.
//!
//! It must not reach Prometheus or know which metrics exist: `rate(no_such_metric[1m])` is
//! valid here, and an empty result is the `noData` policy's business at run time.

use promql_parser::parser::{self, value::ValueType};

use crate::spec::decode::Decoder;
use crate::spec::node::{Node, Pos};

const SEE: &str = "see https://prometheus.io/docs/prometheus/latest/querying/basics/";

/// Queries longer than this are refused before parsing: promql-parser's work and stack
/// depth grow with nesting (`----…up`, `((((…))))`), and a 1 MiB file could otherwise hold
/// a query that overflows the stack. No hand-written hypothesis comes close.
const MAX_QUERY_BYTES: usize = 4096;

pub(in super::super) fn promql_query(d: &mut Decoder, node: &Node) -> Option<String> {
    let query = d.string(node, "promql")?;
    if query.len() > MAX_QUERY_BYTES {
        d.error(
            node.pos,
            format!(
                "PromQL query is {} bytes, over the limit of {MAX_QUERY_BYTES}",
                query.len()
            ),
            Some("move the bulk of it into a Prometheus recording rule".into()),
        );
        return None;
    }
    let start = query.len() - query.trim_start().len();
    match parser::parse(&query) {
        Err(problem) => {
            let offset = locate(&query, &problem);
            let pos = offset.map_or(node.pos, |at| at_offset(d, node, &query, at));
            d.error(pos, message(&query, &problem, offset), Some(SEE.into()));
            None
        }
        Ok(expr) => match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => Some(query.trim().to_owned()),
            ValueType::Matrix => {
                d.error(
                    at_offset(d, node, &query, start),
                    "PromQL returns a range vector, but hypotheses run instant queries",
                    Some(
                        "reduce the range over time, e.g. `rate(x[5m])` or `avg_over_time(x[5m])`"
                            .into(),
                    ),
                );
                None
            }
            ValueType::String => {
                d.error(
                    at_offset(d, node, &query, start),
                    "PromQL is a string literal, which `expect` cannot compare",
                    Some(
                        "query a number or an instant vector, e.g. `sum(rate(http_requests_total[1m]))`"
                            .into(),
                    ),
                );
                None
            }
        },
    }
}

fn at_offset(d: &Decoder, node: &Node, query: &str, offset: usize) -> Pos {
    source_pos(&d.file.text, node.pos, query, offset).unwrap_or(node.pos)
}

/// The parser's message on one line. Its only positionless complaint, "invalid promql
/// query", is a grammar error; when the query merely stops after an operator, say so.
fn message(query: &str, problem: &str, offset: Option<usize>) -> String {
    let problem = problem.split_whitespace().collect::<Vec<_>>().join(" ");
    if problem != "invalid promql query" {
        return format!("invalid PromQL: {problem}");
    }
    match offset {
        Some(at) => format!(
            "invalid PromQL: syntax error, nothing follows `{}`",
            query[at..].trim_end()
        ),
        None => "invalid PromQL: syntax error".into(),
    }
}

/// The byte offset in `query` of what `problem` complains about, when it can be told.
fn locate(query: &str, problem: &str) -> Option<usize> {
    let scan = Scan::new(query);
    if problem.starts_with("unclosed left parenthesis") {
        return scan.unclosed('(');
    }
    if problem.starts_with("unexpected end of input inside braces") {
        return scan.unclosed('{');
    }
    if problem.starts_with("unexpected end of input inside brackets") {
        return scan.unclosed('[');
    }
    if problem.starts_with("unterminated quoted string") {
        return scan.unterminated;
    }
    if problem.starts_with("unexpected right") {
        return scan.unmatched;
    }
    if problem == "invalid promql query" {
        return dangling_operator(query);
    }
    if let Some(token) = problem.strip_prefix("bad number or duration syntax: ") {
        return scan.token(token.trim());
    }
    // Names the parser quotes: `unknown function with name 'rat'`, `... function 'rate'`,
    // `set operator 'and' ...`, `unexpected identifier 'b' ...`.
    let quoted = problem.split('\'').nth(1)?;
    scan.token(quoted)
}

/// The operator a query ends with (`1 +`), which is what makes it incomplete.
fn dangling_operator(query: &str) -> Option<usize> {
    let trimmed = query.trim_end();
    let words = [
        "and", "or", "unless", "atan2", "by", "without", "on", "ignoring", "bool", "offset",
    ];
    let symbols = [
        "==", "!=", "<=", ">=", "=~", "!~", "+", "-", "*", "/", "%", "^", "<", ">", "@", ",",
    ];
    for op in symbols {
        if trimmed.ends_with(op) {
            return Some(trimmed.len() - op.len());
        }
    }
    let last_word = trimmed.rsplit(|c: char| !is_word(c)).next()?;
    words
        .contains(&last_word)
        .then(|| trimmed.len() - last_word.len())
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.'
}

/// One pass over a query that knows where string literals are, for pointing at brackets
/// and names outside them. It never judges validity.
struct Scan<'q> {
    query: &'q str,
    /// Byte ranges of string literals, quotes included.
    strings: Vec<(usize, usize)>,
    /// Openers never closed, with their offsets, outermost first.
    open: Vec<(char, usize)>,
    /// The first closer with no opener.
    unmatched: Option<usize>,
    /// The opening quote of a string that never ends.
    unterminated: Option<usize>,
}

impl<'q> Scan<'q> {
    fn new(query: &'q str) -> Self {
        let mut scan = Scan {
            query,
            strings: Vec::new(),
            open: Vec::new(),
            unmatched: None,
            unterminated: None,
        };
        let mut quote: Option<(char, usize)> = None;
        let mut escaped = false;
        let mut comment = false;
        for (i, c) in query.char_indices() {
            if comment {
                comment = c != '\n';
                continue;
            }
            if let Some((q, from)) = quote {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if q != '`' => escaped = true,
                    _ if c == q => {
                        scan.strings.push((from, i + 1));
                        quote = None;
                    }
                    _ => {}
                }
                continue;
            }
            match c {
                '#' => comment = true,
                '"' | '\'' | '`' => quote = Some((c, i)),
                '(' | '[' | '{' => scan.open.push((c, i)),
                ')' | ']' | '}' => {
                    let opener = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    if scan.open.last().is_some_and(|(o, _)| *o == opener) {
                        scan.open.pop();
                    } else if scan.unmatched.is_none() {
                        scan.unmatched = Some(i);
                    }
                }
                _ => {}
            }
        }
        scan.unterminated = quote.map(|(_, from)| from);
        scan
    }

    /// The innermost opener of this kind left open.
    fn unclosed(&self, opener: char) -> Option<usize> {
        self.open
            .iter()
            .rev()
            .find(|(o, _)| *o == opener)
            .map(|(_, at)| *at)
    }

    /// The first occurrence of `token` outside string literals, not inside a longer name.
    fn token(&self, token: &str) -> Option<usize> {
        if token.is_empty() {
            return None;
        }
        let bytes = self.query.as_bytes();
        let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        self.query
            .match_indices(token)
            .map(|(at, _)| at)
            .find(|&at| {
                let end = at + token.len();
                let in_string = self.strings.iter().any(|&(s, e)| at >= s && at < e);
                let joined_before = at > 0 && is_name(bytes[at - 1]) && is_name(bytes[at]);
                let joined_after =
                    end < bytes.len() && is_name(bytes[end]) && is_name(bytes[end - 1]);
                !in_string && !joined_before && !joined_after
            })
    }
}

/// Where byte `offset` of `query` (the value of the scalar at `at`) sits in `source`.
///
/// Exact when the text of the query up to the offset appears verbatim in the file: a plain
/// or quoted scalar on one line (up to its first escape), or a literal block (`|`), line
/// by line under its indentation. Otherwise (a `\"` or `''` escape before the offset,
/// a folded `>` block, a plain or quoted scalar wrapped over lines) the YAML value is not
/// the file's text and `None` sends the caller back to the scalar's own position.
fn source_pos(source: &str, at: Pos, query: &str, offset: usize) -> Option<Pos> {
    let before = query.get(..offset)?;
    let lines: Vec<&str> = source.lines().collect();
    let index = usize::try_from(at.line).ok()?.checked_sub(1)?;
    let skip = usize::try_from(at.col).ok()?.checked_sub(1)?;
    let first = lines.get(index)?;
    let rest: String = first.chars().skip(skip).collect();
    let chars = |s: &str| u32::try_from(s.chars().count()).ok();
    // serde-saphyr places a block scalar at its first content line, not at its `|`.
    let starts_line = first.chars().take(skip).all(char::is_whitespace);
    let header = block_header(&lines[..index]).filter(|_| starts_line);
    match (rest.chars().next()?, header) {
        ('|', _) => literal_block(lines.get(index + 1..)?, at.line + 1, before),
        (_, Some('|')) => literal_block(&lines[index..], at.line, before),
        ('>', _) | (_, Some(_)) => None,
        ('"' | '\'', _) => rest[1..].starts_with(before).then(|| Pos {
            line: at.line,
            col: at.col + 1 + chars(before).unwrap_or(0),
        }),
        _ => rest.starts_with(before).then(|| Pos {
            line: at.line,
            col: at.col + chars(before).unwrap_or(0),
        }),
    }
}

/// The style (`|` or `>`) of the block scalar header that ends the last non-blank line,
/// such as `promql: |-  # comment`.
fn block_header(preceding: &[&str]) -> Option<char> {
    let line = preceding.iter().rev().find(|l| !l.trim().is_empty())?;
    let code = line.split(" #").next().unwrap_or(line).trim_end();
    let last = code.rsplit(char::is_whitespace).next()?;
    let style = last.chars().next().filter(|c| matches!(c, '|' | '>'))?;
    last.chars()
        .skip(1)
        .all(|c| matches!(c, '+' | '-' | '1'..='9'))
        .then_some(style)
}

/// A literal block's value is its lines with the block's indentation removed, so value
/// line N is file line `first_line + N` (blank lines included) and keeps its columns.
fn literal_block(content: &[&str], first_line: u32, before: &str) -> Option<Pos> {
    let indent = content
        .iter()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())?;
    let value_line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let prefix = &before[line_start..];
    let text = content.get(value_line)?;
    if !text.get(indent..)?.starts_with(prefix) {
        return None;
    }
    Some(Pos {
        line: first_line + u32::try_from(value_line).ok()?,
        col: u32::try_from(indent + prefix.chars().count() + 1).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(query: &str) -> Option<String> {
        let problem = parser::parse(query).err()?;
        let at = locate(query, &problem)?;
        Some(query[at..].to_owned())
    }

    #[test]
    fn points_at_what_the_parser_names() {
        assert_eq!(located("rat(x[1m])").as_deref(), Some("rat(x[1m])"));
        assert_eq!(located("sum(irat(x[1m]))").as_deref(), Some("irat(x[1m]))"));
        assert_eq!(located("x[1x]").as_deref(), Some("1x]"));
        assert_eq!(located("1 +").as_deref(), Some("+"));
        assert_eq!(located("up and").as_deref(), Some("and"));
        assert_eq!(located("sum(a) / sum(b").as_deref(), Some("(b"));
        assert_eq!(located("up{a=\"(\"").as_deref(), Some("{a=\"(\""));
        assert_eq!(located("up)").as_deref(), Some(")"));
        assert_eq!(located("up{a='x}").as_deref(), Some("'x}"));
        assert_eq!(located("rate(up)").as_deref(), Some("rate(up)"));
        assert_eq!(located("rate_x + rate(up)").as_deref(), Some("rate(up)"));
    }

    fn check(query: &str) -> Result<String, String> {
        use crate::spec::diagnostic::SourceFile;
        use crate::spec::node::Value;
        let text = format!("promql: '{query}'\n");
        let mut d = Decoder::new(SourceFile::new(std::path::Path::new("s.yaml"), text));
        let node = Node {
            pos: Pos { line: 1, col: 9 },
            value: Value::Str(query.into()),
        };
        promql_query(&mut d, &node).ok_or_else(|| d.errors[0].headline())
    }

    #[test]
    fn accepts_instant_vectors_and_scalars_only() {
        assert_eq!(
            check(" sum(up) by (job) ").as_deref(),
            Ok("sum(up) by (job)")
        );
        assert!(check("time() - 1").is_ok());
        assert!(
            check("rate(up[5m])[10m:1m]")
                .unwrap_err()
                .contains("range vector")
        );
        assert!(check("(up[5m])").unwrap_err().contains("range vector"));
        assert!(check("\"up\"").unwrap_err().contains("string literal"));
    }

    /// promql-parser recurses once per nesting level; the size limit keeps the deepest
    /// query it lets through inside a 2 MiB thread stack (what test threads get).
    #[test]
    fn the_deepest_query_within_the_limit_does_not_overflow_the_stack() {
        let unary = format!("{}up", "-".repeat(MAX_QUERY_BYTES - 2));
        assert!(check(&unary).is_ok());
        let parens = format!("{}up{}", "(".repeat(2047), ")".repeat(2047));
        assert!(check(&parens).is_ok());
        let over = format!("{}up", "-".repeat(MAX_QUERY_BYTES));
        assert!(check(&over).unwrap_err().contains("over the limit of 4096"));
    }

    #[test]
    fn a_grammar_error_mid_query_has_no_position() {
        assert_eq!(located("foo bar"), None);
    }

    #[test]
    fn maps_offsets_in_each_scalar_style() {
        let at = |line, col| Pos { line, col };
        let plain = "promql: rat(x[1m])\n";
        assert_eq!(
            source_pos(plain, at(1, 9), "rat(x[1m])", 4),
            Some(at(1, 13))
        );
        let quoted = "promql: \"up{a='b'} +\"\n";
        assert_eq!(
            source_pos(quoted, at(1, 9), "up{a='b'} +", 10),
            Some(at(1, 20))
        );
        let escaped = "promql: \"up{a=\\\"b\\\"} +\"\n";
        assert_eq!(source_pos(escaped, at(1, 9), "up{a=\"b\"} +", 10), None);
        let block = "  promql: |\n    sum(a)\n\n      / rat(b)\n";
        let query = "sum(a)\n\n  / rat(b)\n";
        let offset = query.find("rat").unwrap();
        assert_eq!(source_pos(block, at(1, 11), query, offset), Some(at(4, 9)));
        assert_eq!(source_pos(block, at(2, 5), query, offset), Some(at(4, 9)));
        let chomped = "  promql: |-  # a comment\n    sum(a)\n      / rat(b)\n";
        let query = "sum(a)\n  / rat(b)";
        assert_eq!(source_pos(chomped, at(2, 5), query, 11), Some(at(3, 9)));
        let folded = "promql: >\n  sum(a)\n  / rat(b)\n";
        assert_eq!(source_pos(folded, at(1, 9), "sum(a) / rat(b)\n", 9), None);
        assert_eq!(source_pos(folded, at(2, 3), "sum(a) / rat(b)\n", 9), None);
    }
}
