//! Hypotheses: probes (PromQL, HTTP, Kubernetes, alerts), expectations, phases and
//! recovery.
//! A PromQL query is parsed in full by its own module, `promql`.

mod promql;

use self::promql::promql_query;
use super::*;
use crate::spec::diagnostic::did_you_mean;

pub(super) fn hypotheses(d: &mut Decoder, node: &Node) -> Option<Vec<Hypothesis>> {
    let items = d.seq(node, "hypotheses")?;
    let decoded: Vec<_> = items.iter().map(|n| hypothesis(d, n)).collect();
    let mut names = BTreeMap::new();
    for (item, h) in items.iter().zip(&decoded) {
        if let Some(h) = h
            && let Some(first) = names.insert(h.name.clone(), item.pos)
        {
            d.error(
                item.pos,
                format!("hypothesis name `{}` is used twice", h.name),
                Some(format!(
                    "first used at line {}; names identify results in reports",
                    first.line
                )),
            );
        }
    }
    decoded.into_iter().collect()
}

pub(super) fn hypothesis(d: &mut Decoder, node: &Node) -> Option<Hypothesis> {
    let mut m = d.map(node, "a hypothesis")?;
    let name = m.required(d, "name").and_then(|n| d.string(n, "name"));
    let promql = m.opt("promql");
    let http = m.opt("http");
    let kube = m.opt("kube");
    let alert = m.opt("alert");
    let probe = match (promql, http, kube, alert) {
        (Some(n), None, None, None) => promql_query(d, n).map(Probe::Promql),
        (None, Some(n), None, None) => http_probe(d, n).map(Probe::Http),
        (None, None, Some(n), None) => kube_probe(d, n).map(Probe::Kube),
        (None, None, None, Some(n)) => alert_probe(d, n).map(Probe::Alert),
        (None, None, None, None) => {
            d.error(
                node.pos,
                "hypothesis has no probe",
                Some("add one of `promql`, `http`, `kube` or `alert`".into()),
            );
            None
        }
        _ => {
            d.error(
                node.pos,
                "hypothesis has more than one probe",
                Some(
                    "use exactly one of `promql`, `http`, `kube` or `alert`; split it into two hypotheses"
                        .into(),
                ),
            );
            None
        }
    };
    let expect_node = if promql.is_some() || kube.is_some() || alert.is_some() {
        m.required(d, "expect")
    } else {
        m.opt("expect")
    };
    let expect = expect_node.map(|n| expectation(d, n));
    if let (Some(n), Some(Some(e))) = (expect_node, &expect) {
        check_alert_expectation(d, n, e, alert.is_some())?;
    }
    let phases_node = m.opt("phases");
    let phases = phases_node.map(|n| phases(d, n));
    let every = m.opt("every").map(|n| d.duration(n, "every", false));
    let tolerance = m.opt("tolerance").map(|n| d.percent(n, "tolerance"));
    let abort_node = m.opt("abort");
    let abort = abort_node.map(|n| d.bool(n, "abort"));
    let series = m
        .opt("series")
        .map(|n| d.one_of(n, "series", &["all", "any"]));
    let failure_threshold_node = m.opt("failureThreshold");
    let failure_threshold = failure_threshold_node.map(|n| d.int(n, "failureThreshold", 1, 100));
    let error_threshold_node = m.opt("errorThreshold");
    let error_threshold = error_threshold_node.map(|n| d.int(n, "errorThreshold", 1, 100));
    let no_data = m.opt("noData").map(|n| no_data_policy(d, n));
    let weight = m.opt("weight").map(|n| positive_number(d, n, "weight"));
    m.finish(d);
    let alert_expect = expect.flatten().filter(Expectation::is_alert);
    let phases =
        phases.unwrap_or_else(|| Some(alert_expect.map_or_else(defaults::phases, alert_phases)))?;
    let abort = abort.unwrap_or(Some(false))?;
    if let (Some(e), Some(n)) = (alert_expect, phases_node)
        && matches!(e, Expectation::Firing(_) | Expectation::Resolved(_))
        && phases != alert_phases(e)
    {
        let (phase, from) = if let Expectation::Firing(_) = e {
            ("during", "the injection")
        } else {
            ("after", "the revert")
        };
        d.error(
            n.pos,
            format!("`expect: {e}` is judged in one phase only: {phase} (timed from {from})"),
            Some(format!("write `phases: [{phase}]`, or leave phases out")),
        );
        return None;
    }
    if abort && matches!(alert_expect, Some(Expectation::Firing(_))) {
        d.error(
            abort_node.map_or(node.pos, |n| n.pos),
            "`abort: true` cannot go with `firing within`: not firing yet is no breach",
            Some("drop abort; use `abort: true` with `not firing`".into()),
        );
        return None;
    }
    if abort && !phases.contains(&Phase::During) {
        d.error(
            abort_node.map_or(node.pos, |n| n.pos),
            "`abort: true` needs the `during` phase",
            Some("add `during` to phases, or drop abort".into()),
        );
        return None;
    }
    if !abort && let Some(n) = failure_threshold_node.or(error_threshold_node) {
        d.error(
            n.pos,
            "`failureThreshold` and `errorThreshold` only apply to `abort: true`",
            Some("add `abort: true`, or drop them".into()),
        );
        return None;
    }
    if (promql.is_some() || kube.is_some() || alert.is_some()) && expect_node.is_none() {
        return None;
    }
    Some(Hypothesis {
        name: name?,
        probe: probe?,
        expect: optional(expect)?,
        phases,
        every: Span(every.unwrap_or(Some(defaults::every().0))?),
        tolerance: Percent(tolerance.unwrap_or(Some(defaults::tolerance().0))?),
        abort,
        series: match series.unwrap_or(Some("all"))? {
            "any" => SeriesMatch::Any,
            _ => SeriesMatch::All,
        },
        failure_threshold: failure_threshold
            .map_or(Some(defaults::failure_threshold()), |n| n.map(|n| n as u32))?,
        error_threshold: error_threshold
            .map_or(Some(defaults::error_threshold()), |n| n.map(|n| n as u32))?,
        no_data: no_data.unwrap_or(Some(NoDataPolicy::Inconclusive))?,
        weight: weight.unwrap_or(Some(defaults::weight()))?,
        line: Some(node.pos.line),
    })
}

