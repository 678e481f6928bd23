//! node-drain: cordon with our annotation, evict through the Eviction API (PDBs are
//! honoured: a 429 is retried with backoff until the eviction timeout), hold, then
//! uncordon only the nodes that carry our annotation.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use kube::{Api, Client};
use serde_json::json;

use super::disruption::{Disrupted, disrupted_at};
use super::{
    CORDONED_BY, FaultContext, FaultError, Hold, Injector, Reverted, Undo, object_ref,
    record_event, with_retries,
};
use crate::events::{NoteLevel, RunEvent};
use crate::run::retry::{Backoff, retry_notify};
use crate::run::stop::{IN_FLIGHT_GRACE, unless_signalled, unless_stopped, unless_stopped_after};
use crate::spec::NodeDrain;

fn patch_params(dry_run: bool) -> PatchParams {
    PatchParams {
        dry_run,
        ..PatchParams::default()
    }
}

impl Injector for NodeDrain {
    fn revert_hint(&self, run_id: &str) -> String {
        format!(
            "kubectl uncordon the nodes annotated {CORDONED_BY}={run_id}, or `shakedown recover`"
        )
    }

    fn hold(&self, _recovery_budget: Duration) -> Hold {
        Hold::For(self.duration.0)
    }

    fn removed_pod_revert(&self) -> Option<&'static str> {
        Some("nothing to revert: the owner reschedules the evicted pod")
    }

    async fn inject(&self, ctx: &FaultContext, nodes: &[String]) -> Result<Disrupted, FaultError> {
        drain(ctx, self, nodes).await
    }
}

/// Cordons the nodes (recording each in the ledger first) and evicts their pods.
/// Returns the owners of the evicted pods.
async fn drain(
    ctx: &FaultContext,
    fault: &NodeDrain,
    nodes: &[String],
) -> Result<Disrupted, FaultError> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    let deadline = tokio::time::Instant::now() + fault.eviction_timeout.0;
    // Every API wait here gives way to a stop: what was cordoned so far is in the
    // ledger, and the executor reverts it.
    let mut stop = ctx.stop.clone();
    for name in nodes {
        let Some(node) = unless_stopped(&mut stop, with_retries(deadline, || api.get(name))).await
        else {
            return Ok(Disrupted::default());
        };
        let node = node.map_err(|e| fail(ctx, name, FaultError::api("cannot read node", e)))?;
        let ours = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CORDONED_BY))
            .is_some_and(|v| v == &ctx.run_id);
        let already = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if already && !ours {
            ctx.bus.emit(RunEvent::Note {
                level: NoteLevel::Warning,
                message: format!("node {name} was already cordoned by someone else; it will be drained but left cordoned"),
            });
        } else {
            ctx.ledger
                .record(&ctx.step, Undo::Uncordon { node: name.clone() });
            let patch = Patch::Merge(
                json!({"metadata": {"annotations": {CORDONED_BY: ctx.run_id}}, "spec": {"unschedulable": true}}),
            );
            let params = patch_params(ctx.dry_run);
            let cordon = with_retries(deadline, || api.patch(name, &params, &patch));
            let Some(cordoned) = unless_stopped(&mut stop, cordon).await else {
                return Ok(Disrupted::default());
            };
            cordoned.map_err(|e| fail(ctx, name, FaultError::api("cordon failed", e)))?;
            let detail = if ctx.dry_run {
                "would cordon"
            } else {
                "cordoned"
            };
            ctx.injected(&format!("node/{name}"), detail.into());
            let uid = node.metadata.uid.clone();
            record_event(
                ctx,
                object_ref("Node", "v1", None, name, uid),
                "ShakedownFault",
                "node cordoned and drained by a chaos experiment",
            )
            .await;
        }
    }
    let mut disrupted = Disrupted::default();
    for name in nodes {
        disrupted.extend(evict_node(ctx, fault, name, deadline).await?);
    }
    Ok(disrupted)
}

fn fail(ctx: &FaultContext, node: &str, error: FaultError) -> FaultError {
    ctx.failed(&format!("node/{node}"), error)
}

