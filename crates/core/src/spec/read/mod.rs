//! Decoding the located YAML tree into the typed model, checking every value and
//! recording every problem (see `decode.rs` for the toolkit). This file reads the
//! documents and experiment steps; targets, faults, hypotheses and the safety and
//! Prometheus blocks each have their own file.

mod fault;
mod hypothesis;
mod settings;
mod silence;
mod target;

use std::collections::BTreeMap;
use std::time::Duration;

use super::decode::{Decoder, MapReader};
use super::model::*;
use super::node::{Node, Pos, Value};
use crate::selector::{FieldSelector, LabelSelector, SelectorError};

use self::fault::*;
pub use self::hypothesis::parse_expectation;
use self::hypothesis::*;
use self::settings::*;
pub use self::silence::parse_matcher;
use self::target::*;

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

/// What a file is decoded in the light of: the safety blocks of the experiments that
/// include it, outermost first. A scenario's own safety joins the chain, and every
/// guard in it must allow what the scenario targets (`Safety::effective`: stricter wins).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub guards: Vec<Safety>,
    /// Whether an enclosing experiment has an `alertmanager:` block (for `silence`).
    pub alertmanager: bool,
    /// Whether this file is included by an experiment (not the file being run).
    pub included: bool,
}

/// Fields that the API server accepts in a pod field selector.
pub(crate) const POD_FIELDS: [&str; 9] = [
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
        (Some(_), Some(spec)) => experiment_spec(d, spec, ctx, refs).map(|spec| {
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
/// Checks a list of namespaces that may widen what a fault touches: each must be a DNS
/// label, and `kube-system` is refused with `refusal` (and `hint`). Reports every bad
/// entry; true when all are fine.
fn namespace_names_without_kube_system(
    d: &mut Decoder,
    names: &[(Pos, String)],
    refusal: &str,
    hint: &str,
) -> bool {
    let mut ok = true;
    for (pos, ns) in names {
        if ns == PROTECTED_NAMESPACE {
            d.error(*pos, refusal, Some(hint.to_owned()));
            ok = false;
        } else {
            ok &= dns_label(d, *pos, ns, "namespace").is_some();
        }
    }
    ok
}

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
    let guards: Vec<&Safety> = ctx.guards.iter().chain(safety.as_ref()).collect();
    let effective_safety = Safety::effective(guards.iter().copied());
    let target = m
        .required(d, "target")
        .and_then(|n| target(d, n, effective_safety.as_ref(), &guards));
    let fault_node = m.required(d, "fault");
    // The `fault:` key, not its value's first line: that is where a reader looks.
    let fault_key = m.key_pos("fault");
    let fault = fault_node.and_then(|n| fault(d, n));
    let hypotheses = m.opt("hypotheses").and_then(|n| hypotheses(d, n));
    let recovery = m.opt("recovery").and_then(|n| recovery(d, n));
    let prometheus = m
        .opt("prometheus")
        .and_then(|n| prometheus(d, n, "prometheus"));
    let alertmanager = m
        .opt("alertmanager")
        .and_then(|n| settings::prometheus(d, n, "alertmanager"));
    let has_alertmanager = ctx.alertmanager || m.has("alertmanager");
    let silence = m
        .opt("silence")
        .map(|n| silence::silence(d, n, has_alertmanager));
    let on_empty = m.opt("onEmptyTargets").map(|n| {
        d.one_of(n, "onEmptyTargets", &OnEmptyTargets::NAMES)
            .map(|name| match name {
                "skip" => OnEmptyTargets::Skip,
                _ => OnEmptyTargets::Error,
            })
    });
    m.finish(d);
    if safety_node.is_some() && safety.is_none() {
        return None;
    }
    let (target, fault) = (target?, fault?);
    check_fault_fits_target(d, fault_node.map_or(node.pos, |n| n.pos), &fault, &target)?;
    Some(ScenarioSpec {
        target,
        fault,
        fault_line: fault_key.map(|p| p.line),
        hypotheses: hypotheses.unwrap_or_default(),
        recovery: recovery.unwrap_or_default(),
        safety,
        prometheus,
        alertmanager,
        on_empty_targets: on_empty.unwrap_or(Some(OnEmptyTargets::Error))?,
        silence: optional(silence)?,
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

fn experiment_spec(
    d: &mut Decoder,
    node: &Node,
    ctx: &Context,
    refs: &mut Vec<Reference>,
) -> Option<ExperimentSpec> {
    let mut m = d.map(node, "spec")?;
    let safety_node = m.opt("safety");
    let safety = safety_node.map(|n| safety(d, n));
    let prometheus = m.opt("prometheus").map(|n| prometheus(d, n, "prometheus"));
    let alertmanager = m
        .opt("alertmanager")
        .map(|n| settings::prometheus(d, n, "alertmanager"));
    let hypotheses = m.opt("hypotheses").map(|n| hypotheses(d, n));
    let steps = m.required(d, "steps").and_then(|n| steps(d, n, refs));
    let regression = m.opt("regression").map(|n| regression(d, n));
    let has_alertmanager = ctx.alertmanager || m.has("alertmanager");
    let silence_node = m.opt("silence");
    let silence = silence_node.map(|n| silence::silence(d, n, has_alertmanager));
    if let (Some(n), true) = (silence_node, ctx.included) {
        d.error(
            n.pos,
            "an included experiment cannot have its own silence",
            Some("put the silence on the experiment you run, or on the scenarios".into()),
        );
    }
    let upload = m
        .opt("upload")
        .map(|n| settings::prometheus(d, n, "upload"));
    let notify = m.opt("notify").map(|n| notify(d, n));
    let pushgateway = m
        .opt("pushgateway")
        .map(|n| settings::prometheus(d, n, "pushgateway"));
    m.finish(d);
    Some(ExperimentSpec {
        safety: optional(safety)?,
        prometheus: optional(prometheus)?,
        alertmanager: optional(alertmanager)?,
        hypotheses: hypotheses.unwrap_or(Some(Vec::new()))?,
        steps: steps?,
        regression: optional(regression)?,
        silence: optional(silence)?,
        upload: optional(upload)?,
        notify: notify.unwrap_or(Some(Vec::new()))?,
        pushgateway: optional(pushgateway)?,
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
