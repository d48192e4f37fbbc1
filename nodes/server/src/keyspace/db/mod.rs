//! One database: keys indexed by slot, and by hash tag within a slot.
//!
//! Codis keeps, next to Redis' main dictionary, one dictionary per slot and a skiplist of tagged
//! keys, and must keep all three in step on every add, delete, expiry, flush and rename. Here the
//! per-slot maps *are* the keyspace: a key lives in the map of its slot and nowhere else, so the
//! slot index cannot drift from the data, and counting, scanning, emptying or migrating a slot
//! touches that slot alone. Only keys that have a hash tag are also indexed by the tag's CRC, which
//! is what `SLOTSMGRTTAGONE` needs ("every key sharing this tag").
//!
//! Maps hash keys with a seeded hasher (seeded from the environment: random in production, so
//! crafted keys cannot force collisions; fixed by the run seed in simulation, so iteration order is
//! reproducible). Iteration order reaches replies (`KEYS`, `SCAN`, `RANDOMKEY`), and it depends
//! only on the seed and the sequence of operations.
//!
//! Rust's borrow rules make Codis' crash #1184 (lazy expiry deleting from the dictionary being
//! scanned) impossible to write: scans only read, and callers expire what a scan found afterwards.
//!
//! The database's other jobs live beside it: access tracking for eviction (`access`), expiry
//! (`expire`), `WATCH` and blocked clients (`watch`), scans (`scan`), self-checks (`check`).

mod access;
mod check;
mod expire;
mod scan;
mod watch;

pub use self::access::{AccessTracking, lfu_counter};

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use foldhash::fast::FixedState;
use model::{KeyHash, MAX_SLOT_NUM, SlotId};

use super::key_map::{KeyMap, SlotMap};
use super::memory::allocation;
use super::value::{Entry, Value};

pub use super::key::Key;

/// The keys of one slot.
#[derive(Clone, Debug)]
struct SlotKeys {
    map: SlotMap,
    /// Tagged keys of this slot by the CRC of their tag (all keys sharing a tag share a slot).
    tagged: BTreeSet<(u32, Key)>,
}

/// A watched key's version: bumped on every change, so `EXEC` can tell whether a key changed since
/// `WATCH` without the database knowing which clients watch it.
#[derive(Clone, Copy, Debug, Default)]
struct Watched {
    version: u64,
    /// The version the latest deletion by expiry produced: deleting a key that had already
    /// expired when a client watched it is no change for that client (Redis 7.0).
    expiry_deletion: u64,
    watchers: u32,
}

/// What `EXEC` compares against what `WATCH` saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchVersion {
    /// Bumped on every change to the key.
    pub version: u64,
    /// The version that the latest deletion by expiry produced.
    pub expiry_deletion: u64,
}

/// Counters a database keeps for `INFO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Keys deleted because they expired (lazily or by the active cycle).
    pub expired_keys: u64,
    /// Lookups by read commands that found their key.
    pub keyspace_hits: u64,
    /// Lookups by read commands that did not.
    pub keyspace_misses: u64,
}

/// One of the server's databases (`SELECT n`).
#[derive(Clone, Debug)]
pub struct Db {
    slots: Box<[SlotKeys]>,
    /// Every key with an expiry, for the active expiry cycle to sample.
    volatile: KeyMap<()>,
    len: usize,
    watched: BTreeMap<Key, Watched>,
    /// Changes to keys since the database was made, for the snapshot rules (`save 60 1000`:
    /// Redis' `dirty`).
    changes: u64,
    /// Keys deleted because they expired, not yet propagated as `DEL` (see
    /// [`crate::propagate`]); kept only while `log_expired`.
    expired_log: Vec<Key>,
    log_expired: bool,
    /// Whether this database deletes expired keys itself: on lookup, and when a command sets
    /// an expiry already past. Off while replaying a change stream (loading an append-only
    /// log, following a master): there the stream's own `DEL`s say when a key went, and a key
    /// the stream extends must still be there to extend (Redis' rule while loading and on
    /// replicas).
    lazy_expiry: bool,
    /// Clients blocked on each key (`BLPOP` …), in the order they blocked: they are served in
    /// that order. Like `watched`, it belongs to the database index, not to the data.
    waiters: BTreeMap<Key, VecDeque<u64>>,
    /// Keys with waiters that were (re)created since the server last served waiters, in the
    /// order that happened (Redis' `ready_keys`).
    ready: Vec<Key>,
    stats: DbStats,
    /// Seeds the maps inside collections created in this database.
    collection_seed: u64,
    /// What the data costs in memory (see [`super::memory`]).
    memory: MemoryUse,
    /// What an access records in an entry: its time (LRU) or its frequency (LFU).
    access: AccessTracking,
    /// Draws for LFU's probabilistic counter (SplitMix64 state, seeded with the database).
    lfu_draws: u64,
    /// Lookups count as keyspace hits or misses (set while a read command runs).
    counting_reads: bool,
}

