//! Run locks: one `coordination.k8s.io/v1` Lease per object a run may fault, so two runs
//! never fault the same workload or node pool at the same time (each run's blast-radius
//! cap is a share of that set, and two runs' shares would add up).
//!
//! A lock is taken with `create`, which is atomic: of two racing runs one gets 409. An
//! existing Lease whose holder stopped renewing (`renewTime + leaseDurationSeconds` has
//! passed, or no holder) is taken over with an update preconditioned on the
//! `resourceVersion` just read, so two runs that both saw it expire cannot both win. The
//! holder renews every third of [`LEASE_DURATION`] in the background and deletes its
//! Leases when the run ends; a run killed with SIGKILL leaves Leases that expire on their
//! own. A run that cannot renew (taken over, deleted, API gone for too long) is told
//! through `on_lost` and must stop.
//!
//! What a run locks is the executor's choice: this module only knows keys.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

use super::with_retries;
use crate::run::stop::{Stop, wait_or_stop};
use shakedown_vocab::annotations::{LOCK_HOST, LOCK_LABEL, LOCK_RUN_ID, LOCK_TARGET};

/// How long a Lease stays valid without renewal: how long a SIGKILLed run blocks others.
pub const LEASE_DURATION: Duration = Duration::from_secs(20);

/// Where locks live unless `--lock-namespace` says otherwise. Every run that should see
/// another's locks must use the same namespace; `default` exists in every cluster.
pub const DEFAULT_LOCK_NAMESPACE: &str = "default";

/// How often a run waiting for a lock looks again.
const POLL: Duration = Duration::from_secs(1);

/// How long one lock call (with its retries) may take.
const CALL_BUDGET: Duration = Duration::from_secs(10);

/// A run gives its lock up for lost when it could not renew for this long: early enough
/// to revert before the Lease expires and another run may take it.
const RENEW_GRACE: Duration = Duration::from_secs(LEASE_DURATION.as_secs() * 3 / 4);

/// One thing a run locks, in words (`deployment/shop/checkout`, `node/worker-1`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockKey(String);

impl LockKey {
    pub fn new(what: impl Into<String>) -> Self {
        LockKey(what.into())
    }

    /// The Lease's name: `shakedown-lock-` and a hash of the key that is stable across
    /// releases and hosts (FNV-1a, not std's randomised hasher), since every run must
    /// agree on it.
    pub fn lease_name(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.0.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("shakedown-lock-{hash:016x}")
    }
}

impl std::fmt::Display for LockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where locks live and how long to wait for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSettings {
    pub namespace: String,
    /// `--wait-for-lock`: wait up to this long for a held lock instead of refusing.
    pub wait: Option<Duration>,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            namespace: DEFAULT_LOCK_NAMESPACE.into(),
            wait: None,
        }
    }
}

/// Who holds a lock, from its Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub run_id: String,
    pub host: String,
    /// When the holder took it (`acquireTime`).
    pub since: String,
    /// What the Lease covers.
    pub target: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} on {} since {}",
            self.run_id, self.host, self.since
        )
    }
}

impl Holder {
    fn of(lease: &Lease) -> Holder {
        let annotation = |key: &str| {
            lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(key).cloned())
                .unwrap_or_else(|| "an unknown host".into())
        };
        let spec = lease.spec.clone().unwrap_or_default();
        Holder {
            run_id: spec.holder_identity.unwrap_or_default(),
            host: annotation(LOCK_HOST),
            since: spec
                .acquire_time
                .map_or_else(|| "an unknown time".into(), |t| t.0.to_string()),
            target: annotation(LOCK_TARGET),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live run holds a lock this run needs: exit 3, nothing touched.
    #[error(
        "{target} is locked by {holder} (Lease {namespace}/{lease}); two runs faulting the same targets could together exceed the blast-radius cap. {}",
        .waited.map_or_else(
            || "Wait for it to end, or pass --wait-for-lock".to_owned(),
            |w| format!("Still held after waiting {}s", w.as_secs())
        )
    )]
    Held {
        target: LockKey,
        holder: Holder,
        namespace: String,
        lease: String,
        waited: Option<Duration>,
    },
    #[error("cannot take the lock on {target} (Lease {namespace}/{lease}): {source}")]
    Api {
        target: LockKey,
        namespace: String,
        lease: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// A signal (or the kill switch) arrived while waiting: the caller reports the stop.
    #[error("the run was stopped while waiting for a lock")]
    Stopped,
}