/// `noData`: what a sample without data means. `pass` is refused by name: a probe that
/// sees nothing has not seen the system hold.
pub(super) fn no_data_policy(d: &mut Decoder, node: &Node) -> Option<NoDataPolicy> {
    if matches!(&node.value, Value::Str(s) if s == "pass") {
        d.error(
            node.pos,
            "`noData: pass` is not allowed: no data is never a pass",
            Some(
                "did you mean `inconclusive` (the default: the run cannot tell) or `fail` (missing data is a breach)?"
                    .into(),
            ),
        );
        return None;
    }
    match d.one_of(node, "noData policy", &NoDataPolicy::NAMES)? {
        "fail" => Some(NoDataPolicy::Fail),
        _ => Some(NoDataPolicy::Inconclusive),
    }
}

pub(super) fn positive_number(d: &mut Decoder, node: &Node, what: &str) -> Option<f64> {
    match node.value {
        Value::Int(n) if n > 0 => Some(n as f64),
        Value::Float(f) if f > 0.0 && f.is_finite() => Some(f),
        _ => {
            d.error(
                node.pos,
                format!("{what} must be a number greater than 0"),
                Some("e.g. `weight: 2`".into()),
            );
            None
        }
    }
}

pub(super) fn http_probe(d: &mut Decoder, node: &Node) -> Option<HttpProbe> {
    let mut m = d.map(node, "http probe")?;
    let url = m.required(d, "url").and_then(|n| http_url(d, n, "url"));
    let method = m.opt("method").map(|n| {
        d.one_of(
            n,
            "HTTP method",
            &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        )
        .map(str::to_owned)
    });
    let status = m.opt("status").map(|n| status_codes(d, n));
    let timeout = m.opt("timeout").map(|n| d.duration(n, "timeout", false));
    let body_contains = m
        .opt("bodyContains")
        .and_then(|n| d.string(n, "bodyContains"));
    m.finish(d);
    Some(HttpProbe {
        url: url?,
        method: method.unwrap_or_else(|| Some(defaults::http_method()))?,
        status: status.unwrap_or_else(|| Some(defaults::http_status()))?,
        timeout: timeout.map_or(Some(defaults::http_timeout()), |t| t.map(Span))?,
        body_contains,
    })
}

