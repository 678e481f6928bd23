//! A pod as the recovery watch reads it: its identity, labels, whether it is going, and
//! its `Ready` condition; nothing else is decoded.
//!
//! Why not `k8s_openapi`'s `Pod`: a pod-delete of 1,000 pods comes back as bursts of a
//! thousand watch events (the kubelet readying every replacement in one pass), and the
//! watch stamps each change when it has decoded it. A full `Pod` (spec, containers,
//! volumes, and on a real cluster `managedFields`) took long enough to decode that the
//! last changes of a burst were stamped over 100 ms after the Deployment already
//! reported its replicas available, and recovery times came out late by as much. Here
//! serde skips those fields without building them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Deserializer};

/// What recovery is judged from, of one pod. Requested from the same `pods` endpoint
/// as `Pod` (the [`Resource`] impl is `Pod`'s), so the server sees the same list and
/// watch; only the client's decoding differs.
#[derive(Clone, Debug, Deserialize)]
pub struct WatchedPod {
    #[serde(deserialize_with = "identity")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Status {
    #[serde(default)]
    conditions: Option<Vec<Condition>>,
}

/// Both fields default: a condition missing one (a server or webhook out of spec) is
/// simply not `Ready`, instead of an undecodable event that restarts the watch.
#[derive(Clone, Debug, Deserialize)]
struct Condition {
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(default)]
    status: String,
}

impl WatchedPod {
    /// Ready and not being deleted: counted toward its owner's replicas.
    pub fn serves(&self) -> bool {
        let ready = self
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        ready && self.metadata.deletion_timestamp.is_none()
    }
}

/// The part of `metadata` the watch uses; `managedFields`, annotations and owner
/// references are skipped unread.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    deletion_timestamp: Option<Time>,
}

fn identity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    let read = Identity::deserialize(deserializer)?;
    Ok(ObjectMeta {
        name: read.name,
        namespace: read.namespace,
        uid: read.uid,
        resource_version: read.resource_version,
        labels: read.labels,
        deletion_timestamp: read.deletion_timestamp,
        ..ObjectMeta::default()
    })
}

impl Resource for WatchedPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        Pod::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        Pod::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        Pod::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        Pod::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_recovery_needs_from_a_full_pod_and_skips_the_rest() {
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
                "labels": {"app": "web"},
                "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-x", "uid": "r", "controller": true}]
            },
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ]}
        });
        let pod: WatchedPod = serde_json::from_value(json.clone()).expect("decodes");
        assert_eq!(pod.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(pod.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(
            pod.metadata.labels,
            Some(BTreeMap::from([("app".into(), "web".into())]))
        );
        assert!(pod.serves());

        let mut going = json.clone();
        going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:01Z".into();
        let going: WatchedPod = serde_json::from_value(going).expect("decodes");
        assert!(going.metadata.deletion_timestamp.is_some());
        assert!(!going.serves(), "a terminating pod does not serve");

        let mut unready = json;
        unready["status"]["conditions"][1]["status"] = "False".into();
        assert!(
            !serde_json::from_value::<WatchedPod>(unready)
                .unwrap()
                .serves()
        );
        let bare: WatchedPod =
            serde_json::from_value(serde_json::json!({"metadata": {"uid": "u"}, "status": null}))
                .expect("a pod without status decodes");
        assert!(!bare.serves());
        let odd: WatchedPod = serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "u"}, "status": {"conditions": [{"type": "Ready"}]}
        }))
        .expect("a condition without a status decodes");
        assert!(!odd.serves());
    }

    #[test]
    fn is_requested_from_the_pods_endpoint() {
        assert_eq!(
            WatchedPod::url_path(&(), Some("shop")),
            Pod::url_path(&(), Some("shop"))
        );
        assert_eq!(WatchedPod::kind(&()), "Pod");
        assert_eq!(WatchedPod::api_version(&()), "v1");
    }
}