/// Whether the Lease is held by someone whose renewals are still current, and who is
/// not known to be dead.
pub fn is_live(lease: &Lease, now: jiff::Timestamp) -> bool {
    let Some(spec) = &lease.spec else {
        return false;
    };
    if holder_process_is_gone(lease) {
        return false;
    }
    if spec.holder_identity.as_deref().unwrap_or("").is_empty() {
        return false;
    }
    let (Some(renewed), Some(seconds)) = (
        spec.renew_time.as_ref().or(spec.acquire_time.as_ref()),
        spec.lease_duration_seconds,
    ) else {
        // No time or no duration: nobody can tell when it ends, so it never blocks.
        return false;
    };
    renewed.0 + jiff::SignedDuration::from_secs(i64::from(seconds)) > now
}

/// Every live shakedown lock in `namespace`, by the run holding it (for `recover`).
pub async fn live_holders(
    client: &Client,
    namespace: &str,
) -> Result<BTreeMap<String, Holder>, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let managed = ListParams::default().labels(&format!("{}={}", LOCK_LABEL.0, LOCK_LABEL.1));
    let deadline = Instant::now() + CALL_BUDGET;
    let leases = with_retries(deadline, || api.list(&managed)).await?;
    let now = jiff::Timestamp::now();
    Ok(leases
        .items
        .iter()
        .filter(|l| is_live(l, now))
        .map(|l| {
            let holder = Holder::of(l);
            (holder.run_id.clone(), holder)
        })
        .collect())
}

/// One Lease this run holds, as last written.
#[derive(Debug, Clone)]
struct HeldLease {
    key: LockKey,
    lease: Lease,
    renewed: Instant,
}

/// The locks a run holds. Renewed in the background until [`RunLock::release`]; dropped
/// without release (a panic), it stops renewing and its Leases expire.
pub struct RunLock {
    api: Api<Lease>,
    run_id: String,
    held: Arc<Mutex<Vec<HeldLease>>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

/// Takes a lock on every key (all or nothing, in key order), waiting for held ones when
/// `settings.wait` says so, then keeps them renewed. `waiting` hears why the run waits;
/// `on_lost` hears, once, that a lock was lost while held.
pub async fn acquire(
    client: &Client,
    settings: &LockSettings,
    run_id: &str,
    keys: &[LockKey],
    stopped: &mut watch::Receiver<Stop>,
    waiting: impl Fn(&LockError),
    on_lost: impl Fn(String) + Send + Sync + 'static,
) -> Result<RunLock, LockError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut keys = keys.to_vec();
    keys.sort();
    keys.dedup();
    let started = Instant::now();
    let mut told = false;
    loop {
        match take_all(&api, settings, run_id, &keys).await {
            Ok(held) => return Ok(RunLock::start(api, run_id, held, on_lost)),
            Err(LockError::Held {
                target,
                holder,
                namespace,
                lease,
                ..
            }) => {
                let waited = started.elapsed();
                let held = |waited| LockError::Held {
                    target: target.clone(),
                    holder: holder.clone(),
                    namespace: namespace.clone(),
                    lease: lease.clone(),
                    waited,
                };
                let Some(limit) = settings.wait.filter(|limit| waited < *limit) else {
                    return Err(held(settings.wait.map(|_| waited)));
                };
                if !told {
                    waiting(&held(None));
                    told = true;
                }
                let next = (Instant::now() + POLL).min(started + limit);
                if wait_or_stop(stopped, next).await {
                    return Err(LockError::Stopped);
                }
            }
            Err(other) => return Err(other),
        }
    }
}

