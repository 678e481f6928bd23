//! `kube` probes: ready replicas of a Deployment or StatefulSet, or the number of
//! Ready nodes matching a selector.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

use super::{Observation, Probe, SampleFuture};
use crate::events::SeriesValue;
use crate::spec::KubeProbe;

pub struct KubeReadiness {
    client: Client,
    spec: KubeProbe,
}

impl KubeReadiness {
    pub fn new(client: Client, spec: KubeProbe) -> Self {
        Self { client, spec }
    }

    async fn observe(&self) -> Result<f64, kube::Error> {
        let namespace = self.spec.namespace.clone().unwrap_or_default();
        if let Some(name) = &self.spec.deployment {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
            let d = api.get(name).await?;
            return Ok(d.status.and_then(|s| s.ready_replicas).unwrap_or(0) as f64);
        }
        if let Some(name) = &self.spec.statefulset {
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &namespace);
            let s = api.get(name).await?;
            return Ok(s.status.and_then(|s| s.ready_replicas).unwrap_or(0) as f64);
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let selector = self.spec.nodes.clone().unwrap_or_default();
        let params = if selector.is_empty() {
            ListParams::default()
        } else {
            ListParams::default().labels(&selector)
        };
        let nodes = api.list(&params).await?;
        let ready = nodes.items.iter().filter(|n| is_ready(n)).count();
        Ok(ready as f64)
    }
}

/// Ready and schedulable: a cordoned node is not available for new work.
fn is_ready(node: &Node) -> bool {
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && !cordoned
}

impl Probe for KubeReadiness {
    fn describe(&self) -> String {
        crate::report::words::kube_probe(&self.spec)
    }

    fn sample(&self, _at: Timestamp) -> SampleFuture<'_> {
        Box::pin(async move {
            // A throttled or flaky API is not an observation about the workload.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            match crate::cluster::with_retries(deadline, || self.observe()).await {
                Ok(v) => Observation::Values(vec![SeriesValue {
                    labels: Default::default(),
                    value: Some(v),
                }]),
                // The causes too: "error trying to connect" alone does not say why.
                Err(e) => Observation::Error(crate::exit::cause_chain(&e)),
            }
        })
    }
}
