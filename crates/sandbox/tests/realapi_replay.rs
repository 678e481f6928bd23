//! Replays what a real kube-apiserver 1.32 answered (`tests/realapi/*.txt`, recorded
//! side by side with the sandbox; see `tests/realapi/README.md`) against a sandbox
//! seeded with the same shop, and checks that the sandbox answers the same way: the
//! status code, the Status `reason`, `code` and `causes`, the `message` (up to names,
//! uids and large numbers, which differ between two clusters), the `Warning` and
//! `Retry-After` headers, and the shape of the body (its keys, `kind` and
//! `apiVersion`). Volatile values (uids, timestamps, resourceVersions) are not compared.
//!
//! The recorder cut request lines at 400 characters and answer lines at 600, and left
//! out a few requests; such cases are completed here (`supplement`), and a completed
//! body must start with what was recorded. Truncated answers are compared as far as
//! they go. The few cases that cannot be expressed are listed in `CANNOT`, with why.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{DEADLINE, fast_shop, raw};
use serde_json::{Value, json};
use shakedown_sandbox::{self as sandbox, SandboxHandle, config::PdbConfig};

/// How long the sandbox under test waits on a too-new resourceVersion (3 s on a
/// real server); short so the test stays fast.
const FUTURE_RV_WAIT: Duration = Duration::from_millis(300);

/// Cases the replay cannot express, and why. The test fails if this list and what
/// the replay found disagree, so it cannot silently grow.
const CANNOT: &[(&str, &str)] = &[
    (
        "watch sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true (streaming list), event types",
        "the recording keeps only the real answer's event types ([\"ERROR\",\"Status\"]): what the real server refused (its Status message and reason) is not recorded, so there is nothing to match; the sandbox serves the streaming list as KEP-3157 specifies",
    ),
    (
        "SSAR as the shakedown ServiceAccount: denied verb (delete nodes) [real only; the sandbox has no authentication]",
        "no request was recorded, and the answer depends on the caller's identity: the sandbox authenticates nobody (RBAC is issue 13, deliverable 7)",
    ),
    (
        "SSAR as the SA: allowed verb (patch pods/ephemeralcontainers in shop)",
        "no request was recorded, and the answer depends on the caller's identity: the sandbox authenticates nobody (RBAC is issue 13, deliverable 7)",
    ),
    (
        "node cordon merge patch with a bogus field (unschedulable: \"yes\")",
        "the recording named node-b-1, which the real cluster does not have (its 404 says so); h7b.txt repeats the request against an existing node",
    ),
];

// ---------------------------------------------------------------------------------
// The recorded files

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    content_type: Option<String>,
    body: String,
}

#[derive(Debug, Clone, Default)]
struct Answer {
    code: Option<u16>,
    headers: Vec<(String, String)>,
    lines: Vec<String>,
}

#[derive(Debug)]
struct Recorded {
    file: &'static str,
    title: String,
    request: Option<Request>,
    /// The recorder cut the request line: its body is incomplete.
    request_cut: bool,
    real: Option<Answer>,
    /// Every line of the case, for the few answers that are not HTTP exchanges.
    lines: Vec<String>,
}

const FILES: &[(&str, &str)] = &[
    ("h1-rv.txt", include_str!("realapi/h1-rv.txt")),
    ("h1b-paging.txt", include_str!("realapi/h1b-paging.txt")),
    ("h2-watch.txt", include_str!("realapi/h2-watch.txt")),
    ("h3-evict.txt", include_str!("realapi/h3-evict.txt")),
    ("h3b-pdb.txt", include_str!("realapi/h3b-pdb.txt")),
    ("h4-ephemeral.txt", include_str!("realapi/h4-ephemeral.txt")),
    ("h5-ssar.txt", include_str!("realapi/h5-ssar.txt")),
    ("h6-events.txt", include_str!("realapi/h6-events.txt")),
    ("h7-patch.txt", include_str!("realapi/h7-patch.txt")),
    ("h7b.txt", include_str!("realapi/h7b.txt")),
];