pub(super) fn http_url(d: &mut Decoder, node: &Node, what: &str) -> Option<String> {
    let url = d.string(node, what)?;
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if let Some(credential) = crate::spec::url::credential_in(&url) {
        // A URL is shown in plans, journals and reports: credentials in it would leak,
        // and so would quoting its line here.
        d.secret_error(
            node.pos,
            format!("{what} must not carry {credential}"),
            Some(
                "for Prometheus use basicAuth, bearerTokenEnv or bearerTokenFile, which are kept out of reports"
                    .into(),
            ),
        );
        return None;
    }
    if rest
        .is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
    {
        Some(url)
    } else {
        d.error(
            node.pos,
            format!("{what} `{url}` is not an http(s) URL"),
            Some("e.g. `http://checkout.shop.svc:8080/healthz`".into()),
        );
        None
    }
}

pub(super) fn status_codes(d: &mut Decoder, node: &Node) -> Option<Vec<u16>> {
    let nodes: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let codes: Option<Vec<u16>> = nodes
        .into_iter()
        .map(|n| d.int(n, "status", 100, 599).map(|c| c as u16))
        .collect();
    codes.filter(|c| !c.is_empty())
}

/// `alert: {name: CheckoutHighLatency, labels: {service: checkout}, allowPending: false}`.
pub(super) fn alert_probe(d: &mut Decoder, node: &Node) -> Option<AlertProbe> {
    if let Value::Str(name) = &node.value {
        d.error(
            node.pos,
            "alert needs a mapping, not a bare name",
            Some(format!("write `alert: {{name: {name}}}`")),
        );
        return None;
    }
    let mut m = d.map(node, "alert probe")?;
    let name = m
        .required(d, "name")
        .and_then(|n| d.string(n, "alert name"));
    let labels = m
        .opt("labels")
        .map(|n| super::string_map(d, n, "alert.labels"));
    let allow_pending = m.opt("allowPending").map(|n| d.bool(n, "allowPending"));
    m.finish(d);
    let labels = labels.unwrap_or_else(|| Some(BTreeMap::new()))?;
    if let Some(key) = labels
        .keys()
        .find(|k| *k == "alertname" || *k == "alertstate")
    {
        d.error(
            node.pos,
            format!("alert.labels must not set `{key}`"),
            Some("the alert's name goes in `name`; its state is what `expect` judges".into()),
        );
        return None;
    }
    Some(AlertProbe {
        name: name?,
        labels,
        allow_pending: allow_pending.unwrap_or(Some(defaults::allow_pending()))?,
    })
}

/// The alert expectations go with alert probes only, and alert probes take only them.
fn check_alert_expectation(
    d: &mut Decoder,
    node: &Node,
    expectation: &Expectation,
    alert: bool,
) -> Option<()> {
    match (alert, expectation.is_alert()) {
        (true, false) => {
            d.error(
                node.pos,
                format!("an alert probe cannot expect `{expectation}`"),
                Some(ALERT_EXPECTATIONS.into()),
            );
            None
        }
        (false, true) => {
            d.error(
                node.pos,
                format!("`{expectation}` is for alert probes"),
                Some("use `alert: {name: ...}`, or a comparison such as `< 0.01`".into()),
            );
            None
        }
        _ => Some(()),
    }
}

const ALERT_EXPECTATIONS: &str =
    "an alert probe expects `firing within 2m`, `resolved within 5m` or `not firing`";

/// The phases an alert expectation is judged in when none are written.
fn alert_phases(expectation: Expectation) -> Vec<Phase> {
    match expectation {
        Expectation::Firing(_) => vec![Phase::During],
        Expectation::Resolved(_) => vec![Phase::After],
        _ => defaults::phases(),
    }
}

