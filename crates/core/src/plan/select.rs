//! Target selection: which objects of an inventory a fault hits. Pure and seeded.
//!
//! Fewer matches than asked for, none at all, or a pick above the blast-radius cap is an
//! error: a chaos test that injected nothing did not pass. Node picks are also checked
//! for what a drain of them would touch (`blast_radius`).

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use super::{Objects, Pick, TargetSelection};
use crate::selector::{FieldSelector, LabelSelector};
use crate::spec::{Exclusions, Safety};

/// What the cluster looks like, as far as target selection cares.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub pods: Vec<PodInfo>,
    pub nodes: Vec<NodeInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub phase: String,
    pub node_name: String,
    /// The kind of its controlling owner (`ReplicaSet`, `DaemonSet`, …), if any.
    pub controller_kind: Option<String>,
    /// A static pod's mirror (`kubernetes.io/config.mirror`): never evicted.
    pub mirror: bool,
    /// Already being deleted.
    pub terminating: bool,
    /// Its `metadata.uid` when listed: a pod-delete sends it as the DELETE's
    /// precondition, so a pod recreated under the same name since is never hit.
    pub uid: String,
    /// The name of its controlling owner (with `controller_kind`), if any.
    pub controller_name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub unschedulable: bool,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
}

/// Each planned step gets its own stream, so adding a step does not change other picks.
pub fn derive_seed(seed: u64, id: &str) -> u64 {
    // FNV-1a over the id, mixed with the seed: stable across releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Why a fault has no acceptable targets. Each says what was asked and what was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    #[error("namespace `{0}` (from -n or the kubeconfig) is not in safety.allowedNamespaces")]
    DefaultNamespaceNotAllowed(String),
    #[error("no {noun} match {wanted}")]
    NoMatch { noun: &'static str, wanted: String },
    #[error("asked for {asked} {noun} but only {found} match {wanted}")]
    TooFew {
        asked: usize,
        found: usize,
        noun: &'static str,
        wanted: String,
    },
    #[error(
        "picking {asked} of {found} {noun} ({share:.1}%) is above safety.maxTargetPercent {cap}%"
    )]
    AboveCap {
        asked: usize,
        found: usize,
        noun: &'static str,
        share: f64,
        cap: f64,
    },
    #[error("node `{0}` does not exist")]
    NoSuchNode(String),
    #[error("draining {asked} nodes is above the node cap of {cap} ({why})")]
    AboveNodeCap {
        asked: usize,
        cap: usize,
        why: String,
    },
    #[error(
        "draining {nodes} would leave zone `{zone}` without a Ready node; a zone-outage drill sets safety.allowEmptyZone: true"
    )]
    EmptiesZone { nodes: String, zone: String },
    #[error(
        "draining {nodes} would evict kube-system pods, which shakedown never disrupts: {pods}"
    )]
    EvictsKubeSystem { nodes: String, pods: String },
    #[error(
        "draining {nodes} would evict pods outside safety.allowedNamespaces: {pods}; list their namespaces in target.nodes.acceptCollateral to accept that"
    )]
    Collateral { nodes: String, pods: String },
    /// Validation parses every selector first, so this means a spec bypassed it.
    #[error("{0}")]
    BadSelector(String),
}

