//! Faults: how each one is injected into the cluster and undone.
//!
//! Every fault follows `plan → inject → hold → revert → verify`, through one interface,
//! [`Injector`]: the plan says what to hit, `inject` makes the mutating calls, `hold`
//! says how the fault stays active, `revert` undoes the [`Ledger`]'s entries ([`undo`])
//! and `verify` waits for the disrupted owners to be whole ([`recovery`]). The executor
//! drives every fault the same way and never matches on its kind.
//!
//! Before its first mutating call a fault records what it is about to do twice: in the
//! in-memory `Ledger` (which the executor reverts from on every exit path, even if the
//! task that injected has panicked) and in the cluster itself (annotations), so that
//! `shakedown recover` can undo it even when the journal is lost.

pub mod disruption;
pub mod network;
pub mod node_drain;
pub mod pod_delete;
pub mod recovery;
pub mod silence;
mod watched_pod;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::PostParams;
use kube::{Api, Client};

use self::disruption::Disrupted;
use crate::cluster::ClusterError;
use crate::events::RunEvent;
use crate::plan::TargetError;
use crate::run::bus::EventBus;

pub use shakedown_vocab::annotations::{CORDONED_BY, FAULT_ANNOTATION};

/// Everything a fault needs to act and to report.
#[derive(Clone)]
pub struct FaultContext {
    pub client: Client,
    pub run_id: String,
    pub step: String,
    /// Server-side dry run: every mutating call carries `dryRun=All`.
    pub dry_run: bool,
    pub bus: EventBus,
    pub ledger: Ledger,
    /// The run's stop channel: injection waits (a PDB-blocked eviction, a flaky API)
    /// give way to it. Reverts never watch it: they must complete.
    pub stop: tokio::sync::watch::Receiver<crate::run::stop::Stop>,
    /// For a drain: the namespaces its evictions may reach (the effective allow-list and
    /// `acceptCollateral`). The plan checked the node's pods against them, but a pod can
    /// land on the node between that check and the cordon; it is refused, not evicted.
    /// `None`: no drain (a pod fault, `recover`).
    pub evictable: Option<std::sync::Arc<crate::plan::DrainScope>>,
    /// The targets as the listing that picked them saw them (`namespace/name` → pod),
    /// so a fault acts on that snapshot (a pod-delete sends the listed UID as its
    /// precondition) instead of reading every target again. Empty: no snapshot
    /// (`recover`, a test); a fault then reads what it needs.
    pub listed: Listed,
}

/// What the target listing saw of each picked pod, by `namespace/name`.
pub type Listed = Arc<std::collections::BTreeMap<String, crate::plan::PodInfo>>;

impl FaultContext {
    /// Reports a mutating call into `target` that went through. In a server dry run the
    /// API server accepted it with `dryRun=All` and changed nothing, so `detail` must say
    /// what it would do (`would cordon`), and the event says it was a dry run.
    pub fn injected(&self, target: &str, detail: String) {
        self.bus.emit(RunEvent::FaultInjected {
            step: self.step.clone(),
            target: target.to_owned(),
            detail,
            dry_run: self.dry_run,
        });
    }

    /// Reports a failed injection into `target` and hands the error back.
    pub fn failed(&self, target: &str, error: FaultError) -> FaultError {
        self.bus.emit(RunEvent::FaultInjectFailed {
            step: self.step.clone(),
            target: target.to_owned(),
            error: error.to_string(),
        });
        error
    }
}

/// One kind of fault, as the executor drives it. Implemented by the spec's fault types
/// (`PodDelete`, `NodeDrain`, `NetworkLatency`), each in its own module.
pub trait Injector: Sync {
    /// How to undo it by hand if everything else fails; goes into the intent record.
    fn revert_hint(&self, run_id: &str) -> String;

    /// How the fault stays active once injected. `recovery_budget` is the scenario's
    /// `recovery.within`.
    fn hold(&self, recovery_budget: Duration) -> Hold;

    /// For faults that remove pods (their owners replace them): what "reverted" means
    /// for such a pod. `None` when everything to undo is in the ledger.
    fn removed_pod_revert(&self) -> Option<&'static str>;