/// Evicts every evictable pod on one node, concurrently, like `kubectl drain`.
async fn evict_node(
    ctx: &FaultContext,
    fault: &NodeDrain,
    node: &str,
    deadline: tokio::time::Instant,
) -> Result<Disrupted, FaultError> {
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let Some(list) = unless_stopped(
        &mut ctx.stop.clone(),
        with_retries(deadline, || pods.list(&on_node)),
    )
    .await
    else {
        return Ok(Disrupted::default());
    };
    let list = list.map_err(|e| fail(ctx, node, FaultError::api("cannot list pods", e)))?;
    let mut victims = Vec::new();
    for pod in list.items {
        match classify(&pod, fault, ctx.evictable.as_deref()) {
            Disposition::Evict => victims.push(pod),
            Disposition::Skip => {}
            Disposition::Refuse(why) => return Err(fail(ctx, node, FaultError::Refused(why))),
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for pod in victims {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let evicted = evict_with_backoff(&ctx, &pod, deadline).await;
            (pod, evicted, tokio::time::Instant::now())
        });
    }
    let mut evicted = Vec::new();
    let mut first_error = None;
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok((pod, Ok(true), at)) => evicted.push((pod, at)),
            Ok((_, Ok(false), _)) => {}
            Ok((_, Err(e), _)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error.get_or_insert(FaultError::Task {
                    what: "eviction",
                    source: join,
                });
            }
        }
    }
    // Only what was really evicted is disrupted: a pod a stopped run never got to
    // evict has no recovery to wait for. Each owner's clock starts at its own last
    // eviction, which a PDB may have held back well past the others. Owner lookups are
    // reads: a signal does not wait for them (recovery is not measured after one), an
    // abort does (recovery still is).
    let disrupted =
        match unless_signalled(&mut ctx.stop.clone(), disrupted_at(&ctx.client, &evicted)).await {
            Some(disrupted) => disrupted,
            None => {
                let mut disrupted = Disrupted::default();
                for (pod, _) in &evicted {
                    disrupted.add_pod(pod);
                }
                disrupted
            }
        };
    match first_error {
        Some(e) => Err(e),
        None => Ok(disrupted),
    }
}

enum Disposition {
    Evict,
    Skip,
    Refuse(String),
}

fn classify(
    pod: &Pod,
    fault: &NodeDrain,
    evictable: Option<&crate::plan::DrainScope>,
) -> Disposition {
    let name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    );
    if pod.metadata.deletion_timestamp.is_some() {
        return Disposition::Skip;
    }
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    if annotations.contains_key("kubernetes.io/config.mirror") {
        return Disposition::Skip;
    }
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return Disposition::Skip;
    }
    let controller = pod
        .metadata
        .owner_references
        .as_ref()
        .and_then(|os| os.iter().find(|o| o.controller == Some(true)));
    match controller {
        Some(c) if c.kind == "DaemonSet" => {
            return if fault.ignore_daemon_sets {
                Disposition::Skip
            } else {
                Disposition::Refuse(format!(
                    "{name} is managed by a DaemonSet; set ignoreDaemonSets: true"
                ))
            };
        }
        Some(_) => {}
        None => {
            return Disposition::Refuse(format!(
                "{name} has no controller and would be lost; shakedown does not drain unmanaged pods"
            ));
        }
    }
    // The plan checked the node's pods against the allow-list; this one arrived after
    // (scheduled between that check and the cordon), so nothing vouched for it.
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    if let Some(scope) = evictable
        && !scope.may_evict_from(namespace)
    {
        return Disposition::Refuse(format!(
            "{name} is on the node but its namespace `{namespace}` is outside allowedNamespaces and acceptCollateral (it arrived after the plan checked the drain's blast radius); nothing on this node is evicted"
        ));
    }
    let uses_empty_dir = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|vs| vs.iter().any(|v| v.empty_dir.is_some()));
    if uses_empty_dir && !fault.delete_empty_dir_data {
        return Disposition::Refuse(format!(
            "{name} uses emptyDir data that eviction would delete; set deleteEmptyDirData: true"
        ));
    }
    Disposition::Evict
}

