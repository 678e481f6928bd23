//! `shakedown recover`: undo whatever shakedown left in the cluster, from the marks it
//! leaves there (node annotation `shakedown.dev/cordoned-by`, pod annotation
//! `shakedown.dev/fault`), so it works from anywhere, even with the journal lost. A
//! journal, when given, adds the run's own list of targets, so anything it names that
//! is still faulted without a mark is reported too.
//!
//! Idempotent, and it never touches a node cordoned by anyone but shakedown. With
//! `--dry-run=client` it only lists what it would revert; with `--dry-run=server` every
//! revert call carries `dryRun=All` (an exec, which cannot be dry-run, is not made).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::cluster::Connection;
use crate::events::RunEvent;
use crate::exit::Outcome;
use crate::faults::{self, CORDONED_BY, FAULT_ANNOTATION, FaultContext, Ledger, Undo};
use crate::plan::DryRun;
use crate::run::bus::EventBus;

/// One deadline for the whole recover: its reverts run in parallel through
/// `faults::undo_all` (at most `faults::PARALLEL_REVERTS` at once), as a run's do.
const BUDGET: Duration = Duration::from_secs(30);

/// What recover found and did, for the summary and the exit code.
#[derive(Debug, Default)]
pub struct Recovery {
    /// How far it went: a dry run changes nothing.
    pub dry_run: Option<DryRun>,
    pub reverted: Vec<String>,
    pub failed: Vec<String>,
    /// Journal targets that still look faulted but carry no mark we can act on.
    pub unmarked: Vec<String>,
    /// `--dry-run=client`: what a real recover would revert; nothing was sent.
    pub would_revert: Vec<String>,
    /// Why journal records were skipped (damaged lines, missing records), if any.
    pub journal_damage: Option<String>,
    /// Faults left to the live run that holds them (its lock is renewed), with its name.
    pub held: Vec<String>,
}

impl Recovery {
    /// Exit 4 when something stays faulted that nobody will revert; exit 3 when faults
    /// were left to a live run (it reverts them itself, or `--force` does it now).
    pub fn outcome(&self) -> Outcome {
        match self.dry_run {
            // Nothing was touched, so nothing is left faulted by this invocation; a
            // refused dry-run call is a revert the real recover could not make.
            Some(DryRun::Client | DryRun::Server) if self.failed.is_empty() => Outcome::DryRun,
            Some(DryRun::Client | DryRun::Server) => Outcome::CouldNotRun,
            _ if !self.failed.is_empty() || !self.unmarked.is_empty() => Outcome::RevertFailed,
            _ if !self.held.is_empty() => Outcome::CouldNotRun,
            _ => Outcome::Passed,
        }
    }
}

/// Whose faults `recover` may touch: a run whose lock is live reverts its own.
#[derive(Debug, Clone, Default)]
pub struct LiveRuns {
    /// Where run locks live (`--lock-namespace`).
    pub lock_namespace: String,
    /// `--force`: revert them anyway.
    pub force: bool,
    /// `--alertmanager-url`: also expire every active silence shakedown created there
    /// (a journal names its own Alertmanager).
    pub alertmanager_url: Option<String>,
    /// `--alertmanager-from`: an Alertmanager reached with a spec's connection options,
    /// used wherever its URL is (and its silences listed as `alertmanager_url`'s are).
    pub alertmanager: Option<crate::faults::silence::SilenceApi>,
}