/// The recorder's line limits.
const REQUEST_LINE_CUT: usize = 400;

fn parse_file(file: &'static str, text: &str) -> Vec<Recorded> {
    let mut cases = Vec::new();
    for section in text.split("\n### ").map(|s| s.trim_start_matches("### ")) {
        let mut lines = section.lines();
        let Some(title) = lines.next() else { continue };
        let lines: Vec<String> = lines.map(str::to_owned).collect();
        let request_end = lines
            .iter()
            .position(|l| l.starts_with("--- "))
            .unwrap_or(lines.len());
        let request_text = lines[..request_end].join("\n");
        let request_cut = lines[..request_end]
            .first()
            .is_some_and(|l| l.chars().count() >= REQUEST_LINE_CUT);
        let request = request_text
            .strip_prefix("$ ")
            // The one placeholder with a space in it would split the request line.
            .map(|r| parse_request(&r.trim_end_matches(' ').replace("<frontend pod>", "@POD@")));
        let real = lines
            .iter()
            .position(|l| l == "--- real:")
            .map(|i| parse_answer(&lines[i + 1..]));
        cases.push(Recorded {
            file,
            title: title.to_owned(),
            request,
            request_cut,
            real,
            lines,
        });
    }
    cases
}

/// `METHOD PATH`, then `body: …` or curl's `-H K:V` and `-d …` / `--data-binary …`.
fn parse_request(text: &str) -> Request {
    let (method, rest) = text.split_once(' ').unwrap_or((text, ""));
    let (path, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut content_type = None;
    let mut body = String::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if let Some(b) = rest.strip_prefix("body: ") {
            content_type = Some("application/json".to_owned());
            body = b.to_owned();
            break;
        } else if let Some(h) = rest.strip_prefix("-H ") {
            let (header, tail) = h.split_once(' ').unwrap_or((h, ""));
            if let Some(ct) = header.strip_prefix("Content-Type:") {
                content_type = Some(ct.to_owned());
            }
            rest = tail;
        } else if let Some(b) = rest
            .strip_prefix("-d ")
            .or_else(|| rest.strip_prefix("--data-binary "))
        {
            body = if b == "@/dev/null" {
                String::new()
            } else {
                b.trim_end_matches('\n').to_owned() + if b.contains('\n') { "\n" } else { "" }
            };
            break;
        } else {
            break;
        }
    }
    Request {
        method: method.to_owned(),
        path: path.to_owned(),
        content_type,
        body,
    }
}

fn parse_answer(lines: &[String]) -> Answer {
    let mut answer = Answer::default();
    let mut rest = lines;
    if let Some(status) = rest.first().and_then(|l| l.strip_prefix("HTTP/1.1 ")) {
        answer.code = status.get(..3).and_then(|c| c.parse().ok());
        rest = &rest[1..];
        while let Some(line) = rest.first() {
            match line.split_once(": ") {
                Some((k, v)) if !line.starts_with(['{', '[']) => {
                    answer.headers.push((k.to_ascii_lowercase(), v.to_owned()));
                    rest = &rest[1..];
                }
                _ => break,
            }
        }
    }
    answer.lines = rest
        .iter()
        .filter(|l| !l.is_empty())
        .map(String::clone)
        .collect();
    answer
}

