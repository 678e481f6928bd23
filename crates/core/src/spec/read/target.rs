//! Targets: which pods or nodes a fault may hit, their selectors, and the safety checks
//! (allow-listed namespaces, `kube-system`, the blast-radius cap) made on them.

use super::*;

/// `safety` is the effective one (for the cap); `guards` the chain it came from, so a
/// refused namespace is blamed on the guard that refuses it.
pub(super) fn target(
    d: &mut Decoder,
    node: &Node,
    safety: Option<&Safety>,
    guards: &[&Safety],
) -> Option<Target> {
    let mut m = d.map(node, "target")?;
    let pods = m.opt("pods");
    let nodes = m.opt("nodes");
    m.finish(d);
    match (pods, nodes) {
        (Some(p), None) => pod_target(d, p, safety, guards).map(Target::Pods),
        (None, Some(n)) => node_target(d, n, safety, guards).map(Target::Nodes),
        (Some(_), Some(n)) => {
            d.error(
                n.pos,
                "target has both `pods` and `nodes`",
                Some("a scenario targets one kind; split it in two".into()),
            );
            None
        }
        (None, None) => {
            d.error(
                node.pos,
                "target names neither `pods` nor `nodes`",
                Some("e.g. `target: {pods: {namespace: shop, selector: app=checkout}}`".into()),
            );
            None
        }
    }
}

pub(super) fn pod_target(
    d: &mut Decoder,
    node: &Node,
    safety: Option<&Safety>,
    guards: &[&Safety],
) -> Option<PodTarget> {
    let mut m = d.map(node, "target.pods")?;
    let single = m.opt("namespace");
    let several = m.opt("namespaces");
    let namespaces = match (single, several) {
        (Some(_), Some(n)) => {
            d.error(
                n.pos,
                "both `namespace` and `namespaces` are set",
                Some("use one of them".into()),
            );
            None
        }
        (Some(n), None) => d.string(n, "namespace").map(|s| vec![(n.pos, s)]),
        (None, Some(n)) => d.string_list(n, "namespaces"),
        (None, None) => Some(Vec::new()),
    };
    let selector = m
        .opt("selector")
        .and_then(|n| label_selector(d, n, "selector"));
    let field_selector = m.opt("fieldSelector").and_then(|n| field_selector(d, n));
    let exclude = m.opt("exclude").and_then(|n| exclusions(d, n));
    let selection = selection(d, &mut m, Mode::One);
    m.finish(d);
    let namespaces = namespaces?;
    let mut ok = true;
    for (pos, ns) in &namespaces {
        ok &=
            dns_label(d, *pos, ns, "namespace").is_some() && namespace_allowed(d, *pos, ns, guards);
    }
    if namespaces.is_empty() && guards.iter().all(|g| g.allowed_namespaces.is_empty()) {
        d.error(
            node.pos,
            "no namespace allow-list for this pod target",
            Some("add `spec.safety.allowedNamespaces: [<namespace>]` so a typo cannot hit the wrong namespace".into()),
        );
        ok = false;
    }
    let (mode, count, percent) = selection?;
    check_blast_radius(d, node.pos, mode, percent, safety)?;
    ok.then(|| PodTarget {
        namespaces: namespaces.into_iter().map(|(_, ns)| ns).collect(),
        selector,
        field_selector,
        exclude,
        mode,
        count,
        percent,
    })
}

/// Allowed when at least one guard lists namespaces and every guard that lists any
/// includes `ns`; the error names the outermost list that refuses it.
pub(super) fn namespace_allowed(d: &mut Decoder, pos: Pos, ns: &str, guards: &[&Safety]) -> bool {
    if ns == PROTECTED_NAMESPACE {
        d.error(
            pos,
            "`kube-system` is never a target",
            Some("shakedown refuses to disrupt the control plane's namespace".into()),
        );
        return false;
    }
    let mut lists = guards
        .iter()
        .map(|g| &g.allowed_namespaces)
        .filter(|a| !a.is_empty())
        .peekable();
    if lists.peek().is_none() {
        d.error(
            pos,
            format!("namespace `{ns}` is not on an allow-list"),
            Some(format!(
                "add `safety: {{allowedNamespaces: [{ns}]}}` to the scenario or its experiment"
            )),
        );
        return false;
    }
    let Some(allowed) = lists.find(|allowed| !allowed.iter().any(|a| a == ns)) else {
        return true;
    };
    d.error(
        pos,
        format!("namespace `{ns}` is outside safety.allowedNamespaces"),
        Some(format!("allowed: {}", allowed.join(", "))),
    );
    false
}

