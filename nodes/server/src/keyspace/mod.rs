//! The keyspace: databases of keys indexed by slot.
//!
//! - [`value`]: values ([`Value`], [`Str`]) and the [`Entry`] that holds one with its expiry.
//! - [`collections`]: [`Hash`], [`Set`] and [`List`], with Redis' compact encodings mirrored.
//! - [`db`]: one database ([`Db`]), its slot and tag indexes, expiry, `WATCH` versions, scans.
//! - [`key_map`]: the compact map that holds one slot's keys, and the index of keys with an expiry.
//! - [`memory`]: what values cost in memory, for `INFO memory` and `maxmemory`.
//! - [`bulk`], [`key`], [`skiplist`]: stored bytes, keys, and the sorted sets' skiplist.

pub mod bulk;
pub mod collections;
pub mod db;
pub mod key;
pub mod key_map;
pub mod memory;
pub mod skiplist;
pub mod value;

pub use collections::{EncodingLimits, Hash, List, Set, ZSet};
pub use db::{AccessTracking, Db, DbStats, Key, WatchVersion};
pub use value::{Bulk, Entry, Str, Value, lru_clock};

/// Every database of a server.
#[derive(Clone, Debug)]
pub struct Keyspace {
    dbs: Vec<Db>,
}

impl Keyspace {
    /// `databases` empty databases, hashing with seeds drawn from `seed`.
    pub fn new(databases: usize, seed: u64) -> Keyspace {
        Keyspace { dbs: (0..databases).map(|index| Db::new(net::derive_seed(seed, &format!("db{index}")))).collect() }
    }

    /// How many databases there are.
    pub fn len(&self) -> usize {
        self.dbs.len()
    }

    /// Whether there are no databases (never, for a configured server).
    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// Database `index`. Callers validate indexes when parsing `SELECT`/`MOVE`/`SWAPDB`.
    pub fn db(&mut self, index: usize) -> &mut Db {
        &mut self.dbs[index]
    }

    /// Two different databases at once (`MOVE`, `COPY … DB`).
    pub fn pair(&mut self, first: usize, second: usize) -> (&mut Db, &mut Db) {
        assert_ne!(first, second, "pair of the same database");
        if first < second {
            let (low, high) = self.dbs.split_at_mut(second);
            (&mut low[first], &mut high[0])
        } else {
            let (low, high) = self.dbs.split_at_mut(first);
            (&mut high[0], &mut low[second])
        }
    }

    /// Exchanges two databases' data (`SWAPDB`), leaving each index's `WATCH` registrations and
    /// blocked clients where they are, touching the watched keys that exist in either and marking
    /// ready the keys clients wait on.
    pub fn swap(&mut self, first: usize, second: usize) {
        if first == second {
            return;
        }
        self.dbs.swap(first, second);
        let (a, b) = self.pair(first, second);
        a.swap_watches(b);
        a.swap_waiters(b);
    }

    /// Changes to keys in every database since start (Redis' `dirty`, before subtracting what
    /// the last snapshot saved).
    pub fn changes(&self) -> u64 {
        self.dbs().iter().map(Db::changes).sum()
    }

    /// Every database, in order.
    pub fn dbs(&self) -> &[Db] {
        &self.dbs
    }

    /// Whether any database has keys ready for blocked clients.
    pub fn has_ready(&self) -> bool {
        self.dbs.iter().any(Db::has_ready)
    }

    /// Every database, mutably.
    pub fn dbs_mut(&mut self) -> &mut [Db] {
        &mut self.dbs
    }
}
