//! "Recovered" means the owner of a disrupted pod has its desired ready replicas again.
//! Given the owners a fault disrupted (`disruption`), this measures how long they take
//! to get back: continuously, through watches started
//! before the fault's first disruption ([`RecoveryWatch`]), so an owner whole again while
//! the fault still holds is timed when it happened, from its own last disruption. It
//! never reads pod by pod: its requests grow with owners and namespaces, not with pods.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use shakedown_vocab::selector::LabelSelector as Selector;
use tokio::time::Instant;

use super::disruption::{Disrupted, Owner};
use super::watched_pod::WatchedPod;

/// What readiness is judged against, read from the owner's own object as its watch last
/// delivered it: how many ready pods it wants, which pods are its own, and whether its
/// controller has seen its current spec.
#[derive(Debug, Clone)]
struct Wanted {
    desired: usize,
    /// The owner's pod selector; `None` when it cannot be read (then nothing counts).
    selector: Option<Selector>,
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
            desired: usize::try_from(desired).unwrap_or(0),
            selector: Selector::parse(&selector.map(selector_string).unwrap_or_default()).ok(),
            observed: observed_generation.unwrap_or(0) >= meta.generation.unwrap_or(0),
        }
    }

    fn of_deployment(d: &Deployment) -> Self {
        let spec = d.spec.as_ref();
        let observed = d.status.as_ref().and_then(|s| s.observed_generation);
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        Wanted::of(desired, spec.map(|s| &s.selector), &d.metadata, observed)
    }

    fn of_replica_set(r: &ReplicaSet) -> Self {
        let spec = r.spec.as_ref();
        let observed = r.status.as_ref().and_then(|s| s.observed_generation);
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        Wanted::of(desired, spec.map(|s| &s.selector), &r.metadata, observed)
    }

    fn of_stateful_set(s: &StatefulSet) -> Self {
        let spec = s.spec.as_ref();
        let observed = s.status.as_ref().and_then(|s| s.observed_generation);
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        Wanted::of(desired, spec.map(|s| &s.selector), &s.metadata, observed)
    }

    fn of_daemon_set(d: &DaemonSet) -> Self {
        let status = d.status.as_ref();
        let observed = status.and_then(|s| s.observed_generation);
        let desired = status.map_or(0, |s| s.desired_number_scheduled);
        let selector = d.spec.as_ref().map(|s| &s.selector);
        Wanted::of(desired, selector, &d.metadata, observed)
    }
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

/// One pod as its namespace's watch has seen it: its labels, each instant it began or
/// stopped serving ([`serves`]), and when it was first seen going (terminating, deleted,
/// or missing from a list), each stamped when the watch delivered the change.
#[derive(Debug)]
struct PodTrack {
    namespace: String,
    labels: BTreeMap<String, String>,
    serving: Vec<(Instant, bool)>,
    going: Option<Instant>,
}

impl PodTrack {
    fn serving_at(&self, t: Instant) -> bool {
        self.serving
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .is_some_and(|(_, serving)| *serving)
    }

    fn set(&mut self, now: Instant, serving: bool) {
        if self.serving.last().map(|(_, s)| *s) != Some(serving) {
            self.serving.push((now, serving));
        }
    }
}

/// Everything the watches have delivered: each pod's history (by UID), each followed
/// owner's latest [`Wanted`], and which namespaces have been listed at least once.
#[derive(Debug, Default)]
struct Seen {
    pods: HashMap<String, PodTrack>,
    owners: BTreeMap<Owner, Wanted>,
    synced: BTreeSet<String>,
    /// How many times an owner was judged: a test counts the sweeps a burst costs.
    #[cfg(test)]
    looks: std::sync::atomic::AtomicU32,
}