pub(super) fn kube_probe(d: &mut Decoder, node: &Node) -> Option<KubeProbe> {
    let mut m = d.map(node, "kube probe")?;
    let deployment = m.opt("deployment").map(|n| d.string(n, "deployment"));
    let statefulset = m.opt("statefulset").map(|n| d.string(n, "statefulset"));
    let namespace_node = m.opt("namespace");
    let namespace = namespace_node.map(|n| d.string(n, "namespace"));
    let nodes_node = m.get("nodes");
    let nodes = nodes_node.map(|n| match &n.value {
        Value::Null => Some(String::new()),
        Value::Str(s) if s.is_empty() => Some(String::new()),
        _ => label_selector(d, n, "nodes"),
    });
    m.finish(d);
    let chosen = [deployment.is_some(), statefulset.is_some(), nodes.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if chosen != 1 {
        d.error(
            node.pos,
            "a kube probe needs exactly one of `deployment`, `statefulset` or `nodes`",
            Some(
                "e.g. `kube: {deployment: checkout, namespace: shop}` or `kube: {nodes: \"\"}`"
                    .into(),
            ),
        );
        return None;
    }
    if nodes.is_none() && namespace.is_none() {
        d.error(
            node.pos,
            "a kube probe of a workload needs `namespace`",
            Some("e.g. `namespace: shop`".into()),
        );
        return None;
    }
    if let (Some(_), Some(n)) = (&nodes, namespace_node) {
        d.error(
            n.pos,
            "nodes are not namespaced",
            Some("remove `namespace` from this probe".into()),
        );
        return None;
    }
    Some(KubeProbe {
        deployment: optional(deployment)?,
        statefulset: optional(statefulset)?,
        namespace: optional(namespace)?,
        nodes: optional(nodes)?,
    })
}

pub(super) fn expectation(d: &mut Decoder, node: &Node) -> Option<Expectation> {
    let valid = "`< 0.01`, `<= 0.3`, `> 0`, `>= 3`, `== 1`, `!= 0` or `between 0.1 and 0.5`; quote values starting with `>`; for alerts `firing within 2m`, `resolved within 5m` or `not firing`";
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(_) | Value::Float(_) => {
            d.error(
                node.pos,
                "expect needs a comparison, not a bare number",
                Some(valid.into()),
            );
            return None;
        }
        other => {
            d.error(
                node.pos,
                format!("expect must be a string, found {}", other.kind()),
                Some(valid.into()),
            );
            return None;
        }
    };
    match parse_expectation(&text) {
        Ok(e) => Some(e),
        Err(problem) => {
            d.error(
                node.pos,
                format!("invalid expectation `{text}`: {problem}"),
                Some(valid.into()),
            );
            None
        }
    }
}

pub fn parse_expectation(text: &str) -> Result<Expectation, String> {
    let t = text.trim();
    if let Some(alert) = alert_expectation(t) {
        return alert;
    }
    if let Some(rest) = t.strip_prefix("between") {
        let (low, high) = rest
            .split_once(" and ")
            .ok_or("expected `between A and B`")?;
        let low = number(low)?;
        let high = number(high)?;
        if low > high {
            return Err(format!(
                "the lower bound {low} is above the upper bound {high}"
            ));
        }
        return Ok(Expectation::Between(low, high));
    }
    let ops = [
        ("<=", CompareOp::Le),
        (">=", CompareOp::Ge),
        ("==", CompareOp::Eq),
        ("!=", CompareOp::Ne),
        ("<", CompareOp::Lt),
        (">", CompareOp::Gt),
    ];
    for (symbol, op) in ops {
        if let Some(rest) = t.strip_prefix(symbol) {
            return Ok(Expectation::Compare(op, number(rest)?));
        }
    }
    Err("it does not start with a comparison".into())
}

/// `firing within 2m`, `resolved within 5m`, `not firing`; `None` when `t` is not
/// worded like an alert expectation at all.
fn alert_expectation(t: &str) -> Option<Result<Expectation, String>> {
    let words: Vec<&str> = t.split_whitespace().collect();
    let within = |rest: &[&str], state: &str| match rest {
        ["within", d] => crate::spec::duration::parse_duration(d)
            .ok()
            .filter(|d| !d.is_zero())
            .map(Span)
            .ok_or_else(|| format!("`{d}` is not a duration such as `30s` or `2m`")),
        _ => Err(format!(
            "expected `{state} within <duration>`, e.g. `{state} within 2m`"
        )),
    };
    Some(match words.as_slice() {
        ["firing", rest @ ..] => within(rest, "firing").map(Expectation::Firing),
        ["resolved", rest @ ..] => within(rest, "resolved").map(Expectation::Resolved),
        ["not", "firing"] => Ok(Expectation::NotFiring),
        ["not", ..] => Err("did you mean `not firing`?".into()),
        _ => return None,
    })
}

