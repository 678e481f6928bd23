//! "Recovered" means the owner of a disrupted pod has its desired ready replicas again.
//! This finds the owners (Pod → ReplicaSet → Deployment, or StatefulSet/DaemonSet) and
//! measures how long they take to get back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::ListParams;
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

/// What readiness is judged against: how many ready pods the owner wants, which pods
/// are its own, and whether its controller has seen its current spec.
struct Wanted {
    desired: i32,
    selector: Option<String>,
    /// `status.observedGeneration >= metadata.generation`: the status and the pods
    /// answer the spec as it is now, not as it was.
    observed: bool,
}

impl Wanted {
    fn of(
        desired: i32,
        selector: Option<&LabelSelector>,
        meta: &ObjectMeta,
        observed_generation: Option<i64>,
    ) -> Self {
        Wanted {
            desired,
            selector: selector.map(selector_string),
            observed: observed_generation.unwrap_or(0) >= meta.generation.unwrap_or(0),
        }
    }
}

/// Whether the owner has all its desired replicas ready now, read from fresh state:
/// its controller has observed its current spec (observedGeneration), and enough of
/// its pods are Ready that are neither terminating nor among the `disrupted` ones (by
/// UID). The workload's status alone lags behind: right after a force delete it still
/// counts the deleted pod as ready, which made every recovery look instant ("0.0s").
pub async fn is_ready(
    client: &Client,
    owner: &Owner,
    disrupted: &BTreeSet<String>,
) -> Result<bool, kube::Error> {
    let ns = owner.namespace.as_str();
    let wanted = match owner.kind.as_str() {
        "Deployment" => {
            let d = Api::<Deployment>::namespaced(client.clone(), ns)
                .get(&owner.name)
                .await?;
            let spec = d.spec.as_ref();
            let observed = d.status.as_ref().and_then(|s| s.observed_generation);
            let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
            Wanted::of(desired, spec.map(|s| &s.selector), &d.metadata, observed)
        }
        "ReplicaSet" => {
            let r = Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .get(&owner.name)
                .await?;
            let spec = r.spec.as_ref();
            let observed = r.status.as_ref().and_then(|s| s.observed_generation);
            let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
            Wanted::of(desired, spec.map(|s| &s.selector), &r.metadata, observed)
        }
        "StatefulSet" => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get(&owner.name)
                .await?;
            let spec = s.spec.as_ref();
            let observed = s.status.as_ref().and_then(|s| s.observed_generation);
            let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
            Wanted::of(desired, spec.map(|s| &s.selector), &s.metadata, observed)
        }
        "DaemonSet" => {
            let d = Api::<DaemonSet>::namespaced(client.clone(), ns)
                .get(&owner.name)
                .await?;
            let status = d.status.as_ref();
            let observed = status.and_then(|s| s.observed_generation);
            let desired = status.map_or(0, |s| s.desired_number_scheduled);
            let selector = d.spec.as_ref().map(|s| &s.selector);
            Wanted::of(desired, selector, &d.metadata, observed)
        }
        // Unknown controllers: nothing we can measure, so we do not claim recovery.
        _ => return Ok(false),
    };
    if !wanted.observed {
        return Ok(false);
    }
    let mut params = ListParams::default();
    if let Some(selector) = wanted.selector.as_deref().filter(|s| !s.is_empty()) {
        params = params.labels(selector);
    }
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&params)
        .await?;
    let ready = pods
        .items
        .iter()
        .filter(|p| counts_as_ready(p, disrupted))
        .count();
    Ok(ready >= usize::try_from(wanted.desired).unwrap_or(0))
}

/// Ready, not on its way out, and not one of the pods the fault removed (a pod keeps
/// its name across a StatefulSet restart, never its UID).
fn counts_as_ready(pod: &Pod, disrupted: &BTreeSet<String>) -> bool {
    let fresh = pod
        .metadata
        .uid
        .as_ref()
        .is_some_and(|uid| !disrupted.contains(uid));
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    fresh && ready && pod.metadata.deletion_timestamp.is_none()
}

/// A `LabelSelector` in the `labelSelector` query syntax.
fn selector_string(selector: &LabelSelector) -> String {
    let mut terms: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        terms.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    terms.join(",")
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
/// still measured after an early revert). A stop ends the wait at once, even in the
/// middle of a slow API call.
///
/// "Whole" is judged from fresh state ([`is_ready`]): the disrupted pods (by UID) do
/// not count, however long they take to go. Transient API errors count as "not yet".
pub async fn wait_until_recovered(
    client: &Client,
    disrupted: &mut Disrupted,
    deadline: tokio::time::Instant,
    stopped: &mut tokio::sync::watch::Receiver<crate::run::stop::Stop>,
    until_signal: bool,
) {
    let polling = poll_recovery(client, disrupted, deadline);
    if until_signal {
        crate::run::stop::unless_signalled(stopped, polling).await;
    } else {
        crate::run::stop::unless_stopped(stopped, polling).await;
    }
}

async fn poll_recovery(client: &Client, disrupted: &mut Disrupted, deadline: tokio::time::Instant) {
    let uids: BTreeSet<String> = disrupted
        .pods
        .iter()
        .map(|(_, _, uid)| uid.clone())
        .filter(|uid| !uid.is_empty())
        .collect();
    loop {
        let pending: Vec<Owner> = disrupted.pending().cloned().collect();
        for owner in pending {
            if is_ready(client, &owner, &uids).await.unwrap_or(false) {
                disrupted
                    .recovered
                    .insert(owner, tokio::time::Instant::now());
            }
        }
        let next = tokio::time::Instant::now() + Duration::from_millis(250);
        if disrupted.pending().next().is_none() || next >= deadline {
            return;
        }
        tokio::time::sleep_until(next).await;
    }
}