impl Seen {
    fn pod(&mut self, pod: &WatchedPod, now: Instant) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let track = self.pods.entry(uid).or_insert_with(|| PodTrack {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            labels: BTreeMap::new(),
            serving: Vec::new(),
            going: None,
        });
        track.labels = pod.metadata.labels.clone().unwrap_or_default();
        // Read from the pod itself, never from the workload's status, which lags behind
        // (right after a force delete it still counts the deleted pod as ready, which
        // made every recovery look instant, "0.0s").
        track.set(now, pod.serves());
        if pod.metadata.deletion_timestamp.is_some() {
            track.going.get_or_insert(now);
        }
    }

    fn pod_gone(&mut self, pod: &WatchedPod, now: Instant) {
        if let Some(track) = pod.metadata.uid.as_ref().and_then(|u| self.pods.get_mut(u)) {
            track.set(now, false);
            track.going.get_or_insert(now);
        }
    }

    /// A fresh list of one namespace's pods: what it lacks went while the watch was
    /// not looking (a 410 Gone, a broken stream).
    fn pods_listed(&mut self, namespace: &str, pods: &[WatchedPod], now: Instant) {
        let listed: BTreeSet<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        for (uid, track) in &mut self.pods {
            if track.namespace == namespace && !listed.contains(uid.as_str()) {
                track.set(now, false);
                track.going.get_or_insert(now);
            }
        }
        for pod in pods {
            self.pod(pod, now);
        }
        self.synced.insert(namespace.to_owned());
    }

    /// The first instant at or after its last disruption when `owner` had its desired
    /// number of serving pods, none of them `excluded` (the pods the fault removed: a
    /// pod keeps its name across a StatefulSet restart, never its UID). Found from the
    /// history, so an owner whole again before anyone asked (while a PDB held a later
    /// eviction back) is timed when it happened. `None` while the owner's controller has
    /// not observed its current spec, or its pods were never listed.
    ///
    /// The disruption's instant is `since` (stamped when the fault's calls returned,
    /// which may be after owner lookups), or, earlier and truer, when the watch saw the
    /// last of the owner's removed pods go; until the watch has seen every one of them
    /// go, the owner is not judged. Returns `(disrupted, recovered)`.
    fn recovered_at(
        &self,
        owner: &Owner,
        since: Instant,
        excluded: &BTreeSet<String>,
    ) -> Option<(Instant, Instant)> {
        #[cfg(test)]
        self.looks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let wanted = self.owners.get(owner).filter(|w| w.observed)?;
        let selector = wanted.selector.as_ref()?;
        if !self.synced.contains(&owner.namespace) {
            return None;
        }
        let ours = |p: &PodTrack| p.namespace == owner.namespace && selector.matches(&p.labels);
        let removed: Vec<Option<Instant>> = self
            .pods
            .iter()
            .filter(|(uid, p)| excluded.contains(*uid) && ours(p))
            .map(|(_, p)| p.going)
            .collect();
        if removed.iter().any(Option::is_none) {
            return None;
        }
        let since = removed
            .into_iter()
            .flatten()
            .max()
            .map_or(since, |seen| seen.min(since));
        // A sweep over the changes after `since`: the count at `since`, then each
        // change's step, in time order (linear in the changes, for 1,000-pod owners).
        let desired = i64::try_from(wanted.desired).unwrap_or(i64::MAX);
        let mut count = 0_i64;
        let mut steps: Vec<(Instant, i64)> = Vec::new();
        for (uid, pod) in &self.pods {
            if excluded.contains(uid) || !ours(pod) {
                continue;
            }
            let mut was = pod.serving_at(since);
            count += i64::from(was);
            for &(at, serving) in pod.serving.iter().filter(|(at, _)| *at > since) {
                if serving != was {
                    steps.push((at, if serving { 1 } else { -1 }));
                    was = serving;
                }
            }
        }
        if count >= desired {
            return Some((since, since));
        }
        steps.sort_by_key(|(at, _)| *at);
        let mut steps = steps.into_iter().peekable();
        while let Some((at, step)) = steps.next() {
            count += step;
            // Every change at the same instant counts before the owner is judged.
            while let Some((_, step)) = steps.next_if(|(next, _)| *next == at) {
                count += step;
            }
            if count >= desired {
                return Some((since, at));
            }
        }
        None
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long one list or watch request may take to be answered before it is retried.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before a failed list or watch is tried again.
const RETRY: Duration = Duration::from_millis(250);
/// How long a watch asks the server to keep its stream open (then it is resumed).
const WATCH_SECONDS: u32 = 290;

/// Follows the state recovery is judged from, continuously, from before the fault's
/// first disruption: one list-then-watch of the pods of each namespace involved, and one
/// of each disrupted owner's own object (by name). The requests grow with namespaces and
/// owners, never with pods. Dropping it ends every watch.
pub struct RecoveryWatch {
    client: Client,
    seen: Arc<Mutex<Seen>>,
    /// Ticks whenever a watch delivered something.
    changed: tokio::sync::watch::Sender<()>,
    followed: Mutex<Followed>,
}

#[derive(Default)]
struct Followed {
    namespaces: BTreeSet<String>,
    owners: BTreeSet<Owner>,
    /// The watches; dropping the set aborts them.
    tasks: tokio::task::JoinSet<()>,
}

/// What one list-then-watch delivers.
enum Update<K> {
    Listed(Vec<K>),
    Applied(K),
    Deleted(K),
}

impl RecoveryWatch {
    pub fn new(client: Client) -> Self {
        RecoveryWatch {
            client,
            seen: Arc::default(),
            changed: tokio::sync::watch::Sender::new(()),
            followed: Mutex::default(),
        }
    }

    /// Starts following the pods of each of `namespaces` not followed yet.
    pub fn watch_namespaces<'a>(&self, namespaces: impl IntoIterator<Item = &'a str>) {
        let mut followed = lock(&self.followed);
        for namespace in namespaces {
            if !followed.namespaces.insert(namespace.to_owned()) {
                continue;
            }
            let api: Api<WatchedPod> = Api::namespaced(self.client.clone(), namespace);
            let seen = Arc::clone(&self.seen);
            let changed = self.changed.clone();
            let namespace = namespace.to_owned();
            followed.tasks.spawn(follow(api, None, move |update| {
                let now = Instant::now();
                {
                    let mut seen = lock(&seen);
                    match update {
                        Update::Listed(pods) => seen.pods_listed(&namespace, &pods, now),
                        Update::Applied(pod) => seen.pod(&pod, now),
                        Update::Deleted(pod) => seen.pod_gone(&pod, now),
                    }
                }
                changed.send_replace(());
            }));
        }
    }

    /// Returns once every followed namespace has been listed (its pods alive before
    /// the fault have a history), or at `deadline`.
    pub async fn synced(&self, deadline: Instant) {
        let mut changed = self.changed.subscribe();
        loop {
            let namespaces = lock(&self.followed).namespaces.clone();
            if namespaces.is_subset(&lock(&self.seen).synced) {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                _ = changed.changed() => {}
            }
        }
    }

    /// Starts following `owner`'s own object and its namespace's pods, once.
    fn follow_owner(&self, owner: &Owner) {
        self.watch_namespaces([owner.namespace.as_str()]);
        let mut followed = lock(&self.followed);
        if !followed.owners.insert(owner.clone()) {
            return;
        }
        let tasks = &mut followed.tasks;
        match owner.kind.as_str() {
            "Deployment" => self.spawn_owner(tasks, owner, Wanted::of_deployment),
            "ReplicaSet" => self.spawn_owner(tasks, owner, Wanted::of_replica_set),
            "StatefulSet" => self.spawn_owner(tasks, owner, Wanted::of_stateful_set),
            "DaemonSet" => self.spawn_owner(tasks, owner, Wanted::of_daemon_set),
            // Unknown controllers: nothing we can measure, so we do not claim recovery.
            _ => {}
        }
    }

    fn spawn_owner<K>(
        &self,
        tasks: &mut tokio::task::JoinSet<()>,
        owner: &Owner,
        wanted: fn(&K) -> Wanted,
    ) where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'static,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &owner.namespace);
        let by_name = format!("metadata.name={}", owner.name);
        let seen = Arc::clone(&self.seen);
        let changed = self.changed.clone();
        let owner = owner.clone();
        tasks.spawn(follow(api, Some(by_name), move |update| {
            {
                let mut seen = lock(&seen);
                match update {
                    Update::Listed(items) => match items.first() {
                        Some(object) => seen.owners.insert(owner.clone(), wanted(object)),
                        None => seen.owners.remove(&owner),
                    },
                    Update::Applied(object) => seen.owners.insert(owner.clone(), wanted(&object)),
                    // A deleted owner never gets its replicas back.
                    Update::Deleted(_) => seen.owners.remove(&owner),
                };
            }
            changed.send_replace(());
        }));
    }

    /// Notes in `disrupted` every owner whole again (at the instant it became whole,
    /// which may be before this call) until all are, or `deadline`.
    async fn until_recovered(&self, disrupted: &mut Disrupted, deadline: Instant) {
        let excluded: BTreeSet<String> = disrupted
            .pods
            .iter()
            .map(|(_, _, uid)| uid.clone())
            .filter(|uid| !uid.is_empty())
            .collect();
        let fallback = Instant::now();
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            let pending: Vec<Owner> = disrupted.pending().cloned().collect();
            if pending.is_empty() {
                return;
            }
            for owner in &pending {
                self.follow_owner(owner);
            }
            let found: Vec<(Owner, (Instant, Instant))> = {
                let seen = lock(&self.seen);
                pending
                    .into_iter()
                    .filter_map(|owner| {
                        let since = disrupted
                            .last_disrupted
                            .get(&owner)
                            .copied()
                            .unwrap_or(fallback);
                        let at = seen.recovered_at(&owner, since, &excluded)?;
                        Some((owner, at))
                    })
                    .collect()
            };
            for (owner, (since, at)) in found {
                disrupted.last_disrupted.insert(owner.clone(), since);
                disrupted.recovered.insert(owner, at);
            }
            if disrupted.pending().next().is_none() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                _ = changed.changed() => {
                    // Changes come in bursts (a thousand pods replaced within a second),
                    // and each look sweeps every followed pod: one look per burst, not
                    // per change. The instants judged are the watch's own, stamped as
                    // each change arrived, so this shifts when the run notices a
                    // recovery, never the time it reports.
                    tokio::time::sleep_until(deadline.min(Instant::now() + LOOK_EVERY)).await;
                }
            }
        }
    }
}