impl Answer {
    /// The body as JSON: a pretty-printed document, or the first line (a JSON
    /// document, or the first event of a watch). Cut documents are closed (`prefix`).
    fn json(&self) -> Option<Value> {
        if self.lines.first().is_some_and(|l| l == "{") {
            let end = self.lines.iter().position(|l| l == "}");
            let text = match end {
                Some(end) => self.lines[..=end].join("\n"),
                None => self.lines.join("\n"),
            };
            return prefix(&text);
        }
        prefix(self.lines.first()?)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------
// Comparing shapes

/// Marks a container the recorder cut: only what it shows is compared.
const CUT: &str = "\u{1}cut";

/// A JSON document, or the longest well-formed prefix of a cut one, with every
/// container that was cut open marked with `CUT`.
fn prefix(text: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str(text) {
        return Some(v);
    }
    let mut stack: Vec<u8> = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    // Where the text may be cut and closed: (byte, open containers, innermost has members).
    let mut best: Option<(usize, Vec<u8>, bool)> = None;
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                stack.push(b);
                best = Some((i + 1, stack.clone(), false));
            }
            b'}' | b']' => {
                stack.pop();
                if !stack.is_empty() {
                    best = Some((i + 1, stack.clone(), true));
                }
            }
            b',' => best = Some((i, stack.clone(), true)),
            _ => {}
        }
    }
    let (cut, stack, has_members) = best?;
    let mut closed = text[..cut].to_owned();
    let marker = json!(CUT).to_string();
    for (depth, open) in stack.iter().enumerate().rev() {
        if depth + 1 < stack.len() || has_members {
            closed.push(',');
        }
        if *open == b'{' {
            closed.push_str(&format!("{marker}:true}}"));
        } else {
            closed.push_str(&format!("{marker}]"));
        }
    }
    serde_json::from_str(&closed).ok()
}

/// Keys the sandbox does not simulate, whatever their value.
const NOT_SIMULATED: &[&str] = &["managedFields"];
/// Maps whose keys are data (what a user labelled), not shape.
const DATA_MAPS: &[&str] = &["labels", "annotations"];
/// Inside a Status, these are compared by value.
const STATUS_VALUES: &[&str] = &[
    "status",
    "reason",
    "code",
    "message",
    "field",
    "type",
    "name",
    "group",
    "kind",
    "retryAfterSeconds",
];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences between the real answer's shape and the sandbox's, as readable lines.
fn compare(real: &Value, got: &Value, path: &str, in_status: bool, out: &mut Vec<String>) {
    if type_name(real) != type_name(got) {
        out.push(format!(
            "{path}: real has {} {real}, sandbox has {} {got}",
            type_name(real),
            type_name(got)
        ));
        return;
    }
    match (real, got) {
        (Value::Object(r), Value::Object(g)) => {
            let cut = r.contains_key(CUT);
            let status = in_status || r.get("kind").is_some_and(|k| k == "Status");
            for (key, rv) in r {
                if key == CUT || NOT_SIMULATED.contains(&key.as_str()) {
                    continue;
                }
                let here = format!("{path}.{key}");
                let Some(gv) = g.get(key) else {
                    out.push(format!("{here}: missing (real: {rv})"));
                    continue;
                };
                let by_value = (status && STATUS_VALUES.contains(&key.as_str()))
                    || ((key == "kind" || key == "apiVersion") && rv.is_string())
                    || (path.is_empty() && key == "type" && r.contains_key("object"));
                if DATA_MAPS.contains(&key.as_str()) && rv.is_object() {
                    if !gv.is_object() {
                        out.push(format!("{here}: real has a map, sandbox has {gv}"));
                    }
                } else if by_value && !rv.is_object() && !rv.is_array() {
                    if normalize_value(rv) != normalize_value(gv) {
                        out.push(format!("{here}: real {rv}, sandbox {gv}"));
                    }
                } else {
                    compare(rv, gv, &here, status, out);
                }
            }
            if !cut {
                for key in g.keys() {
                    if !r.contains_key(key) && !NOT_SIMULATED.contains(&key.as_str()) {
                        out.push(format!("{path}.{key}: not in the real answer"));
                    }
                }
            }
        }
        (Value::Array(r), Value::Array(g)) => {
            let cut = r.last().is_some_and(|l| l == CUT);
            let shown = if cut { &r[..r.len() - 1] } else { &r[..] };
            if g.len() < shown.len() || (!cut && g.len() != shown.len()) {
                out.push(format!(
                    "{path}: real has {}{} elements, sandbox {}",
                    shown.len(),
                    if cut { " or more" } else { "" },
                    g.len()
                ));
            }
            for (i, (rv, gv)) in shown.iter().zip(g).enumerate() {
                compare(rv, gv, &format!("{path}[{i}]"), in_status, out);
            }
        }
        _ => {}
    }
}