/// Finds every shakedown mark (and, with a journal, what it says is still faulted) and
/// reverts it, as far as `dry_run` allows.
pub async fn recover(
    conn: &Connection,
    journal: Option<&Path>,
    dry_run: DryRun,
    bus: EventBus,
    live_runs: &LiveRuns,
) -> Result<Recovery, String> {
    let ctx = FaultContext {
        client: conn.client.clone(),
        // Empty: match any shakedown run's marks.
        run_id: String::new(),
        step: "recover".into(),
        dry_run: dry_run == DryRun::Server,
        bus,
        ledger: Ledger::default(),
        // Nothing stops a recover half-way: its channel has no sender.
        stop: tokio::sync::watch::channel(crate::run::stop::Stop::Running).1,
        evictable: None,
        listed: Default::default(),
    };
    let mut work = marked_faults(conn).await?;
    let mut recovery = Recovery {
        dry_run: (dry_run != DryRun::None).then_some(dry_run),
        ..Recovery::default()
    };
    let mut records = None;
    if let Some(path) = journal {
        // Every readable record counts: a damaged line must not hide what is faulted.
        let contents = crate::journal::read(path).map_err(|e| e.to_string())?;
        recovery.journal_damage = contents.damage();
        recovery.unmarked = still_faulted_without_mark(conn, &contents.records, &work).await;
        records = Some(contents.records);
    }
    // After the journal check: a fault left to its live run still carries its mark.
    recovery.held = leave_live_runs_alone(conn, live_runs, &mut work).await?;
    // Alertmanager silences: from the journal, and from Alertmanager's own list.
    let journaled_silence = records
        .iter()
        .flatten()
        .any(|r| matches!(r.event, RunEvent::SilenceIntent(_)));
    if journaled_silence || live_runs.alertmanager_url.is_some() || live_runs.alertmanager.is_some()
    {
        let live = live_run_words(conn, live_runs).await?;
        let silences = super::recover_silences::find(records.as_deref(), live_runs, &live).await;
        work.extend(silences.work);
        recovery.failed.extend(silences.unreached);
        recovery.held.extend(silences.held);
    }
    work.sort_by_key(Undo::target);
    work.dedup();
    if dry_run == DryRun::Client {
        recovery.would_revert = work.iter().map(would_revert).collect();
        return Ok(recovery);
    }
    let entries = work
        .into_iter()
        .map(|entry| ("recover".to_owned(), entry))
        .collect();
    let bus = ctx.bus.clone();
    faults::undo_all(&ctx, entries, BUDGET, |step, entry, result| {
        let target = entry.target();
        match result {
            Ok(reverted) => {
                let detail = reverted.detail();
                recovery.reverted.push(format!("{target}: {detail}"));
                bus.emit(RunEvent::FaultReverted {
                    step: step.into(),
                    target,
                    detail,
                    dry_run: ctx.dry_run,
                });
            }
            Err(error) => {
                let error = error.to_string();
                recovery.failed.push(format!("{target}: {error}"));
                bus.emit(RunEvent::RevertFailed {
                    step: step.into(),
                    target,
                    error,
                });
            }
        }
    })
    .await;
    // They finish in any order; the summary lists them by target, as before.
    recovery.reverted.sort();
    recovery.failed.sort();
    Ok(recovery)
}

/// The runs whose lock is live, with their holder in words; none when forced. Fails
/// closed like [`leave_live_runs_alone`].
async fn live_run_words(
    conn: &Connection,
    live_runs: &LiveRuns,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    if live_runs.force {
        return Ok(Default::default());
    }
    let namespace = &live_runs.lock_namespace;
    let live = crate::cluster::lease::live_holders(&conn.client, namespace)
        .await
        .map_err(|e| {
            format!("cannot read the run locks in namespace {namespace} ({e}); pass --force to recover without checking for live runs")
        })?;
    Ok(live
        .into_iter()
        .map(|(run, holder)| (run, holder.to_string()))
        .collect())
}

/// What a real recover would do with one mark, in words.
fn would_revert(entry: &Undo) -> String {
    match entry {
        Undo::ExpireSilence { id, alertmanager } => {
            format!("silence/{id}: would expire it in Alertmanager at {alertmanager:?}")
        }
        Undo::Uncordon { node } => {
            format!("node/{node}: would uncordon it and remove {CORDONED_BY}")
        }
        Undo::RemoveNetem {
            namespace,
            pod,
            container,
            interface,
        } => format!(
            "{namespace}/{pod}: would delete netem on {interface} over exec in {container} and remove {FAULT_ANNOTATION}"
        ),
    }
}

