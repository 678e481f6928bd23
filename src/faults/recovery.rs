//! "Recovered" means the owner of a disrupted pod has its desired ready replicas again.
//! This finds the owners (Pod → ReplicaSet → Deployment, or StatefulSet/DaemonSet) and
//! measures how long they take to get back.

use std::collections::BTreeSet;
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

/// Polls until every owner is ready or the deadline passes; returns the owners still not
/// ready. Transient API errors count as "not ready yet".
pub async fn wait_until_ready(
    client: &Client,
    owners: &BTreeSet<Owner>,
    deadline: tokio::time::Instant,
) -> BTreeSet<Owner> {
    let mut pending = owners.clone();
    loop {
        let mut still = BTreeSet::new();
        for owner in &pending {
            if !is_ready(client, owner).await.unwrap_or(false) {
                still.insert(owner.clone());
            }
        }
        pending = still;
        if pending.is_empty() || tokio::time::Instant::now() >= deadline {
            return pending;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