async fn take_all(
    api: &Api<Lease>,
    settings: &LockSettings,
    run_id: &str,
    keys: &[LockKey],
) -> Result<Vec<HeldLease>, LockError> {
    let mut held = Vec::new();
    for key in keys {
        match take(api, settings, run_id, key).await {
            Ok(lease) => held.push(lease),
            Err(e) => {
                // All or nothing: a waiting run holding half of its locks could block
                // the run it waits for.
                release_all(api, run_id, &held).await;
                return Err(e);
            }
        }
    }
    Ok(held)
}

/// Creates the key's Lease, or takes over an expired one; `Held` when a live run has it.
async fn take(
    api: &Api<Lease>,
    settings: &LockSettings,
    run_id: &str,
    key: &LockKey,
) -> Result<HeldLease, LockError> {
    let name = key.lease_name();
    let api_error = |e: kube::Error| LockError::Api {
        target: key.clone(),
        namespace: settings.namespace.clone(),
        lease: name.clone(),
        source: Box::new(e),
    };
    let deadline = Instant::now() + CALL_BUDGET;
    let create = PostParams::default();
    let mut seen = None;
    // A few rounds: each lost race means someone else moved first; look again.
    for _ in 0..3 {
        let fresh = new_lease(key, &name, run_id);
        match with_retries(deadline, || api.create(&create, &fresh)).await {
            Ok(lease) => return Ok(held(key, lease)),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(api_error(e)),
        }
        let Some(current) = with_retries(deadline, || api.get_opt(&name))
            .await
            .map_err(api_error)?
        else {
            continue;
        };
        let ours = current
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(run_id);
        if ours || !is_live(&current, jiff::Timestamp::now()) {
            let taken = take_over(current.clone(), key, run_id);
            match api.replace(&name, &PostParams::default(), &taken).await {
                Ok(lease) => return Ok(held(key, lease)),
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
                Err(e) => return Err(api_error(e)),
            }
        }
        seen = Some(current);
    }
    let holder = match seen {
        Some(lease) => Holder::of(&lease),
        None => Holder {
            run_id: "another run".into(),
            host: "an unknown host".into(),
            since: "just now".into(),
            target: key.to_string(),
        },
    };
    Err(LockError::Held {
        target: key.clone(),
        holder,
        namespace: settings.namespace.clone(),
        lease: name,
        waited: None,
    })
}

fn held(key: &LockKey, lease: Lease) -> HeldLease {
    HeldLease {
        key: key.clone(),
        lease,
        renewed: Instant::now(),
    }
}

fn new_lease(key: &LockKey, name: &str, run_id: &str) -> Lease {
    let now = MicroTime(jiff::Timestamp::now());
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([(LOCK_LABEL.0.to_owned(), LOCK_LABEL.1.to_owned())].into()),
            annotations: Some(annotations(key, run_id)),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(run_id.to_owned()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    }
}

/// The expired (or our own) Lease, rewritten for this run; its resourceVersion stays,
/// so the update fails if anyone wrote it since we read it.
fn take_over(mut lease: Lease, key: &LockKey, run_id: &str) -> Lease {
    let now = MicroTime(jiff::Timestamp::now());
    let mut spec = lease.spec.take().unwrap_or_default();
    if spec.holder_identity.as_deref() != Some(run_id) {
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        spec.acquire_time = Some(now.clone());
    }
    spec.holder_identity = Some(run_id.to_owned());
    spec.lease_duration_seconds = Some(LEASE_DURATION.as_secs() as i32);
    spec.renew_time = Some(now);
    lease.spec = Some(spec);
    lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .extend(annotations(key, run_id));
    lease
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(LOCK_LABEL.0.to_owned(), LOCK_LABEL.1.to_owned());
    lease
}

fn annotations(key: &LockKey, run_id: &str) -> BTreeMap<String, String> {
    [
        (LOCK_TARGET.to_owned(), key.to_string()),
        (LOCK_RUN_ID.to_owned(), run_id.to_owned()),
        (LOCK_HOST.to_owned(), host()),
    ]
    .into()
}

/// This host and process, so a refused run can say where the holder runs.
fn host() -> String {
    format!("{} (pid {})", host_name(), std::process::id())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "an unknown host".into())
}