    /// Makes the mutating calls against `targets`, ledger entry first. Returns what it
    /// disrupted, for the recovery check.
    fn inject(
        &self,
        ctx: &FaultContext,
        targets: &[String],
    ) -> impl Future<Output = Result<Disrupted, FaultError>> + Send;
}

/// How a fault stays active after the first injection; also how long `during`
/// hypotheses are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Until the owners of what it removed are whole again, at most this long.
    UntilRecovered(Duration),
    /// Inject again into fresh picks every `interval` until `total` has passed.
    Repeat { interval: Duration, total: Duration },
    /// In place for this long, then reverted.
    For(Duration),
}

/// Why a fault step could not do what the plan said. Reported once as a
/// `FaultInjectFailed` event (with its target) and the run exits 3.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// An API call the fault needed failed for good, after its retries.
    #[error("{action}: {source}")]
    Api {
        action: &'static str,
        #[source]
        source: Box<kube::Error>,
    },
    /// Acting would hurt more than the experiment asked for (an unmanaged pod, a
    /// DaemonSet, emptyDir data), so the fault stops here.
    #[error("{0}")]
    Refused(String),
    #[error("{what} task failed: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The mutating calls went through, but the fault did not take effect.
    #[error("{0}")]
    NotApplied(String),
    /// A stop (signal, abort, kill switch, the console's keys) ended the injection
    /// before it took effect. Journaled as a failed injection, but the run's outcome is
    /// the stop's own (an abort is exit 1, not a run that could not inject).
    #[error("{0}")]
    Stopped(String),
    #[error(transparent)]
    Targets(#[from] TargetError),
    #[error(transparent)]
    Inventory(#[from] ClusterError),
}

/// Why a revert did not complete. Either way the in-cluster mark stays, so `recover`
/// can find the fault, and the run exits 4.
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// The revert ran but could not confirm the fault is gone.
    #[error("{0}")]
    Unverified(String),
    /// A server outside the cluster (Alertmanager) could not be reached or refused, after
    /// its client's own retries.
    #[error("{0}")]
    Unreached(String),
}

impl RevertError {
    /// Worth another attempt within the revert budget: a flaky API, or an exec that did
    /// not confirm (the next one may).
    pub fn is_transient(&self) -> bool {
        match self {
            // An exec refused at the upgrade (a 5xx instead of 101) may work next time.
            RevertError::Api(kube::Error::UpgradeConnection(_)) => true,
            RevertError::Api(e) => is_transient(e),
            RevertError::Unverified(_) => true,
            RevertError::Unreached(_) => false,
        }
    }
}

impl FaultError {
    pub fn api(action: &'static str, source: kube::Error) -> Self {
        FaultError::Api {
            action,
            source: Box::new(source),
        }
    }
}

/// What a revert did. Only `Undone` changed the cluster (and leaves a revert Event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reverted {
    Undone(String),
    /// The object is gone, and the fault with it.
    Gone(String),
    /// Not ours to undo: cordoned by an admin or by another run.
    LeftAlone(String),
}

impl Reverted {
    /// The words for the journal and the report.
    pub fn detail(&self) -> String {
        match self {
            Reverted::Undone(d) | Reverted::Gone(d) => d.clone(),
            Reverted::LeftAlone(why) => format!("left alone: {why}"),
        }
    }
}

/// Something that must be undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    Uncordon {
        node: String,
    },
    RemoveNetem {
        namespace: String,
        pod: String,
        container: String,
        interface: String,
    },
    /// An Alertmanager silence shakedown created (`silence` module).
    ExpireSilence {
        id: String,
        alertmanager: silence::SilenceApi,
    },
}

impl Undo {
    pub fn target(&self) -> String {
        match self {
            Undo::Uncordon { node } => format!("node/{node}"),
            Undo::RemoveNetem { namespace, pod, .. } => format!("{namespace}/{pod}"),
            Undo::ExpireSilence { id, .. } => format!("silence/{id}"),
        }
    }

    /// Whether it ends with its step's fault; a silence lasts until the step ends.
    pub fn ends_with_the_fault(&self) -> bool {
        !matches!(self, Undo::ExpireSilence { .. })
    }
}

/// Faults that are in the cluster right now, by step.
#[derive(Clone, Default)]
pub struct Ledger(Arc<Mutex<Vec<(String, Undo)>>>);

