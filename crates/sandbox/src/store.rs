//! The in-memory object store: every object as JSON, one global resourceVersion
//! counter (like etcd's revision), and a bounded event history that watches resume
//! from. It knows nothing about HTTP or controllers; callers hold its lock briefly and
//! never across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as watches see it. `previous` lets a filtered watch turn "stopped
/// matching the selector" into DELETED, as the real watch cache does.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub store: &'static str,
    pub namespace: String,
    pub kind: EventType,
    pub object: Arc<Value>,
    pub json: Bytes,
    pub previous: Option<Arc<Value>>,
}

/// What flows to watch tasks: changes, and the order to hang up (compaction, faults).
#[derive(Debug, Clone)]
pub enum Broadcast {
    Change(Arc<Change>),
    CloseWatches,
}

/// A stored object, shared with the watch history, plus its JSON encoding so that
/// lists and watches serve bytes instead of re-encoding thousands of objects.
#[derive(Debug)]
pub struct Stored {
    pub object: Arc<Value>,
    pub json: Bytes,
}

impl Stored {
    fn new(object: Value) -> Self {
        let json = Bytes::from(serde_json::to_vec(&object).unwrap_or_default());
        Self {
            object: Arc::new(object),
            json,
        }
    }
}

type Bucket = BTreeMap<(String, String), Stored>;

pub struct Store {
    buckets: HashMap<&'static str, Bucket>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Watches from a resourceVersion older than this get 410 Gone.
    compacted_rv: u64,
    tx: broadcast::Sender<Broadcast>,
    uid_seed: u64,
    uid_counter: u64,
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

pub fn namespace_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("")
}

pub fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or("")
}

pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    string_map(&obj["metadata"]["labels"])
}

