//! `recover` for Alertmanager silences: which ones shakedown left active, from a
//! journal (silences created and never expired, by id; intents whose id never reached
//! the journal, by listing Alertmanager's silences for the run's `createdBy` and
//! comment) and, given `--alertmanager-url` or `--alertmanager-from`, from
//! Alertmanager's list alone (every active silence shakedown created). A live run's
//! silences are left to it unless forced, like its faults.
//!
//! A journal names an Alertmanager by its URL only (never its credentials), so an
//! Alertmanager that wants credentials is reached with `--alertmanager-from`'s
//! connection options where its URL is that one's, and without any elsewhere.

use std::collections::{BTreeMap, BTreeSet};

use super::recover::LiveRuns;
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

/// The Alertmanager at `url`: `known` (`--alertmanager-from`'s, with its connection
/// options) when it is at that URL, else reached without credentials.
fn api(url: &str, known: Option<&SilenceApi>) -> Result<SilenceApi, String> {
    let spec = PrometheusSpec {
        url: Some(url.to_owned()),
        ..PrometheusSpec::default()
    };
    let plain =
        PrometheusEndpoint::alertmanager(&spec).map_err(|e| shakedown_vocab::error_chain(&e))?;
    Ok(match known {
        Some(known) if same_place(known.0.display_url(), plain.display_url()) => known.clone(),
        _ => SilenceApi(std::sync::Arc::new(plain)),
    })
}

/// Two display URLs of one Alertmanager (a trailing slash aside).
fn same_place(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
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
/// `--force` ignores it.
pub(super) async fn find(
    records: Option<&[Record]>,
    flags: &LiveRuns,
    live: &BTreeMap<String, String>,
) -> Found {
    let (force, known) = (flags.force, flags.alertmanager.as_ref());
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
            match api(url, known) {
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
    if let Some(url) = &flags.alertmanager_url {
        lists.push((url.clone(), None));
    }
    if let Some(known) = known {
        lists.push((known.0.display_url().to_owned(), None));
    }
    lists.dedup_by(|a, b| same_place(&a.0, &b.0) && a.1 == b.1);
    for (url, run) in lists {
        let listed = match api(&url, known) {
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