/// A holder on this very host whose process no longer exists was killed (SIGKILL, OOM)
/// without releasing: its Lease need not block `recover` or the next run until it
/// expires. Anything less certain (another host, a live pid) counts as alive.
fn holder_process_is_gone(lease: &Lease) -> bool {
    let Some(host) = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LOCK_HOST))
    else {
        return false;
    };
    let Some((name, pid)) = host.strip_suffix(')').and_then(|h| h.rsplit_once(" (pid ")) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    name == host_name()
        && pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl RunLock {
    fn start(
        api: Api<Lease>,
        run_id: &str,
        held: Vec<HeldLease>,
        on_lost: impl Fn(String) + Send + Sync + 'static,
    ) -> RunLock {
        let held = Arc::new(Mutex::new(held));
        let renewer = tokio::spawn(renew(api.clone(), run_id.to_owned(), held.clone(), on_lost));
        RunLock {
            api,
            run_id: run_id.to_owned(),
            held,
            renewer: Some(renewer),
        }
    }

    /// What this run holds, in words.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.held).iter().map(|h| h.key.to_string()).collect()
    }

    /// Stops renewing and deletes every Lease still ours. Returns what could not be
    /// released (it expires within [`LEASE_DURATION`] anyway).
    pub async fn release(mut self) -> Vec<String> {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
            let _ = renewer.await;
        }
        let held = std::mem::take(&mut *lock(&self.held));
        release_all(&self.api, &self.run_id, &held).await
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
    }
}

fn lock(held: &Mutex<Vec<HeldLease>>) -> std::sync::MutexGuard<'_, Vec<HeldLease>> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

/// Renews every held Lease every third of its duration until aborted, or until one is
/// lost: then `on_lost` hears why, once, and renewing stops.
async fn renew(
    api: Api<Lease>,
    run_id: String,
    held: Arc<Mutex<Vec<HeldLease>>>,
    on_lost: impl Fn(String) + Send + Sync + 'static,
) {
    let period = LEASE_DURATION / 3;
    let mut next = Instant::now() + period;
    loop {
        tokio::time::sleep_until(next).await;
        let leases = lock(&held).clone();
        let mut all_renewed = true;
        for mut entry in leases {
            match renew_one(&api, &run_id, &entry.lease).await {
                Renewal::Renewed(lease) => {
                    entry.lease = *lease;
                    entry.renewed = Instant::now();
                    if let Some(slot) = lock(&held).iter_mut().find(|h| h.key == entry.key) {
                        *slot = entry;
                    }
                }
                Renewal::Lost(why) => {
                    on_lost(format!("the lock on {}: {why}", entry.key));
                    return;
                }
                Renewal::Failed(why) if entry.renewed.elapsed() >= RENEW_GRACE => {
                    on_lost(format!(
                        "the lock on {} could not be renewed for {}s: {why}",
                        entry.key,
                        entry.renewed.elapsed().as_secs()
                    ));
                    return;
                }
                Renewal::Failed(_) => all_renewed = false,
            }
        }
        // After a failure, try again soon rather than a whole period later.
        next = Instant::now() + if all_renewed { period } else { POLL };
    }
}

enum Renewal {
    Renewed(Box<Lease>),
    /// Someone else holds it now, or it is gone: this run no longer has the lock.
    Lost(String),
    /// The API did not answer as hoped; try again.
    Failed(String),
}

async fn renew_one(api: &Api<Lease>, run_id: &str, lease: &Lease) -> Renewal {
    let name = lease.metadata.name.clone().unwrap_or_default();
    let mut renewed = lease.clone();
    if let Some(spec) = renewed.spec.as_mut() {
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
    }
    let call = tokio::time::timeout(
        POLL * 5,
        api.replace(&name, &PostParams::default(), &renewed),
    )
    .await;
    match call {
        Ok(Ok(lease)) => Renewal::Renewed(Box::new(lease)),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
            Renewal::Lost(format!("its Lease {name} was deleted"))
        }
        Ok(Err(kube::Error::Api(s))) if s.code == 409 => match api.get_opt(&name).await {
            Ok(Some(current)) => {
                let holder = Holder::of(&current);
                if holder.run_id == run_id {
                    // Someone touched our Lease (a label, an annotation): renew on top
                    // of their version next time round.
                    Renewal::Renewed(Box::new(current))
                } else {
                    Renewal::Lost(format!("it was taken over by {holder}"))
                }
            }
            Ok(None) => Renewal::Lost(format!("its Lease {name} was deleted")),
            Err(e) => Renewal::Failed(e.to_string()),
        },
        Ok(Err(e)) => Renewal::Failed(e.to_string()),
        Err(_) => Renewal::Failed("the API server did not answer in time".into()),
    }
}