/// Picks the targets of one fault from the inventory, with a seeded random choice.
pub fn select_targets(
    selection: &TargetSelection,
    safety: Option<&Safety>,
    inventory: &Inventory,
    seed: u64,
) -> Result<Vec<String>, TargetError> {
    if let Objects::Pods {
        namespaces,
        defaulted: true,
        ..
    } = &selection.objects
    {
        // The namespace came from -n or the kubeconfig, so it was not checked at validation.
        for ns in namespaces {
            let allowed = safety.is_some_and(|s| s.allowed_namespaces.contains(ns));
            if ns == "kube-system" || !allowed {
                return Err(TargetError::DefaultNamespaceNotAllowed(ns.clone()));
            }
        }
    }
    let (candidates, noun) = match &selection.objects {
        Objects::Pods { .. } => (pod_candidates(selection, inventory)?, "pods"),
        Objects::Nodes { .. } => (node_candidates(selection, inventory)?, "nodes"),
    };
    let wanted = || super::describe_target(selection);
    if candidates.is_empty() {
        return Err(TargetError::NoMatch {
            noun,
            wanted: wanted(),
        });
    }
    let total = candidates.len();
    let asked = match selection.pick {
        Pick::One => 1,
        Pick::Count(n) => n as usize,
        Pick::Percent(p) => ((total as f64) * p / 100.0).ceil().max(1.0) as usize,
        Pick::All => total,
    };
    if asked > total {
        return Err(TargetError::TooFew {
            asked,
            found: total,
            noun,
            wanted: wanted(),
        });
    }
    let cap = safety.map_or(100.0, |s| s.max_target_percent.0);
    let share = asked as f64 * 100.0 / total as f64;
    if share > cap + 1e-9 {
        return Err(TargetError::AboveCap {
            asked,
            found: total,
            noun,
            share,
            cap,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked: Vec<String> = rand::seq::index::sample(&mut rng, total, asked)
        .into_iter()
        .map(|i| candidates[i].clone())
        .collect();
    picked.sort();
    if let Objects::Nodes {
        accept_collateral, ..
    } = &selection.objects
    {
        super::blast_radius::check_drain(&picked, accept_collateral, safety, inventory)?;
    }
    Ok(picked)
}

/// Every object a selection picks from (`namespace/name` for pods, node names), before
/// the pick: a cap is a share of this set, so runs that share it must not overlap.
pub fn candidates(
    selection: &TargetSelection,
    inventory: &Inventory,
) -> Result<Vec<String>, TargetError> {
    match &selection.objects {
        Objects::Pods { .. } => pod_candidates(selection, inventory),
        Objects::Nodes { .. } => node_candidates(selection, inventory),
    }
}

fn parse_selector(text: Option<&str>) -> Result<LabelSelector, TargetError> {
    text.map_or(Ok(LabelSelector::default()), |t| {
        LabelSelector::parse(t).map_err(|e| TargetError::BadSelector(e.to_string()))
    })
}

/// Whether an exclusion list rules out an object by name or labels.
fn excluded(
    exclude: Option<&Exclusions>,
    selector: &LabelSelector,
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    exclude.is_some_and(|e| {
        e.names.iter().any(|n| n == name) || (e.selector.is_some() && selector.matches(labels))
    })
}

fn pod_candidates(
    selection: &TargetSelection,
    inventory: &Inventory,
) -> Result<Vec<String>, TargetError> {
    let Objects::Pods {
        namespaces,
        selector,
        field_selector,
        exclude,
        ..
    } = &selection.objects
    else {
        return Ok(Vec::new());
    };
    let selector = parse_selector(selector.as_deref())?;
    let fields = field_selector
        .as_deref()
        .map_or(Ok(FieldSelector::default()), FieldSelector::parse)
        .map_err(|e| TargetError::BadSelector(e.to_string()))?;
    let exclude = exclude.as_ref();
    let exclude_selector = parse_selector(exclude.and_then(|e| e.selector.as_deref()))?;
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
        .filter(|p| !excluded(exclude, &exclude_selector, &p.name, &p.labels))
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    out.sort();
    Ok(out)
}

fn node_candidates(
    selection: &TargetSelection,
    inventory: &Inventory,
) -> Result<Vec<String>, TargetError> {
    let Objects::Nodes {
        names,
        selector,
        exclude,
        ..
    } = &selection.objects
    else {
        return Ok(Vec::new());
    };
    let selector = parse_selector(selector.as_deref())?;
    let exclude = exclude.as_ref();
    let exclude_selector = parse_selector(exclude.and_then(|e| e.selector.as_deref()))?;
    if let Some(missing) = names
        .iter()
        .find(|n| !inventory.nodes.iter().any(|node| &node.name == *n))
    {
        return Err(TargetError::NoSuchNode(missing.clone()));
    }
    let mut out: Vec<String> = inventory
        .nodes
        .iter()
        .filter(|n| {
            if names.is_empty() {
                selector.matches(&n.labels)
            } else {
                names.contains(&n.name)
            }
        })
        .filter(|n| !excluded(exclude, &exclude_selector, &n.name, &n.labels))
        .map(|n| n.name.clone())
        .collect();
    out.sort();
    Ok(out)
}
