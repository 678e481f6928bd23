//! pod-delete: delete the picked pods (grace period or force). Nothing to undo: their
//! owners recreate them. What matters is how long the owners take to be whole again.
//!
//! The critical path is one DELETE per pod, at the API floor: each pod is deleted as the
//! listing that picked it saw it, with its UID as the precondition (so a pod recreated
//! under the same name since, a StatefulSet's, is never hit), without reading it again.
//! The Events that tell on-call it was chaos are posted after the deletions, one per
//! owner with the count of its pods, so they never slow the deletions down.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Api;
use kube::api::{DeleteParams, Preconditions};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::disruption::{Disrupted, disrupted_at};
use super::{
    FaultContext, FaultError, Hold, Injector, event_for, listed_pod, object_ref, post_event,
    split_pod, with_retries,
};
use crate::events::{NoteLevel, RunEvent};
use crate::run::stop::{IN_FLIGHT_GRACE, unless_signalled, unless_stopped, unless_stopped_after};
use crate::spec::PodDelete;

/// How many deletions are in flight at once: enough to keep up with a large pick,
/// few enough not to trip API priority and fairness on a real server.
const PARALLEL_DELETES: usize = 32;

/// How many Events are posted at once after the deletions.
const PARALLEL_EVENTS: usize = 4;

/// The Event reason on a pod-delete's objects.
const REASON: &str = "ShakedownFault";

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
    // Owner lookups are reads: a signal does not wait for them (recovery is not measured
    // after one), an abort does (recovery still is). The Events go out meanwhile; once
    // a delete went through its Event is always posted, so no deletion goes unrecorded.
    // Each owner's clock starts at its own last deletion.
    let mut stop = ctx.stop.clone();
    let lookup = unless_signalled(&mut stop, disrupted_at(&ctx.client, &deleted));
    let (disrupted, ()) = tokio::join!(lookup, post_events(ctx, &deleted, grace));
    let disrupted = disrupted.unwrap_or_else(|| {
        let mut disrupted = Disrupted::default();
        for (pod, _) in &deleted {
            disrupted.add_pod(pod);
        }
        disrupted
    });
    first_error.map_or(Ok(disrupted), Err)
}

/// Deletes one pod: the pod and when its deletion was sent; `None` when it was already
/// gone (or is no longer the pod picked).
async fn delete_one(
    ctx: &FaultContext,
    target: &str,
    grace: Option<u32>,
) -> Result<Option<(Pod, tokio::time::Instant)>, FaultError> {
    let (namespace, name) = split_pod(target);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let fail = |action, e| ctx.failed(target, FaultError::api(action, e));
    // A stop ends the injection: no new deletion starts, and one retrying a flaky API
    // gives up. Once a delete went through, the rest (journal, Event) always runs, so a
    // deleted pod is never missing from the record.
    let mut stop = ctx.stop.clone();
    let pod = match ctx.listed.get(target) {
        Some(info) => listed_pod(info),
        // No listing to act on (a caller without one): read the pod first.
        None => {
            let Some(read) =
                unless_stopped(&mut stop, with_retries(deadline, || api.get(name))).await
            else {
                return Ok(None);
            };
            match read {
                Ok(pod) => pod,
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
                Err(e) => return Err(fail("cannot read pod before deleting it", e)),
            }
        }
    };
    let uid = pod.metadata.uid.clone().filter(|u| !u.is_empty());
    let params = DeleteParams {
        grace_period_seconds: grace,
        dry_run: ctx.dry_run,
        preconditions: uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    // The disruption's instant is when the attempt that went through was sent: the
    // server deleted the pod after it, so a recovery measured from here is never shorter
    // than the truth (stamped once the calls returned, it was, by their latency).
    let sent = std::sync::Mutex::new(tokio::time::Instant::now());
    let deleting = with_retries(deadline, || {
        *sent.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
        api.delete(name, &params)
    });
    let Some(deleted) = unless_stopped_after(&mut stop, IN_FLIGHT_GRACE, deleting).await else {
        return Ok(None);
    };
    match deleted {
        Ok(_) => {}
        // Already gone is what we wanted.
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        // The UID precondition failed: the name now belongs to a pod created after the
        // pick (a StatefulSet's replacement), which this fault did not choose.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            ctx.bus.emit(RunEvent::Note {
                level: NoteLevel::Info,
                message: format!(
                    "step {}: {target} was replaced since it was picked (its UID changed): not deleted",
                    ctx.step
                ),
            });
            return Ok(None);
        }
        Err(e) => return Err(fail("delete failed", e)),
    }
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
    let detail = format!("{verb} {how}, uid {}", uid.unwrap_or_default());
    ctx.injected(target, detail);
    let sent = *sent.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Some((pod, sent)))
}

/// One Event per owner of the deleted pods (its count is how many, its message names
/// them), or on the pod itself when it has no owner; a few posted at once.
async fn post_events(
    ctx: &FaultContext,
    deleted: &[(Pod, tokio::time::Instant)],
    grace: Option<u32>,
) {
    let how = match grace {
        Some(0) => " (force)",
        _ => "",
    };
    let verb = if ctx.dry_run { "would be " } else { "" };
    let limit = Arc::new(Semaphore::new(PARALLEL_EVENTS));
    let mut posts = JoinSet::new();
    for (object, names) in by_owner(deleted).into_values() {
        let message = if names.len() == 1 && object.kind.as_deref() == Some("Pod") {
            format!("pod {verb}deleted by a chaos experiment{how}")
        } else {
            format!(
                "{} pod(s) {verb}deleted by a chaos experiment{how}: {}",
                names.len(),
                names.join(", ")
            )
        };
        let mut event = event_for(&ctx.run_id, object, REASON, &message);
        event.count = Some(i32::try_from(names.len()).unwrap_or(i32::MAX));
        let (ctx, limit) = (ctx.clone(), limit.clone());
        posts.spawn(async move {
            let _permit = limit.acquire_owned().await;
            post_event(&ctx, event).await;
        });
    }
    while posts.join_next().await.is_some() {}
}

/// The deleted pods' names grouped by the object their Event goes on: the controlling
/// owner, or the pod itself.
fn by_owner(
    deleted: &[(Pod, tokio::time::Instant)],
) -> BTreeMap<[String; 3], (ObjectReference, Vec<String>)> {
    let mut groups: BTreeMap<[String; 3], (ObjectReference, Vec<String>)> = BTreeMap::new();
    for (pod, _) in deleted {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone();
        let name = meta.name.clone().unwrap_or_default();
        let controller = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        let object = match controller {
            Some(o) => object_ref(
                &o.kind,
                &o.api_version,
                namespace.as_deref(),
                &o.name,
                (!o.uid.is_empty()).then(|| o.uid.clone()),
            ),
            None => object_ref("Pod", "v1", namespace.as_deref(), &name, meta.uid.clone()),
        };
        let key = [&object.kind, &object.namespace, &object.name]
            .map(|part| part.clone().unwrap_or_default());
        groups
            .entry(key)
            .or_insert_with(|| (object, Vec::new()))
            .1
            .push(name);
    }
    groups
}
