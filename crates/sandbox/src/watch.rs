//! Watch streams: newline-delimited JSON events, resumable from a resourceVersion,
//! filtered by namespace and selectors, with bookmarks and a server-side timeout.
//! A resourceVersion older than the history is answered like the watch cache does:
//! HTTP 200 with one ERROR event carrying a 410 `Expired` Status.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::State;
use super::api::Filter;
use super::resources::ResourceDef;
use super::status::ApiError;
use super::store::{Broadcast, Change, EventType};
use super::table;

struct WatchSpec {
    def: &'static ResourceDef,
    /// kubectl `get -w` asks for Tables: the query, for `includeObject`.
    table: Option<HashMap<String, String>>,
    /// Tables carry their column definitions on the first event only.
    columns_sent: Cell<bool>,
    namespace: Option<String>,
    filter: Filter,
    bookmarks: bool,
    timeout: Duration,
}

pub fn start(
    state: &Arc<State>,
    def: &'static ResourceDef,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
    as_table: bool,
    drop_after: Option<Duration>,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    crate::api::validate_watch(query)?;
    let filter = Filter::parse(def, query)?;
    let timeout = match query.get("timeoutSeconds") {
        Some(s) => Duration::from_secs(
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {s:?}")))?,
        ),
        None => Duration::from_secs(1800),
    };
    let timeout = match drop_after {
        Some(d) => timeout.min(d),
        None => timeout,
    };
    let spec = WatchSpec {
        def,
        table: as_table.then(|| query.clone()),
        columns_sent: Cell::new(false),
        namespace: namespace.map(str::to_owned),
        filter,
        bookmarks: matches!(
            query.get("allowWatchBookmarks").map(String::as_str),
            Some("true" | "1")
        ),
        timeout,
    };
    let send_initial = matches!(
        query.get("sendInitialEvents").map(String::as_str),
        Some("true" | "1")
    );
    let rv = query.get("resourceVersion").map_or("", String::as_str);
    let (tx, rx) = mpsc::channel(256);
    let store = state.store();
    let mut initial = Vec::new();
    let (backlog, feed, last_rv) = if rv.is_empty() || rv == "0" || send_initial {
        // "Start at most recent": the current state as ADDED events, then changes.
        for obj in store.iter(def.store, namespace, None) {
            if spec.filter.matches(obj) {
                initial.push(spec.encode("ADDED", obj));
            }
        }
        (Vec::new(), store.subscribe_now(), store.resource_version())
    } else {
        let from = crate::api::parse_resource_version(rv)?;
        match store.subscribe(from) {
            Ok((backlog, feed)) => (backlog, feed, from),
            Err(gone) => {
                drop(store);
                let _ = tx.try_send(event("ERROR", &gone.to_status()));
                return Ok(rx);
            }
        }
    };
    drop(store);
    if send_initial && spec.bookmarks {
        let mut mark = bookmark(def, last_rv);
        mark["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        initial.push(event("BOOKMARK", &mark));
    }
    let interval = state.config.timings.bookmark_interval;
    tokio::spawn(run(spec, tx, initial, backlog, feed, last_rv, interval));
    Ok(rx)
}

impl WatchSpec {
    /// One event line, as a plain object or as a one-row Table.
    fn encode(&self, kind: &str, obj: &Value) -> Bytes {
        let obj = served(self.def, obj);
        let Some(query) = &self.table else {
            return event(kind, &obj);
        };
        let rv = obj["metadata"]["resourceVersion"].clone();
        let mut table = table::render(self.def, std::slice::from_ref(&obj), query, rv, None);
        if self.columns_sent.replace(true)
            && let Some(m) = table.as_object_mut()
        {
            m.remove("columnDefinitions");
        }
        event(kind, &table)
    }
}

fn served(def: &ResourceDef, obj: &Value) -> Value {
    crate::api::as_served(def, obj.clone())
}

fn event(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark(def: &ResourceDef, rv: u64) -> Value {
    json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": {"resourceVersion": rv.to_string()}})
}

/// The event a filtered watcher sees for a change, if any: objects entering the
/// selection are ADDED, objects leaving it are DELETED.
fn translate(spec: &WatchSpec, change: &Change) -> Option<Bytes> {
    if change.store != spec.def.store {
        return None;
    }
    if spec
        .namespace
        .as_ref()
        .is_some_and(|ns| *ns != change.namespace)
    {
        return None;
    }
    let now = spec.filter.matches(&change.object);
    let before = change
        .previous
        .as_ref()
        .is_some_and(|p| spec.filter.matches(p));
    let kind = match (change.kind, before, now) {
        (EventType::Added, _, true) => "ADDED",
        (EventType::Deleted, _, true) => "DELETED",
        (EventType::Modified, true, true) => "MODIFIED",
        (EventType::Modified, false, true) => "ADDED",
        (EventType::Modified, true, false) => "DELETED",
        _ => return None,
    };
    if spec.table.is_some() {
        return Some(spec.encode(kind, &change.object));
    }
    if change.object["apiVersion"] == spec.def.api_version().as_str() {
        let mut line = Vec::with_capacity(change.json.len() + 32);
        line.extend_from_slice(br#"{"type":""#);
        line.extend_from_slice(kind.as_bytes());
        line.extend_from_slice(br#"","object":"#);
        line.extend_from_slice(&change.json);
        line.extend_from_slice(b"}\n");
        return Some(Bytes::from(line));
    }
    Some(event(kind, &served(spec.def, &change.object)))
}

async fn run(
    spec: WatchSpec,
    tx: mpsc::Sender<Bytes>,
    initial: Vec<Bytes>,
    backlog: Vec<Arc<Change>>,
    mut feed: broadcast::Receiver<Broadcast>,
    mut last_rv: u64,
    bookmark_every: Duration,
) {
    for line in initial {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    for change in backlog {
        last_rv = change.rv;
        if let Some(line) = translate(&spec, &change)
            && tx.send(line).await.is_err()
        {
            return;
        }
    }
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(bookmark_every);
    ticker.tick().await;
    loop {
        tokio::select! {
            biased;
            message = feed.recv() => match message {
                Ok(Broadcast::Change(change)) => {
                    if change.rv <= last_rv {
                        continue;
                    }
                    last_rv = change.rv;
                    if let Some(line) = translate(&spec, &change)
                        && tx.send(line).await.is_err()
                    {
                        return;
                    }
                }
                // Lagging behind or told to hang up: end the stream; the client
                // resumes from the last resourceVersion it saw.
                Ok(Broadcast::CloseWatches) | Err(_) => return,
            },
            () = &mut deadline => return,
            () = tx.closed() => return,
            _ = ticker.tick() => {
                if spec.bookmarks && tx.send(event("BOOKMARK", &bookmark(spec.def, last_rv))).await.is_err() {
                    return;
                }
            }
        }
    }
}
