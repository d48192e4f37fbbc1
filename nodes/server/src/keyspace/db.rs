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

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use foldhash::fast::FixedState;
use model::{KeyHash, MAX_SLOT_NUM, SlotId};
use net::Rng;
use net::rand::Rng as _;

use super::key_map::{KeyMap, SlotMap};
use super::memory::allocation;
use super::value::{Entry, Value, lru_clock};

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

/// What an entry's access field holds, following `maxmemory-policy` as Redis does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessTracking {
    /// The LRU clock of the last access.
    #[default]
    Lru,
    /// Redis' LFU: 16 bits of minutes since the last decrement, 8 bits of logarithmic counter.
    Lfu {
        /// `lfu-log-factor`: how slowly the counter grows.
        log_factor: u32,
        /// `lfu-decay-time`: minutes per decrement of an idle key's counter.
        decay_minutes: u32,
    },
}

/// Redis' `LFU_INIT_VAL`: a new key's counter, so it is not evicted at once.
const LFU_INIT_VAL: u32 = 5;

fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xffff) as u32
}

/// The LFU counter of `accessed` after the decay its idle minutes call for (Redis'
/// `LFUDecrAndReturn`).
pub fn lfu_counter(accessed: u32, now_ms: u64, decay_minutes: u32) -> u32 {
    let last = accessed >> 8;
    let counter = accessed & 0xff;
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= last { now - last } else { 65_535 - last + now };
    let periods = elapsed.checked_div(decay_minutes).unwrap_or(0);
    counter.saturating_sub(periods)
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

/// Where a `SCAN` over a whole database resumes: the slot, and how many positions of that slot
/// remain unvisited (0: start the slot from its top).
///
/// Each slot's map is walked from its last position down. Maps remove by swapping the last entry
/// into the hole, so an entry can only move from a visited position to an unvisited one, never
/// the other way, and new entries are appended above the cursor: every key present for the whole
/// scan is returned at least once, which is `SCAN`'s guarantee.
fn split_cursor(cursor: u64) -> (usize, usize) {
    ((cursor >> 32) as usize, (cursor & 0xffff_ffff) as usize)
}

fn join_cursor(slot: usize, remaining: usize) -> u64 {
    ((slot as u64) << 32) | remaining as u64
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

    /// Sets what accesses record (the server calls it when `maxmemory-policy` changes).
    pub fn set_access_tracking(&mut self, access: AccessTracking) {
        self.access = access;
    }

    /// The access field of a new entry.
    fn initial_access(&self, now_ms: u64) -> u32 {
        match self.access {
            AccessTracking::Lru => lru_clock(now_ms),
            AccessTracking::Lfu { .. } => (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL,
        }
    }

    /// Records an access in an entry's access field: the time, or a decayed and probabilistically
    /// incremented frequency (Redis' `updateLFU`, with its `LFULogIncr`).
    fn record_access(access: AccessTracking, draws: &mut u64, accessed: &mut u32, now_ms: u64) {
        match access {
            AccessTracking::Lru => *accessed = lru_clock(now_ms),
            AccessTracking::Lfu { log_factor, decay_minutes } => {
                let mut counter = lfu_counter(*accessed, now_ms, decay_minutes);
                if counter < 255 {
                    *draws = draws.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut bits = *draws;
                    bits = (bits ^ (bits >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    bits = (bits ^ (bits >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    bits ^= bits >> 31;
                    let draw = (bits >> 11) as f64 / (1u64 << 53) as f64;
                    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
                    if draw < 1.0 / (base * f64::from(log_factor) + 1.0) {
                        counter += 1;
                    }
                }
                *accessed = (lfu_minutes(now_ms) << 8) | counter;
            }
        }
    }

    /// The LFU frequency of `key` (`OBJECT FREQ`), without counting this as an access.
    pub fn frequency(&self, key: &[u8], now_ms: u64) -> Option<u32> {
        let AccessTracking::Lfu { decay_minutes, .. } = self.access else {
            return None;
        };
        self.peek(key).map(|entry| lfu_counter(entry.accessed, now_ms, decay_minutes))
    }

    /// Backdates or seeds `key`'s access record as `RESTORE … IDLETIME seconds` or `FREQ count`
    /// asks (Redis' `objectSetLRUOrLFU`): under an LFU policy a given frequency becomes the
    /// counter; under any other a given idle time moves the 24-bit LRU clock back that far,
    /// wrapping as the clock wraps. The option that does not fit the policy is ignored, as Redis
    /// ignores it.
    pub fn restore_access(&mut self, key: &[u8], idle_seconds: Option<i64>, frequency: Option<u8>, now_ms: u64) {
        let access = self.access;
        let slot = KeyHash::of(key).slot().index();
        let Some(entry) = self.slots[slot].map.get_mut(key) else {
            return;
        };
        match (access, idle_seconds, frequency) {
            (AccessTracking::Lfu { .. }, _, Some(frequency)) => {
                entry.accessed = (lfu_minutes(now_ms) << 8) | u32::from(frequency);
            }
            (AccessTracking::Lru, Some(idle), _) => {
                // Redis scales by its clock resolution (x1000/1000) in 64-bit arithmetic, which
                // wraps for absurd idle times; the 24-bit field keeps the low bits.
                let idle = idle.wrapping_mul(1000) / 1000;
                let mut accessed = i64::from(lru_clock(now_ms)) - idle;
                if accessed < 0 {
                    accessed += 0x00ff_ffff;
                }
                entry.accessed = (accessed as u64 & 0x00ff_ffff) as u32;
            }
            _ => {}
        }
    }

    /// How good a candidate for eviction `entry` is under `policy` (higher is better): idle
    /// seconds, infrequency, or nearness of expiry, as Redis scores its eviction pool.
    pub fn eviction_score(&self, entry: &Entry, policy: crate::config::EvictionPolicy, now_ms: u64) -> u64 {
        use crate::config::EvictionPolicy as P;
        match policy {
            P::AllkeysLfu | P::VolatileLfu => {
                let decay = match self.access {
                    AccessTracking::Lfu { decay_minutes, .. } => decay_minutes,
                    AccessTracking::Lru => 0,
                };
                255 - u64::from(lfu_counter(entry.accessed, now_ms, decay))
            }
            P::VolatileTtl => u64::MAX - entry.expire_at,
            _ => u64::from(entry.idle_seconds(now_ms)),
        }
    }

    /// Up to `count` keys drawn at random for eviction: from the keys with an expiry
    /// (`volatile`), or from all keys by random slot then random position (not exactly uniform,
    /// like Redis' `dictGetSomeKeys`, which is enough to approximate LRU).
    pub fn sample_keys(&self, rng: &mut Rng, count: usize, volatile: bool) -> Vec<Key> {
        let mut keys = Vec::with_capacity(count);
        if volatile {
            for _ in 0..count.min(self.volatile.len()) {
                if let Some((key, _)) = self.volatile.get_index(rng.random_range(0..self.volatile.len())) {
                    keys.push(key.clone());
                }
            }
            return keys;
        }
        if self.len == 0 {
            return keys;
        }
        for _ in 0..count {
            let start = rng.random_range(0..MAX_SLOT_NUM);
            let Some(slot) = (0..MAX_SLOT_NUM)
                .map(|offset| &self.slots[(start + offset) % MAX_SLOT_NUM])
                .find(|slot| !slot.map.is_empty())
            else {
                break;
            };
            if let Some((key, _)) = slot.map.get_index(rng.random_range(0..slot.map.len())) {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// A key with an expiry chosen at random (`volatile-random`).
    pub fn random_volatile_key(&self, rng: &mut Rng) -> Option<Key> {
        if self.volatile.is_empty() {
            return None;
        }
        self.volatile.get_index(rng.random_range(0..self.volatile.len())).map(|(key, _)| key.clone())
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

    /// Sets the expiry of an existing `key` (0 removes it). Returns `false` if the key does not
    /// exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at_ms: u64) -> bool {
        let slot = KeyHash::of(key).slot().index();
        let Some(entry) = self.slots[slot].map.get_mut(key) else {
            return false;
        };
        let was_volatile = entry.expire_at != 0;
        entry.expire_at = expire_at_ms;
        self.track_expiry(key, was_volatile, expire_at_ms != 0);
        self.bump_watch(key);
        true
    }

    /// Keeps the index of keys with an expiry in step when `key` gains or loses one.
    fn track_expiry(&mut self, key: &[u8], was_volatile: bool, is_volatile: bool) {
        match (was_volatile, is_volatile) {
            (false, true) if !self.volatile.contains_key(key) => {
                self.volatile.insert_new(Key::from_slice(key), ());
                self.memory.volatile_keys += key_heap(key.len());
            }
            (true, false) if self.volatile.swap_remove_entry(key).is_some() => {
                self.memory.volatile_keys -= key_heap(key.len());
            }
            _ => {}
        }
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

    /// Turns the deletion of expired keys on or off (off while replaying changes).
    pub fn set_lazy_expiry(&mut self, on: bool) {
        self.lazy_expiry = on;
    }

    /// Whether this database deletes expired keys itself (see [`Db::set_lazy_expiry`]).
    pub fn deletes_expired(&self) -> bool {
        self.lazy_expiry
    }

    /// Starts (or stops) keeping the keys deleted because they expired, for
    /// [`Db::take_expired`].
    pub fn set_log_expired(&mut self, on: bool) {
        self.log_expired = on;
        if !on {
            self.expired_log.clear();
        }
    }

    /// The keys deleted because they expired since the last call.
    pub fn take_expired(&mut self) -> Vec<Key> {
        std::mem::take(&mut self.expired_log)
    }

    /// Changes to keys since the database was made (each mutation of a key counts one).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Records that `key` changed, for `WATCH` and the snapshot rules (every mutation above
    /// calls it).
    fn bump_watch(&mut self, key: &[u8]) {
        self.changes += 1;
        if !self.watched.is_empty()
            && let Some(watched) = self.watched.get_mut(key)
        {
            watched.version += 1;
        }
    }

    /// Registers a watcher of `key`; returns the version to compare at `EXEC`.
    pub fn watch(&mut self, key: &[u8]) -> WatchVersion {
        let watched = self.watched.entry(Key::from_slice(key)).or_default();
        watched.watchers += 1;
        WatchVersion { version: watched.version, expiry_deletion: watched.expiry_deletion }
    }

    /// Drops a watcher of `key`.
    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(watched) = self.watched.get_mut(key) {
            watched.watchers = watched.watchers.saturating_sub(1);
            if watched.watchers == 0 {
                self.watched.remove(key);
            }
        }
    }

    /// After the data of two databases was swapped: give the watch registrations back to their
    /// database index and touch every watched key that exists on either side (Redis'
    /// `touchAllWatchedKeysInDb`).
    pub(crate) fn swap_watches(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.watched, &mut other.watched);
        self.touch_watched_existing_in(other);
        other.touch_watched_existing_in(self);
    }

    /// Touches this database's watched keys that exist here or in `other`.
    fn touch_watched_existing_in(&mut self, other: &Db) {
        let keys: Vec<Key> =
            self.watched.keys().filter(|key| self.peek(key).is_some() || other.peek(key).is_some()).cloned().collect();
        for key in keys {
            self.bump_watch(&key);
        }
    }

    /// The current version of a watched `key` (`None` if nobody watches it).
    pub fn watched_version(&self, key: &[u8]) -> Option<WatchVersion> {
        self.watched
            .get(key)
            .map(|watched| WatchVersion { version: watched.version, expiry_deletion: watched.expiry_deletion })
    }

    /// Queues `client` among the waiters of `key` (a client waits once per key).
    pub fn add_waiter(&mut self, key: &[u8], client: u64) {
        let queue = self.waiters.entry(Key::from_slice(key)).or_default();
        if !queue.contains(&client) {
            queue.push_back(client);
        }
    }

    /// Removes `client` from the waiters of `key`.
    pub fn remove_waiter(&mut self, key: &[u8], client: u64) {
        if let Some(queue) = self.waiters.get_mut(key) {
            queue.retain(|waiter| *waiter != client);
            if queue.is_empty() {
                self.waiters.remove(key);
            }
        }
    }

    /// The clients waiting on `key`, first come first.
    pub fn waiters(&self, key: &[u8]) -> Vec<u64> {
        self.waiters.get(key).map(|queue| queue.iter().copied().collect()).unwrap_or_default()
    }

    /// The keys with waiters created since the last call, in the order they were.
    pub fn take_ready(&mut self) -> Vec<Key> {
        std::mem::take(&mut self.ready)
    }

    /// Whether a key with waiters was created since the last [`Db::take_ready`].
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Notes that `key` was created or replaced, if some client waits on it (Redis'
    /// `signalKeyAsReady`). Whether its value suits the waiters is checked when serving them.
    fn signal_ready(&mut self, key: &[u8]) {
        if !self.waiters.is_empty()
            && self.waiters.contains_key(key)
            && !self.ready.iter().any(|ready| ready[..] == *key)
        {
            self.ready.push(Key::from_slice(key));
        }
    }

    /// After `SWAPDB` exchanged two databases' data: give waiters back to their database index
    /// and mark ready every key with waiters that now exists (Redis' `scanDatabaseForReadyKeys`).
    pub(crate) fn swap_waiters(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.waiters, &mut other.waiters);
        std::mem::swap(&mut self.ready, &mut other.ready);
        for db in [self, other] {
            let existing: Vec<Key> = db.waiters.keys().filter(|key| db.peek(key).is_some()).cloned().collect();
            for key in existing {
                db.signal_ready(&key);
            }
        }
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

    /// Deletes an expired `key`, counting it.
    fn expire(&mut self, key: &[u8]) {
        if self.remove(key).is_some() {
            self.stats.expired_keys += 1;
            if self.log_expired {
                self.expired_log.push(Key::from_slice(key));
            }
            if let Some(watched) = self.watched.get_mut(key) {
                watched.expiry_deletion = watched.version;
            }
        }
    }

    /// Visits up to `count` entries of the whole database from `cursor` (0 starts), calling
    /// `visit` for each; returns the cursor to continue from (0 when the scan is complete).
    /// Expired keys are visited too: the caller filters them (and may expire them) afterwards.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Key, &Entry)) -> u64 {
        let (mut slot, mut remaining) = split_cursor(cursor);
        let mut visited = 0;
        while slot < MAX_SLOT_NUM {
            let map = &self.slots[slot].map;
            if remaining == 0 || remaining > map.len() {
                remaining = map.len();
            }
            while remaining > 0 && visited < count {
                remaining -= 1;
                if let Some((key, entry)) = map.get_index(remaining) {
                    visit(key, entry);
                }
                visited += 1;
            }
            if remaining > 0 {
                return join_cursor(slot, remaining);
            }
            slot += 1;
            if visited >= count {
                break;
            }
        }
        if slot >= MAX_SLOT_NUM { 0 } else { join_cursor(slot, 0) }
    }

    /// Visits up to `count` entries of one slot from `cursor` (0 starts); returns the cursor to
    /// continue from (0 when done). The same walk as [`Db::scan`], within one slot.
    pub fn scan_slot(&self, slot: SlotId, cursor: u64, count: usize, mut visit: impl FnMut(&Key, &Entry)) -> u64 {
        let map = &self.slots[slot.index()].map;
        let mut remaining = usize::try_from(cursor).unwrap_or(usize::MAX);
        if remaining == 0 || remaining > map.len() {
            remaining = map.len();
        }
        let mut visited = 0;
        while remaining > 0 && visited < count {
            remaining -= 1;
            if let Some((key, entry)) = map.get_index(remaining) {
                visit(key, entry);
            }
            visited += 1;
        }
        remaining as u64
    }

    /// Every key, in slot order, for `KEYS`; the caller filters by pattern and expiry.
    pub fn keys(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.slots.iter().flat_map(|slot| slot.map.iter())
    }

    /// The keys of `slot` sharing `key`'s hash tag, or just `key` if it has no tag (and exists).
    pub fn keys_sharing_tag(&self, key: &[u8]) -> Vec<Key> {
        let hash = KeyHash::of(key);
        let slot = &self.slots[hash.slot().index()];
        if !hash.tagged {
            return slot.map.get_key_value(key).map(|(key, _)| vec![key.clone()]).unwrap_or_default();
        }
        slot.tagged
            .range((hash.crc, Key::new())..)
            .take_while(|(crc, _)| *crc == hash.crc)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// A key chosen uniformly at random, or `None` if the database is empty. It may have expired:
    /// `RANDOMKEY` deletes it and draws again.
    pub fn random_key(&self, rng: &mut Rng) -> Option<Key> {
        if self.len == 0 {
            return None;
        }
        let mut index = rng.random_range(0..self.len);
        for slot in self.slots.iter() {
            if index < slot.map.len() {
                return slot.map.get_index(index).map(|(key, _)| key.clone());
            }
            index -= slot.map.len();
        }
        None
    }

    /// One pass of active expiry, as Redis' `activeExpireCycle`: sample `sample` keys with an
    /// expiry, delete the expired ones, and go again while more than a tenth of a sample had
    /// expired, at most `max_rounds` times. Returns how many keys expired.
    pub fn expire_cycle(&mut self, now_ms: u64, rng: &mut Rng, sample: usize, max_rounds: usize) -> usize {
        let mut total = 0;
        for _ in 0..max_rounds {
            let draws = sample.min(self.volatile.len());
            if draws == 0 {
                break;
            }
            let mut expired = 0;
            for _ in 0..draws {
                if self.volatile.is_empty() {
                    break;
                }
                let index = rng.random_range(0..self.volatile.len());
                let Some(key) = self.volatile.get_index(index).map(|(key, _)| key.clone()) else {
                    break;
                };
                if self.peek(&key).is_some_and(|entry| entry.is_expired(now_ms)) {
                    self.expire(&key);
                    expired += 1;
                }
            }
            total += expired;
            if expired * 10 <= draws {
                break;
            }
        }
        total
    }

    /// Checks that `key`'s memory charge matches what it holds (debug builds run this after every
    /// command, so a command that changes a value without [`Db::touch`] is caught at once).
    pub fn check_charge(&self, key: &[u8]) -> Result<(), String> {
        match self.peek(key) {
            Some(entry) if entry.charged != charge(key.len(), &entry.value) => {
                Err(format!("key '{}' changed without Db::touch", lossy(key)))
            }
            _ => Ok(()),
        }
    }

    /// Checks that the indexes agree with the keys (`SLOTSCHECK`, and tests): every key in the
    /// slot its hash says, every tagged key in the tag index and back, every key with an expiry in
    /// the expiry index and back, and the count right.
    pub fn check(&self) -> Result<(), String> {
        let mut count = 0;
        let mut volatile = 0;
        let mut charged = 0;
        for (index, slot) in self.slots.iter().enumerate() {
            for (key, entry) in slot.map.iter() {
                count += 1;
                charged += entry.charged as usize * 8;
                if entry.charged != charge(key.len(), &entry.value) {
                    return Err(format!("key '{}' changed without its memory being recounted", lossy(key)));
                }
                let hash = KeyHash::of(key);
                if hash.slot().index() != index {
                    return Err(format!("key '{}' is in slot {index}, hashes to {}", lossy(key), hash.slot()));
                }
                if hash.tagged && !slot.tagged.contains(&(hash.crc, key.clone())) {
                    return Err(format!("tagged key '{}' is missing from the tag index", lossy(key)));
                }
                if entry.expire_at != 0 {
                    volatile += 1;
                    if !self.volatile.contains_key(key) {
                        return Err(format!("key '{}' has an expiry but is not in the expiry index", lossy(key)));
                    }
                }
            }
            for (crc, key) in &slot.tagged {
                if !slot.map.contains_key(key) || KeyHash::of(key).crc != *crc {
                    return Err(format!("tag index holds '{}', which is not a key of slot {index}", lossy(key)));
                }
            }
        }
        if count != self.len {
            return Err(format!("key count is {}, but {count} keys exist", self.len));
        }
        if volatile != self.volatile.len() {
            return Err(format!("{} keys in the expiry index, {volatile} keys with an expiry", self.volatile.len()));
        }
        if charged != self.memory.data {
            return Err(format!("entries are charged {charged} bytes, the database counts {}", self.memory.data));
        }
        let tables: usize = self.slots.iter().map(|slot| slot.map.heap_bytes()).sum();
        if tables != self.memory.tables {
            return Err(format!("slot tables take {tables} bytes, the database counts {}", self.memory.tables));
        }
        Ok(())
    }
}

fn lossy(key: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(key)
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