/// Deletes each Lease if it is still ours: preconditioned on the version we last wrote,
/// re-read once on a conflict (a renewal cut short may have moved it on).
async fn release_all(api: &Api<Lease>, run_id: &str, held: &[HeldLease]) -> Vec<String> {
    let mut problems = Vec::new();
    for entry in held {
        let name = entry.lease.metadata.name.clone().unwrap_or_default();
        let deadline = Instant::now() + CALL_BUDGET / 2;
        let mut version = entry.lease.metadata.resource_version.clone();
        for attempt in 0..2 {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: version.clone(),
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match with_retries(deadline, || api.delete(&name, &params)).await {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 404 => break,
                Err(kube::Error::Api(s)) if s.code == 409 && attempt == 0 => {
                    match api.get_opt(&name).await {
                        Ok(Some(current)) if Holder::of(&current).run_id == run_id => {
                            version = current.metadata.resource_version.clone();
                        }
                        // Not ours any more (or gone): nothing of ours to release.
                        Ok(_) => break,
                        Err(e) => {
                            problems.push(format!("the lock on {}: {e}", entry.key));
                            break;
                        }
                    }
                }
                Err(e) => {
                    problems.push(format!(
                        "the lock on {} could not be released ({e}); it expires within {}s",
                        entry.key,
                        LEASE_DURATION.as_secs()
                    ));
                    break;
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_are_stable_dns_labels() {
        let key = LockKey::new("deployment/shop/checkout");
        let name = key.lease_name();
        assert_eq!(name, LockKey::new("deployment/shop/checkout").lease_name());
        assert_ne!(name, LockKey::new("deployment/shop/cart").lease_name());
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{name}"
        );
    }

    #[test]
    fn a_lease_is_live_until_its_renewal_plus_duration() {
        let now = jiff::Timestamp::now();
        let mut lease = new_lease(&LockKey::new("node/a"), "l", "run-1");
        assert!(is_live(&lease, now));
        let later = now + jiff::SignedDuration::from_secs(LEASE_DURATION.as_secs() as i64 + 1);
        assert!(!is_live(&lease, later), "expired");
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = Some(String::new());
        }
        assert!(!is_live(&lease, now), "a released lease blocks nobody");
    }

    #[test]
    fn a_holder_on_this_host_whose_process_is_gone_blocks_nobody() {
        let now = jiff::Timestamp::now();
        let mut lease = new_lease(&LockKey::new("node/a"), "l", "killed-run");
        let annotations = lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        // Linux pids stay below 2^22, so this one cannot exist.
        annotations.insert(LOCK_HOST.into(), format!("{} (pid 99999999)", host_name()));
        assert!(!is_live(&lease, now), "its process is gone");
        let annotations = lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        annotations.insert(LOCK_HOST.into(), "another-host (pid 99999999)".into());
        assert!(
            is_live(&lease, now),
            "another host's process cannot be checked"
        );
        let annotations = lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        annotations.insert(LOCK_HOST.into(), format!("{} (pid 1)", host_name()));
        assert!(is_live(&lease, now), "pid 1 exists");
    }

    #[test]
    fn taking_over_counts_a_transition_and_keeps_the_version() {
        let mut lease = new_lease(&LockKey::new("node/a"), "l", "old-run");
        lease.metadata.resource_version = Some("42".into());
        let taken = take_over(lease, &LockKey::new("node/a"), "new-run");
        let spec = taken.spec.expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("new-run"));
        assert_eq!(spec.lease_transitions, Some(1));
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("42"));
    }
}
