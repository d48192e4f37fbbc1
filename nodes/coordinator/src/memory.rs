//! An in-memory store with etcd's semantics: revisions, transactions, leases on simulated or
//! real time, and watches with a short history.
//!
//! In-process it backs unit tests ([`MemoryCoordinator`]); the simulator keeps one outside any
//! host (so it survives every crash) and serves it to the simulated dashboards with
//! [`crate::gateway::serve`], as etcd would.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::Error;
use crate::kv::{Compare, Event, KeyValue, Kv, Op, OpResult, Target, Txn, TxnResult, Watcher};
use crate::kv_coordinator::KvCoordinator;

/// The in-memory coordinator.
pub type MemoryCoordinator<E> = KvCoordinator<MemoryStore, E>;

/// Changes kept for watches that start in the past (etcd keeps them until compaction).
const HISTORY: usize = 4096;

/// The shortest lease etcd grants (with its default timing), which this store imitates.
pub const MIN_LEASE_SECONDS: i64 = 2;

/// The longest lease granted (etcd refuses longer ones; this store caps them).
pub const MAX_LEASE_SECONDS: i64 = 365 * 24 * 3600;

/// Changes a watcher may fall behind by before its watch breaks.
const WATCH_BUFFER: usize = 1024;

/// The store. Cheap to clone: clones share the data.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<Arc<Vec<Event>>>,
}

#[derive(Debug)]
struct Inner {
    keys: BTreeMap<String, KeyValue>,
    revision: i64,
    leases: BTreeMap<i64, LeaseState>,
    next_lease: i64,
    history: VecDeque<Event>,
}

#[derive(Debug)]
struct LeaseState {
    ttl_seconds: i64,
    deadline: Instant,
    keys: BTreeSet<String>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 1 (etcd's first).
    pub fn new() -> MemoryStore {
        let inner = Inner {
            keys: BTreeMap::new(),
            revision: 1,
            leases: BTreeMap::new(),
            next_lease: 0x0c0d_1500_0000,
            history: VecDeque::new(),
        };
        MemoryStore { inner: Arc::new(Mutex::new(inner)), events: broadcast::channel(WATCH_BUFFER).0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs the store's housekeeping: leases expire on time even when nobody calls. Run one
    /// per host that serves the store ([`crate::gateway::serve`] and [`MemoryCoordinator`] do).
    pub async fn reap(self) {
        loop {
            let next = {
                let mut inner = self.lock();
                let events = inner.expire();
                self.publish(events);
                inner.leases.values().map(|lease| lease.deadline).min()
            };
            let cap = Instant::now() + Duration::from_secs(1);
            tokio::time::sleep_until(next.map_or(cap, |next| next.min(cap))).await;
        }
    }

    /// Every key and its value, for checkers and `config-dump`.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut inner = self.lock();
        let events = inner.expire();
        self.publish(events);
        inner.keys.iter().map(|(key, kv)| (key.clone(), kv.value.clone())).collect()
    }

    /// The keys under `prefix` and their values, for checkers that watch a few records often.
    pub fn snapshot_under(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let mut inner = self.lock();
        let events = inner.expire();
        self.publish(events);
        inner
            .keys
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, kv)| (key.clone(), kv.value.clone()))
            .collect()
    }

    /// The store's current revision.
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }

    /// The time to live lease `id` was granted (0: no such lease).
    pub fn ttl_of(&self, id: i64) -> i64 {
        self.lock().leases.get(&id).map_or(0, |lease| lease.ttl_seconds)
    }

    fn publish(&self, events: Vec<Event>) {
        if !events.is_empty() {
            // No receiver is fine: nobody watches.
            let _ = self.events.send(Arc::new(events));
        }
    }
}

impl Inner {
    /// Ends every lease whose time ran out, removing its keys at one new revision.
    fn expire(&mut self) -> Vec<Event> {
        let now = Instant::now();
        let expired: Vec<i64> =
            self.leases.iter().filter(|(_, lease)| lease.deadline <= now).map(|(id, _)| *id).collect();
        let mut events = Vec::new();
        for id in expired {
            events.extend(self.end_lease(id));
        }
        events
    }