pub(super) fn check_blast_radius(
    d: &mut Decoder,
    pos: Pos,
    mode: Mode,
    percent: Option<Percent>,
    safety: Option<&Safety>,
) -> Option<()> {
    let cap = safety.map_or(100.0, |s| s.max_target_percent.0);
    let asked = match mode {
        Mode::All => 100.0,
        Mode::Percent => percent.map_or(0.0, |p| p.0),
        Mode::One | Mode::Count => return Some(()),
    };
    if asked > cap {
        d.error(
            pos,
            format!("this target asks for {asked}% of matching objects, above safety.maxTargetPercent {cap}%"),
            Some(format!("pick at most {cap}%, or raise maxTargetPercent deliberately")),
        );
        return None;
    }
    Some(())
}

/// `mode`, `count` and `percent`, which only make sense together.
pub(super) fn selection(
    d: &mut Decoder,
    m: &mut MapReader,
    default: Mode,
) -> Option<(Mode, Option<u32>, Option<Percent>)> {
    let mode_node = m.opt("mode");
    let mode = match mode_node {
        Some(n) => match d.one_of(n, "mode", &Mode::NAMES)? {
            "one" => Mode::One,
            "count" => Mode::Count,
            "percent" => Mode::Percent,
            _ => Mode::All,
        },
        None => default,
    };
    let count_node = m.opt("count");
    let percent_node = m.opt("percent");
    let count = count_node
        .and_then(|n| d.int(n, "count", 1, 10_000))
        .map(|c| c as u32);
    let percent = percent_node
        .and_then(|n| d.percent(n, "percent"))
        .map(Percent);
    let at = mode_node.map_or(m.pos, |n| n.pos);
    match mode {
        Mode::Count if count_node.is_none() => {
            d.error(
                at,
                "mode `count` needs `count`",
                Some("e.g. `count: 2`".into()),
            );
            return None;
        }
        Mode::Percent if percent_node.is_none() => {
            d.error(
                at,
                "mode `percent` needs `percent`",
                Some("e.g. `percent: 30%`".into()),
            );
            return None;
        }
        Mode::Percent if percent.is_some_and(|p| p.0 == 0.0) => {
            d.error(
                percent_node.map_or(at, |n| n.pos),
                "percent must be greater than 0",
                None,
            );
            return None;
        }
        _ => {}
    }
    if mode != Mode::Count
        && let Some(n) = count_node
    {
        d.error(
            n.pos,
            "`count` is only used with `mode: count`",
            Some("set `mode: count` or remove `count`".into()),
        );
        return None;
    }
    if mode != Mode::Percent
        && let Some(n) = percent_node
    {
        d.error(
            n.pos,
            "`percent` is only used with `mode: percent`",
            Some("set `mode: percent` or remove `percent`".into()),
        );
        return None;
    }
    if (count_node.is_some() && count.is_none()) || (percent_node.is_some() && percent.is_none()) {
        return None;
    }
    Some((mode, count, percent))
}

pub(super) fn node_target(
    d: &mut Decoder,
    node: &Node,
    safety: Option<&Safety>,
    guards: &[&Safety],
) -> Option<NodeTarget> {
    let mut m = d.map(node, "target.nodes")?;
    let collateral = m
        .opt("acceptCollateral")
        .map(|n| collateral_namespaces(d, n));
    let names_node = m.opt("names");
    let names = names_node.and_then(|n| d.string_list(n, "names"));
    let selector_node = m.opt("selector");
    let selector = selector_node.and_then(|n| label_selector(d, n, "selector"));
    let exclude = m.opt("exclude").and_then(|n| exclusions(d, n));
    let default_mode = if names_node.is_some() {
        Mode::All
    } else {
        Mode::One
    };
    let selection = selection(d, &mut m, default_mode);
    m.finish(d);
    match (names_node, selector_node) {
        (Some(_), Some(s)) => {
            d.error(
                s.pos,
                "both `names` and `selector` are set",
                Some("pick nodes by name or by label, not both".into()),
            );
            return None;
        }
        (None, None) => {
            d.error(
                node.pos,
                "target.nodes needs `names` or `selector`",
                Some("e.g. `selector: topology.kubernetes.io/zone=zone-a`".into()),
            );
            return None;
        }
        _ => {}
    }
    if names_node.is_some() && names.is_none() || selector_node.is_some() && selector.is_none() {
        return None;
    }
    if guards.iter().all(|g| g.allowed_namespaces.is_empty()) {
        d.error(
            node.pos,
            "a node target needs `safety.allowedNamespaces`",
            Some("a drain evicts every pod on the node; list the namespaces those pods may be in, e.g. `safety: {allowedNamespaces: [shop]}`".into()),
        );
        return None;
    }
    let accept_collateral = optional(collateral)?;
    let (mode, count, percent) = selection?;
    check_blast_radius(d, node.pos, mode, percent, safety)?;
    Some(NodeTarget {
        names: names
            .unwrap_or_default()
            .into_iter()
            .map(|(_, n)| n)
            .collect(),
        selector,
        exclude,
        mode,
        count,
        percent,
        accept_collateral: accept_collateral.unwrap_or_default(),
    })
}

