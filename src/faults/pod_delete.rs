//! pod-delete: delete the picked pods (grace period or force). Nothing to undo: their
//! owners recreate them. What matters is how long the owners take to be whole again.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;

use super::recovery::{Owner, owner_of};
use super::{FaultContext, object_ref, record_event, split_pod, with_retries};
use crate::events::RunEvent;
use crate::spec::PodDelete;

/// Deletes each target; returns the owners of what was deleted.
pub async fn delete_pods(
    ctx: &FaultContext,
    fault: &PodDelete,
    targets: &[String],
) -> Result<BTreeSet<Owner>, String> {
    let grace = if fault.force {
        Some(0)
    } else {
        fault.grace_period.map(|g| g.0.as_secs() as u32)
    };
    let mut owners = BTreeSet::new();
    for target in targets {
        let (namespace, name) = split_pod(target);
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let pod = match with_retries(deadline, || api.get(name)).await {
            Ok(pod) => pod,
            Err(e) => {
                let error = format!("cannot read pod before deleting it: {e}");
                ctx.bus.emit(RunEvent::FaultInjectFailed {
                    step: ctx.step.clone(),
                    target: target.clone(),
                    error: error.clone(),
                });
                return Err(error);
            }
        };
        if let Some(owner) = owner_of(&ctx.client, &pod).await {
            owners.insert(owner);
        }
        let params = DeleteParams {
            grace_period_seconds: grace,
            dry_run: ctx.dry_run,
            ..DeleteParams::default()
        };
        match with_retries(deadline, || api.delete(name, &params)).await {
            Ok(_) => {
                let uid = pod.metadata.uid.clone();
                let how = match grace {
                    Some(0) => "deleted (force, grace 0s)".to_owned(),
                    Some(g) => format!("deleted (grace {g}s)"),
                    None => "deleted (pod's own grace period)".to_owned(),
                };
                let detail = format!("{how}, uid {}", uid.clone().unwrap_or_default());
                ctx.bus.emit(RunEvent::FaultInjected {
                    step: ctx.step.clone(),
                    target: target.clone(),
                    detail,
                });
                let object = object_ref("Pod", "v1", Some(namespace), name, uid);
                record_event(
                    ctx,
                    object,
                    "ShakedownFault",
                    "pod deleted by a chaos experiment",
                )
                .await;
            }
            // Already gone is what we wanted.
            Err(kube::Error::Api(s)) if s.code == 404 => {
                ctx.bus.emit(RunEvent::FaultInjected {
                    step: ctx.step.clone(),
                    target: target.clone(),
                    detail: "already gone".into(),
                });
            }
            Err(e) => {
                let error = format!("delete failed: {e}");
                ctx.bus.emit(RunEvent::FaultInjectFailed {
                    step: ctx.step.clone(),
                    target: target.clone(),
                    error: error.clone(),
                });
                return Err(error);
            }
        }
    }
    Ok(owners)
}
