//! Decoding the located YAML tree into the typed model, checking every value and
//! recording every problem (see `decode.rs` for the toolkit).

use std::collections::BTreeMap;
use std::time::Duration;

use super::decode::{Decoder, MapReader};
use super::model::*;
use super::node::{Node, Pos, Value};
use crate::selector::{FieldSelector, LabelSelector, SelectorError};

/// A scenario or experiment file referenced from an experiment step.
#[derive(Debug, Clone)]
pub struct Reference {
    pub pos: Pos,
    pub path: String,
    pub expects: ExpectedKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedKind {
    Scenario,
    Experiment,
}

/// What a file is decoded in the light of: the safety settings of the experiment that
/// references it, which override the scenario's own.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub inherited_safety: Option<Safety>,
}

/// Fields that the API server accepts in a pod field selector.
const POD_FIELDS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

/// An optional key's decoded value: `Some(None)` when the key was absent, `None` when it
/// was present but invalid (a diagnostic was recorded).
fn optional<T>(decoded: Option<Option<T>>) -> Option<Option<T>> {
    match decoded {
        None => Some(None),
        Some(None) => None,
        Some(Some(v)) => Some(Some(v)),
    }
}

const PROTECTED_NAMESPACE: &str = "kube-system";

pub fn document(
    d: &mut Decoder,
    root: &Node,
    ctx: &Context,
    refs: &mut Vec<Reference>,
) -> Option<Document> {
    let mut m = d.map(root, "the document")?;
    let api_version = m.required(d, "apiVersion").and_then(|n| api_version(d, n));
    let kind = m
        .required(d, "kind")
        .and_then(|n| d.one_of(n, "kind", &["Scenario", "Experiment"]));
    let metadata = m.required(d, "metadata").and_then(|n| metadata(d, n));
    let spec = m.required(d, "spec");
    let document = match (kind, spec) {
        (Some("Scenario"), Some(spec)) => scenario_spec(d, spec, ctx).map(|spec| {
            Document::Scenario(Scenario {
                api_version: ApiVersion,
                metadata: metadata.clone().unwrap_or_else(empty_metadata),
                spec,
            })
        }),
        (Some(_), Some(spec)) => experiment_spec(d, spec, refs).map(|spec| {
            Document::Experiment(Experiment {
                api_version: ApiVersion,
                metadata: metadata.clone().unwrap_or_else(empty_metadata),
                spec,
            })
        }),
        _ => None,
    };
    m.finish(d);
    api_version?;
    metadata?;
    document
}

fn empty_metadata() -> Metadata {
    Metadata {
        name: String::new(),
        description: None,
        labels: BTreeMap::new(),
    }
}

fn api_version(d: &mut Decoder, node: &Node) -> Option<ApiVersion> {
    let text = d.string(node, "apiVersion")?;
    if text == API_VERSION {
        Some(ApiVersion)
    } else {
        d.error(
            node.pos,
            format!("unsupported apiVersion `{text}`"),
            Some(format!("use `{API_VERSION}`")),
        );
        None
    }
}

fn metadata(d: &mut Decoder, node: &Node) -> Option<Metadata> {
    let mut m = d.map(node, "metadata")?;
    let name = m.required(d, "name").and_then(|n| {
        let name = d.string(n, "metadata.name")?;
        dns_label(d, n.pos, &name, "metadata.name")
    });
    let description = m
        .opt("description")
        .and_then(|n| d.string(n, "metadata.description"));
    let labels = m
        .opt("labels")
        .and_then(|n| string_map(d, n, "metadata.labels"));
    m.finish(d);
    Some(Metadata {
        name: name?,
        description,
        labels: labels.unwrap_or_default(),
    })
}

/// A DNS-1123 label: what Kubernetes accepts as a namespace name.
fn dns_label(d: &mut Decoder, pos: Pos, name: &str, what: &str) -> Option<String> {
    let ok = name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Some(name.to_owned())
    } else {
        d.error(
            pos,
            format!("{what} `{name}` is not a valid name"),
            Some("lowercase letters, digits and `-`, at most 63 characters, starting and ending alphanumeric".into()),
        );
        None
    }
}