/// The shortest time between two looks at whether the disrupted owners are whole.
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// Lists, then watches from the list's resourceVersion, for as long as the task lives,
/// handing `apply` everything it learns. A watch the server ends (its timeout) is resumed
/// from the last version seen (bookmarks included); one answered with 410 Gone (its
/// history no longer reaches that far) or broken is started over with a fresh list, as
/// client-go's reflector does.
async fn follow<K>(api: Api<K>, fields: Option<String>, mut apply: impl FnMut(Update<K>))
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut version: Option<String> = None;
    loop {
        let from = match version.take() {
            Some(from) => from,
            None => {
                let mut params = ListParams::default();
                if let Some(fields) = &fields {
                    params = params.fields(fields);
                }
                match tokio::time::timeout(READ_TIMEOUT, api.list(&params)).await {
                    Ok(Ok(list)) => {
                        let from = list.metadata.resource_version.clone();
                        apply(Update::Listed(list.items));
                        if let Some(from) = from {
                            from
                        } else {
                            tokio::time::sleep(RETRY).await;
                            continue;
                        }
                    }
                    _ => {
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                }
            }
        };
        let mut params = WatchParams::default().timeout(WATCH_SECONDS);
        if let Some(fields) = &fields {
            params = params.fields(fields);
        }
        let Ok(Ok(stream)) = tokio::time::timeout(READ_TIMEOUT, api.watch(&params, &from)).await
        else {
            // Refused (a 410 too) or unanswered: start over from a list.
            tokio::time::sleep(RETRY).await;
            continue;
        };
        let mut stream = stream.boxed();
        let mut last = Some(from);
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                    last = object.meta().resource_version.clone().or(last);
                    apply(Update::Applied(object));
                }
                Ok(WatchEvent::Deleted(object)) => {
                    last = object.meta().resource_version.clone().or(last);
                    apply(Update::Deleted(object));
                }
                Ok(WatchEvent::Bookmark(bookmark)) => {
                    last = Some(bookmark.metadata.resource_version);
                }
                // 410 Expired, or any other error: what was missed is unknown; relist.
                Ok(WatchEvent::Error(_)) | Err(_) => {
                    last = None;
                    break;
                }
            }
        }
        version = last;
        if version.is_none() {
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// Waits until every owner is whole again or the deadline passes, or the run stops
/// (`until_signal`: only a terminating signal stops it, not an abort, so recovery is
/// still measured after an early revert). A stop ends the wait at once: nothing in it
/// but waits for the watches' news.
///
/// "Whole" is judged from fresh state ([`Seen::recovered_at`]): the disrupted pods (by
/// UID) do not count, however long they take to go. A watch that fails is retried, so
/// an API error means "not yet", never "recovered".
pub async fn wait_until_recovered(
    watch: &RecoveryWatch,
    disrupted: &mut Disrupted,
    deadline: Instant,
    stopped: &mut tokio::sync::watch::Receiver<crate::run::stop::Stop>,
    until_signal: bool,
) {
    let waiting = watch.until_recovered(disrupted, deadline);
    if until_signal {
        crate::run::stop::unless_signalled(stopped, waiting).await;
    } else {
        crate::run::stop::unless_stopped(stopped, waiting).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
        }
    }

    fn track(app: &str, serving: &[(Instant, bool)], going: Option<Instant>) -> PodTrack {
        PodTrack {
            namespace: "shop".into(),
            labels: [("app".to_owned(), app.to_owned())].into(),
            serving: serving.to_vec(),
            going,
        }
    }

    /// Two replicas: `old` removed at +1 s, `kept` serving all along, `new` Ready at +3 s.
    fn seen(t0: Instant) -> Seen {
        let s = Duration::from_secs;
        let mut seen = Seen::default();
        seen.synced.insert("shop".into());
        seen.owners.insert(
            owner(),
            Wanted {
                desired: 2,
                selector: Selector::parse("app=web").ok(),
                observed: true,
            },
        );
        seen.pods.insert(
            "old".into(),
            track("web", &[(t0, true), (t0 + s(1), false)], Some(t0 + s(1))),
        );
        seen.pods
            .insert("kept".into(), track("web", &[(t0, true)], None));
        seen.pods.insert(
            "new".into(),
            track("web", &[(t0 + s(1), false), (t0 + s(3), true)], None),
        );
        seen.pods
            .insert("other".into(), track("db", &[(t0, true)], None));
        seen
    }

    /// Regression (issue 17): every watch change made the run sweep every followed pod
    /// again, so replacing a thousand pods cost a thousand sweeps of a thousand pods. A
    /// burst of changes now costs one look per 10 ms, and the recovery instant is still
    /// the one the watch stamped.
    #[tokio::test(start_paused = true)]
    async fn a_burst_of_watch_changes_costs_one_look_per_window_not_one_per_change() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let watch = RecoveryWatch::new(Client::try_from(config).unwrap());
        let t0 = Instant::now();
        // Followed already, so nothing here talks to a server.
        {
            let mut followed = lock(&watch.followed);
            followed.namespaces.insert("shop".into());
            followed.owners.insert(owner());
        }
        {
            let mut seen = lock(&watch.seen);
            seen.synced.insert("shop".into());
            let selector = Selector::parse("app=web").ok();
            let wanted = Wanted {
                desired: 1,
                selector,
                observed: true,
            };
            seen.owners.insert(owner(), wanted);
            seen.pods
                .insert("old".into(), track("web", &[(t0, false)], Some(t0)));
            seen.pods
                .insert("new".into(), track("web", &[(t0, false)], None));
        }
        let mut disrupted = Disrupted::default();
        disrupted.owners.insert(owner());
        disrupted
            .pods
            .push(("shop".into(), "old".into(), "old".into()));
        disrupted.last_disrupted.insert(owner(), t0);
        // 1,000 changes 1 ms apart (the timer's resolution) that do not make the owner
        // whole, then the one that does.
        // One change as the watch applies it: the new pod's serving state, stamped now.
        let change = |serving: bool| {
            let now = Instant::now();
            lock(&watch.seen)
                .pods
                .get_mut("new")
                .unwrap()
                .serving
                .push((now, serving));
            watch.changed.send_replace(());
            now
        };
        let burst = async {
            for _ in 0..1000 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                change(false);
            }
            change(true)
        };
        let deadline = t0 + Duration::from_secs(10);
        let (whole, ()) = tokio::join!(burst, watch.until_recovered(&mut disrupted, deadline));
        assert_eq!(disrupted.recovered.get(&owner()), Some(&whole));
        let looks = lock(&watch.seen)
            .looks
            .load(std::sync::atomic::Ordering::Relaxed);
        // A second of changes: one look per 10 ms (a look per change was 1,000).
        assert!(
            looks <= 120,
            "{looks} looks for a 1 s burst of 1,001 changes"
        );
    }

    #[test]
    fn an_owner_whole_again_before_anyone_asked_is_timed_when_it_happened() {
        let t0 = Instant::now();
        let excluded = ["old".to_owned()].into();
        // The fault's calls returned at +1.2 s (after owner lookups); the watch saw the
        // pod go at +1 s, which is when the clock starts.
        let since = t0 + Duration::from_millis(1200);
        let got = seen(t0).recovered_at(&owner(), since, &excluded);
        assert_eq!(
            got,
            Some((t0 + Duration::from_secs(1), t0 + Duration::from_secs(3)))
        );
    }

    #[test]
    fn a_removed_pod_never_counts_and_an_unseen_removal_is_not_judged() {
        let t0 = Instant::now();
        let mut seen = seen(t0);
        // Without the new pod, the removed one (still listed as serving before it went)
        // does not make up the count.
        seen.pods.remove("new");
        let excluded = ["old".to_owned()].into();
        assert_eq!(seen.recovered_at(&owner(), t0, &excluded), None);
        // A removed pod the watch has not seen go yet: not judged, however it looks.
        let mut seen = self::seen(t0);
        seen.pods
            .insert("late".into(), track("web", &[(t0, true)], None));
        let excluded = ["old".to_owned(), "late".to_owned()].into();
        assert_eq!(seen.recovered_at(&owner(), t0, &excluded), None);
    }

    #[test]
    fn an_owner_whose_controller_has_not_observed_its_spec_is_not_recovered() {
        let t0 = Instant::now();
        let mut seen = seen(t0);
        if let Some(w) = seen.owners.get_mut(&owner()) {
            w.observed = false;
        }
        let excluded = ["old".to_owned()].into();
        assert_eq!(seen.recovered_at(&owner(), t0, &excluded), None);
    }
}