/// The Eviction a drain posts for `pod`: a whole `policy/v1` object (`apiVersion`,
/// `kind`, `metadata`, `deleteOptions`), as kube-apiserver decodes it. kube-rs's own
/// `Api::evict` sends `{"delete_options": …}` without type meta, which a real server
/// ignores with a warning, dropping the options. The UID precondition makes sure we
/// evict the pod we listed, never a namesake that replaced it (a StatefulSet's).
pub fn eviction_for(pod: &Pod, dry_run: bool) -> Eviction {
    Eviction {
        metadata: ObjectMeta {
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        delete_options: Some(DeleteOptions {
            dry_run: dry_run.then(|| vec!["All".to_owned()]),
            preconditions: pod.metadata.uid.clone().map(|uid| Preconditions {
                uid: Some(uid),
                ..Preconditions::default()
            }),
            ..DeleteOptions::default()
        }),
    }
}

/// One eviction. A 429 means a PodDisruptionBudget said "not now": wait and retry until
/// the deadline, as `kubectl drain` does, or until the run stops (then `Ok(false)`:
/// not evicted, nothing to wait for). `Ok(true)` when the pod was evicted.
async fn evict_with_backoff(
    ctx: &FaultContext,
    pod: &Pod,
    deadline: tokio::time::Instant,
) -> Result<bool, FaultError> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let target = format!("{namespace}/{name}");
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let eviction = eviction_for(pod, ctx.dry_run);
    let params = PostParams {
        dry_run: ctx.dry_run,
        ..PostParams::default()
    };
    let mut blocked = false;
    let note_pdb = |e: &kube::Error, _| {
        if matches!(e, kube::Error::Api(s) if s.code == 429) && !blocked {
            blocked = true;
            ctx.bus.emit(RunEvent::Note {
                level: NoteLevel::Info,
                message: format!("eviction of {target} blocked by a PodDisruptionBudget; retrying"),
            });
        }
    };
    let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
    let evict = || api.create_subresource::<_, Status>("eviction", &name, &params, &eviction);
    let retries = retry_notify(backoff, deadline, super::is_transient, note_pdb, evict);
    // A PDB can block for the whole eviction timeout (minutes): a signal or an abort
    // must not wait for it, only for an eviction already on its way.
    let Some(evicted) = unless_stopped_after(&mut ctx.stop.clone(), IN_FLIGHT_GRACE, retries).await
    else {
        ctx.bus.emit(RunEvent::Note {
            level: NoteLevel::Info,
            message: format!("eviction of {target} not attempted further: the run was stopped"),
        });
        return Ok(false);
    };
    match evicted {
        Ok(_) => {
            let detail = match (ctx.dry_run, blocked) {
                (true, _) => "would evict",
                (false, true) => "evicted after a PodDisruptionBudget allowed it",
                (false, false) => "evicted",
            };
            ctx.injected(&target, detail.into());
            Ok(true)
        }
        // Gone already, or replaced by a namesake (the UID precondition): either way the
        // pod we listed is not running any more, and not by our hand.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(e) => Err(ctx.failed(
            &target,
            FaultError::api("eviction not possible before the timeout", e),
        )),
    }
}

/// Uncordons `node` if, and only if, it carries our run's annotation.
///
/// A run's own revert is one request: a JSON patch whose `test` op makes the server
/// check the mark and uncordon in one atomic step (no GET before it, and no window in
/// which another run could re-mark the node between a read and the write). Only when
/// the test fails (422: the mark is gone or names another run) is the node read, to
/// say why. `recover` (an empty `run_id`, any shakedown run's mark) reads first.
pub async fn uncordon(
    client: &Client,
    node: &str,
    run_id: &str,
    dry_run: bool,
) -> Result<Reverted, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    if !run_id.is_empty() {
        match json_patch_node(client, node, &uncordon_if_marked_by(run_id), dry_run).await {
            Ok(_) => return Ok(uncordoned(run_id, dry_run)),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Ok(Reverted::Gone("node no longer exists".into()));
            }
            // The mark is not ours (or not there): find out what it is below.
            Err(kube::Error::Api(s)) if s.code == 422 => {}
            Err(e) => return Err(e),
        }
    }
    uncordon_after_reading(&api, node, run_id, dry_run).await
}

/// The JSON patch that uncordons a node only while `CORDONED_BY` names `run_id`. The
/// `add` before the `remove` makes the removal of `spec.unschedulable` valid whether or
/// not the field is there (RFC 6902's `remove` needs it), leaving it unset as a merge
/// patch's `null` and `kubectl uncordon` do.
fn uncordon_if_marked_by(run_id: &str) -> serde_json::Value {
    let mark = format!(
        "/metadata/annotations/{}",
        CORDONED_BY.replace('~', "~0").replace('/', "~1")
    );
    json!([
        {"op": "test", "path": mark, "value": run_id},
        {"op": "remove", "path": mark},
        {"op": "add", "path": "/spec/unschedulable", "value": false},
        {"op": "remove", "path": "/spec/unschedulable"},
    ])
}

