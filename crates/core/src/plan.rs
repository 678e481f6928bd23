//! The plan: a pure function from a validated spec to a timeline and, when a cluster
//! inventory is supplied, the concrete targets.
//!
//! No I/O here. Randomness is seeded: the same seed and inventory give the same picks,
//! and every plan carries its seed so a run can be replayed with `--seed`.

use std::fmt;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use serde::Serialize;

use crate::selector::{FieldSelector, LabelSelector};
use crate::spec::duration::format_duration;
use crate::spec::{
    Fault, Loaded, Mode, NodeTarget, PodTarget, ResolvedAction, ResolvedStep, Safety, Scenario,
    Target,
};

/// `--dry-run`: how far a run may go. Settled once, before anything is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DryRun {
    /// Inject for real.
    None,
    /// Plan and preflight only: no mutating call at all.
    Client,
    /// Every mutating call carries `dryRun=All`: RBAC and admission run, nothing changes.
    Server,
}

/// A seed nobody chose: printed with the plan so the run can be reproduced.
pub fn fresh_seed() -> u64 {
    rand::random::<u64>() >> 11 // keep it exactly representable in JSON numbers
}

/// What the cluster looks like, as far as target selection cares.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub pods: Vec<PodInfo>,
    pub nodes: Vec<NodeInfo>,
    /// Used for pod targets that name no namespace (kubectl's `-n`).
    pub default_namespace: String,
}

#[derive(Debug, Clone)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub phase: String,
    pub node_name: String,
}

#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub unschedulable: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub name: String,
    pub kind: &'static str,
    pub source: String,
    pub seed: u64,
    /// Upper bound on wall time: every recovery window used to the full.
    #[serde(serialize_with = "as_duration")]
    pub longest: Duration,
    pub entries: Vec<PlanEntry>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    /// `2.1` is the first step of the parallel group that is step 2; `#3` marks a repeat.
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "as_duration")]
    pub start: Duration,
    /// When the fault is reverted (or the pause ends).
    #[serde(serialize_with = "as_duration")]
    pub fault_end: Duration,
    /// Latest end: the recovery window used to the full.
    #[serde(serialize_with = "as_duration")]
    pub end: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hypotheses: Vec<String>,
    /// Resolved targets; only present when planned against an inventory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Result<Vec<String>, String>>,
}

fn as_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// What the plan needs to read from the cluster: pod namespaces, and whether nodes.
pub fn inventory_needs(loaded: &Loaded) -> (Vec<String>, bool) {
    let (mut namespaces, mut nodes) = (Vec::new(), false);
    for (_, scenario) in loaded.scenarios() {
        match &scenario.spec.target {
            Target::Pods(p) => namespaces.extend(p.namespaces.iter().cloned()),
            Target::Nodes(_) => nodes = true,
        }
    }
    namespaces.sort();
    namespaces.dedup();
    (namespaces, nodes)
}

/// Builds the timeline of `loaded`. With an inventory, also picks the targets.
pub fn plan(loaded: &Loaded, seed: u64, inventory: Option<&Inventory>) -> Plan {
    let mut builder = Builder {
        seed,
        inventory,
        entries: Vec::new(),
    };
    let (kind, end) = match &loaded.document {
        crate::spec::Document::Scenario(scenario) => {
            let end =
                builder.scenario("1", &scenario.metadata.name, scenario, Duration::ZERO, None);
            ("Scenario", end)
        }
        crate::spec::Document::Experiment(experiment) => {
            let safety = experiment.spec.safety.as_ref();
            (
                "Experiment",
                builder.sequence("", &loaded.steps, Duration::ZERO, safety),
            )
        }
    };
    Plan {
        name: loaded.name().to_owned(),
        kind,
        source: loaded.path.display().to_string(),
        seed,
        longest: end,
        entries: builder.entries,
    }
}