/// `acceptCollateral`: namespaces whose pods a drain may evict beyond the allow-list.
fn collateral_namespaces(d: &mut Decoder, node: &Node) -> Option<Vec<String>> {
    let names = d.string_list(node, "acceptCollateral")?;
    let ok = namespace_names_without_kube_system(
        d,
        &names,
        "`kube-system` cannot be accepted as collateral",
        "pick nodes whose kube-system pods are all DaemonSet pods, which a drain never evicts",
    );
    ok.then(|| names.into_iter().map(|(_, n)| n).collect())
}

pub(super) fn exclusions(d: &mut Decoder, node: &Node) -> Option<Exclusions> {
    let mut m = d.map(node, "exclude")?;
    let names = m
        .opt("names")
        .and_then(|n| d.string_list(n, "exclude.names"));
    let selector = m
        .opt("selector")
        .and_then(|n| label_selector(d, n, "exclude.selector"));
    m.finish(d);
    Some(Exclusions {
        names: names
            .unwrap_or_default()
            .into_iter()
            .map(|(_, n)| n)
            .collect(),
        selector,
    })
}

pub(super) fn label_selector(d: &mut Decoder, node: &Node, what: &str) -> Option<String> {
    let Value::Str(text) = &node.value else {
        d.error(
            node.pos,
            format!(
                "{what} must be a label selector string, found {}",
                node.value.kind()
            ),
            Some("e.g. `app=checkout,tier in (web,api)`".into()),
        );
        return None;
    };
    match LabelSelector::parse(text) {
        Ok(selector) => Some(selector.to_string()),
        Err(e) => {
            selector_error(
                d,
                node,
                what,
                e,
                "label selector grammar: `k=v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`",
            );
            None
        }
    }
}

pub(super) fn field_selector(d: &mut Decoder, node: &Node) -> Option<String> {
    let text = d.string(node, "fieldSelector")?;
    let selector = match FieldSelector::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            selector_error(
                d,
                node,
                "fieldSelector",
                e,
                "`field=value` or `field!=value`, comma-separated",
            );
            return None;
        }
    };
    for r in &selector.requirements {
        if !POD_FIELDS.contains(&r.field.as_str()) {
            let hint = match crate::spec::diagnostic::did_you_mean(&r.field, POD_FIELDS) {
                Some(close) => format!(
                    "did you mean `{close}`? supported for pods: {}",
                    POD_FIELDS.join(", ")
                ),
                None => format!("supported for pods: {}", POD_FIELDS.join(", ")),
            };
            d.error(
                node.pos,
                format!("field `{}` cannot be used in a pod field selector", r.field),
                Some(hint),
            );
            return None;
        }
    }
    Some(selector.to_string())
}

/// Points the caret at the offending character inside the selector when the scalar
/// sits on one line.
pub(super) fn selector_error(
    d: &mut Decoder,
    node: &Node,
    what: &str,
    e: SelectorError,
    valid: &str,
) {
    let line = d.file.line(node.pos.line).unwrap_or_default();
    let start = node.pos.col.saturating_sub(1) as usize;
    let quoted = matches!(line.chars().nth(start), Some('"' | '\''));
    let col = node.pos.col + e.offset as u32 + u32::from(quoted);
    d.error(
        Pos {
            line: node.pos.line,
            col,
        },
        format!("invalid {what}: {e}"),
        Some(valid.into()),
    );
}
