//! `recover` for Alertmanager silences: which ones shakedown left active, from a
//! journal (silences created and never expired, by id; intents whose id never reached
//! the journal, by listing Alertmanager's silences for the run's `createdBy` and
//! comment) and, given `--alertmanager-url`, from Alertmanager's list alone (every
//! active silence shakedown created). A live run's silences are left to it unless
//! forced, like its faults.

use std::collections::{BTreeMap, BTreeSet};

use crate::events::{Record, RunEvent};
use crate::faults::Undo;
use crate::faults::silence::{self, SilenceApi};
use crate::probes::prometheus::PrometheusEndpoint;
use crate::spec::PrometheusSpec;

/// What recover found about silences: what to expire, what it could not look at, and
/// what it left to live runs.
#[derive(Default)]
pub(super) struct Found {
    pub work: Vec<Undo>,
    pub unreached: Vec<String>,
    pub held: Vec<String>,
}

/// An Alertmanager at `url`, reached without credentials (recover has no spec).
fn api(url: &str) -> Result<SilenceApi, String> {
    let spec = PrometheusSpec {
        url: Some(url.to_owned()),
        ..PrometheusSpec::default()
    };
    PrometheusEndpoint::alertmanager(&spec)
        .map(|e| SilenceApi(std::sync::Arc::new(e)))
        .map_err(|e| shakedown_vocab::error_chain(&e))
}

/// What the journal says about its silences: the run, the Alertmanagers named, the ids
/// created and not expired (with their Alertmanager), and whether an intent has no id.
struct FromJournal {
    run_id: Option<String>,
    open: BTreeMap<String, String>,
    without_id: BTreeSet<String>,
}

fn read_journal(records: &[Record]) -> FromJournal {
    let mut run_id = None;
    let mut pending: BTreeMap<Option<String>, String> = BTreeMap::new();
    let mut open = BTreeMap::new();
    for record in records {
        match &record.event {
            RunEvent::RunStarted(s) => run_id = Some(s.run_id.clone()),
            RunEvent::SilenceIntent(i) => {
                pending.insert(i.step.clone(), i.alertmanager.clone());
            }
            RunEvent::SilenceCreated { step, id, .. } => {
                if let Some(url) = pending.remove(step) {
                    open.insert(id.clone(), url);
                }
            }
            RunEvent::SilenceExpired { id, .. } => {
                open.remove(id);
            }
            _ => {}
        }
    }
    FromJournal {
        run_id,
        open,
        without_id: pending.into_values().collect(),
    }
}

/// The silences to expire. `live` maps a run with a live lock to its holder's words;
/// `force` ignores it.
pub(super) async fn find(
    records: Option<&[Record]>,
    alertmanager_url: Option<&str>,
    live: &BTreeMap<String, String>,
    force: bool,
) -> Found {
    let mut found = Found::default();
    let journal = records.map(read_journal);
    let mut expire: BTreeMap<String, SilenceApi> = BTreeMap::new();
    // Alertmanagers whose list is read, and the run whose silences are taken from it
    // (`None`: every shakedown silence).
    let mut lists: Vec<(String, Option<String>)> = Vec::new();
    if let Some(journal) = &journal {
        let live_run = journal
            .run_id
            .as_ref()
            .filter(|run| !force && live.contains_key(*run));
        for (id, url) in &journal.open {
            if let Some(run) = live_run {
                found.held.push(held(id, run, live));
                continue;
            }
            match api(url) {
                Ok(api) => {
                    expire.insert(id.clone(), api);
                }
                Err(e) => found.unreached.push(format!("silence/{id}: {e}")),
            }
        }
        if live_run.is_none() {
            for url in &journal.without_id {
                lists.push((url.clone(), journal.run_id.clone()));
            }
        }
    }
    if let Some(url) = alertmanager_url {
        lists.push((url.to_owned(), None));
    }
    for (url, run) in lists {
        let listed = match api(&url) {
            Ok(api) => silence::ours(&api).await.map(|all| (api, all)),
            Err(e) => Err(e),
        };
        let (api, all) = match listed {
            Ok(listed) => listed,
            Err(e) => {
                found
                    .unreached
                    .push(format!("silences in Alertmanager at {url}: {e}"));
                continue;
            }
        };
        for s in all {
            if run.as_ref().is_some_and(|run| *run != s.run_id) {
                continue;
            }
            if !force && live.contains_key(&s.run_id) {
                found.held.push(held(&s.id, &s.run_id, live));
                continue;
            }
            expire.entry(s.id).or_insert_with(|| api.clone());
        }
    }
    found.work = expire
        .into_iter()
        .map(|(id, alertmanager)| Undo::ExpireSilence { id, alertmanager })
        .collect();
    found
}

fn held(id: &str, run: &str, live: &BTreeMap<String, String>) -> String {
    let holder = live.get(run).map_or(run, String::as_str);
    format!(
        "silence/{id}: left alone: {holder} holds its lock and expires it itself; pass --force to expire it now"
    )
}
