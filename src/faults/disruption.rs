//! Which workloads a fault disrupted and when: the owner of each removed pod (Pod →
//! ReplicaSet → Deployment, or a StatefulSet/DaemonSet), looked up once per controller,
//! stamped with the instant its latest pod went. `recovery` then times each owner from
//! there until it is whole again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};

/// A workload whose readiness we wait for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.kind.to_lowercase(),
            self.namespace,
            self.name
        )
    }
}

/// The top-level controller of a pod, if any.
pub async fn owner_of(client: &Client, pod: &Pod) -> Option<Owner> {
    let namespace = pod.metadata.namespace.clone()?;
    let controller = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))?;
    if controller.kind == "ReplicaSet" {
        let rs: Api<ReplicaSet> = Api::namespaced(client.clone(), &namespace);
        if let Ok(rs) = rs.get(&controller.name).await
            && let Some(parent) = rs
                .metadata
                .owner_references
                .as_ref()
                .and_then(|os| os.iter().find(|o| o.controller == Some(true)))
            && parent.kind == "Deployment"
        {
            return Some(Owner {
                kind: "Deployment".into(),
                namespace,
                name: parent.name.clone(),
            });
        }
    }
    Some(Owner {
        kind: controller.kind.clone(),
        namespace,
        name: controller.name.clone(),
    })
}

/// The owners of many pods, looking up each controller once (a ReplicaSet of 1,000
/// pods costs one request, not 1,000).
pub async fn owners_of(client: &Client, pods: &[Pod]) -> BTreeSet<Owner> {
    let mut seen = BTreeSet::new();
    let mut owners = BTreeSet::new();
    for pod in pods {
        let controller = pod
            .metadata
            .owner_references
            .as_ref()
            .and_then(|os| os.iter().find(|o| o.controller == Some(true)))
            .map(|o| {
                (
                    pod.metadata.namespace.clone(),
                    o.kind.clone(),
                    o.name.clone(),
                )
            });
        if controller.is_some_and(|c| seen.insert(c))
            && let Some(owner) = owner_of(client, pod).await
        {
            owners.insert(owner);
        }
    }
    owners
}

/// What pods disrupted one by one at known instants (a drain's evictions, some held back
/// by a PDB) did to their owners: each owner is stamped with the latest instant one of
/// its pods went, not with when the whole fault's calls returned, which would make an
/// owner evicted early and whole again before a late eviction look instantly recovered.
pub async fn disrupted_at(client: &Client, pods: &[(Pod, tokio::time::Instant)]) -> Disrupted {
    let mut by_controller: BTreeMap<(Option<String>, String, String), Option<Owner>> =
        BTreeMap::new();
    let mut disrupted = Disrupted::default();
    for (pod, at) in pods {
        disrupted.add_pod(pod);
        let Some(controller) = pod
            .metadata
            .owner_references
            .as_ref()
            .and_then(|os| os.iter().find(|o| o.controller == Some(true)))
        else {
            continue;
        };
        let key = (
            pod.metadata.namespace.clone(),
            controller.kind.clone(),
            controller.name.clone(),
        );
        let owner = match by_controller.get(&key) {
            Some(owner) => owner.clone(),
            None => {
                let owner = owner_of(client, pod).await;
                by_controller.insert(key, owner.clone());
                owner
            }
        };
        if let Some(owner) = owner {
            let last = disrupted.last_disrupted.entry(owner.clone()).or_insert(*at);
            *last = (*last).max(*at);
            disrupted.owners.insert(owner);
        }
    }
    disrupted
}

/// What a fault disrupted, when each owner was last disrupted, and when each owner was
/// seen whole again after that.
#[derive(Debug, Clone, Default)]
pub struct Disrupted {
    pub owners: BTreeSet<Owner>,
    /// `(namespace, name, uid)` of every pod deleted or evicted.
    pub pods: Vec<(String, String, String)>,
    /// When each owner lost its latest pod: its recovery time counts from here, not
    /// from the first injection of a repeated fault.
    pub last_disrupted: BTreeMap<Owner, tokio::time::Instant>,
    pub recovered: BTreeMap<Owner, tokio::time::Instant>,
}

impl Disrupted {
    /// Adds a later disruption: an owner hit again is not recovered any more, and its
    /// recovery clock restarts.
    pub fn extend(&mut self, other: Disrupted) {
        for (owner, at) in other.last_disrupted {
            self.recovered.remove(&owner);
            let last = self.last_disrupted.entry(owner).or_insert(at);
            *last = (*last).max(at);
        }
        self.owners.extend(other.owners);
        self.pods.extend(other.pods);
    }

    /// How long `owner` took to be whole again after its own last disruption.
    pub fn recovery_time(&self, owner: &Owner, fallback: tokio::time::Instant) -> Option<Duration> {
        let recovered = self.recovered.get(owner)?;
        let since = self.last_disrupted.get(owner).copied().unwrap_or(fallback);
        Some(recovered.saturating_duration_since(since))
    }

    pub fn add_pod(&mut self, pod: &Pod) {
        let meta = &pod.metadata;
        self.pods.push((
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
            meta.uid.clone().unwrap_or_default(),
        ));
    }

    pub fn pending(&self) -> impl Iterator<Item = &Owner> {
        self.owners
            .iter()
            .filter(|o| !self.recovered.contains_key(*o))
    }
}