fn string_map(d: &mut Decoder, node: &Node, what: &str) -> Option<BTreeMap<String, String>> {
    let Value::Map(entries) = &node.value else {
        d.error(
            node.pos,
            format!("{what} must be a mapping of strings"),
            None,
        );
        return None;
    };
    let mut out = BTreeMap::new();
    for (key, value) in entries {
        let k = d.string(key, &format!("a key of {what}"));
        let v = d.string(value, &format!("a value of {what}"));
        if let (Some(k), Some(v)) = (k, v) {
            out.insert(k, v);
        }
    }
    Some(out)
}

fn scenario_spec(d: &mut Decoder, node: &Node, ctx: &Context) -> Option<ScenarioSpec> {
    let mut m = d.map(node, "spec")?;
    let safety_node = m.opt("safety");
    let safety = safety_node.and_then(|n| safety(d, n));
    let effective_safety = ctx.inherited_safety.clone().or_else(|| safety.clone());
    let target = m
        .required(d, "target")
        .and_then(|n| target(d, n, effective_safety.as_ref()));
    let fault_node = m.required(d, "fault");
    let fault = fault_node.and_then(|n| fault(d, n));
    let hypotheses = m.opt("hypotheses").and_then(|n| hypotheses(d, n));
    let recovery = m.opt("recovery").and_then(|n| recovery(d, n));
    let prometheus = m.opt("prometheus").and_then(|n| prometheus(d, n));
    m.finish(d);
    if safety_node.is_some() && safety.is_none() {
        return None;
    }
    let (target, fault) = (target?, fault?);
    check_fault_fits_target(d, fault_node.map_or(node.pos, |n| n.pos), &fault, &target)?;
    Some(ScenarioSpec {
        target,
        fault,
        hypotheses: hypotheses.unwrap_or_default(),
        recovery: recovery.unwrap_or_default(),
        safety,
        prometheus,
    })
}

fn check_fault_fits_target(
    d: &mut Decoder,
    pos: Pos,
    fault: &Fault,
    target: &Target,
) -> Option<()> {
    match (fault, target) {
        (Fault::NodeDrain(_), Target::Pods(_)) => {
            d.error(
                pos,
                "fault `node-drain` acts on nodes, but the target is `pods`",
                Some("use `target: {nodes: ...}`".into()),
            );
            None
        }
        (Fault::PodDelete(_) | Fault::NetworkLatency(_), Target::Nodes(_)) => {
            d.error(
                pos,
                format!(
                    "fault `{}` acts on pods, but the target is `nodes`",
                    fault.type_name()
                ),
                Some("use `target: {pods: ...}`".into()),
            );
            None
        }
        _ => Some(()),
    }
}