impl Ledger {
    pub fn record(&self, step: &str, undo: Undo) {
        self.lock().push((step.to_owned(), undo));
    }

    /// Removes and returns the entries of one step.
    pub fn take_step(&self, step: &str) -> Vec<Undo> {
        let mut entries = self.lock();
        let (mine, rest): (Vec<_>, Vec<_>) = entries.drain(..).partition(|(s, _)| s == step);
        *entries = rest;
        mine.into_iter().map(|(_, u)| u).collect()
    }

    /// Removes and returns the entries of one step that end with its fault (not its
    /// silence, which lasts until the step ends: [`Ledger::take_step`] then).
    pub fn take_fault(&self, step: &str) -> Vec<Undo> {
        let mut entries = self.lock();
        let (mine, rest): (Vec<_>, Vec<_>) = entries
            .drain(..)
            .partition(|(s, u)| s == step && u.ends_with_the_fault());
        *entries = rest;
        mine.into_iter().map(|(_, u)| u).collect()
    }

    /// Removes and returns everything still faulted.
    pub fn take_all(&self) -> Vec<(String, Undo)> {
        self.lock().drain(..).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Undo)>> {
        // A panicking fault task must not make the ledger unreadable: that is exactly
        // when we need it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Undoes one entry, retrying transient API failures for up to `budget`, and leaves a
/// `ShakedownRevert` event on the object when it changed it. An empty `ctx.run_id`
/// (used by `recover`) matches any shakedown run's marks, never anyone else's.
pub async fn undo(
    ctx: &FaultContext,
    entry: &Undo,
    budget: Duration,
) -> Result<Reverted, RevertError> {
    let reverted = revert(ctx, entry, budget).await?;
    if let Reverted::Undone(detail) = &reverted {
        revert_event(ctx, entry, detail).await;
    }
    Ok(reverted)
}

/// The revert itself, without its Event: retries transient API failures for `budget`.
async fn revert(
    ctx: &FaultContext,
    entry: &Undo,
    budget: Duration,
) -> Result<Reverted, RevertError> {
    let deadline = tokio::time::Instant::now() + budget;
    let attempt = || async {
        match entry {
            Undo::Uncordon { node } => {
                node_drain::uncordon(&ctx.client, node, &ctx.run_id, ctx.dry_run)
                    .await
                    .map_err(RevertError::from)
            }
            Undo::RemoveNetem {
                namespace,
                pod,
                container,
                interface,
            } => {
                let target = network::NetemTarget {
                    namespace,
                    pod,
                    container,
                    interface,
                    run_id: &ctx.run_id,
                };
                network::remove(&ctx.client, &target, ctx.dry_run, deadline).await
            }
            Undo::ExpireSilence { id, alertmanager } => silence::expire(alertmanager, id).await,
        }
    };
    crate::run::retry::retry(
        crate::cluster::API_BACKOFF,
        deadline,
        RevertError::is_transient,
        attempt,
    )
    .await
}

/// The `ShakedownRevert` Event on the object a revert changed.
async fn revert_event(ctx: &FaultContext, entry: &Undo, detail: &str) {
    let object = match entry {
        Undo::Uncordon { node } => object_ref("Node", "v1", None, node, None),
        Undo::RemoveNetem { namespace, pod, .. } => {
            object_ref("Pod", "v1", Some(namespace), pod, None)
        }
        // Not a cluster object: Alertmanager keeps the silence's own history.
        Undo::ExpireSilence { .. } => return,
    };
    record_event(
        ctx,
        object,
        "ShakedownRevert",
        &format!("chaos fault reverted: {detail}"),
    )
    .await;
}

/// How many reverts run at once: hundreds of targets fit a pod's termination grace
/// period, few enough not to trip API priority and fairness on a real server.
pub const PARALLEL_REVERTS: usize = 32;

/// Undoes many entries concurrently (at most [`PARALLEL_REVERTS`] at once) within one
/// overall `timeout` (`--revert-timeout`), not one budget each: an entry that is not
/// undone by then fails with a timeout. `done` hears about each entry as it finishes
/// (`(step, entry)` as given), so every target is reported on its own.
///
/// The `ShakedownRevert` Events are posted after every revert has ended, not between
/// them: an Event costs the API server as much as the revert itself, and the cluster
/// should be whole first. They share the same deadline; any not posted by then are
/// named in one warning.
pub async fn undo_all(
    ctx: &FaultContext,
    entries: Vec<(String, Undo)>,
    timeout: Duration,
    mut done: impl FnMut(&str, &Undo, Result<Reverted, RevertError>),
) {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut reverts = futures::stream::iter(entries)
        .map(|(step, entry)| async move {
            // The revert gets a little less than what is left, so it runs out first and
            // reports its own cause (an injector that never started, a refused call);
            // the overall deadline only catches a revert that overruns its budget.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let budget = left.saturating_sub((left / 10).min(Duration::from_millis(250)));
            let result = tokio::time::timeout_at(deadline, revert(ctx, &entry, budget))
                .await
                .unwrap_or_else(|_| {
                    Err(RevertError::Unverified(format!(
                        "not reverted within the revert timeout ({})",
                        shakedown_vocab::duration::format_duration(timeout)
                    )))
                });
            (step, entry, result)
        })
        .buffer_unordered(PARALLEL_REVERTS);
    let mut changed = Vec::new();
    while let Some((step, entry, result)) = reverts.next().await {
        if let Ok(Reverted::Undone(detail)) = &result {
            changed.push((entry.clone(), detail.clone()));
        }
        done(&step, &entry, result);
    }
    drop(reverts);
    let reverted = changed.len();
    let posting = futures::stream::iter(changed)
        .map(|(entry, detail)| async move { revert_event(ctx, &entry, &detail).await })
        .buffer_unordered(PARALLEL_REVERTS)
        .count();
    if tokio::time::timeout_at(deadline, posting).await.is_err() {
        ctx.bus.emit(crate::events::RunEvent::Note {
            level: crate::events::NoteLevel::Warning,
            message: format!(
                "not every ShakedownRevert event of the {reverted} reverted targets was recorded within the revert timeout"
            ),
        });
    }
}

pub use crate::cluster::{is_transient, with_retries};

/// Writes a Kubernetes Event on a disrupted object, so on-call can tell chaos from an
/// incident. Best effort: a failure is reported, never fatal.
pub async fn record_event(
    ctx: &FaultContext,
    object: ObjectReference,
    reason: &str,
    message: &str,
) {
    post_event(ctx, event_for(&ctx.run_id, object, reason, message)).await;
}

/// Posts a built [`event_for`] Event; a failure is a warning, never the fault's error.
pub async fn post_event(ctx: &FaultContext, event: Event) {
    let reason = event.reason.clone().unwrap_or_default();
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PostParams {
        dry_run: ctx.dry_run,
        ..PostParams::default()
    };
    if let Err(e) = api.create(&params, &event).await {
        ctx.bus.emit(crate::events::RunEvent::Note {
            level: crate::events::NoteLevel::Warning,
            message: format!("could not record a {reason} event: {e}"),
        });
    }
}

/// A core/v1 Event that kube-apiserver 1.32 accepts (its `ValidateEventCreate`, and
/// `../shared/realapi/h6-events.txt`): with `eventTime` set it needs a qualified
/// `reportingComponent`, a `reportingInstance` and an `action` of at most 128 bytes, a
/// reason of at most 128 and a message of at most 1 KiB; it lives in its object's
/// namespace, and a cluster-scoped object's (a Node's) lives in `default`.
pub fn event_for(run_id: &str, object: ObjectReference, reason: &str, message: &str) -> Event {
    let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
    let now = jiff::Timestamp::now();
    let reason = truncated(reason, EVENT_FIELD_LIMIT);
    Event {
        metadata: ObjectMeta {
            generate_name: Some("shakedown-".into()),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: object,
        reason: Some(reason.clone()),
        message: Some(truncated(
            &format!("{message} (shakedown run {run_id})"),
            EVENT_MESSAGE_LIMIT,
        )),
        type_: Some("Warning".into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        reporting_component: Some("shakedown".into()),
        // An Event with eventTime needs a reporting instance (the API server answers
        // 422 without one); `recover` has no run id of its own.
        reporting_instance: Some(if run_id.is_empty() {
            "shakedown-recover".into()
        } else {
            truncated(run_id, EVENT_FIELD_LIMIT)
        }),
        action: Some(reason),
        count: Some(1),
        ..Event::default()
    }
}

/// kube-apiserver's limit on an Event's reason, action and reportingInstance (bytes).
const EVENT_FIELD_LIMIT: usize = 128;
/// And on its message (`note` in events.k8s.io/v1), for Events with an `eventTime`.
const EVENT_MESSAGE_LIMIT: usize = 1024;

/// `text` cut to at most `limit` bytes, on a character boundary, ending in `…` when cut.
fn truncated(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut end = limit - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

pub fn object_ref(
    kind: &str,
    api_version: &str,
    namespace: Option<&str>,
    name: &str,
    uid: Option<String>,
) -> ObjectReference {
    ObjectReference {
        kind: Some(kind.into()),
        api_version: Some(api_version.into()),
        namespace: namespace.map(str::to_owned),
        name: Some(name.into()),
        uid,
        ..ObjectReference::default()
    }
}

/// `namespace/name` into its parts.
pub fn split_pod(target: &str) -> (&str, &str) {
    target.split_once('/').unwrap_or(("default", target))
}

/// The pod as a listing saw it: what deleting it and finding its owner need (its
/// namespace, name, UID and controller), without reading it again.
pub fn listed_pod(info: &crate::plan::PodInfo) -> Pod {
    let owner = info
        .controller_kind
        .clone()
        .zip(info.controller_name.clone())
        .map(|(kind, name)| OwnerReference {
            api_version: controller_api_version(&kind).into(),
            kind,
            name,
            controller: Some(true),
            ..Default::default()
        });
    Pod {
        metadata: ObjectMeta {
            namespace: Some(info.namespace.clone()),
            name: Some(info.name.clone()),
            uid: Some(info.uid.clone()),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        ..Pod::default()
    }
}

fn controller_api_version(kind: &str) -> &'static str {
    match kind {
        "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Deployment" => "apps/v1",
        "Job" => "batch/v1",
        _ => "v1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_on_a_real_server(event: &Event) -> Result<(), String> {
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        let (component, instance) = (
            field(&event.reporting_component),
            field(&event.reporting_instance),
        );
        let (action, reason) = (field(&event.action), field(&event.reason));
        let namespace = field(&event.metadata.namespace);
        let object_ns = field(&event.involved_object.namespace);
        let qualified = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
        let checks = [
            (event.event_time.is_some(), "eventTime set"),
            (qualified(&component), "reportingComponent qualified"),
            (
                !instance.is_empty() && instance.len() <= 128,
                "reportingInstance",
            ),
            (!action.is_empty() && action.len() <= 128, "action"),
            (!reason.is_empty() && reason.len() <= 128, "reason"),
            (field(&event.message).len() <= 1024, "message at most 1 KiB"),
            (
                object_ns == namespace || (object_ns.is_empty() && namespace == "default"),
                "involvedObject.namespace matches",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, rule)) => Err((*rule).to_owned()),
            None => Ok(()),
        }
    }

    /// Regression: a revert detail of any length (an exec's stderr) made the message
    /// longer than a real server takes; recover sent an empty reportingInstance.
    #[test]
    fn events_are_valid_core_v1_events_on_a_real_server() {
        let pod = object_ref("Pod", "v1", Some("shop"), "checkout-1", None);
        let node = object_ref("Node", "v1", None, "node-a-1", None);
        let long = "é".repeat(2000);
        for (run_id, object, message) in [
            ("20261202T101010Z-abcdef", pod.clone(), "pod deleted"),
            ("", pod, long.as_str()),
            ("20261202T101010Z-abcdef", node, long.as_str()),
        ] {
            let event = event_for(run_id, object, "ShakedownRevert", message);
            assert_eq!(valid_on_a_real_server(&event), Ok(()), "{event:?}");
        }
    }

    #[test]
    fn truncation_keeps_whole_characters_and_says_it_cut() {
        assert_eq!(truncated("short", 10), "short");
        let cut = truncated(&"é".repeat(10), 9);
        assert!(cut.len() <= 9 && cut.ends_with('…'), "{cut}");
    }
}