/// The parts of a database's memory use, kept in step with every change.
#[derive(Clone, Copy, Debug, Default)]
struct MemoryUse {
    /// Heap bytes of keys and values: the sum of the entries' charges.
    data: usize,
    /// The slot maps' tables.
    tables: usize,
    /// The keys copied into the expiry index.
    volatile_keys: usize,
    /// The tag index.
    tags: usize,
}

/// Heap bytes of a stored key of `len` bytes (a `Key` spills past 22).
fn key_heap(len: usize) -> usize {
    match Key::heap_len(len) {
        0 => 0,
        heap => allocation(heap),
    }
}

/// An entry's charge, in the 8-byte units `Entry::charged` holds.
fn charge(key_len: usize, value: &Value) -> u32 {
    u32::try_from((key_heap(key_len) + value.heap_bytes()).div_ceil(8)).unwrap_or(u32::MAX)
}

/// What one entry of the tag index costs: a 32-byte B-tree element (the CRC and the key) with its
/// share of partly filled nodes (measured: about 72 bytes), plus the key's heap.
fn tag_cost(key_len: usize) -> usize {
    72 + key_heap(key_len)
}

fn lossy(key: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(key)
}

impl Db {
    /// An empty database whose maps hash with `seed`.
    pub fn new(seed: u64) -> Db {
        let hasher = FixedState::with_seed(seed);
        let slot = SlotKeys { map: SlotMap::with_hasher(hasher), tagged: BTreeSet::new() };
        Db {
            slots: vec![slot; MAX_SLOT_NUM].into_boxed_slice(),
            volatile: KeyMap::with_hasher(FixedState::with_seed(seed.rotate_left(17))),
            len: 0,
            watched: BTreeMap::new(),
            changes: 0,
            expired_log: Vec::new(),
            log_expired: false,
            lazy_expiry: true,
            waiters: BTreeMap::new(),
            ready: Vec::new(),
            stats: DbStats::default(),
            collection_seed: seed.rotate_left(31),
            memory: MemoryUse::default(),
            access: AccessTracking::Lru,
            lfu_draws: seed.rotate_left(47),
            counting_reads: false,
        }
    }

    /// Makes lookups count as keyspace hits and misses (while a read command runs), or not.
    pub fn count_reads(&mut self, counting: bool) {
        self.counting_reads = counting;
    }

    /// Zeroes the counters (`CONFIG RESETSTAT`).
    pub fn reset_stats(&mut self) {
        self.stats = DbStats::default();
    }

    fn count_lookup(&mut self, found: bool) {
        if self.counting_reads {
            if found {
                self.stats.keyspace_hits += 1;
            } else {
                self.stats.keyspace_misses += 1;
            }
        }
    }

    /// Bytes this database's keys, values and indexes occupy (its share of `used_memory`),
    /// the per-slot structures of an empty database included.
    pub fn used_memory(&self) -> usize {
        let memory = &self.memory;
        let volatile = self.volatile.heap_bytes();
        let slots = allocation(MAX_SLOT_NUM * std::mem::size_of::<SlotKeys>());
        slots + memory.data + memory.tables + memory.volatile_keys + volatile + memory.tags
    }

    /// Bytes of the keys and values alone (`used_memory_dataset`).
    pub fn dataset_memory(&self) -> usize {
        self.memory.data
    }