fn normalize_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(normalize(s)),
        other => other.clone(),
    }
}

/// A message as far as two clusters can agree on it: its first line (Go value
/// dumps follow), with generated name parts, uids, node names and multi-digit
/// numbers (resourceVersions) replaced by placeholders.
fn normalize(text: &str) -> String {
    let first = text.split('\n').next().unwrap_or("");
    let mut out = String::new();
    let mut word = String::new();
    for c in first.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_alphanumeric() || c == '-' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push_str(&normalize_word(&word));
            word.clear();
        }
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

fn normalize_word(word: &str) -> String {
    let hex_groups: Vec<usize> = word.split('-').map(str::len).collect();
    if hex_groups == [8, 4, 4, 4, 12] && word.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return "<uid>".into();
    }
    if word.len() >= 2 && word.chars().all(|c| c.is_ascii_digit()) {
        return "<n>".into();
    }
    // Node names differ between the clusters: fake-node-3 there, node-b-1 here.
    let parts: Vec<&str> = word.split('-').collect();
    if matches!(parts.as_slice(), ["fake", "node", n] if n.len() == 1)
        || matches!(parts.as_slice(), ["node", z, n] if z.len() == 1 && n.len() == 1)
    {
        return "<node>".into();
    }
    // Generated suffixes (pod-template-hash, generateName) use this alphabet.
    let generated = |p: &str| {
        (5..=10).contains(&p.len()) && p.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
    };
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| if i > 0 && generated(p) { "<gen>" } else { p })
        .collect::<Vec<_>>()
        .join("-")
}

/// Every difference between a recorded real answer and the sandbox's.
fn differences(real: &Answer, got: &common::RawResponse) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(code) = real.code
        && code != got.code
    {
        out.push(format!("status code: real {code}, sandbox {}", got.code));
    }
    let got_headers = header_map(&got.headers);
    for name in ["warning", "retry-after"] {
        let Some(want) = real.header(name) else {
            // The recorder kept every Warning the real server sent.
            if name == "warning"
                && let Some(have) = got_headers.get(name)
            {
                out.push(format!(
                    "header warning: none on the real server, sandbox {have:?}"
                ));
            }
            continue;
        };
        match got_headers.get(name) {
            None => out.push(format!("header {name}: real {want:?}, sandbox none")),
            Some(have) if normalize(have) != normalize(want) => {
                out.push(format!("header {name}: real {want:?}, sandbox {have:?}"));
            }
            Some(_) => {}
        }
    }
    match real.json() {
        Some(want) => match prefix(got.body.lines().next().unwrap_or("")) {
            Some(have) => compare(&want, &have, "", false, &mut out),
            None => out.push(format!("body: real is JSON, sandbox sent {:?}", got.body)),
        },
        None => {
            if let Some(line) = real.lines.first() {
                out.push(format!("unreadable real answer {line:?}"));
            }
        }
    }
    out
}

fn header_map(head: &str) -> BTreeMap<String, String> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------
// Replaying