/// Sends a JSON patch (RFC 6902) to a node. By hand, because kube's typed `Patch::Json`
/// needs a feature this crate does not build; the server answers 422 when a `test` op
/// fails, as kube-apiserver does.
async fn json_patch_node(
    client: &Client,
    node: &str,
    patch: &serde_json::Value,
    dry_run: bool,
) -> Result<Node, kube::Error> {
    let query = if dry_run { "?dryRun=All" } else { "" };
    let request = http::Request::patch(format!("/api/v1/nodes/{node}{query}"))
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .body(patch.to_string().into_bytes())
        .map_err(|e| kube::Error::BuildRequest(kube::core::request::Error::BuildRequest(e)))?;
    client.request::<Node>(request).await
}

fn uncordoned(by: &str, dry_run: bool) -> Reverted {
    Reverted::Undone(if dry_run {
        format!("would uncordon (cordoned by run {by})")
    } else {
        format!("uncordoned (was cordoned by run {by})")
    })
}

/// The revert that reads the node first: for `recover`, and to say why a run's mark
/// was not found.
async fn uncordon_after_reading(
    api: &Api<Node>,
    node: &str,
    run_id: &str,
    dry_run: bool,
) -> Result<Reverted, kube::Error> {
    let current = match api.get(node).await {
        Ok(n) => n,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok(Reverted::Gone("node no longer exists".into()));
        }
        Err(e) => return Err(e),
    };
    let marker = current
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CORDONED_BY))
        .cloned();
    let patch =
        json!({"metadata": {"annotations": {CORDONED_BY: null}}, "spec": {"unschedulable": null}});
    match marker {
        Some(by) if by == run_id || run_id.is_empty() => {
            api.patch(node, &patch_params(dry_run), &Patch::Merge(&patch))
                .await?;
            Ok(uncordoned(&by, dry_run))
        }
        // A run's server dry run never really cordoned the node, so it carries no mark;
        // the uncordon is still sent (with dryRun=All) so RBAC and admission see the
        // revert as well as the fault.
        None if dry_run && !run_id.is_empty() => {
            api.patch(node, &patch_params(dry_run), &Patch::Merge(&patch))
                .await?;
            Ok(Reverted::Undone("would uncordon".into()))
        }
        Some(by) => Ok(Reverted::LeftAlone(format!(
            "cordoned by another run ({by})"
        ))),
        None => Ok(Reverted::LeftAlone("not cordoned by shakedown".into())),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn managed_pod(namespace: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": "late", "namespace": namespace,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "rs", "uid": "u1", "controller": true}]
            },
            "status": {"phase": "Running"}
        }))
        .expect("a pod")
    }

    fn drain() -> NodeDrain {
        NodeDrain {
            duration: crate::spec::Span(Duration::from_secs(60)),
            eviction_timeout: crate::spec::Span(Duration::from_secs(120)),
            ignore_daemon_sets: true,
            delete_empty_dir_data: false,
        }
    }

    /// Regression (issue 10, blast radius): the plan checks the node's pods against the
    /// allow-list, but a pod scheduled onto the node after that check (before the
    /// cordon) was evicted whatever its namespace, kube-system included.
    #[test]
    fn a_pod_that_arrived_after_the_plan_outside_the_allow_list_is_refused() {
        // kube-system is never evictable, even when a scope names it.
        let allowed = crate::plan::DrainScope::new(&["shop".into(), "kube-system".into()], None);
        assert!(matches!(
            classify(&managed_pod("shop"), &drain(), Some(&allowed)),
            Disposition::Evict
        ));
        for outside in ["kube-system", "default"] {
            match classify(&managed_pod(outside), &drain(), Some(&allowed)) {
                Disposition::Refuse(why) => assert!(why.contains(outside), "{why}"),
                _ => panic!("a pod in {outside} must not be evicted"),
            }
        }
        // Nothing to check against (not a planned drain): the namespace is not judged.
        assert!(matches!(
            classify(&managed_pod("default"), &drain(), None),
            Disposition::Evict
        ));
    }
}