    /// Ends lease `id` and removes its keys.
    fn end_lease(&mut self, id: i64) -> Vec<Event> {
        let Some(lease) = self.leases.remove(&id) else { return Vec::new() };
        if lease.keys.is_empty() {
            return Vec::new();
        }
        self.revision += 1;
        let revision = self.revision;
        let events: Vec<Event> = lease.keys.iter().filter_map(|key| self.remove(key, revision)).collect();
        self.remember(&events);
        events
    }

    /// Removes `key` at `revision`, detaching it from its lease.
    fn remove(&mut self, key: &str, revision: i64) -> Option<Event> {
        let old = self.keys.remove(key)?;
        if old.lease != 0
            && let Some(lease) = self.leases.get_mut(&old.lease)
        {
            lease.keys.remove(key);
        }
        Some(Event {
            deleted: true,
            kv: KeyValue { key: key.to_string(), mod_revision: revision, ..KeyValue::default() },
        })
    }

    fn remember(&mut self, events: &[Event]) {
        self.history.extend(events.iter().cloned());
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    fn holds(&self, compare: &Compare) -> bool {
        let found = self.keys.get(&compare.key);
        match compare.target {
            Target::Create(revision) => found.map_or(0, |kv| kv.create_revision) == revision,
            Target::Mod(revision) => found.map_or(0, |kv| kv.mod_revision) == revision,
            Target::Lease(lease) => found.map_or(0, |kv| kv.lease) == lease,
        }
    }

    /// Runs `txn` (after [`Inner::expire`], which the caller publishes even if this fails).
    fn txn(&mut self, txn: Txn) -> Result<(TxnResult, Vec<Event>), Error> {
        let mut events = Vec::new();
        let succeeded = txn.compare.iter().all(|compare| self.holds(compare));
        let ops = if succeeded { txn.success } else { txn.failure };
        // etcd refuses the whole transaction if a put names a lease it does not have.
        for op in &ops {
            if let Op::Put { lease, .. } = op
                && *lease != 0
                && !self.leases.contains_key(lease)
            {
                return Err(Error::Protocol {
                    backend: "memory",
                    reason: "etcdserver: requested lease not found".into(),
                });
            }
        }
        // A removal of a missing key changes nothing, and moves no revision (as in etcd).
        let writes = ops.iter().any(|op| match op {
            Op::Range { .. } => false,
            Op::Put { .. } => true,
            Op::Delete { key } => self.keys.contains_key(key),
        });
        let revision = if writes { self.revision + 1 } else { self.revision };
        let mut results = Vec::with_capacity(ops.len());
        let mut changes = Vec::new();
        for op in ops {
            match op {
                Op::Range { key } => results.push(OpResult::Range(self.keys.get(&key).cloned().into_iter().collect())),
                Op::Put { key, value, lease } => {
                    let old = self.keys.get(&key).cloned();
                    if let Some(old) = &old
                        && old.lease != 0
                        && old.lease != lease
                        && let Some(previous) = self.leases.get_mut(&old.lease)
                    {
                        previous.keys.remove(&key);
                    }
                    if let Some(lease) = self.leases.get_mut(&lease) {
                        lease.keys.insert(key.clone());
                    }
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: old.as_ref().map_or(revision, |old| old.create_revision),
                        mod_revision: revision,
                        version: old.as_ref().map_or(1, |old| old.version + 1),
                        lease,
                    };
                    self.keys.insert(key, kv.clone());
                    changes.push(Event { deleted: false, kv });
                    results.push(OpResult::Put);
                }
                Op::Delete { key } => {
                    let removed = self.remove(&key, revision);
                    results.push(OpResult::Delete(i64::from(removed.is_some())));
                    changes.extend(removed);
                }
            }
        }
        if writes {
            self.revision = revision;
            self.remember(&changes);
        }
        events.extend(changes);
        Ok((TxnResult { succeeded, revision: self.revision, results }, events))
    }
}