    /// Inserts a new entry into `slot`'s map, charging it and any growth of the table.
    fn insert_new(&mut self, slot: usize, key: &[u8], hash: KeyHash, mut entry: Entry) -> usize {
        entry.charged = charge(key.len(), &entry.value);
        self.memory.data += entry.charged as usize * 8;
        let owned = Key::from_slice(key);
        let keys = &mut self.slots[slot];
        if hash.tagged {
            keys.tagged.insert((hash.crc, owned.clone()));
            self.memory.tags += tag_cost(key.len());
        }
        let before = keys.map.heap_bytes();
        let index = keys.map.insert_new(owned, entry);
        self.memory.tables = self.memory.tables + keys.map.heap_bytes() - before;
        self.len += 1;
        index
    }

    /// Charges the entry at `index` of `slot` for what it holds now.
    fn recharge(&mut self, slot: usize, index: usize) {
        if let Some((key, entry)) = self.slots[slot].map.get_index_mut(index) {
            let charged = charge(key.len(), &entry.value);
            self.memory.data = self.memory.data + charged as usize * 8 - entry.charged as usize * 8;
            entry.charged = charged;
        }
    }

    /// The seed for the maps of new collections in this database.
    pub fn collection_seed(&self) -> u64 {
        self.collection_seed
    }

    /// How many keys (expired ones not yet deleted included, as Redis' `DBSIZE` counts).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the database has no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many keys have an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// How many keys `slot` holds.
    pub fn slot_len(&self, slot: SlotId) -> usize {
        self.slots[slot.index()].map.len()
    }

    /// The key at position `index` of `slot`'s map (random choices within a slot).
    pub fn slot_key_at(&self, slot: SlotId, index: usize) -> Option<&Key> {
        self.slots[slot.index()].map.get_index(index).map(|(key, _)| key)
    }

    /// The database's counters.
    pub fn stats(&self) -> DbStats {
        self.stats
    }