/// Requests the recorder left out or cut, completed from the case's title and the
/// two answers. `{pod}` and `{node}` are the case's placeholders.
fn supplement(title: &str) -> Option<Request> {
    let req = |method: &str, path: &str, body: &str| Request {
        method: method.into(),
        path: path.into(),
        content_type: Some("application/json".into()),
        body: body.into(),
    };
    let core_event = |reason: &str, instance: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"generateName":"fid-","namespace":"shop"}},"involvedObject":{{"kind":"Pod","apiVersion":"v1","namespace":"shop","name":"x"}},"reason":"{reason}","message":"m","type":"Warning","firstTimestamp":"2026-12-02T05:30:50Z","lastTimestamp":"2026-12-02T05:30:50Z","eventTime":"2026-12-02T05:30:50.809461Z","count":1,"action":"{reason}","reportingComponent":"shakedown","reportingInstance":"{instance}"}}"#
        )
    };
    let pods = "/api/v1/namespaces/shop/pods";
    Some(match title {
        "watch from a very old resourceVersion (1)" => req(
            "GET",
            &format!("{pods}?watch=1&resourceVersion=1&timeoutSeconds=1"),
            "",
        ),
        "watch with resourceVersion=abc" => req(
            "GET",
            &format!("{pods}?watch=1&resourceVersion=abc&timeoutSeconds=1"),
            "",
        ),
        "watch sendInitialEvents=true without resourceVersionMatch" => req(
            "GET",
            &format!(
                "{pods}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&timeoutSeconds=1"
            ),
            "",
        ),
        "eviction of a pod that does not exist" => req(
            "POST",
            &format!("{pods}/nope/eviction"),
            r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"nope"}}"#,
        ),
        "empty body" => req("POST", &format!("{pods}/{{pod}}/eviction"), ""),
        "eviction blocked by PDB (checkout, minAvailable 3 of 3)" => req(
            "POST",
            &format!("{pods}/{{pod}}/eviction"),
            r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"{pod}"}}"#,
        ),
        "same, dryRun=All" => req(
            "POST",
            &format!("{pods}/{{pod}}/eviction?dryRun=All"),
            r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"{pod}"}}"#,
        ),
        "core/v1 Event like shakedown's (eventTime + reportingComponent/Instance/action)" => req(
            "POST",
            "/api/v1/namespaces/shop/events",
            &core_event("ShakedownFault", "run-1"),
        ),
        "same with reportingInstance \"\" (what shakedown recover sends)" => req(
            "POST",
            "/api/v1/namespaces/shop/events",
            &core_event("ShakedownRevert", ""),
        ),
        "Node event in namespace default (shakedown node-drain)" => req(
            "POST",
            "/api/v1/namespaces/default/events",
            r#"{"apiVersion":"v1","kind":"Event","metadata":{"generateName":"fid-","namespace":"default"},"involvedObject":{"kind":"Node","apiVersion":"v1","name":"n1"},"reason":"ShakedownFault","message":"m","type":"Warning","firstTimestamp":"2026-12-02T05:30:50Z","lastTimestamp":"2026-12-02T05:30:50Z","eventTime":"2026-12-02T05:30:50.809461Z","count":1,"action":"a","reportingComponent":"shakedown","reportingInstance":"r"}"#,
        ),
        "events.k8s.io/v1 Event (complete)" => req(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/shop/events",
            r#"{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"generateName":"fidv1-","namespace":"shop"},"regarding":{"kind":"Pod","apiVersion":"v1","namespace":"shop","name":"x"},"reason":"ShakedownFault","note":"n","type":"Warning","eventTime":"2026-12-02T05:30:50.809461Z","reportingController":"shakedown.dev/shakedown","reportingInstance":"run-1","action":"Inject"}"#,
        ),
        _ => return None,
    })
}

enum Outcome {
    Matches,
    Differs(Vec<String>),
    Cannot(String),
}

struct Replay {
    handle: SandboxHandle,
    /// What `<frontend pod>`, `@POD@` and `NAME` stand for in the current file.
    pod: String,
    node: String,
}

impl Replay {
    fn pods(&self, app: &str) -> Vec<String> {
        self.handle
            .objects("pods", Some("shop"))
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app"] == app)
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    }

