//! The `silence` block of a scenario or experiment: its matchers (Alertmanager's API v2
//! objects, or the string form `name="value"`, `name!="value"`, `name=~"regex"`,
//! `name!~"regex"`), comment and margin. Everything Alertmanager would refuse is
//! refused here, with its place: a bad label name or regex, no matcher, matchers that
//! all match the empty string (a silence of every alert), and a silence with no
//! `alertmanager:` block to create it in.

use super::*;

/// `has_alertmanager`: this file or an enclosing experiment has an `alertmanager:` block.
pub(super) fn silence(d: &mut Decoder, node: &Node, has_alertmanager: bool) -> Option<Silence> {
    let mut m = d.map(node, "silence")?;
    let matchers = m.required(d, "matchers").and_then(|n| matchers(d, n));
    let comment = m.opt("comment").map(|n| d.string(n, "silence.comment"));
    let margin = m
        .opt("margin")
        .map(|n| d.duration(n, "silence.margin", true));
    m.finish(d);
    if !has_alertmanager {
        d.error(
            node.pos,
            "a silence needs an Alertmanager to be created in, and there is no `alertmanager:` block",
            Some(
                "add `alertmanager: {url: http://alertmanager:9093}` to this file or to the experiment that includes it"
                    .into(),
            ),
        );
        return None;
    }
    Some(Silence {
        matchers: matchers?,
        comment: optional(comment)?,
        margin: margin
            .unwrap_or(Some(defaults::silence_margin().0))
            .map(Span)?,
    })
}

fn matchers(d: &mut Decoder, node: &Node) -> Option<Vec<SilenceMatcher>> {
    let items = d.seq(node, "silence.matchers")?;
    if items.is_empty() {
        d.error(
            node.pos,
            "silence.matchers is empty",
            Some("name the alerts to silence, e.g. `alertname=\"CheckoutHighLatency\"`".into()),
        );
        return None;
    }
    let decoded: Vec<Option<SilenceMatcher>> = items.iter().map(|n| matcher(d, n)).collect();
    let decoded: Vec<SilenceMatcher> = decoded.into_iter().collect::<Option<_>>()?;
    if decoded.iter().all(matches_empty) {
        d.error(
            node.pos,
            "every matcher of this silence matches the empty string, so it would silence every alert",
            Some(
                "add a matcher that needs a value, e.g. `alertname=\"CheckoutHighLatency\"`; Alertmanager refuses such a silence too"
                    .into(),
            ),
        );
        return None;
    }
    Some(decoded)
}

fn matcher(d: &mut Decoder, node: &Node) -> Option<SilenceMatcher> {
    let matcher = match &node.value {
        Value::Str(text) => match parse_matcher(text) {
            Ok(m) => m,
            Err(problem) => {
                d.error(
                    node.pos,
                    format!("matcher `{text}`: {problem}"),
                    Some(
                        "write `name=\"value\"`, `name!=\"value\"`, `name=~\"regex\"` or `name!~\"regex\"`, or a mapping {name, value, isRegex, isEqual}"
                            .into(),
                    ),
                );
                return None;
            }
        },
        _ => {
            let mut m = d.map(node, "a silence matcher")?;
            let name = m
                .required(d, "name")
                .and_then(|n| d.string(n, "matcher name"));
            let value = m.required(d, "value").and_then(|n| match &n.value {
                // An empty value is a matcher (`team=""`: the label is absent).
                Value::Str(s) => Some(s.clone()),
                _ => d.string(n, "matcher value"),
            });
            let is_regex = m.opt("isRegex").map(|n| d.bool(n, "isRegex"));
            let is_equal = m.opt("isEqual").map(|n| d.bool(n, "isEqual"));
            m.finish(d);
            SilenceMatcher {
                name: name?,
                value: value?,
                is_regex: is_regex.unwrap_or(Some(false))?,
                is_equal: is_equal.unwrap_or(Some(true))?,
            }
        }
    };
    if !is_label_name(&matcher.name) {
        d.error(
            node.pos,
            format!("`{}` is not a valid label name", matcher.name),
            Some("letters, digits and `_`, not starting with a digit".into()),
        );
        return None;
    }
    if matcher.is_regex
        && let Err(e) = anchored(&matcher.value)
    {
        d.error(
            node.pos,
            format!("matcher `{matcher}`: invalid regex: {}", first_line(&e)),
            Some("Alertmanager matches the whole value with RE2 syntax".into()),
        );
        return None;
    }
    Some(matcher)
}

/// Alertmanager anchors a matcher's regex at both ends.
fn anchored(value: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| e.to_string())
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or(text)
        .to_owned()
}

fn matches_empty(m: &SilenceMatcher) -> bool {
    let hit = if m.is_regex {
        anchored(&m.value).is_ok_and(|re| re.is_match(""))
    } else {
        m.value.is_empty()
    };
    hit == m.is_equal
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The string form: `name`, an operator, and a value, double-quoted (with `\"`, `\\` and
/// `\n` escapes) or bare.
pub fn parse_matcher(text: &str) -> Result<SilenceMatcher, String> {
    let text = text.trim();
    let at = text
        .find(['=', '!'])
        .ok_or("no operator (`=`, `!=`, `=~` or `!~`)")?;
    let name = text[..at].trim();
    let rest = &text[at..];
    let (is_equal, is_regex, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (true, true, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (false, true, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (false, false, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (true, false, r)
    } else {
        return Err("no operator (`=`, `!=`, `=~` or `!~`)".into());
    };
    if name.is_empty() {
        return Err("no label name before the operator".into());
    }
    Ok(SilenceMatcher {
        name: name.to_owned(),
        value: unquote(rest.trim())?,
        is_regex,
        is_equal,
    })
}

fn unquote(raw: &str) -> Result<String, String> {
    let Some(inner) = raw.strip_prefix('"') else {
        if raw.contains(['"', ' ']) {
            return Err("a value with spaces or quotes must be double-quoted".into());
        }
        return Ok(raw.to_owned());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' if chars.as_str().is_empty() => return Ok(out),
            '"' => return Err("text after the closing quote".into()),
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(c @ ('"' | '\\')) => out.push(c),
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("the value's quote is not closed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn the_string_form_reads_every_operator_and_round_trips() {
        let pattern = regex::Regex::new(MATCHER_PATTERN).expect("pattern");
        for (text, want) in [
            (r#"alertname="X""#, m("alertname", "X", false, true)),
            (r#"service=~"a|b""#, m("service", "a|b", true, true)),
            (r#"env != "prod""#, m("env", "prod", false, false)),
            (r#"team!~"x.*""#, m("team", "x.*", true, false)),
            ("severity=page", m("severity", "page", false, true)),
            (r#"path="/a\"b\\c""#, m("path", r#"/a"b\c"#, false, true)),
        ] {
            let parsed = parse_matcher(text).expect(text);
            assert_eq!(parsed, want, "{text}");
            assert_eq!(parse_matcher(&parsed.to_string()), Ok(want), "{text}");
            assert!(pattern.is_match(text), "the schema refuses {text}");
        }
        for bad in ["alertname", r#"="x""#, r#"a="x"y"#, r#"a="open"#] {
            assert!(parse_matcher(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_silence_of_every_alert_is_recognised() {
        assert!(matches_empty(&m("team", "", false, true)));
        assert!(matches_empty(&m("team", ".*", true, true)));
        assert!(matches_empty(&m("team", "x", false, false)));
        assert!(!matches_empty(&m("alertname", "X", false, true)));
        assert!(!matches_empty(&m("service", "a|b", true, true)));
    }
}
