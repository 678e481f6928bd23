//! What a run locks before its first mutation, and what losing a lock does.
//!
//! The rule: a run locks every object its selections pick *from*, not only its picks,
//! because each blast-radius cap is a share of that set. Pods are locked by their
//! workload owner (three runs each capped at 34 % of a Deployment's pods would together
//! take 100 % of them if each locked only its own pick), bare pods by themselves, nodes
//! by name; a drain also locks the owners of the pods it would evict. Two runs whose
//! sets overlap therefore cannot run at once; the second refuses (exit 3) or waits
//! (`--wait-for-lock`). A run that loses a lock while holding it reverts and exits 3.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use super::Runner;
use crate::cluster::lease::{self, LockError, LockKey, RunLock};
use crate::cluster::{self, Connection, with_retries};
use crate::events::NoteLevel;
use crate::faults::disruption::owners_of;
use crate::faults::listed_pod;
use crate::plan::{Inventory, Objects, Plan, candidates};
use crate::run::stop::Stop;

impl Runner {
    /// Takes the run's locks. `Err` (why its steps are skipped) when the run must not
    /// start: the cause is already reported, and tallied unless a signal stopped the wait.
    pub(super) async fn take_locks(&self, plan: &Plan) -> Result<Option<RunLock>, String> {
        let Some(settings) = self.options.lock.clone() else {
            return Ok(None);
        };
        let refuse = |why: String| {
            self.note(NoteLevel::Warning, why.clone());
            self.tally().errors.push(why);
        };
        let keys = match lock_keys(&self.conn, plan).await {
            // Nothing to fault (only pauses), nothing to lock.
            Ok(keys) if keys.is_empty() => return Ok(None),
            Ok(keys) => keys,
            Err(e) => {
                refuse(format!("cannot work out what this run must lock: {e}"));
                return Err("not run: its locks could not be taken".into());
            }
        };
        let mut stopped = self.stop.subscribe();
        let waiting = |held: &LockError| {
            let message = match held {
                LockError::Held { target, holder, .. } => {
                    format!("waiting for a lock: {target} is held by {holder}")
                }
                other => format!("waiting for a lock: {other}"),
            };
            self.note(NoteLevel::Info, message);
        };
        let on_lost = {
            let (stop, bus, tally) = (self.stop.clone(), self.bus.clone(), self.tally.clone());
            move |why: String| {
                let message = format!("lost {why}; reverting and stopping");
                bus.emit(crate::events::RunEvent::Note {
                    level: NoteLevel::Warning,
                    message: message.clone(),
                });
                tally
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .errors
                    .push(message);
                stop.send_if_modified(|current| {
                    let running = matches!(current, Stop::Running);
                    if running {
                        *current = Stop::LockLost(why.clone());
                    }
                    running
                });
            }
        };
        let client = &self.conn.client;
        let run_id = &self.options.run_id;
        match lease::acquire(
            client,
            &settings,
            run_id,
            &keys,
            &mut stopped,
            waiting,
            on_lost,
        )
        .await
        {
            Ok(lock) => {
                self.note(
                    NoteLevel::Info,
                    format!(
                        "locked {} with Leases in namespace {}",
                        lock.keys().join(", "),
                        settings.namespace
                    ),
                );
                Ok(Some(lock))
            }
            Err(LockError::Stopped) => Err("not run: stopped while waiting for a lock".into()),
            Err(e) => {
                refuse(format!("{e}; nothing was injected"));
                Err(format!("not run: {e}"))
            }
        }
    }

    /// Journals every step of a run that never started as skipped, with why.
    pub(super) fn skip_every_step(&self, plan: &Plan, reason: &str) {
        for entry in plan.entries() {
            self.bus.emit(crate::events::RunEvent::StepSkipped {
                step: entry.id,
                reason: reason.to_owned(),
            });
        }
    }

    /// Gives the locks back; a Lease that cannot be deleted expires on its own.
    pub(super) async fn release_locks(&self, lock: Option<RunLock>) {
        let Some(lock) = lock else {
            return;
        };
        for problem in lock.release().await {
            self.note(NoteLevel::Warning, problem);
        }
    }
}

/// Every lock the plan's faults need, in a stable order.
async fn lock_keys(conn: &Connection, plan: &Plan) -> Result<Vec<LockKey>, String> {
    let mut keys = BTreeSet::new();
    for (step, fault) in plan.fault_steps() {
        let selection = &fault.selection;
        let inventory = cluster::inventory(
            conn,
            selection.pod_namespaces(),
            selection.is_nodes(),
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| e.to_string())?;
        let pool =
            candidates(selection, &inventory).map_err(|e| format!("step {}: {e}", step.id))?;
        match &selection.objects {
            Objects::Pods { .. } => keys.extend(owner_keys(conn, &pool, &inventory).await?),
            Objects::Nodes { .. } => {
                keys.extend(pool.iter().map(|node| LockKey::new(format!("node/{node}"))));
                keys.extend(owner_keys(conn, &fault.collateral, &inventory).await?);
            }
        }
    }
    Ok(keys.into_iter().collect())
}

/// The workload owners of these pods (`namespace/name`), or the pod itself when it has
/// no controller. A pod the inventory just listed is taken from it (its controller is
/// there); only a namespace with pods it lacks (a drain's collateral outside the
/// selection's namespaces) is listed again.
async fn owner_keys(
    conn: &Connection,
    pods: &[String],
    inventory: &Inventory,
) -> Result<Vec<LockKey>, String> {
    let mut by_namespace: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for pod in pods {
        let (namespace, name) = crate::faults::split_pod(pod);
        by_namespace.entry(namespace).or_default().insert(name);
    }
    let mut keys = Vec::new();
    for (namespace, names) in by_namespace {
        let snapshot: Vec<Pod> = inventory
            .pods
            .iter()
            .filter(|p| p.namespace == namespace && names.contains(p.name.as_str()))
            .map(listed_pod)
            .collect();
        let wanted = if snapshot.len() == names.len() {
            snapshot
        } else {
            let api: Api<Pod> = Api::namespaced(conn.client.clone(), namespace);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let all = ListParams::default();
            let list = with_retries(deadline, || api.list(&all))
                .await
                .map_err(|e| format!("listing pods in {namespace}: {e}"))?;
            list.items
                .into_iter()
                .filter(|p| {
                    p.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| names.contains(n))
                })
                .collect()
        };
        for pod in &wanted {
            let controlled = pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true));
            if !controlled {
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                keys.push(LockKey::new(format!("pod/{namespace}/{name}")));
            }
        }
        keys.extend(
            owners_of(&conn.client, &wanted)
                .await
                .iter()
                .map(|owner| LockKey::new(owner.to_string())),
        );
    }
    Ok(keys)
}