impl Kv for MemoryStore {
    type Watcher = MemoryWatcher;

    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn range(&self, key: &str, range_end: Option<&str>, keys_only: bool) -> Result<(Vec<KeyValue>, i64), Error> {
        let mut inner = self.lock();
        let events = inner.expire();
        self.publish(events);
        let strip = |kv: &KeyValue| if keys_only { KeyValue { value: Vec::new(), ..kv.clone() } } else { kv.clone() };
        let found = match range_end {
            None => inner.keys.get(key).map(strip).into_iter().collect(),
            Some(end) if key < end => {
                inner.keys.range(key.to_string()..end.to_string()).map(|(_, kv)| strip(kv)).collect()
            }
            Some(_) => Vec::new(),
        };
        Ok((found, inner.revision))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, Error> {
        let mut inner = self.lock();
        let expired = inner.expire();
        self.publish(expired);
        let (result, events) = inner.txn(txn)?;
        self.publish(events);
        Ok(result)
    }

    async fn grant(&self, ttl_seconds: i64) -> Result<(i64, i64), Error> {
        // etcd's floor with its default election timeout: shorter leases are raised to it.
        let ttl_seconds = ttl_seconds.max(MIN_LEASE_SECONDS);
        let mut inner = self.lock();
        inner.next_lease += 1;
        let id = inner.next_lease;
        let ttl_seconds = ttl_seconds.min(MAX_LEASE_SECONDS);
        let deadline = Instant::now() + Duration::from_secs(ttl_seconds.unsigned_abs());
        inner.leases.insert(id, LeaseState { ttl_seconds, deadline, keys: BTreeSet::new() });
        Ok((id, ttl_seconds))
    }

    async fn keep_alive(&self, id: i64) -> Result<bool, Error> {
        let mut inner = self.lock();
        let events = inner.expire();
        self.publish(events);
        let Some(lease) = inner.leases.get_mut(&id) else { return Ok(false) };
        lease.deadline = Instant::now() + Duration::from_secs(lease.ttl_seconds.unsigned_abs());
        Ok(true)
    }

    async fn revoke(&self, id: i64) -> Result<(), Error> {
        let mut inner = self.lock();
        if !inner.leases.contains_key(&id) {
            return Err(Error::Protocol { backend: "memory", reason: "etcdserver: requested lease not found".into() });
        }
        let events = inner.end_lease(id);
        self.publish(events);
        Ok(())
    }

    async fn watch(&self, key: &str, range_end: &str, start_revision: i64) -> Result<MemoryWatcher, Error> {
        let inner = self.lock();
        // Subscribed under the lock: nothing published after the history was read is missed.
        let receiver = self.events.subscribe();
        let oldest = inner.history.front().map_or(inner.revision + 1, |event| event.kv.mod_revision);
        if start_revision != 0 && start_revision < oldest && start_revision <= inner.revision {
            return Err(Error::Protocol {
                backend: "memory",
                reason: "etcdserver: mvcc: required revision has been compacted".into(),
            });
        }
        let from = if start_revision == 0 { inner.revision + 1 } else { start_revision };
        let replay = inner.history.iter().filter(|event| event.kv.mod_revision >= from).cloned().collect();
        let mut watcher =
            MemoryWatcher { receiver, key: key.to_string(), range_end: range_end.to_string(), pending: Vec::new() };
        watcher.pending = watcher.matching(replay);
        Ok(watcher)
    }
}

/// A watch on a [`MemoryStore`].
#[derive(Debug)]
pub struct MemoryWatcher {
    receiver: broadcast::Receiver<Arc<Vec<Event>>>,
    key: String,
    range_end: String,
    pending: Vec<Event>,
}

impl MemoryWatcher {
    fn matching(&self, events: Vec<Event>) -> Vec<Event> {
        events.into_iter().filter(|event| event.kv.key >= self.key && event.kv.key < self.range_end).collect()
    }
}

impl Watcher for MemoryWatcher {
    async fn next(&mut self) -> Result<Vec<Event>, Error> {
        if !self.pending.is_empty() {
            return Ok(std::mem::take(&mut self.pending));
        }
        loop {
            match self.receiver.recv().await {
                Ok(events) => {
                    let matching = self.matching(events.as_ref().clone());
                    if !matching.is_empty() {
                        return Ok(matching);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Err(Error::Protocol {
                        backend: "memory",
                        reason: "watch fell too far behind; watch again".into(),
                    });
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(Error::Unavailable { backend: "memory", reason: "store dropped".into() });
                }
            }
        }
    }
}