    async fn pod_of(&self, app: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(pod) = self.pods(app).into_iter().next() {
                return pod;
            }
            assert!(Instant::now() < deadline, "no {app} pod");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn fill(&self, text: &str) -> String {
        text.replace("@POD@", &self.pod)
            .replace("{pod}", &self.pod)
            .replace("@NODE@", &self.node)
            .replace("\"NAME\"", &format!("\"{}\"", self.pod))
    }

    async fn send(&self, request: &Request) -> common::RawResponse {
        let headers = request
            .content_type
            .as_ref()
            .map(|ct| format!("Content-Type: {ct}\r\n"))
            .unwrap_or_default();
        let path = self.fill(&request.path);
        let body = self.fill(&request.body);
        raw(&self.handle, &request.method, &path, &headers, &body).await
    }

    fn resource_version(&self) -> u64 {
        self.handle.resource_version()
    }

    async fn run(&mut self, case: &Recorded) -> Outcome {
        if let Some((_, why)) = CANNOT.iter().find(|(t, _)| *t == case.title) {
            return Outcome::Cannot((*why).to_owned());
        }
        match case.file {
            "h3-evict.txt" | "h3b-pdb.txt" => {
                let app = if case.file == "h3b-pdb.txt" {
                    "checkout"
                } else {
                    "frontend"
                };
                self.pod = self.pod_of(app).await;
            }
            _ => {}
        }
        if let Some(outcome) = self.custom(case).await {
            return outcome;
        }
        let request = match (&case.request, supplement(&case.title)) {
            (Some(recorded), Some(full)) if case.request_cut => {
                let shown = recorded.body.trim_end_matches('\n');
                assert!(
                    full.body.starts_with(shown),
                    "{}: the completed body must start with the recorded one:\n{}\n{}",
                    case.title,
                    shown,
                    full.body
                );
                full
            }
            (Some(recorded), _) => {
                assert!(
                    !case.request_cut,
                    "{}: a cut request needs completing",
                    case.title
                );
                recorded.clone()
            }
            (None, Some(full)) => full,
            (None, None) => panic!("{}: no request recorded and none supplied", case.title),
        };
        let Some(real) = &case.real else {
            panic!("{}: no real answer recorded", case.title);
        };
        let got = self.send(&request).await;
        let mut diffs = differences(real, &got);
        // "labels -> {} or absent?": the recorder noted the answer: absent.
        if case.lines.iter().any(|l| l.starts_with("(metadata.labels")) {
            let body: Value = serde_json::from_str(&got.body).unwrap_or(Value::Null);
            if body["metadata"].get("labels").is_some() {
                diffs.push(format!(
                    "metadata.labels: absent on the real server, sandbox has {}",
                    body["metadata"]["labels"]
                ));
            }
        }
        outcome(diffs)
    }

    /// Cases whose request depends on the sandbox's state, or whose recorded answer
    /// is a summary rather than an HTTP exchange.
    async fn custom(&mut self, case: &Recorded) -> Option<Outcome> {
        let title = case.title.as_str();
        let real = case.real.as_ref();
        if title.starts_with("list rv far in the future")
            || title == "get pod with rv far in the future"
        {
            let rv = self.resource_version() + 100_000;
            let path = if title.starts_with("list") {
                format!("/api/v1/namespaces/shop/pods?resourceVersion={rv}")
            } else {
                let pod = self.pod_of("catalog").await;
                format!("/api/v1/namespaces/shop/pods/{pod}?resourceVersion={rv}")
            };
            let started = Instant::now();
            let got = raw(&self.handle, "GET", &path, "", "").await;
            let mut diffs = differences(real?, &got);
            if started.elapsed() < FUTURE_RV_WAIT {
                diffs.push(format!(
                    "answered after {:?}: a real server waits for the version first",
                    started.elapsed()
                ));
            }
            return Some(outcome(diffs));
        }
        if title == "list limit=2 metadata" || title == "continue page 2" {
            let path = match title {
                "continue page 2" => {
                    let first = raw(&self.handle, "GET", "/api/v1/pods?limit=2", "", "").await;
                    let first: Value = serde_json::from_str(&first.body).ok()?;
                    let token = first["metadata"]["continue"].as_str().unwrap_or("");
                    format!("/api/v1/pods?limit=2&continue={token}")
                }
                _ => "/api/v1/pods?limit=2".to_owned(),
            };
            let got = raw(&self.handle, "GET", &path, "", "").await;
            let list: Value = serde_json::from_str(&got.body).ok()?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let mut summary = json!({"md": list["metadata"], "n": items.len()});
            if title != "continue page 2" {
                let keys: Vec<&String> = items
                    .first()
                    .and_then(Value::as_object)
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                summary["itemKeys"] = json!(keys);
            }
            let real_line = case.lines.iter().skip_while(|l| *l != "--- real:").nth(1)?;
            let mut want: Value = serde_json::from_str(real_line).ok()?;
            // The summary's values are volatile; its keys, counts and item keys are not.
            for value in want["md"].as_object_mut()?.values_mut() {
                *value = json!("");
            }
            if let Some(md) = summary["md"].as_object_mut() {
                md.values_mut().for_each(|v| *v = json!(""));
            }
            let mut diffs = Vec::new();
            compare_exact(&want, &summary, &mut diffs);
            return Some(outcome(diffs));
        }
        if title == "PDB status after (blocked)" {
            // Two status lines: the sandbox's at recording time, then the real one.
            let want: Value = serde_json::from_str(case.lines.get(1)?).ok()?;
            let pdb = self
                .handle
                .object("poddisruptionbudgets", "shop", "checkout")?;
            let mut diffs = Vec::new();
            compare(&want, &pdb["status"], ".status", false, &mut diffs);
            return Some(outcome(diffs));
        }
        if title.starts_with("visibility:") {
            let names = |list: Value| -> Vec<String> {
                list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["metadata"]["name"].as_str().map(str::to_owned))
                    .collect()
            };
            let core = raw(
                &self.handle,
                "GET",
                "/api/v1/namespaces/shop/events",
                "",
                "",
            )
            .await;
            let core: Value = serde_json::from_str(&core.body).ok()?;
            // The sandbox's controllers keep posting Events: the second view is read at
            // the first one's resourceVersion, so both show the same moment.
            let at = core["metadata"]["resourceVersion"].as_str()?;
            let v1 = raw(
                &self.handle,
                "GET",
                &format!(
                    "/apis/events.k8s.io/v1/namespaces/shop/events?resourceVersion={at}&resourceVersionMatch=Exact"
                ),
                "",
                "",
            )
            .await;
            let core = names(core);
            let v1 = names(serde_json::from_str(&v1.body).ok()?);
            let mut diffs = Vec::new();
            // Real: 9 core fid-* seen through events.k8s.io/v1, 1 fidv1-* through core/v1.
            if !v1.iter().any(|n| n.starts_with("fid-")) {
                diffs.push("core/v1 events are not listed by events.k8s.io/v1".into());
            }
            if !core.iter().any(|n| n.starts_with("fidv1-")) {
                diffs.push("events.k8s.io/v1 events are not listed by core/v1".into());
            }
            if core != v1 {
                diffs.push(format!(
                    "the two views differ: core {core:?}, events.k8s.io {v1:?}"
                ));
            }
            return Some(outcome(diffs));
        }
        None
    }
}

