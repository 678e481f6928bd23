//! What a node drain touches beyond the nodes it names: every pod it would evict.
//!
//! A drain's blast radius is the pods on its nodes, so they are checked against the
//! allow-list (and `kube-system`) before anything is touched, the number of nodes is
//! capped (never every schedulable node), and a zone keeps a Ready node unless the
//! experiment is a zone-outage drill that says so. Pure: the inventory is the cluster.

use super::{Inventory, PodInfo, TargetError};
use crate::spec::Safety;

/// The label a zone is read from, as the scheduler and kubectl read it.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The namespaces a drain may evict from: the effective `allowedNamespaces` and the
/// drain's `acceptCollateral`, never `kube-system`. The one rule behind the plan's
/// blast-radius check and the executor's check at eviction time (a pod can land on a
/// node between the two), so they can never disagree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrainScope {
    allowed_namespaces: Vec<String>,
    accept_collateral: Vec<String>,
}

impl DrainScope {
    pub fn new(accept_collateral: &[String], safety: Option<&Safety>) -> Self {
        DrainScope {
            allowed_namespaces: safety
                .map(|s| s.allowed_namespaces.clone())
                .unwrap_or_default(),
            accept_collateral: accept_collateral.to_vec(),
        }
    }

    /// Every namespace a drain may evict from (never `kube-system`).
    pub fn namespaces(&self) -> impl Iterator<Item = &String> {
        self.allowed_namespaces
            .iter()
            .chain(&self.accept_collateral)
            .filter(|ns| ns.as_str() != "kube-system")
    }

    pub fn may_evict_from(&self, namespace: &str) -> bool {
        namespace != "kube-system"
            && self
                .allowed_namespaces
                .iter()
                .chain(&self.accept_collateral)
                .any(|ns| ns == namespace)
    }
}

/// The pods a drain of `nodes` would evict: like `kubectl drain`, not DaemonSet pods,
/// mirror pods, finished pods or pods already being deleted.
pub fn evicted_by_drain<'a>(
    nodes: &'a [String],
    inventory: &'a Inventory,
) -> impl Iterator<Item = &'a PodInfo> + 'a {
    inventory.pods.iter().filter(move |p| {
        nodes.contains(&p.node_name)
            && !p.mirror
            && !p.terminating
            && p.phase != "Succeeded"
            && p.phase != "Failed"
            && p.controller_kind.as_deref() != Some("DaemonSet")
    })
}

/// Checks picked nodes against the node cap, the zones and the collateral pods.
pub(super) fn check_drain(
    nodes: &[String],
    accept_collateral: &[String],
    safety: Option<&Safety>,
    inventory: &Inventory,
) -> Result<(), TargetError> {
    let list = || nodes.join(", ");
    let schedulable = inventory.nodes.iter().filter(|n| !n.unschedulable).count();
    let (cap, why) = match safety.and_then(|s| s.max_nodes) {
        Some(max) => (max as usize, "safety.maxNodes".to_owned()),
        None => (
            schedulable.saturating_sub(1),
            format!(
                "every schedulable node but one; {schedulable} are schedulable; raise it with safety.maxNodes"
            ),
        ),
    };
    if nodes.len() > cap {
        return Err(TargetError::AboveNodeCap {
            asked: nodes.len(),
            cap,
            why,
        });
    }
    if !safety.is_some_and(|s| s.allow_empty_zone) {
        for zone in zones_of(nodes, inventory) {
            let left = inventory.nodes.iter().any(|n| {
                n.ready
                    && !n.unschedulable
                    && !nodes.contains(&n.name)
                    && n.labels.get(ZONE_LABEL) == Some(&zone)
            });
            if !left {
                return Err(TargetError::EmptiesZone {
                    nodes: list(),
                    zone,
                });
            }
        }
    }
    let evicted: Vec<&PodInfo> = evicted_by_drain(nodes, inventory).collect();
    let names = |pods: Vec<&&PodInfo>| {
        pods.iter()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kube_system: Vec<&&PodInfo> = evicted
        .iter()
        .filter(|p| p.namespace == "kube-system")
        .collect();
    if !kube_system.is_empty() {
        return Err(TargetError::EvictsKubeSystem {
            nodes: list(),
            pods: names(kube_system),
        });
    }
    let scope = DrainScope::new(accept_collateral, safety);
    let outside: Vec<&&PodInfo> = evicted
        .iter()
        .filter(|p| !scope.may_evict_from(&p.namespace))
        .collect();
    if !outside.is_empty() {
        return Err(TargetError::Collateral {
            nodes: list(),
            pods: names(outside),
        });
    }
    Ok(())
}

/// The zones the picked nodes are in (nodes without a zone label are in none).
fn zones_of(nodes: &[String], inventory: &Inventory) -> Vec<String> {
    let mut zones: Vec<String> = inventory
        .nodes
        .iter()
        .filter(|n| nodes.contains(&n.name))
        .filter_map(|n| n.labels.get(ZONE_LABEL).cloned())
        .collect();
    zones.sort();
    zones.dedup();
    zones
}