pub fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let uid_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        Self {
            buckets: HashMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_rv: 0,
            tx,
            uid_seed,
            uid_counter: 0,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion still consistent to continue from or watch after.
    pub fn compacted_version(&self) -> u64 {
        self.compacted_rv
    }

    pub fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let a = self.uid_seed ^ self.uid_counter.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let b = a.rotate_left(29).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a & 0xfff) as u16,
            (b >> 52) as u16 & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    /// Five characters from the alphabet Kubernetes uses for generated names.
    pub fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.uid_counter += 1;
        let mut x = self.uid_seed ^ self.uid_counter.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (0..5)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
            })
            .collect()
    }

    pub fn get(&self, store: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.buckets
            .get(store)?
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|s| &*s.object)
    }

    pub fn contains(&self, store: &str, namespace: &str, name: &str) -> bool {
        self.get(store, namespace, name).is_some()
    }

    /// Objects of one bucket, optionally in one namespace, in (namespace, name) order,
    /// starting strictly after `after` when continuing a paginated list.
    pub fn iter<'a>(
        &'a self,
        store: &str,
        namespace: Option<&'a str>,
        after: Option<(String, String)>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.iter_stored(store, namespace, after)
            .map(|s| &*s.object)
    }

    /// Like `iter`, with each object's JSON encoding.
    pub fn iter_stored<'a>(
        &'a self,
        store: &str,
        namespace: Option<&'a str>,
        after: Option<(String, String)>,
    ) -> impl Iterator<Item = &'a Stored> + 'a {
        use std::ops::Bound;
        let lower = match (&after, namespace) {
            (Some(key), _) => Bound::Excluded(key.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_owned(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        self.buckets
            .get(store)
            .into_iter()
            .flat_map(move |bucket| bucket.range((lower.clone(), Bound::Unbounded)))
            .take_while(move |((ns, _), _)| namespace.is_none_or(|want| ns == want))
            .map(|(_, v)| v)
    }

    /// Fills in server-owned metadata and stores a new object.
    pub fn create(
        &mut self,
        store: &'static str,
        qualified: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let namespace = namespace_of(&obj).to_owned();
        let name = name_of(&obj).to_owned();
        if self.contains(store, &namespace, &name) {
            return Err(ApiError::already_exists(qualified, &name));
        }
        let uid = self.new_uid();
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(now_rfc3339());
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        if dry_run {
            obj["metadata"]["resourceVersion"] = json!("");
            return Ok(obj);
        }
        Ok(self.commit(store, namespace, name, obj, EventType::Added, None))
    }

    /// Replaces a stored object. A write that changes nothing keeps its
    /// resourceVersion and emits no event, like the real API server.
    pub fn update(&mut self, store: &'static str, obj: Value) -> Value {
        let namespace = namespace_of(&obj).to_owned();
        let name = name_of(&obj).to_owned();
        let previous = self
            .buckets
            .get(store)
            .and_then(|b| b.get(&(namespace.clone(), name.clone())))
            .map(|s| s.object.clone());
        let mut obj = obj;
        if let Some(prev) = &previous {
            obj["metadata"]["resourceVersion"] = prev["metadata"]["resourceVersion"].clone();
        }
        match previous {
            Some(prev) if *prev == obj => obj,
            Some(prev) => self.commit(store, namespace, name, obj, EventType::Modified, Some(prev)),
            None => self.commit(store, namespace, name, obj, EventType::Added, None),
        }
    }

    pub fn remove(&mut self, store: &'static str, namespace: &str, name: &str) -> Option<Value> {
        let stored = self
            .buckets
            .get_mut(store)?
            .remove(&(namespace.to_owned(), name.to_owned()))?;
        let mut obj = Arc::unwrap_or_clone(stored.object);
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let stored = Stored::new(obj);
        self.record(Change {
            rv: self.rv,
            store,
            namespace: namespace.to_owned(),
            kind: EventType::Deleted,
            object: stored.object.clone(),
            json: stored.json,
            previous: None,
        });
        Some(Arc::unwrap_or_clone(stored.object))
    }

    fn commit(
        &mut self,
        store: &'static str,
        namespace: String,
        name: String,
        mut obj: Value,
        kind: EventType,
        previous: Option<Arc<Value>>,
    ) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let stored = Stored::new(obj.clone());
        let change = Change {
            rv: self.rv,
            store,
            namespace: namespace.clone(),
            kind,
            object: stored.object.clone(),
            json: stored.json.clone(),
            previous,
        };
        self.buckets
            .entry(store)
            .or_default()
            .insert((namespace, name), stored);
        self.record(change);
        obj
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        // No receivers is normal: nobody is watching.
        let _ = self.tx.send(Broadcast::Change(change));
    }

    /// Starts a watch after `from_rv`: the changes already in history, plus a live feed.
    /// Both come from under one lock, so nothing is missed or seen twice.
    pub fn subscribe(
        &self,
        from_rv: u64,
    ) -> Result<(Vec<Arc<Change>>, broadcast::Receiver<Broadcast>), ApiError> {
        if from_rv < self.compacted_rv {
            return Err(ApiError::expired(format!(
                "too old resource version: {from_rv} ({})",
                self.compacted_rv + 1
            )));
        }
        let backlog = self
            .history
            .iter()
            .filter(|c| c.rv > from_rv)
            .cloned()
            .collect();
        Ok((backlog, self.tx.subscribe()))
    }

    /// Every change after `rv`, oldest first, or `None` when the history no longer
    /// reaches back that far (compacted, or trimmed to its limit). Controllers use it
    /// as an informer uses a watch: to update their caches from what changed instead
    /// of rescanning every object on each pass.
    pub fn changes_since(&self, rv: u64) -> Option<impl Iterator<Item = &Change> + '_> {
        if rv < self.compacted_rv {
            return None;
        }
        // The history is ordered by resourceVersion: skip the part already seen
        // without walking it.
        let start = self.history.partition_point(|c| c.rv <= rv);
        Some(self.history.range(start..).map(|c| &**c))
    }

    /// One bucket's objects as they were at `rv` (which must not be older than the
    /// compacted version), rebuilt by undoing the history since, in key order.
    pub fn snapshot_at(&self, store: &str, namespace: Option<&str>, rv: u64) -> Vec<Stored> {
        let mut objects: BTreeMap<(String, String), Arc<Value>> = self
            .iter_stored(store, namespace, None)
            .map(|s| {
                (
                    (
                        namespace_of(&s.object).to_owned(),
                        name_of(&s.object).to_owned(),
                    ),
                    s.object.clone(),
                )
            })
            .collect();
        for change in self.history.iter().rev().take_while(|c| c.rv > rv) {
            if change.store != store || namespace.is_some_and(|ns| ns != change.namespace) {
                continue;
            }
            let key = (change.namespace.clone(), name_of(&change.object).to_owned());
            match (change.kind, &change.previous) {
                (EventType::Added, _) | (EventType::Modified, None) => {
                    objects.remove(&key);
                }
                (EventType::Modified, Some(previous)) => {
                    objects.insert(key, previous.clone());
                }
                (EventType::Deleted, _) => {
                    objects.insert(key, change.object.clone());
                }
            }
        }
        objects
            .into_values()
            .map(|o| Stored::new(Arc::unwrap_or_clone(o)))
            .collect()
    }

    /// Nothing before now can be watched or read exactly: a freshly seeded store
    /// has no history, as a real cluster's compacted etcd has none from its start.
    pub fn forget_history_before_now(&mut self) {
        self.compacted_rv = self.rv;
        self.history.clear();
    }

    /// A live feed only (watches that start from "now" after a synthetic initial list).
    pub fn subscribe_now(&self) -> broadcast::Receiver<Broadcast> {
        self.tx.subscribe()
    }

    /// Forgets all history, as an etcd compaction does, and hangs up every watch.
    /// Clients resuming from an older resourceVersion then get 410 Gone and must re-list.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.compacted_rv = self.rv;
        self.history.clear();
        let _ = self.tx.send(Broadcast::CloseWatches);
    }

    /// Hangs up every watch without losing history: clients resume where they were.
    pub fn close_watches(&self) {
        let _ = self.tx.send(Broadcast::CloseWatches);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns}})
    }

    #[test]
    fn resource_versions_increase_and_noop_updates_keep_them() {
        let mut store = Store::new(100);
        let a = store.create("pods", "pods", pod("a", "p"), false).unwrap();
        let rv_a: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let same = store.update("pods", a.clone());
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        let mut changed = a.clone();
        changed["metadata"]["labels"] = json!({"x": "y"});
        let b = store.update("pods", changed);
        let rv_b: u64 = b["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv_b > rv_a);
    }

    #[test]
    fn duplicate_create_is_already_exists() {
        let mut store = Store::new(100);
        store.create("pods", "pods", pod("a", "p"), false).unwrap();
        let err = store
            .create("pods", "pods", pod("a", "p"), false)
            .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
    }

    #[test]
    fn iteration_is_scoped_to_a_namespace_and_resumes_after_a_key() {
        let mut store = Store::new(100);
        for (ns, name) in [("a", "1"), ("b", "1"), ("b", "2"), ("c", "1")] {
            store.create("pods", "pods", pod(ns, name), false).unwrap();
        }
        let in_b: Vec<_> = store.iter("pods", Some("b"), None).map(name_of).collect();
        assert_eq!(in_b, ["1", "2"]);
        let after: Vec<_> = store
            .iter("pods", None, Some(("b".into(), "1".into())))
            .map(|o| format!("{}/{}", namespace_of(o), name_of(o)))
            .collect();
        assert_eq!(after, ["b/2", "c/1"]);
    }

    #[test]
    fn watching_from_before_a_compaction_is_gone() {
        let mut store = Store::new(100);
        store.create("pods", "pods", pod("a", "p"), false).unwrap();
        let old = store.resource_version();
        store.compact();
        let err = store.subscribe(old).unwrap_err();
        assert_eq!((err.code, err.reason), (410, "Expired"));
        assert!(store.subscribe(store.resource_version()).is_ok());
    }

    #[test]
    fn an_exact_read_of_an_older_version_undoes_the_changes_since() {
        let mut store = Store::new(100);
        let a = store.create("pods", "pods", pod("a", "p"), false).unwrap();
        let at: u64 = store.resource_version();
        let mut changed = a.clone();
        changed["metadata"]["labels"] = json!({"x": "y"});
        store.update("pods", changed);
        store.create("pods", "pods", pod("a", "q"), false).unwrap();
        store.create("pods", "pods", pod("a", "r"), false).unwrap();
        store.remove("pods", "a", "r");
        let then = store.snapshot_at("pods", Some("a"), at);
        let names: Vec<&str> = then.iter().map(|s| name_of(&s.object)).collect();
        assert_eq!(names, ["p"]);
        assert!(then[0].object["metadata"]["labels"].is_null());
        let now = store.snapshot_at("pods", Some("a"), store.resource_version());
        assert_eq!(now.len(), 2);
    }

    #[test]
    fn changes_since_a_version_are_the_later_ones_until_history_is_gone() {
        let mut store = Store::new(3);
        store.create("pods", "pods", pod("a", "1"), false).unwrap();
        let at = store.resource_version();
        store.create("pods", "pods", pod("a", "2"), false).unwrap();
        store.remove("pods", "a", "1");
        let seen: Vec<(String, EventType)> = store
            .changes_since(at)
            .expect("still in history")
            .map(|c| (name_of(&c.object).to_owned(), c.kind))
            .collect();
        assert_eq!(
            seen,
            [
                ("2".to_owned(), EventType::Added),
                ("1".to_owned(), EventType::Deleted)
            ]
        );
        assert_eq!(
            store
                .changes_since(store.resource_version())
                .unwrap()
                .count(),
            0
        );
        for name in ["3", "4", "5"] {
            store.create("pods", "pods", pod("a", name), false).unwrap();
        }
        assert!(
            store.changes_since(at).is_none(),
            "trimmed history is not a feed"
        );
        store.compact();
        assert!(store.changes_since(at).is_none());
    }

    #[test]
    fn bounded_history_expires_the_oldest_versions() {
        let mut store = Store::new(2);
        for name in ["1", "2", "3", "4"] {
            store.create("pods", "pods", pod("a", name), false).unwrap();
        }
        assert!(store.subscribe(1).is_err());
        let (backlog, _) = store.subscribe(store.resource_version() - 1).unwrap();
        assert_eq!(backlog.len(), 1);
    }
}