fn target(d: &mut Decoder, node: &Node, safety: Option<&Safety>) -> Option<Target> {
    let mut m = d.map(node, "target")?;
    let pods = m.opt("pods");
    let nodes = m.opt("nodes");
    m.finish(d);
    match (pods, nodes) {
        (Some(p), None) => pod_target(d, p, safety).map(Target::Pods),
        (None, Some(n)) => node_target(d, n, safety).map(Target::Nodes),
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

fn pod_target(d: &mut Decoder, node: &Node, safety: Option<&Safety>) -> Option<PodTarget> {
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
            dns_label(d, *pos, ns, "namespace").is_some() && namespace_allowed(d, *pos, ns, safety);
    }
    if namespaces.is_empty() && safety.is_none_or(|s| s.allowed_namespaces.is_empty()) {
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

fn namespace_allowed(d: &mut Decoder, pos: Pos, ns: &str, safety: Option<&Safety>) -> bool {
    if ns == PROTECTED_NAMESPACE {
        d.error(
            pos,
            "`kube-system` is never a target",
            Some("shakedown refuses to disrupt the control plane's namespace".into()),
        );
        return false;
    }
    let Some(allowed) = safety
        .map(|s| &s.allowed_namespaces)
        .filter(|a| !a.is_empty())
    else {
        d.error(
            pos,
            format!("namespace `{ns}` is not on an allow-list"),
            Some(format!(
                "add `safety: {{allowedNamespaces: [{ns}]}}` to the scenario or its experiment"
            )),
        );
        return false;
    };
    if allowed.iter().any(|a| a == ns) {
        return true;
    }
    d.error(
        pos,
        format!("namespace `{ns}` is outside safety.allowedNamespaces"),
        Some(format!("allowed: {}", allowed.join(", "))),
    );
    false
}

fn check_blast_radius(
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
fn selection(
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

fn node_target(d: &mut Decoder, node: &Node, safety: Option<&Safety>) -> Option<NodeTarget> {
    let mut m = d.map(node, "target.nodes")?;
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
    })
}

fn exclusions(d: &mut Decoder, node: &Node) -> Option<Exclusions> {
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

fn label_selector(d: &mut Decoder, node: &Node, what: &str) -> Option<String> {
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

fn field_selector(d: &mut Decoder, node: &Node) -> Option<String> {
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
            let hint = match super::diagnostic::did_you_mean(&r.field, POD_FIELDS) {
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
fn selector_error(d: &mut Decoder, node: &Node, what: &str, e: SelectorError, valid: &str) {
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

fn fault(d: &mut Decoder, node: &Node) -> Option<Fault> {
    let mut m = d.map(node, "fault")?;
    let Some(kind) = m.required(d, "type").and_then(|n| fault_type(d, n)) else {
        // Without a known type we cannot tell which keys belong; don't report them.
        return None;
    };
    let fault = match kind {
        "pod-delete" => pod_delete(d, &mut m).map(Fault::PodDelete),
        "network-latency" => network_latency(d, &mut m).map(Fault::NetworkLatency),
        _ => node_drain(d, &mut m).map(Fault::NodeDrain),
    };
    m.finish(d);
    fault
}

fn fault_type(d: &mut Decoder, node: &Node) -> Option<&'static str> {
    let known = d.one_of(node, "fault type", &Fault::TYPES);
    if known.is_none()
        && let Some(last) = d.errors.last_mut()
        && last.message.starts_with("unknown fault type")
        && last
            .hint
            .as_deref()
            .is_some_and(|h| !h.starts_with("did you mean"))
    {
        last.hint = Some(format!("supported faults: {}", Fault::TYPES.join(", ")));
    }
    known
}

fn pod_delete(d: &mut Decoder, m: &mut MapReader) -> Option<PodDelete> {
    let interval_node = m.opt("interval");
    let duration_node = m.opt("duration");
    let interval = interval_node.and_then(|n| d.duration(n, "interval", false));
    let duration = duration_node.and_then(|n| d.duration(n, "duration", false));
    let grace_node = m.opt("gracePeriod");
    let grace_period = grace_node.and_then(|n| d.duration(n, "gracePeriod", true));
    let force = m
        .opt("force")
        .and_then(|n| d.bool(n, "force"))
        .unwrap_or(false);
    match (interval_node, duration_node) {
        (Some(n), None) => {
            d.error(
                n.pos,
                "`interval` needs `duration`",
                Some("e.g. `interval: 30s` with `duration: 2m`; omit both to delete once".into()),
            );
            return None;
        }
        (None, Some(n)) => {
            d.error(
                n.pos,
                "`duration` needs `interval` for pod-delete",
                Some("e.g. `interval: 30s`; omit both to delete once".into()),
            );
            return None;
        }
        _ => {}
    }
    if let (Some(i), Some(dur), Some(n)) = (interval, duration, interval_node)
        && i > dur
    {
        d.error(
            n.pos,
            "`interval` is longer than `duration`, so only one deletion would happen",
            Some("make interval at most the duration".into()),
        );
        return None;
    }
    if force
        && let (Some(g), Some(n)) = (grace_period, grace_node)
        && !g.is_zero()
    {
        d.error(
            n.pos,
            "`force: true` deletes with grace period 0, but `gracePeriod` is set",
            Some("drop one of them".into()),
        );
        return None;
    }
    if interval_node.is_some() && interval.is_none()
        || duration_node.is_some() && duration.is_none()
        || grace_node.is_some() && grace_period.is_none()
    {
        return None;
    }
    Some(PodDelete {
        interval: interval.map(Span),
        duration: duration.map(Span),
        grace_period: grace_period.map(Span),
        force,
    })
}

fn network_latency(d: &mut Decoder, m: &mut MapReader) -> Option<NetworkLatency> {
    let delay_node = m.required(d, "delay");
    let delay = delay_node.and_then(|n| d.duration(n, "delay", false));
    let jitter_node = m.opt("jitter");
    let jitter = jitter_node.map(|n| d.duration(n, "jitter", true));
    let correlation = m.opt("correlation").map(|n| d.percent(n, "correlation"));
    let loss = m.opt("loss").map(|n| d.percent(n, "loss"));
    let interface = m.opt("interface").map(|n| interface_name(d, n));
    let duration = m
        .required(d, "duration")
        .and_then(|n| d.duration(n, "duration", false));
    let image = m.opt("image").map(|n| image_reference(d, n));
    let delay = delay?;
    if let Some(n) = delay_node
        && delay > Duration::from_secs(60)
    {
        d.error(
            n.pos,
            "delay is over 60s, which would look like a full outage",
            Some("use a delay up to 60s, or a different fault".into()),
        );
        return None;
    }
    if let (Some(Some(j)), Some(n)) = (jitter, jitter_node)
        && j > delay
    {
        d.error(
            n.pos,
            "jitter is larger than delay",
            Some("jitter at most the delay, e.g. delay 200ms with jitter 50ms".into()),
        );
        return None;
    }
    Some(NetworkLatency {
        delay: Span(delay),
        jitter: Span(jitter.unwrap_or(Some(Duration::ZERO))?),
        correlation: Percent(correlation.unwrap_or(Some(0.0))?),
        loss: optional(loss.map(|l| l.map(Percent)))?,
        interface: interface.unwrap_or_else(|| Some(defaults::interface()))?,
        duration: Span(duration?),
        image: image.unwrap_or_else(|| Some(defaults::injector_image()))?,
    })
}

/// Interface names reach `tc` inside the pod, so only the kernel's own alphabet passes.
fn interface_name(d: &mut Decoder, node: &Node) -> Option<String> {
    let valid = |name: &str| {
        name.len() <= 15
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
    };
    d.shaped(
        node,
        "interface",
        "interface name",
        valid,
        "at most 15 characters of [A-Za-z0-9-_.@], e.g. `eth0`",
    )
}

fn image_reference(d: &mut Decoder, node: &Node) -> Option<String> {
    let valid = |image: &str| {
        image.len() <= 512
            && image.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b':' | b'@' | b'-' | b'_')
            })
    };
    d.shaped(
        node,
        "image",
        "image reference",
        valid,
        "e.g. `registry.example.com/tools/netshoot:v0.13`",
    )
}

fn node_drain(d: &mut Decoder, m: &mut MapReader) -> Option<NodeDrain> {
    let duration = m
        .required(d, "duration")
        .and_then(|n| d.duration(n, "duration", false));
    let eviction_timeout = m
        .opt("evictionTimeout")
        .map(|n| d.duration(n, "evictionTimeout", false));
    let ignore_daemon_sets = m
        .opt("ignoreDaemonSets")
        .map(|n| d.bool(n, "ignoreDaemonSets"));
    let delete_empty_dir_data = m
        .opt("deleteEmptyDirData")
        .map(|n| d.bool(n, "deleteEmptyDirData"));
    Some(NodeDrain {
        duration: Span(duration?),
        eviction_timeout: eviction_timeout
            .map_or(Some(defaults::eviction_timeout()), |t| t.map(Span))?,
        ignore_daemon_sets: ignore_daemon_sets.unwrap_or(Some(true))?,
        delete_empty_dir_data: delete_empty_dir_data.unwrap_or(Some(false))?,
    })
}

fn hypotheses(d: &mut Decoder, node: &Node) -> Option<Vec<Hypothesis>> {
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

fn hypothesis(d: &mut Decoder, node: &Node) -> Option<Hypothesis> {
    let mut m = d.map(node, "a hypothesis")?;
    let name = m.required(d, "name").and_then(|n| d.string(n, "name"));
    let promql = m.opt("promql");
    let http = m.opt("http");
    let kube = m.opt("kube");
    let probe = match (promql, http, kube) {
        (Some(n), None, None) => promql_query(d, n).map(Probe::Promql),
        (None, Some(n), None) => http_probe(d, n).map(Probe::Http),
        (None, None, Some(n)) => kube_probe(d, n).map(Probe::Kube),
        (None, None, None) => {
            d.error(
                node.pos,
                "hypothesis has no probe",
                Some("add one of `promql`, `http` or `kube`".into()),
            );
            None
        }
        _ => {
            d.error(
                node.pos,
                "hypothesis has more than one probe",
                Some(
                    "use exactly one of `promql`, `http` or `kube`; split it into two hypotheses"
                        .into(),
                ),
            );
            None
        }
    };
    let expect_node = if promql.is_some() || kube.is_some() {
        m.required(d, "expect")
    } else {
        m.opt("expect")
    };
    let expect = expect_node.map(|n| expectation(d, n));
    let phases_node = m.opt("phases");
    let phases = phases_node.map(|n| phases(d, n));
    let every = m.opt("every").map(|n| d.duration(n, "every", false));
    let tolerance = m.opt("tolerance").map(|n| d.percent(n, "tolerance"));
    let abort_node = m.opt("abort");
    let abort = abort_node.map(|n| d.bool(n, "abort"));
    let series = m
        .opt("series")
        .map(|n| d.one_of(n, "series", &["all", "any"]));
    let no_data = m
        .opt("noData")
        .map(|n| d.one_of(n, "noData policy", &["inconclusive", "fail", "pass"]));
    let weight = m.opt("weight").map(|n| positive_number(d, n, "weight"));
    m.finish(d);
    let phases = phases.unwrap_or_else(|| Some(defaults::phases()))?;
    let abort = abort.unwrap_or(Some(false))?;
    if abort && !phases.contains(&Phase::During) {
        d.error(
            abort_node.map_or(node.pos, |n| n.pos),
            "`abort: true` needs the `during` phase",
            Some("add `during` to phases, or drop abort".into()),
        );
        return None;
    }
    if (promql.is_some() || kube.is_some()) && expect_node.is_none() {
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
        no_data: match no_data.unwrap_or(Some("inconclusive"))? {
            "fail" => NoDataPolicy::Fail,
            "pass" => NoDataPolicy::Pass,
            _ => NoDataPolicy::Inconclusive,
        },
        weight: weight.unwrap_or(Some(defaults::weight()))?,
    })
}

fn positive_number(d: &mut Decoder, node: &Node, what: &str) -> Option<f64> {
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

/// Catches the typos PromQL users make most (unbalanced brackets and quotes) here, with a
/// position, instead of as a 400 from Prometheus in the middle of a game day.
fn promql_query(d: &mut Decoder, node: &Node) -> Option<String> {
    let query = d.string(node, "promql")?;
    let mut stack: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in query.chars() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    d.error(
                        node.pos,
                        format!("PromQL has an unmatched `{c}`"),
                        Some("check the brackets in the query".into()),
                    );
                    return None;
                }
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        d.error(
            node.pos,
            format!("PromQL has an unterminated {q}string{q}"),
            Some("close the quote".into()),
        );
        return None;
    }
    if let Some(open) = stack.pop() {
        d.error(
            node.pos,
            format!("PromQL has an unclosed `{open}`"),
            Some("check the brackets in the query".into()),
        );
        return None;
    }
    Some(query.trim().to_owned())
}

fn http_probe(d: &mut Decoder, node: &Node) -> Option<HttpProbe> {
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

fn http_url(d: &mut Decoder, node: &Node, what: &str) -> Option<String> {
    let url = d.string(node, what)?;
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    if authority.is_some_and(|a| a.contains('@')) {
        // A URL is shown in plans, journals and reports: credentials in it would leak.
        d.error(
            node.pos,
            format!("{what} must not carry credentials (`user:password@`)"),
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

fn status_codes(d: &mut Decoder, node: &Node) -> Option<Vec<u16>> {
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

fn kube_probe(d: &mut Decoder, node: &Node) -> Option<KubeProbe> {
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

fn expectation(d: &mut Decoder, node: &Node) -> Option<Expectation> {
    let valid = "`< 0.01`, `<= 0.3`, `> 0`, `>= 3`, `== 1`, `!= 0` or `between 0.1 and 0.5`; quote values starting with `>`";
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

fn number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{t}` is not a number")),
    }
}

fn phases(d: &mut Decoder, node: &Node) -> Option<Vec<Phase>> {
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

fn recovery(d: &mut Decoder, node: &Node) -> Option<Recovery> {
    let mut m = d.map(node, "recovery")?;
    let within = m
        .opt("within")
        .map(|n| d.duration(n, "recovery.within", false));
    let settle = m
        .opt("settle")
        .map(|n| d.duration(n, "recovery.settle", true));
    m.finish(d);
    let default = Recovery::default();
    Some(Recovery {
        within: within.map_or(Some(default.within), |w| w.map(Span))?,
        settle: settle.map_or(Some(default.settle), |s| s.map(Span))?,
    })
}

fn safety(d: &mut Decoder, node: &Node) -> Option<Safety> {
    let mut m = d.map(node, "safety")?;
    let namespaces = m
        .opt("allowedNamespaces")
        .map(|n| d.string_list(n, "allowedNamespaces"));
    let max = m
        .opt("maxTargetPercent")
        .map(|n| d.percent(n, "maxTargetPercent"));
    let max_node = m.opt("maxTargetPercent");
    let contexts = m
        .opt("allowedContexts")
        .map(|n| d.string_list(n, "allowedContexts"));
    m.finish(d);
    let namespaces = namespaces.unwrap_or(Some(Vec::new()))?;
    let mut ok = true;
    for (pos, ns) in &namespaces {
        if ns == PROTECTED_NAMESPACE {
            d.error(
                *pos,
                "`kube-system` cannot be allowed",
                Some("shakedown never disrupts kube-system".into()),
            );
            ok = false;
        } else {
            ok &= dns_label(d, *pos, ns, "namespace").is_some();
        }
    }
    let max = max.unwrap_or(Some(defaults::max_target_percent().0))?;
    if max == 0.0 {
        d.error(
            max_node.map_or(node.pos, |n| n.pos),
            "maxTargetPercent 0 allows no target at all",
            Some("a percentage above 0".into()),
        );
        return None;
    }
    ok.then_some(())?;
    Some(Safety {
        allowed_namespaces: namespaces.into_iter().map(|(_, n)| n).collect(),
        max_target_percent: Percent(max),
        allowed_contexts: contexts
            .unwrap_or(Some(Vec::new()))?
            .into_iter()
            .map(|(_, c)| c)
            .collect(),
    })
}

fn prometheus(d: &mut Decoder, node: &Node) -> Option<PrometheusSpec> {
    let mut m = d.map(node, "prometheus")?;
    let url = m.opt("url").map(|n| http_url(d, n, "prometheus.url"));
    let timeout = m
        .opt("timeout")
        .map(|n| d.duration(n, "prometheus.timeout", false));
    let token_env = m.opt("bearerTokenEnv").map(|n| env_var_name(d, n));
    let token_file_node = m.opt("bearerTokenFile");
    let token_file = token_file_node.map(|n| d.string(n, "bearerTokenFile"));
    let basic_auth = m.opt("basicAuth").map(|n| basic_auth(d, n));
    let ca_file = m.opt("caFile").map(|n| d.string(n, "caFile"));
    let insecure = m
        .opt("insecureSkipVerify")
        .map(|n| d.bool(n, "insecureSkipVerify"));
    let headers_node = m.opt("headers");
    let headers = headers_node.map(|n| string_map(d, n, "prometheus.headers"));
    m.finish(d);
    if let (Some(_), Some(n)) = (&token_env, token_file_node) {
        d.error(
            n.pos,
            "both `bearerTokenEnv` and `bearerTokenFile` are set",
            Some("use one source for the token".into()),
        );
        return None;
    }
    if let (Some(Some(h)), Some(n)) = (&headers, headers_node)
        && h.keys().any(|k| k.eq_ignore_ascii_case("authorization"))
    {
        d.error(
            n.pos,
            "credentials must not be written into headers",
            Some(
                "use bearerTokenEnv, bearerTokenFile or basicAuth, which are kept out of reports"
                    .into(),
            ),
        );
        return None;
    }
    Some(PrometheusSpec {
        url: optional(url)?,
        timeout: optional(timeout)?.map(Span),
        bearer_token_env: optional(token_env)?,
        bearer_token_file: optional(token_file)?,
        basic_auth: optional(basic_auth)?,
        ca_file: optional(ca_file)?,
        insecure_skip_verify: insecure.unwrap_or(Some(false))?,
        headers: headers.unwrap_or(Some(BTreeMap::new()))?,
    })
}

fn env_var_name(d: &mut Decoder, node: &Node) -> Option<String> {
    let valid = |name: &str| {
        name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    };
    let hint =
        "name the variable that holds the secret, e.g. `PROMETHEUS_TOKEN`, never the secret itself";
    d.shaped(
        node,
        "environment variable",
        "environment variable name",
        valid,
        hint,
    )
}

fn basic_auth(d: &mut Decoder, node: &Node) -> Option<BasicAuth> {
    let mut m = d.map(node, "basicAuth")?;
    let username = m
        .required(d, "username")
        .and_then(|n| d.string(n, "username"));
    let password_env = m.opt("passwordEnv").map(|n| env_var_name(d, n));
    let password_file = m.opt("passwordFile").map(|n| d.string(n, "passwordFile"));
    m.finish(d);
    if password_env.is_some() == password_file.is_some() {
        d.error(
            node.pos,
            "basicAuth needs exactly one of `passwordEnv` or `passwordFile`",
            Some("passwords are never written inline".into()),
        );
        return None;
    }
    Some(BasicAuth {
        username: username?,
        password_env: optional(password_env)?,
        password_file: optional(password_file)?,
    })
}

fn experiment_spec(
    d: &mut Decoder,
    node: &Node,
    refs: &mut Vec<Reference>,
) -> Option<ExperimentSpec> {
    let mut m = d.map(node, "spec")?;
    let safety_node = m.opt("safety");
    let safety = safety_node.map(|n| safety(d, n));
    let prometheus = m.opt("prometheus").map(|n| prometheus(d, n));
    let hypotheses = m.opt("hypotheses").map(|n| hypotheses(d, n));
    let steps = m.required(d, "steps").and_then(|n| steps(d, n, refs));
    m.finish(d);
    Some(ExperimentSpec {
        safety: optional(safety)?,
        prometheus: optional(prometheus)?,
        hypotheses: hypotheses.unwrap_or(Some(Vec::new()))?,
        steps: steps?,
    })
}

fn steps(d: &mut Decoder, node: &Node, refs: &mut Vec<Reference>) -> Option<Vec<Step>> {
    let items = d.seq(node, "steps")?;
    if items.is_empty() {
        d.error(
            node.pos,
            "steps is empty",
            Some("add at least one `- scenario: path/to/scenario.yaml`".into()),
        );
        return None;
    }
    let decoded: Vec<_> = items.iter().map(|n| step(d, n, refs)).collect();
    decoded.into_iter().collect()
}

fn step(d: &mut Decoder, node: &Node, refs: &mut Vec<Reference>) -> Option<Step> {
    let mut m = d.map(node, "a step")?;
    let name = m.opt("name").map(|n| d.string(n, "name"));
    let after = m.opt("after").map(|n| d.duration(n, "after", true));
    let repeat = m.opt("repeat").map(|n| d.int(n, "repeat", 1, 1000));
    let scenario = m.opt("scenario");
    let experiment = m.opt("experiment");
    let pause = m.opt("pause");
    let parallel = m.opt("parallel");
    m.finish(d);
    let present = [scenario, experiment, pause, parallel]
        .iter()
        .filter(|n| n.is_some())
        .count();
    if present != 1 {
        let problem = if present == 0 {
            "a step does nothing"
        } else {
            "a step does more than one thing"
        };
        d.error(
            node.pos,
            problem,
            Some("give exactly one of `scenario`, `experiment`, `pause` or `parallel`".into()),
        );
        return None;
    }
    let action = if let Some(n) = scenario {
        reference(d, n, ExpectedKind::Scenario, refs).map(StepAction::Scenario)
    } else if let Some(n) = experiment {
        reference(d, n, ExpectedKind::Experiment, refs).map(StepAction::Experiment)
    } else if let Some(n) = pause {
        d.duration(n, "pause", false)
            .map(|p| StepAction::Pause(Span(p)))
    } else {
        parallel
            .and_then(|n| steps(d, n, refs))
            .map(StepAction::Parallel)
    };
    Some(Step {
        name: optional(name)?,
        after: optional(after)?.map(Span),
        repeat: repeat.unwrap_or(Some(1))? as u32,
        action: action?,
    })
}

fn reference(
    d: &mut Decoder,
    node: &Node,
    expects: ExpectedKind,
    refs: &mut Vec<Reference>,
) -> Option<String> {
    let path = d.string(node, "a file reference")?;
    refs.push(Reference {
        pos: node.pos,
        path: path.clone(),
        expects,
    });
    Some(path)
}
