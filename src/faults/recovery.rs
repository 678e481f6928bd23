//! "Recovered" means the owner of a disrupted pod has its desired ready replicas again.
//! This finds the owners (Pod → ReplicaSet → Deployment, or StatefulSet/DaemonSet) and
//! measures how long they take to get back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
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

/// Whether the owner has all its desired replicas ready now.
pub async fn is_ready(client: &Client, owner: &Owner) -> Result<bool, kube::Error> {
    let ns = owner.namespace.as_str();
    Ok(match owner.kind.as_str() {
        "Deployment" => {
            let d = Api::<Deployment>::namespaced(client.clone(), ns)
                .get(&owner.name)
                .await?;
            let want = d.spec.and_then(|s| s.replicas).unwrap_or(1);
            d.status.and_then(|s| s.ready_replicas).unwrap_or(0) >= want
        }
        "ReplicaSet" => {
            let r = Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .get(&owner.name)
                .await?;
            let want = r.spec.and_then(|s| s.replicas).unwrap_or(1);
            r.status.and_then(|s| s.ready_replicas).unwrap_or(0) >= want
        }
        "StatefulSet" => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get(&owner.name)
                .await?;
            let want = s.spec.and_then(|s| s.replicas).unwrap_or(1);
            s.status.and_then(|s| s.ready_replicas).unwrap_or(0) >= want
        }
        "DaemonSet" => {
            let d = Api::<DaemonSet>::namespaced(client.clone(), ns)
                .get(&owner.name)
                .await?;
            d.status
                .is_some_and(|s| s.number_ready >= s.desired_number_scheduled)
        }
        // Unknown controllers: nothing we can measure, so we do not claim recovery.
        _ => false,
    })
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
    /// Stamps every owner as disrupted now (the fault's calls have just returned).
    pub fn disrupted_now(mut self) -> Self {
        let now = tokio::time::Instant::now();
        for owner in &self.owners {
            self.last_disrupted.insert(owner.clone(), now);
        }
        self
    }

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

/// Polls until every owner is whole again or the deadline passes, or the run stops
/// (`until_signal`: only a terminating signal stops it, not an abort, so recovery is
/// still measured after an early revert).
///
/// "Whole" means the disrupted pods are really gone (a terminating pod may still count
/// as ready for a moment, which would fake an instant recovery) and the owner has its
/// desired ready replicas. Transient API errors count as "not yet".
pub async fn wait_until_recovered(
    client: &Client,
    disrupted: &mut Disrupted,
    deadline: tokio::time::Instant,
    stopped: &mut tokio::sync::watch::Receiver<crate::run::stop::Stop>,
    until_signal: bool,
) {
    loop {
        let gone = all_gone(client, &disrupted.pods).await;
        let pending: Vec<Owner> = disrupted.pending().cloned().collect();
        for owner in pending {
            let own_pods_gone = gone
                .iter()
                .all(|(ns, still_there)| ns != &owner.namespace || !still_there);
            if own_pods_gone && is_ready(client, &owner).await.unwrap_or(false) {
                disrupted
                    .recovered
                    .insert(owner, tokio::time::Instant::now());
            }
        }
        let next = tokio::time::Instant::now() + Duration::from_millis(250);
        if disrupted.pending().next().is_none() || next >= deadline {
            return;
        }
        let stopped = if until_signal {
            crate::run::stop::wait_or_signal(stopped, next).await
        } else {
            crate::run::stop::wait_or_stop(stopped, next).await
        };
        if stopped {
            return;
        }
    }
}

/// For each disrupted pod: its namespace, and whether that very pod (same uid) still exists.
async fn all_gone(client: &Client, pods: &[(String, String, String)]) -> Vec<(String, bool)> {
    let mut out = Vec::with_capacity(pods.len());
    for (namespace, name, uid) in pods {
        let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let still_there = match api.get_opt(name).await {
            Ok(Some(pod)) => pod.metadata.uid.as_deref() == Some(uid.as_str()),
            Ok(None) => false,
            Err(_) => true,
        };
        out.push((namespace.clone(), still_there));
    }
    out
}