struct Builder<'a> {
    seed: u64,
    inventory: Option<&'a Inventory>,
    entries: Vec<PlanEntry>,
}

impl Builder<'_> {
    /// Lays out steps one after another from `start`; returns when the last one ends.
    fn sequence(
        &mut self,
        prefix: &str,
        steps: &[ResolvedStep],
        start: Duration,
        safety: Option<&Safety>,
    ) -> Duration {
        let mut cursor = start;
        for (i, step) in steps.iter().enumerate() {
            let id = format!("{prefix}{}", i + 1);
            cursor = self.step(&id, step, cursor, safety);
        }
        cursor
    }

    fn step(
        &mut self,
        id: &str,
        step: &ResolvedStep,
        start: Duration,
        safety: Option<&Safety>,
    ) -> Duration {
        let mut cursor = start + step.after;
        for round in 1..=step.repeat {
            let id = if step.repeat > 1 {
                format!("{id}#{round}")
            } else {
                id.to_owned()
            };
            cursor = match &step.action {
                ResolvedAction::Scenario { scenario, .. } => {
                    self.scenario(&id, &step.name, scenario, cursor, safety)
                }
                ResolvedAction::Experiment { steps, .. } => {
                    self.sequence(&format!("{id}."), steps, cursor, safety)
                }
                ResolvedAction::Pause(length) => {
                    self.entries.push(PlanEntry {
                        id,
                        name: step.name.clone(),
                        start: cursor,
                        fault_end: cursor + *length,
                        end: cursor + *length,
                        fault: None,
                        target: None,
                        hypotheses: Vec::new(),
                        targets: None,
                    });
                    cursor + *length
                }
                ResolvedAction::Parallel(children) => children
                    .iter()
                    .enumerate()
                    .map(|(i, child)| self.step(&format!("{id}.{}", i + 1), child, cursor, safety))
                    .max()
                    .unwrap_or(cursor),
            };
        }
        cursor
    }

    fn scenario(
        &mut self,
        id: &str,
        name: &str,
        scenario: &Scenario,
        start: Duration,
        inherited: Option<&Safety>,
    ) -> Duration {
        let spec = &scenario.spec;
        let fault_end = start + spec.fault.active_for();
        let end = fault_end + spec.recovery.settle.0 + spec.recovery.within.0;
        let safety = inherited.or(spec.safety.as_ref());
        let targets = self.inventory.map(|inventory| {
            select_targets(&spec.target, safety, inventory, derive_seed(self.seed, id))
        });
        self.entries.push(PlanEntry {
            id: id.to_owned(),
            name: name.to_owned(),
            start,
            fault_end,
            end,
            fault: Some(describe_fault(&spec.fault)),
            target: Some(describe_target(&spec.target)),
            hypotheses: spec.hypotheses.iter().map(|h| h.name.clone()).collect(),
            targets,
        });
        end
    }
}