/// Every node and pod carrying a shakedown mark.
async fn marked_faults(conn: &Connection) -> Result<Vec<Undo>, String> {
    let mut work = Vec::new();
    let nodes = Api::<Node>::all(conn.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("cannot list nodes: {e}"))?;
    for node in nodes.items {
        if node.annotations().contains_key(CORDONED_BY) {
            work.push(Undo::Uncordon {
                node: node.name_any(),
            });
        }
    }
    let pods = Api::<Pod>::all(conn.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("cannot list pods: {e}"))?;
    for pod in pods.items {
        let Some(mark) = pod.annotations().get(FAULT_ANNOTATION) else {
            continue;
        };
        let mark: serde_json::Value = serde_json::from_str(mark).unwrap_or_default();
        work.push(Undo::RemoveNetem {
            namespace: pod.namespace().unwrap_or_default(),
            pod: pod.name_any(),
            container: mark["container"].as_str().unwrap_or_default().to_owned(),
            interface: mark["interface"].as_str().unwrap_or("eth0").to_owned(),
        });
    }
    Ok(work)
}

/// Takes out of `work` the faults of runs whose lock is still live, unless forced, and
/// says which run holds each. Fails closed: if the locks cannot be read, nothing is
/// reverted (a live run's faults could be pulled from under it); `--force` skips this.
async fn leave_live_runs_alone(
    conn: &Connection,
    live_runs: &LiveRuns,
    work: &mut Vec<Undo>,
) -> Result<Vec<String>, String> {
    if live_runs.force || work.is_empty() {
        return Ok(Vec::new());
    }
    let namespace = &live_runs.lock_namespace;
    let live = crate::cluster::lease::live_holders(&conn.client, namespace)
        .await
        .map_err(|e| {
            format!("cannot read the run locks in namespace {namespace} ({e}); pass --force to recover without checking for live runs")
        })?;
    if live.is_empty() {
        return Ok(Vec::new());
    }
    let runs = marking_runs(conn).await?;
    let mut held = Vec::new();
    work.retain(|entry| {
        let target = entry.target();
        let Some(holder) = runs.get(&target).and_then(|run| live.get(run)) else {
            return true;
        };
        held.push(format!(
            "{target}: left alone: {holder} holds its lock and reverts it itself; pass --force to revert it now"
        ));
        false
    });
    Ok(held)
}

/// The run id each shakedown mark names, by target (`node/NAME`, `NAMESPACE/POD`).
async fn marking_runs(
    conn: &Connection,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut runs = std::collections::BTreeMap::new();
    let nodes = Api::<Node>::all(conn.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("cannot list nodes: {e}"))?;
    for node in nodes.items {
        if let Some(run) = node.annotations().get(CORDONED_BY) {
            runs.insert(format!("node/{}", node.name_any()), run.clone());
        }
    }
    let pods = Api::<Pod>::all(conn.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("cannot list pods: {e}"))?;
    for pod in pods.items {
        let Some(mark) = pod.annotations().get(FAULT_ANNOTATION) else {
            continue;
        };
        let mark: serde_json::Value = serde_json::from_str(mark).unwrap_or_default();
        if let Some(run) = mark["runId"].as_str() {
            let target = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
            runs.insert(target, run.to_owned());
        }
    }
    Ok(runs)
}

/// Nodes the journal says were cordoned and never reverted, that are still cordoned but
/// lost our mark: we must not guess, so they are reported, not touched.
async fn still_faulted_without_mark(
    conn: &Connection,
    records: &[crate::events::Record],
    marked: &[Undo],
) -> Vec<String> {
    let mut open: BTreeSet<String> = BTreeSet::new();
    for record in records {
        match &record.event {
            // A dry run's "would cordon" cordoned nothing.
            RunEvent::FaultInjected {
                target,
                detail,
                dry_run: false,
                ..
            } if detail == "cordoned" => {
                open.insert(target.clone());
            }
            RunEvent::FaultReverted {
                target,
                dry_run: false,
                ..
            } => {
                open.remove(target);
            }
            _ => {}
        }
    }
    let marked: BTreeSet<String> = marked.iter().map(Undo::target).collect();
    let api = Api::<Node>::all(conn.client.clone());
    let mut unmarked = Vec::new();
    for target in open.difference(&marked) {
        let Some(name) = target.strip_prefix("node/") else {
            continue;
        };
        if let Ok(node) = api.get(name).await
            && node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
        {
            unmarked.push(format!("{target} is still cordoned but has no {CORDONED_BY} mark; uncordon it by hand if shakedown cordoned it"));
        }
    }
    unmarked
}
