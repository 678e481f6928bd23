//! pod-delete: delete the picked pods (grace period or force). Nothing to undo: their
//! owners recreate them. What matters is how long the owners take to be whole again.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::recovery::{Disrupted, owners_of};
use super::{
    FaultContext, FaultError, Hold, Injector, object_ref, record_event, split_pod, with_retries,
};
use crate::run::stop::{IN_FLIGHT_GRACE, unless_signalled, unless_stopped, unless_stopped_after};
use crate::spec::PodDelete;

/// How many deletions are in flight at once: enough to keep up with a large pick,
/// few enough not to trip API priority and fairness on a real server.
const PARALLEL_DELETES: usize = 32;

impl Injector for PodDelete {
    fn revert_hint(&self, _run_id: &str) -> String {
        "nothing to revert: the owners recreate deleted pods".into()
    }

    /// A one-shot delete is "active" until its owners are whole again; a repeated one
    /// deletes fresh picks every interval.
    fn hold(&self, recovery_budget: Duration) -> Hold {
        match (self.interval, self.duration) {
            (Some(interval), Some(total)) => Hold::Repeat {
                interval: interval.0,
                total: total.0,
            },
            _ => Hold::UntilRecovered(recovery_budget),
        }
    }

    fn removed_pod_revert(&self) -> Option<&'static str> {
        Some("nothing to revert: the owner recreates the pod")
    }

    async fn inject(
        &self,
        ctx: &FaultContext,
        targets: &[String],
    ) -> Result<Disrupted, FaultError> {
        delete_pods(ctx, self, targets).await
    }
}

/// Deletes each target (concurrently); returns what was disrupted.
async fn delete_pods(
    ctx: &FaultContext,
    fault: &PodDelete,
    targets: &[String],
) -> Result<Disrupted, FaultError> {
    let grace = if fault.force {
        Some(0)
    } else {
        fault.grace_period.map(|g| g.0.as_secs() as u32)
    };
    let limit = Arc::new(Semaphore::new(PARALLEL_DELETES));
    let mut tasks = JoinSet::new();
    for target in targets {
        let (ctx, target, limit) = (ctx.clone(), target.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            delete_one(&ctx, &target, grace).await
        });
    }
    let mut deleted = Vec::new();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(Some(pod))) => deleted.push(pod),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error.get_or_insert(FaultError::Task {
                    what: "deletion",
                    source: join,
                });
            }
        }
    }
    let mut disrupted = Disrupted {
        // Owner lookups are reads: a signal does not wait for them (recovery is not
        // measured after one), an abort does (recovery still is).
        owners: unless_signalled(&mut ctx.stop.clone(), owners_of(&ctx.client, &deleted))
            .await
            .unwrap_or_default(),
        ..Disrupted::default()
    };
    for pod in &deleted {
        disrupted.add_pod(pod);
    }
    let disrupted = disrupted.disrupted_now();
    first_error.map_or(Ok(disrupted), Err)
}

/// Deletes one pod; `None` when it was already gone.
async fn delete_one(
    ctx: &FaultContext,
    target: &str,
    grace: Option<u32>,
) -> Result<Option<Pod>, FaultError> {
    let (namespace, name) = split_pod(target);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let fail = |action, e| ctx.failed(target, FaultError::api(action, e));
    // A stop ends the injection: no new deletion starts, and one retrying a flaky API
    // gives up. Once a delete went through, the rest (journal, Event) always runs, so a
    // deleted pod is never missing from the record.
    let mut stop = ctx.stop.clone();
    let Some(read) = unless_stopped(&mut stop, with_retries(deadline, || api.get(name))).await
    else {
        return Ok(None);
    };
    let pod = match read {
        Ok(pod) => pod,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        Err(e) => return Err(fail("cannot read pod before deleting it", e)),
    };
    let params = DeleteParams {
        grace_period_seconds: grace,
        dry_run: ctx.dry_run,
        ..DeleteParams::default()
    };
    let deleting = with_retries(deadline, || api.delete(name, &params));
    let Some(deleted) = unless_stopped_after(&mut stop, IN_FLIGHT_GRACE, deleting).await else {
        return Ok(None);
    };
    match deleted {
        Ok(_) => {}
        // Already gone is what we wanted.
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        Err(e) => return Err(fail("delete failed", e)),
    }
    let uid = pod.metadata.uid.clone();
    let how = match grace {
        Some(0) => "(force, grace 0s)".to_owned(),
        Some(g) => format!("(grace {g}s)"),
        None => "(pod's own grace period)".to_owned(),
    };
    let verb = if ctx.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let detail = format!("{verb} {how}, uid {}", uid.clone().unwrap_or_default());
    ctx.injected(target, detail);
    let object = object_ref("Pod", "v1", Some(namespace), name, uid);
    record_event(
        ctx,
        object,
        "ShakedownFault",
        "pod deleted by a chaos experiment",
    )
    .await;
    Ok(Some(pod))
}