/// Each plan entry gets its own stream, so adding a step does not change other picks.
pub fn derive_seed(seed: u64, id: &str) -> u64 {
    // FNV-1a over the id, mixed with the seed: stable across releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

pub fn describe_fault(fault: &Fault) -> String {
    match fault {
        Fault::PodDelete(f) => match (f.interval, f.duration) {
            (Some(i), Some(d)) => format!(
                "pod-delete every {} for {}",
                format_duration(i.0),
                format_duration(d.0)
            ),
            _ => "pod-delete once".to_owned(),
        },
        Fault::NetworkLatency(f) => format!(
            "network-latency {} ±{} on {} for {}",
            format_duration(f.delay.0),
            format_duration(f.jitter.0),
            f.interface,
            format_duration(f.duration.0)
        ),
        Fault::NodeDrain(f) => format!("node-drain for {}", format_duration(f.duration.0)),
    }
}

pub fn describe_target(target: &Target) -> String {
    let (what, selector, mode, count, percent) = match target {
        Target::Pods(p) => {
            let ns = if p.namespaces.is_empty() {
                "the default namespace".to_owned()
            } else {
                p.namespaces.join(",")
            };
            (
                format!("pods in {ns}"),
                p.selector.clone(),
                p.mode,
                p.count,
                p.percent,
            )
        }
        Target::Nodes(n) if !n.names.is_empty() => (
            format!("nodes {}", n.names.join(",")),
            None,
            n.mode,
            n.count,
            n.percent,
        ),
        Target::Nodes(n) => (
            "nodes".to_owned(),
            n.selector.clone(),
            n.mode,
            n.count,
            n.percent,
        ),
    };
    let how = match mode {
        Mode::One => "one".to_owned(),
        Mode::Count => format!("{} of them", count.unwrap_or(1)),
        Mode::Percent => format!("{}% of them", percent.map_or(0.0, |p| p.0)),
        Mode::All => "all".to_owned(),
    };
    match selector {
        Some(s) => format!("{what} matching {s}, {how}"),
        None => format!("{what}, {how}"),
    }
}

/// Picks the targets of one fault from the inventory. Fewer matches than asked for, or
/// a pick above the blast-radius cap, is an error: a chaos test that injected nothing
/// did not pass.
pub fn select_targets(
    target: &Target,
    safety: Option<&Safety>,
    inventory: &Inventory,
    seed: u64,
) -> Result<Vec<String>, String> {
    if let Target::Pods(p) = target
        && p.namespaces.is_empty()
    {
        // The namespace came from -n or the kubeconfig, so it was not checked at validation.
        let ns = &inventory.default_namespace;
        let allowed = safety.is_some_and(|s| s.allowed_namespaces.contains(ns));
        if ns == "kube-system" || !allowed {
            return Err(format!(
                "namespace `{ns}` (from -n or the kubeconfig) is not in safety.allowedNamespaces"
            ));
        }
    }
    let (candidates, mode, count, percent, noun) = match target {
        Target::Pods(p) => (
            pod_candidates(p, inventory)?,
            p.mode,
            p.count,
            p.percent,
            "pods",
        ),
        Target::Nodes(n) => (
            node_candidates(n, inventory)?,
            n.mode,
            n.count,
            n.percent,
            "nodes",
        ),
    };
    if candidates.is_empty() {
        return Err(format!("no {noun} match {}", describe_target(target)));
    }
    let total = candidates.len();
    let wanted = match mode {
        Mode::One => 1,
        Mode::Count => count.unwrap_or(1) as usize,
        Mode::Percent => ((total as f64) * percent.map_or(0.0, |p| p.0) / 100.0)
            .ceil()
            .max(1.0) as usize,
        Mode::All => total,
    };
    if wanted > total {
        return Err(format!(
            "asked for {wanted} {noun} but only {total} match {}",
            describe_target(target)
        ));
    }
    let cap = safety.map_or(100.0, |s| s.max_target_percent.0);
    let share = wanted as f64 * 100.0 / total as f64;
    if share > cap + 1e-9 {
        return Err(format!(
            "picking {wanted} of {total} {noun} ({share:.1}%) is above safety.maxTargetPercent {cap}%"
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked: Vec<String> = rand::seq::index::sample(&mut rng, total, wanted)
        .into_iter()
        .map(|i| candidates[i].clone())
        .collect();
    picked.sort();
    Ok(picked)
}

fn parse_selector(text: Option<&str>) -> Result<LabelSelector, String> {
    text.map_or(Ok(LabelSelector::default()), |t| {
        LabelSelector::parse(t).map_err(|e| e.to_string())
    })
}

fn pod_candidates(target: &PodTarget, inventory: &Inventory) -> Result<Vec<String>, String> {
    let selector = parse_selector(target.selector.as_deref())?;
    let fields = target
        .field_selector
        .as_deref()
        .map_or(Ok(FieldSelector::default()), FieldSelector::parse)
        .map_err(|e| e.to_string())?;
    let exclude = target.exclude.as_ref();
    let exclude_selector = parse_selector(exclude.and_then(|e| e.selector.as_deref()))?;
    let default_namespaces = [inventory.default_namespace.clone()];
    let namespaces = if target.namespaces.is_empty() {
        &default_namespaces[..]
    } else {
        &target.namespaces[..]
    };
    // Only Running pods are targets unless the field selector says otherwise.
    let phase_given = fields
        .requirements
        .iter()
        .any(|r| r.field == "status.phase");
    let mut out: Vec<String> = inventory
        .pods
        .iter()
        .filter(|p| namespaces.contains(&p.namespace))
        .filter(|p| phase_given || p.phase == "Running")
        .filter(|p| selector.matches(&p.labels))
        .filter(|p| {
            fields.matches(|f| match f {
                "metadata.name" => Some(p.name.clone()),
                "metadata.namespace" => Some(p.namespace.clone()),
                "spec.nodeName" => Some(p.node_name.clone()),
                "status.phase" => Some(p.phase.clone()),
                _ => None,
            })
        })
        .filter(|p| {
            exclude.is_none_or(|e| {
                !e.names.contains(&p.name)
                    && (e.selector.is_none() || !exclude_selector.matches(&p.labels))
            })
        })
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    out.sort();
    Ok(out)
}

fn node_candidates(target: &NodeTarget, inventory: &Inventory) -> Result<Vec<String>, String> {
    let selector = parse_selector(target.selector.as_deref())?;
    let exclude = target.exclude.as_ref();
    let exclude_selector = parse_selector(exclude.and_then(|e| e.selector.as_deref()))?;
    if let Some(missing) = target
        .names
        .iter()
        .find(|n| !inventory.nodes.iter().any(|node| &node.name == *n))
    {
        return Err(format!("node `{missing}` does not exist"));
    }
    let mut out: Vec<String> = inventory
        .nodes
        .iter()
        .filter(|n| {
            if target.names.is_empty() {
                selector.matches(&n.labels)
            } else {
                target.names.contains(&n.name)
            }
        })
        .filter(|n| {
            exclude.is_none_or(|e| {
                !e.names.contains(&n.name)
                    && (e.selector.is_none() || !exclude_selector.matches(&n.labels))
            })
        })
        .map(|n| n.name.clone())
        .collect();
    out.sort();
    Ok(out)
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Plan for {} `{}` ({})",
            self.kind, self.name, self.source
        )?;
        writeln!(f, "seed: {} (replay with --seed {})", self.seed, self.seed)?;
        writeln!(
            f,
            "{:<8} {:>8} {:>8} {:>8}  step",
            "id", "start", "revert", "latest"
        )?;
        for e in &self.entries {
            writeln!(
                f,
                "{:<8} {:>8} {:>8} {:>8}  {}",
                e.id,
                format_duration(e.start),
                format_duration(e.fault_end),
                format_duration(e.end),
                e.name
            )?;
            if let Some(fault) = &e.fault {
                writeln!(f, "{:36}fault:  {fault}", "")?;
            }
            if let Some(target) = &e.target {
                writeln!(f, "{:36}target: {target}", "")?;
            }
            match &e.targets {
                Some(Ok(picked)) => writeln!(f, "{:36}picks:  {}", "", picked.join(", "))?,
                Some(Err(problem)) => writeln!(f, "{:36}picks:  ERROR {problem}", "")?,
                None => {}
            }
            if !e.hypotheses.is_empty() {
                writeln!(f, "{:36}checks: {}", "", e.hypotheses.join("; "))?;
            }
        }
        writeln!(
            f,
            "longest: {} (every recovery window used in full)",
            format_duration(self.longest)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Exclusions, Percent};

    fn inventory(pods: usize) -> Inventory {
        let pod = |i: usize, phase: &str| PodInfo {
            namespace: "shop".into(),
            name: format!("checkout-{i}"),
            labels: [("app".to_string(), "checkout".to_string())].into(),
            phase: phase.into(),
            node_name: format!("node-{}", i % 3),
        };
        let mut all: Vec<PodInfo> = (0..pods).map(|i| pod(i, "Running")).collect();
        all.push(pod(99, "Pending"));
        Inventory {
            pods: all,
            nodes: Vec::new(),
            default_namespace: "default".into(),
        }
    }

    fn pods(mode: Mode, count: Option<u32>, percent: Option<f64>) -> Target {
        Target::Pods(PodTarget {
            namespaces: vec!["shop".into()],
            selector: Some("app=checkout".into()),
            field_selector: None,
            exclude: None,
            mode,
            count,
            percent: percent.map(Percent),
        })
    }

    #[test]
    fn scenario_ids_match_the_plan_entries() {
        let loaded = crate::spec::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../experiments/gameday.yaml"),
        )
        .unwrap();
        let plan = plan(&loaded, 1, None);
        let planned: Vec<&str> = plan
            .entries
            .iter()
            .filter(|e| e.fault.is_some())
            .map(|e| e.id.as_str())
            .collect();
        let walked: Vec<String> = loaded.scenarios().into_iter().map(|(id, _)| id).collect();
        assert_eq!(walked, planned);
        assert_eq!(planned, ["1", "3#1", "3#2", "4.1", "4.2"]);
    }

    #[test]
    fn same_seed_same_picks_and_seeds_differ() {
        let inv = inventory(10);
        let target = pods(Mode::Count, Some(3), None);
        let a = select_targets(&target, None, &inv, 7).unwrap();
        assert_eq!(a, select_targets(&target, None, &inv, 7).unwrap());
        assert_eq!(a.len(), 3);
        let distinct: std::collections::BTreeSet<_> = (0..20)
            .map(|s| select_targets(&target, None, &inv, s).unwrap())
            .collect();
        assert!(distinct.len() > 1, "seeds must change the picks");
    }

    #[test]
    fn only_running_pods_are_candidates() {
        let picked = select_targets(&pods(Mode::All, None, None), None, &inventory(3), 1).unwrap();
        assert_eq!(
            picked,
            ["shop/checkout-0", "shop/checkout-1", "shop/checkout-2"]
        );
    }

    #[test]
    fn too_few_or_no_targets_is_an_error() {
        let err =
            select_targets(&pods(Mode::Count, Some(5), None), None, &inventory(3), 1).unwrap_err();
        assert!(err.contains("asked for 5 pods but only 3 match"), "{err}");
        let err = select_targets(&pods(Mode::One, None, None), None, &inventory(0), 1).unwrap_err();
        assert!(err.starts_with("no pods match"), "{err}");
    }

    #[test]
    fn percent_rounds_up_and_the_cap_holds() {
        let picked = select_targets(
            &pods(Mode::Percent, None, Some(30.0)),
            None,
            &inventory(10),
            1,
        )
        .unwrap();
        assert_eq!(picked.len(), 3);
        let safety = Safety {
            allowed_namespaces: vec!["shop".into()],
            max_target_percent: Percent(50.0),
            allowed_contexts: vec![],
        };
        let err = select_targets(
            &pods(Mode::Count, Some(2), None),
            Some(&safety),
            &inventory(3),
            1,
        )
        .unwrap_err();
        assert!(err.contains("above safety.maxTargetPercent 50%"), "{err}");
    }

    #[test]
    fn exclusions_are_never_picked() {
        let mut target = pods(Mode::All, None, None);
        if let Target::Pods(p) = &mut target {
            p.exclude = Some(Exclusions {
                names: vec!["checkout-1".into()],
                selector: None,
            });
        }
        let picked = select_targets(&target, None, &inventory(3), 1).unwrap();
        assert_eq!(picked, ["shop/checkout-0", "shop/checkout-2"]);
    }
}