pub(super) fn number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{t}` is not a number")),
    }
}

pub(super) fn phases(d: &mut Decoder, node: &Node) -> Option<Vec<Phase>> {
    let items = d.seq(node, "phases")?;
    if items.is_empty() {
        d.error(
            node.pos,
            "phases is empty",
            Some("any of before, during, after".into()),
        );
        return None;
    }
    let mut out = Vec::new();
    for item in items {
        let phase = match d.one_of(item, "phase", &Phase::NAMES)? {
            "before" => Phase::Before,
            "during" => Phase::During,
            _ => Phase::After,
        };
        if out.contains(&phase) {
            d.error(item.pos, "phase listed twice", None);
            return None;
        }
        out.push(phase);
    }
    out.sort();
    Some(out)
}

pub(super) fn recovery(d: &mut Decoder, node: &Node) -> Option<Recovery> {
    let mut m = d.map(node, "recovery")?;
    let within = m
        .opt("within")
        .map(|n| d.duration(n, "recovery.within", false));
    let settle = m
        .opt("settle")
        .map(|n| d.duration(n, "recovery.settle", true));
    let owners = m.opt("owners").map(|n| recovery_owners(d, n));
    let consecutive = m
        .opt("consecutive")
        .map(|n| d.int(n, "recovery.consecutive", 1, 1000));
    m.finish(d);
    let default = Recovery::default();
    Some(Recovery {
        within: within.map_or(Some(default.within), |w| w.map(Span))?,
        settle: settle.map_or(Some(default.settle), |s| s.map(Span))?,
        owners: owners.unwrap_or(Some(default.owners))?,
        consecutive: match consecutive {
            None => default.consecutive,
            Some(n) => u32::try_from(n?).ok()?,
        },
    })
}

/// `recovery.owners`: `kind/namespace/name: duration`, every key checked so a typo in an
/// owner is an error where it is written, not an objective that silently never applies.
fn recovery_owners(d: &mut Decoder, node: &Node) -> Option<BTreeMap<String, Span>> {
    let Value::Map(entries) = &node.value else {
        d.error(
            node.pos,
            format!(
                "recovery.owners must be a mapping of `kind/namespace/name` to a duration, found {}",
                node.value.kind()
            ),
            Some("e.g. `owners: {deployment/shop/checkout: 60s}`".to_owned()),
        );
        return None;
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let owner = d.string(key, "a key of recovery.owners").and_then(|k| {
            owner_key(&k)
                .map_err(|why| d.error(key.pos, why, Some(OWNER_KEY_HINT.to_owned())))
                .ok()
        });
        let within = d.duration(value, "a recovery objective", false);
        match (owner, within) {
            (Some(owner), Some(within)) => {
                if out.insert(owner.clone(), Span(within)).is_some() {
                    d.error(key.pos, format!("owner `{owner}` listed twice"), None);
                    ok = false;
                }
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

const OWNER_KEY_HINT: &str = "write `kind/namespace/name`, e.g. `deployment/shop/checkout`; kind is one of deployment, statefulset, replicaset, daemonset";

/// A `recovery.owners` key as the reports name owners: `kind/namespace/name` with a
/// lowercase kind (`Deployment` is accepted and lowered).
fn owner_key(key: &str) -> Result<String, String> {
    let parts: Vec<&str> = key.split('/').collect();
    let [kind, namespace, name] = parts[..] else {
        return Err(format!(
            "recovery owner `{key}` is not `kind/namespace/name`"
        ));
    };
    let kind = kind.to_lowercase();
    if !OWNER_KINDS.contains(&kind.as_str()) {
        let hint = did_you_mean(&kind, OWNER_KINDS.iter().copied())
            .map_or_else(String::new, |k| format!(" (did you mean `{k}`?)"));
        return Err(format!(
            "recovery owner `{key}`: `{kind}` is not a kind whose recovery is measured{hint}"
        ));
    }
    if !is_dns_label(namespace) {
        return Err(format!(
            "recovery owner `{key}`: `{namespace}` is not a valid namespace"
        ));
    }
    if !is_dns_subdomain(name) {
        return Err(format!(
            "recovery owner `{key}`: `{name}` is not a valid name"
        ));
    }
    Ok(format!("{kind}/{namespace}/{name}"))
}

fn is_dns_label(s: &str) -> bool {
    is_dns_name(s, 63, false)
}

fn is_dns_subdomain(s: &str) -> bool {
    is_dns_name(s, 253, true)
}

fn is_dns_name(s: &str, max: usize, dots: bool) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(edge)
        && s.ends_with(edge)
        && s.chars().all(|c| edge(c) || c == '-' || (dots && c == '.'))
}