    /// Looks `key` up, deleting it first if it has expired at `now_ms`, and records the access.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let slot = KeyHash::of(key).slot().index();
        let index = self.live_index(slot, key, now_ms);
        self.count_lookup(index.is_some());
        let index = index?;
        let (stored, entry) = self.slots[slot].map.get_index_mut(index)?;
        debug_assert_eq!(entry.charged, charge(stored.len(), &entry.value), "{stored:?} changed without Db::touch");
        Self::record_access(self.access, &mut self.lfu_draws, &mut entry.accessed, now_ms);
        Some(entry)
    }

    /// The position of `key` in its slot's map, deleting it first if it has expired (Redis'
    /// lazy expiry on access).
    fn live_index(&mut self, slot: usize, key: &[u8], now_ms: u64) -> Option<usize> {
        let index = self.slots[slot].map.get_index_of(key)?;
        if self.lazy_expiry && self.slots[slot].map[index].is_expired(now_ms) {
            self.expire(key);
            return None;
        }
        Some(index)
    }

    /// The entry of `key`, created with `make()` (no expiry) if missing or expired: one lookup for
    /// the write path of `LPUSH`, `HSET`, `SADD`. The caller checks the value's type, and calls
    /// [`Db::touch`] once it changed something.
    pub fn entry(&mut self, key: &[u8], now_ms: u64, make: impl FnOnce() -> Value) -> &mut Entry {
        let hash = KeyHash::of(key);
        let slot = hash.slot().index();
        let index = match self.live_index(slot, key, now_ms) {
            Some(index) => {
                let entry = &mut self.slots[slot].map[index];
                Self::record_access(self.access, &mut self.lfu_draws, &mut entry.accessed, now_ms);
                index
            }
            None => {
                let entry = Entry { value: make(), expire_at: 0, accessed: self.initial_access(now_ms), charged: 0 };
                let index = self.insert_new(slot, key, hash, entry);
                self.bump_watch(key);
                self.signal_ready(key);
                index
            }
        };
        &mut self.slots[slot].map[index]
    }

    /// Replaces the value at `key` with what `next` makes of the current one (`None` when missing
    /// or expired), keeping the expiry, or creates the key without one: a read-modify-write
    /// (`INCR`) in one lookup instead of three. Nothing changes if `next` fails.
    pub fn update<E>(
        &mut self,
        key: &[u8],
        now_ms: u64,
        next: impl FnOnce(Option<&Value>) -> Result<Value, E>,
    ) -> Result<(), E> {
        let hash = KeyHash::of(key);
        let slot = hash.slot().index();
        let index = self.live_index(slot, key, now_ms);
        self.count_lookup(index.is_some());
        match index {
            Some(index) => {
                let entry = &mut self.slots[slot].map[index];
                Self::record_access(self.access, &mut self.lfu_draws, &mut entry.accessed, now_ms);
                entry.value = next(Some(&entry.value))?;
                self.recharge(slot, index);
            }
            None => {
                let value = next(None)?;
                let entry = Entry { value, expire_at: 0, accessed: self.initial_access(now_ms), charged: 0 };
                self.insert_new(slot, key, hash, entry);
                self.signal_ready(key);
            }
        }
        self.bump_watch(key);
        Ok(())
    }

    /// Records a change to the collection at `key` and deletes the key if the collection is now
    /// empty (Redis never keeps an empty collection).
    pub fn modified(&mut self, key: &[u8]) {
        let empty = self.peek(key).is_some_and(|entry| entry.value.is_empty_collection());
        if empty {
            self.remove(key);
        } else {
            self.touch(key);
        }
    }

    /// Looks `key` up, deleting it first if it has expired, without recording an access: `TYPE`,
    /// `TTL`, `OBJECT` and `EXISTS` look without touching, as Redis' `LOOKUP_NOTOUCH`.
    pub fn get_untouched(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let slot = KeyHash::of(key).slot().index();
        let index = self.live_index(slot, key, now_ms);
        self.count_lookup(index.is_some());
        let index = index?;
        Some(&mut self.slots[slot].map[index])
    }

    /// Looks `key` up without deleting it if expired and without recording an access (`TYPE`-like
    /// introspection on replicas, and internal checks).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.slots[KeyHash::of(key).slot().index()].map.get(key)
    }

    /// Whether `key` exists (and has not expired) at `now_ms`.
    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// Adds an entry moved or copied from elsewhere (`MOVE`, `COPY`, `RENAME`), keeping its
    /// expiry and access time. Replaces any entry under `key`.
    pub fn insert_entry(&mut self, key: &[u8], entry: Entry) {
        let expire_at = entry.expire_at;
        let accessed = entry.accessed;
        self.set(key, entry.value, expire_at, 0);
        let slot = KeyHash::of(key).slot().index();
        if let Some(stored) = self.slots[slot].map.get_mut(key) {
            stored.accessed = accessed;
        }
    }

    /// Sets `key` to `value`, replacing any old value, expiring at `expire_at_ms` (0: never).
    /// Returns the old entry. An old value that has expired is deleted as expired first (Redis
    /// looks a key up before writing it, and that lookup expires it): the deletion is
    /// propagated before the write, and the write starts the key afresh.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at_ms: u64, now_ms: u64) -> Option<Entry> {
        let hash = KeyHash::of(key);
        let slot = hash.slot().index();
        self.live_index(slot, key, now_ms);
        let mut entry = Entry { value, expire_at: expire_at_ms, accessed: self.initial_access(now_ms), charged: 0 };
        let old = match self.slots[slot].map.get_mut(key) {
            Some(existing) => {
                // Under LFU an overwritten key keeps its frequency (Redis' `dbOverwrite`), and the
                // write counts as an access (Redis looks the key up first; callers that look
                // first do it without counting).
                if matches!(self.access, AccessTracking::Lfu { .. }) {
                    entry.accessed = existing.accessed;
                    Self::record_access(self.access, &mut self.lfu_draws, &mut entry.accessed, now_ms);
                }
                entry.charged = charge(key.len(), &entry.value);
                self.memory.data = self.memory.data + entry.charged as usize * 8 - existing.charged as usize * 8;
                Some(std::mem::replace(existing, entry))
            }
            None => {
                self.insert_new(slot, key, hash, entry);
                None
            }
        };
        let was_volatile = old.as_ref().is_some_and(|old| old.expire_at != 0);
        self.track_expiry(key, was_volatile, expire_at_ms != 0);
        self.bump_watch(key);
        self.signal_ready(key);
        old
    }

    /// Replaces the value of an existing `key`, keeping its expiry (what `SET … KEEPTTL` and
    /// in-place overwrites do). Returns `false` if the key does not exist.
    pub fn replace_value(&mut self, key: &[u8], value: Value) -> bool {
        let slot = KeyHash::of(key).slot().index();
        let Some(index) = self.slots[slot].map.get_index_of(key) else {
            return false;
        };
        self.slots[slot].map[index].value = value;
        self.recharge(slot, index);
        self.bump_watch(key);
        true
    }

    /// Deletes `key`. Returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let hash = KeyHash::of(key);
        let slot = &mut self.slots[hash.slot().index()];
        // A removal can change what the table reports as its capacity (hashbrown counts a
        // tombstone as neither free nor used), so the table's cost is measured around it, as
        // around an insertion.
        let before = slot.map.heap_bytes();
        let (owned, entry) = slot.map.swap_remove_entry(key)?;
        self.memory.tables = self.memory.tables + slot.map.heap_bytes() - before;
        if hash.tagged {
            slot.tagged.remove(&(hash.crc, owned));
            self.memory.tags -= tag_cost(key.len());
        }
        self.memory.data -= entry.charged as usize * 8;
        if entry.expire_at != 0 {
            self.track_expiry(key, true, false);
        }
        self.len -= 1;
        self.bump_watch(key);
        Some(entry)
    }

    /// Records that the value at `key` changed in place: for `WATCH`, and to recount what it
    /// costs in memory. Commands that change a value through [`Db::get`] call it, and only when
    /// something actually changed (as Redis does: `SADD` of an existing member does not fail a
    /// `WATCH`).
    pub fn touch(&mut self, key: &[u8]) {
        let slot = KeyHash::of(key).slot().index();
        if let Some(index) = self.slots[slot].map.get_index_of(key) {
            self.recharge(slot, index);
        }
        self.bump_watch(key);
    }

    /// Changes to keys since the database was made (each mutation of a key counts one).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Deletes every key; touches watched keys that existed. Returns how many keys there were.
    pub fn clear(&mut self) -> usize {
        let removed = self.len;
        let existing: Vec<Key> = self.watched.keys().filter(|key| self.peek(key).is_some()).cloned().collect();
        for slot in self.slots.iter_mut() {
            // Fresh maps: an emptied database gives its memory back.
            slot.map = SlotMap::with_hasher(slot.map.hasher().clone());
            slot.tagged.clear();
        }
        self.volatile = KeyMap::with_hasher(self.volatile.hasher().clone());
        self.memory = MemoryUse::default();
        self.len = 0;
        self.changes += removed as u64;
        for key in existing {
            self.bump_watch(&key);
        }
        removed
    }

    /// Deletes every key of `slot`. Returns the deleted keys (for propagation as `DEL`).
    pub fn clear_slot(&mut self, slot: SlotId) -> Vec<Key> {
        let keys: Vec<Key> = self.slots[slot.index()].map.keys().cloned().collect();
        for key in &keys {
            self.remove(key);
        }
        let map = &mut self.slots[slot.index()].map;
        let before = map.heap_bytes();
        map.shrink_to_fit();
        self.memory.tables = self.memory.tables + map.heap_bytes() - before;
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::value::Str;
    use proptest::prelude::*;

    fn string(text: &str) -> Value {
        Value::Str(Str::from_value(text.as_bytes()))
    }

    #[test]
    fn the_table_cost_stays_counted_through_removals_and_reinsertions() {
        // Deleting and re-adding keys of one slot (what a migration target does) leaves
        // tombstones that change the table's reported capacity.
        let mut db = Db::new(5);
        for round in 0..50 {
            for index in 0..40 {
                db.set(format!("{{t}}:{index}").as_bytes(), string("v"), 0, 0);
            }
            for index in (round % 3..40).step_by(2) {
                db.remove(format!("{{t}}:{index}").as_bytes());
            }
            assert_eq!(db.check(), Ok(()), "round {round}");
        }
    }

    #[test]
    fn keys_live_in_their_slot_and_tagged_keys_are_indexed() {
        let mut db = Db::new(1);
        db.set(b"{user}:a", string("1"), 0, 0);
        db.set(b"{user}:b", string("2"), 0, 0);
        db.set(b"plain", string("3"), 0, 0);
        assert_eq!(db.len(), 3);
        assert_eq!(db.slot_len(model::slot_of(b"user")), 2);
        let mut family = db.keys_sharing_tag(b"{user}:zzz");
        family.sort();
        assert_eq!(family, vec![Key::from_slice(b"{user}:a"), Key::from_slice(b"{user}:b")]);
        assert_eq!(db.keys_sharing_tag(b"plain"), vec![Key::from_slice(b"plain")]);
        db.remove(b"{user}:a");
        assert_eq!(db.keys_sharing_tag(b"{user}"), vec![Key::from_slice(b"{user}:b")]);
        db.check().unwrap();
    }

    #[test]
    fn expired_keys_vanish_on_access_and_in_the_active_cycle() {
        let mut db = Db::new(1);
        db.set(b"soon", string("x"), 1_000, 0);
        db.set(b"later", string("x"), 5_000, 0);
        assert!(db.contains(b"soon", 1_000), "expiry is strictly after the deadline");
        assert!(!db.contains(b"soon", 1_001));
        assert_eq!(db.stats().expired_keys, 1);
        let mut rng = net::rng_from_seed(1, "test");
        for index in 0..100 {
            db.set(format!("k{index}").as_bytes(), string("x"), 2_000, 0);
        }
        let expired = db.expire_cycle(3_000, &mut rng, 20, 100);
        assert_eq!(expired, 100);
        assert_eq!(db.len(), 1);
        assert_eq!(db.volatile_len(), 1);
        db.check().unwrap();
    }

    #[test]
    fn watch_versions_move_only_when_the_key_changes() {
        let mut db = Db::new(1);
        let version = db.watch(b"k");
        db.set(b"other", string("x"), 0, 0);
        assert_eq!(db.watched_version(b"k"), Some(version));
        db.set(b"k", string("x"), 0, 0);
        assert_ne!(db.watched_version(b"k"), Some(version));
        db.unwatch(b"k");
        assert_eq!(db.watched_version(b"k"), None);
        let version = db.watch(b"gone");
        db.clear();
        assert_eq!(db.watched_version(b"gone"), Some(version), "flushing a missing key does not touch it");
    }

    #[test]
    fn a_full_scan_returns_every_key() {
        let mut db = Db::new(7);
        for index in 0..500 {
            db.set(format!("key:{index}").as_bytes(), string("v"), 0, 0);
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = 0;
        loop {
            cursor = db.scan(cursor, 10, |key, _| {
                seen.insert(key.clone());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 500);
    }

    proptest! {
        /// Keys present for a whole scan are returned however the database changes in between.
        #[test]
        fn scan_survives_concurrent_changes(
            initial in 0usize..300,
            steps in proptest::collection::vec((0usize..3, 0usize..600), 0..200),
            count in 1usize..20,
        ) {
            let mut db = Db::new(3);
            for index in 0..initial {
                db.set(format!("k{index}").as_bytes(), string("v"), 0, 0);
            }
            let mut stable: BTreeSet<Key> = (0..initial).map(|index| Key::from_slice(format!("k{index}").as_bytes())).collect();
            let mut seen = BTreeSet::new();
            let mut cursor = 0;
            let mut steps = steps.into_iter();
            loop {
                cursor = db.scan(cursor, count, |key, _| { seen.insert(key.clone()); });
                // Between calls, add and delete keys.
                if let Some((kind, index)) = steps.next() {
                    let key = format!("k{index}");
                    if kind == 0 {
                        db.remove(key.as_bytes());
                        stable.remove(key.as_bytes());
                    } else {
                        if db.peek(key.as_bytes()).is_none() {
                            stable.remove(key.as_bytes());
                        }
                        db.set(key.as_bytes(), string("v"), 0, 0);
                    }
                }
                if cursor == 0 {
                    break;
                }
            }
            for key in &stable {
                prop_assert!(seen.contains(key), "missed {:?}", String::from_utf8_lossy(key));
            }
            prop_assert!(db.check().is_ok(), "{:?}", db.check());
        }
    }
}