fn compare_exact(want: &Value, got: &Value, out: &mut Vec<String>) {
    if want != got {
        out.push(format!("real {want}, sandbox {got}"));
    }
}

fn outcome(diffs: Vec<String>) -> Outcome {
    if diffs.is_empty() {
        Outcome::Matches
    } else {
        Outcome::Differs(diffs)
    }
}

fn replay_config() -> sandbox::SandboxConfig {
    let mut config = fast_shop();
    config.timings.future_resource_version_wait = FUTURE_RV_WAIT;
    // The recording's shop: checkout's budget allows no disruption (3 of 3).
    config.pod_disruption_budgets = vec![PdbConfig {
        namespace: "shop".into(),
        name: "checkout".into(),
        match_labels: BTreeMap::from([("app".into(), "checkout".into())]),
        min_available: Some(json!(3)),
        max_unavailable: None,
    }];
    config
}

/// Every shop pod is a restarted one, and no old one is still terminating.
fn all_restarted(handle: &SandboxHandle) -> bool {
    handle.objects("pods", Some("shop")).iter().all(|p| {
        !p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_null()
            && p["metadata"]["deletionTimestamp"].is_null()
    })
}

#[tokio::test]
async fn the_sandbox_answers_every_recorded_request_like_a_real_kube_apiserver() {
    let handle = sandbox::start(replay_config(), 0)
        .await
        .expect("sandbox starts");
    assert!(handle.wait_settled(DEADLINE).await, "the shop settles");
    // The recorded shop had been through `kubectl rollout restart`.
    for deployment in ["frontend", "checkout", "catalog"] {
        let patch = r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-12-02T05:12:44Z"}}}}}"#;
        let path = format!("/apis/apps/v1/namespaces/shop/deployments/{deployment}");
        let answer = raw(
            &handle,
            "PATCH",
            &path,
            "Content-Type: application/strategic-merge-patch+json\r\n",
            patch,
        )
        .await;
        assert_eq!(answer.code, 200, "{}", answer.body);
    }
    let deadline = Instant::now() + DEADLINE;
    while !(handle.is_settled() && all_restarted(&handle)) {
        assert!(
            Instant::now() < deadline,
            "the shop settles after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut replay = Replay {
        handle,
        pod: String::new(),
        node: "node-b-1".into(),
    };
    let mut failures = Vec::new();
    let mut cannot = Vec::new();
    let mut matched = 0;
    for (file, text) in FILES {
        let cases = parse_file(file, text);
        replay.pod = match *file {
            "h4-ephemeral.txt" => replay.pod_of("catalog").await,
            _ => replay.pod_of("frontend").await,
        };
        for case in cases {
            match replay.run(&case).await {
                Outcome::Matches => matched += 1,
                Outcome::Differs(diffs) => {
                    failures.push(format!(
                        "{} / {}:\n    {}",
                        case.file,
                        case.title,
                        diffs.join("\n    ")
                    ));
                }
                Outcome::Cannot(why) => cannot.push((case.title.clone(), why)),
            }
        }
    }
    println!("{matched} recorded cases answered like the real server");
    println!("{} cases the replay cannot express:", cannot.len());
    for (title, why) in &cannot {
        println!("  - {title}: {why}");
    }
    let listed: Vec<&str> = CANNOT.iter().map(|(t, _)| *t).collect();
    let found: Vec<&str> = cannot.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        found, listed,
        "every case the replay cannot express is listed, and only those"
    );
    assert!(
        failures.is_empty(),
        "{} of {} recorded cases differ from the real server:\n{}",
        failures.len(),
        matched + failures.len(),
        failures.join("\n")
    );
}

#[test]
fn cut_answers_are_closed_and_marked() {
    let v = prefix(r#"{"a":1,"b":{"c":[1,2],"d":"tru"#).expect("a prefix");
    assert_eq!(v, json!({"a": 1, "b": {"c": [1, 2], CUT: true}, CUT: true}));
    assert_eq!(prefix("{"), Some(json!({CUT: true})));
}

#[test]
fn messages_differ_only_in_names_uids_and_versions() {
    assert_eq!(
        normalize("Pod \"catalog-f79b67b6d-5q4wp\" is invalid: spec.ephemeralContainers[0].ports"),
        normalize("Pod \"catalog-j492sk4bjc-4gnvz\" is invalid: spec.ephemeralContainers[0].ports"),
    );
    assert_ne!(
        normalize("spec.ephemeralContainers[0].ports"),
        normalize("spec.ephemeralContainers[2].ports")
    );
    assert_eq!(
        normalize("Too large resource version: 102343, current: 2314\n  detail"),
        "Too large resource version: <n>, current: <n>"
    );
}
